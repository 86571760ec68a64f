"""Bootstrap confidence intervals for latency quantiles (iid and block bootstraps).

DESIGN.md §3: BCa for iid samples, percentile (or basic) for the block bootstraps; seeded and
reproducible; :func:`choose_bootstrap` says which bootstrap to use and why, so the protocol can
record the reason. Random numbers are drawn here from ``numpy.random.default_rng(seed)``; the
numba kernel in :mod:`tsglab.stats._bootstrap_kernels` only gathers and evaluates.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betainc, ndtr, ndtri

from tsglab.errors import DegenerateStatisticWarning, InvalidArgument
from tsglab.stats._config import BOOTSTRAP_CDF_TOLERANCE, BOOTSTRAP_CHUNK_DRAWS, BOOTSTRAP_HD_WEIGHT_TAIL
from tsglab.stats.blocklength import optimal_block_length, serial_correlation_check
from tsglab.stats.quantiles import _as_probabilities, _as_sample, harrell_davis

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BootstrapCI", "BootstrapChoice", "bootstrap_quantile_ci", "choose_bootstrap"]

BootstrapMethod = Literal["iid", "moving-block", "circular-block", "stationary"]
IntervalKind = Literal["percentile", "basic", "bca"]
QuantileEstimator = Literal["order-statistic", "harrell-davis"]

_METHODS = ("iid", "moving-block", "circular-block", "stationary")
_INTERVALS = ("percentile", "basic", "bca")
_ESTIMATORS = ("order-statistic", "harrell-davis")


@dataclass(frozen=True, eq=False)
class BootstrapCI:
    """A bootstrap confidence interval for a quantile.

    Attributes
    ----------
    estimate : float
        The quantile of the sample (type-1 order statistic or Harrell–Davis).
    ci_low, ci_high : float
        Interval end points.
    method : str
        ``"iid"``, ``"moving-block"``, ``"circular-block"`` or ``"stationary"``.
    ci : str
        ``"percentile"``, ``"basic"`` or ``"bca"``.
    n_resamples : int
        Number of bootstrap draws B.
    confidence : float
        Two-sided confidence level.
    block_length : int or None
        (Mean) block length used; None for iid.
    estimator : str
        ``"order-statistic"`` or ``"harrell-davis"``.
    seed : int
        Seed of ``numpy.random.default_rng``.
    q : float
        The probability.
    n : int
        Sample size.
    draws : numpy.ndarray
        The B bootstrap values of the statistic (not shown in the repr, not in ``to_frame``).
    """

    estimate: float
    ci_low: float
    ci_high: float
    method: str
    ci: str
    n_resamples: int
    confidence: float
    block_length: int | None
    estimator: str
    seed: int
    q: float
    n: int
    draws: np.ndarray = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the fields, without ``draws``."""
        import pandas as pd  # imported here: `import tsglab` stays cheap

        record = {k: v for k, v in asdict(self).items() if k != "draws"}
        return pd.DataFrame([record])


# -- quantile helpers ---------------------------------------------------------------------------


def _type1_rank(n: int, q: float) -> int:
    """1-based k with ``x_(k) == np.quantile(x, q, method="inverted_cdf")``, i.e. ``ceil(q n)``.

    Taken from numpy itself so the float rounding of ``q * n`` matches ``np.quantile`` exactly.
    """
    return int(np.quantile(np.arange(1, n + 1, dtype=np.float64), q, method="inverted_cdf"))


def _order_statistics(x: np.ndarray, first: int, last: int) -> np.ndarray:
    """Sorted values ``x_(first) .. x_(last)`` (1-based, inclusive) in O(n) plus the window's sort."""
    part = np.partition(x, [first - 1, last - 1])
    return np.sort(part[first - 1 : last])


def _hd_weights(n: int, q: float) -> np.ndarray:
    """Harrell–Davis weights :math:`I_{i/n}(a,b) - I_{(i-1)/n}(a,b)` for i = 1..n."""
    grid = np.arange(n + 1, dtype=np.float64) / n
    return np.diff(betainc(q * (n + 1), (1.0 - q) * (n + 1), grid))


def _hd_window(n: int, q: float) -> tuple[int, np.ndarray]:
    """0-based first index and cumulative weights of the HD weights, tails below the tolerance cut."""
    weights = _hd_weights(n, q)
    lo = int(np.sum(np.cumsum(weights) < BOOTSTRAP_HD_WEIGHT_TAIL))
    hi = n - int(np.sum(np.cumsum(weights[::-1]) < BOOTSTRAP_HD_WEIGHT_TAIL))
    return lo, np.concatenate(([0.0], np.cumsum(weights[lo:hi])))


# -- draws ----------------------------------------------------------------------------------------


def _iid_order_statistic_draws(x: np.ndarray, q: float, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    r"""Draws of the type-1 quantile of an iid resample, without resampling.

    The number of resampled values with rank ≤ j is Binomial(n, j/n), so
    :math:`F(j) = P(x^*_{(k)} \le x_{(j)}) = P(\mathrm{Bin}(n, j/n) \ge k)`; the draw is
    :math:`x_{(J)}` with :math:`J = \min\{j : F(j) > u\}`. F is computed only over the window of j
    where it is not 0 or 1 to ``BOOTSTRAP_CDF_TOLERANCE`` (width O(√n)).
    """
    from scipy.stats import binom  # imported here: `import tsglab` stays cheap

    n = x.size
    k = _type1_rank(n, q)
    half_width = math.ceil(10.0 * math.sqrt(n * q * (1.0 - q))) + 10
    while True:
        j_lo, j_hi = max(1, k - half_width), min(n, k + half_width)
        j = np.arange(j_lo, j_hi + 1)
        cdf = binom.sf(k - 1, n, j / n)
        low_ok = j_lo == 1 or cdf[0] <= BOOTSTRAP_CDF_TOLERANCE
        high_ok = j_hi == n or cdf[-1] >= 1.0 - BOOTSTRAP_CDF_TOLERANCE
        if low_ok and high_ok:
            break
        half_width *= 2
    cdf[-1] = 1.0
    index = np.searchsorted(cdf, rng.random(n_resamples), side="right")
    return _order_statistics(x, j_lo, j_hi)[index]


def _resampled_window_draws(
    x: np.ndarray,
    lo: int,
    weight_cumsum: np.ndarray,
    method: str,
    block_length: int,
    n_resamples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draws of a window statistic over resamples whose block starts/lengths are drawn here."""
    from tsglab.stats._bootstrap_kernels import resample_window_stats  # numba: imported when used

    n = x.size
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)
    out = np.empty(n_resamples)
    length = 1 if method == "iid" else block_length
    done = 0
    while done < n_resamples:
        if method == "stationary":
            per_resample = n / length + 1.0
            chunk = max(1, min(n_resamples - done, int(BOOTSTRAP_CHUNK_DRAWS // per_resample)))
            expected = chunk * per_resample
            size = int(expected + 6.0 * math.sqrt(expected) + 16)
            starts = rng.integers(0, n, size=size)
            lengths = rng.geometric(1.0 / length, size=size)
        else:
            blocks = -(-n // length)
            chunk = max(1, min(n_resamples - done, BOOTSTRAP_CHUNK_DRAWS // blocks))
            high = n - length + 1 if method == "moving-block" else n
            starts = rng.integers(0, high, size=chunk * blocks)
            lengths = np.full(starts.size, length, dtype=np.int64)
        # a stationary pool that runs out mid-chunk is followed by a fresh pool (still seeded)
        done += resample_window_stats(ranks, sorted_x, starts, lengths, lo, weight_cumsum, out[done : done + chunk])
    return out


# -- jackknife and interval ----------------------------------------------------------------------


def _jackknife_type1(x: np.ndarray, q: float) -> np.ndarray:
    r"""Leave-one-out type-1 quantiles, in the order of ``x``, in O(n).

    With :math:`k' = \lceil q(n-1) \rceil`, removing an observation at sorted position
    :math:`i` leaves :math:`x_{(k')}` when :math:`i > k'` and :math:`x_{(k'+1)}` when
    :math:`i \le k'`. Ties need no positions: :math:`x_i \le x_{(k')}` identifies :math:`i \le k'`
    whenever the two candidate values differ.
    """
    n = x.size
    k_loo = _type1_rank(n - 1, q)
    low, high = _order_statistics(x, k_loo, k_loo + 1)
    return np.where(x <= low, high, low)


def _jackknife_harrell_davis(x: np.ndarray, q: float) -> np.ndarray:
    r"""Leave-one-out Harrell–Davis estimates, in sorted-position order, in O(n log n).

    Removing :math:`x_{(i)}` (0-based) leaves
    :math:`\sum_{m<i} W'_m x_{(m)} + \sum_{m\ge i} W'_m x_{(m+1)}` with the weights :math:`W'` of
    n − 1 observations: a prefix sum plus a suffix sum.
    """
    sorted_x = np.sort(x)
    w = _hd_weights(sorted_x.size - 1, q)
    prefix = np.concatenate(([0.0], np.cumsum(w * sorted_x[:-1])))
    suffix = np.concatenate((np.cumsum((w * sorted_x[1:])[::-1])[::-1], [0.0]))
    return prefix + suffix


def _acceleration(jackknife: np.ndarray) -> float:
    r""":math:`\hat a = \sum d_i^3 / (6 (\sum d_i^2)^{3/2})`, :math:`d_i = \bar\theta_{(\cdot)} - \theta_{(i)}`."""
    d = jackknife.mean() - jackknife
    denom = 6.0 * float(np.sum(d**2)) ** 1.5
    numer = float(np.sum(d**3))
    if denom <= abs(numer) * np.finfo(np.float64).eps or denom == 0.0:
        warnings.warn(
            "All leave-one-out estimates are equal (ties around the quantile), so the BCa "
            "acceleration is undefined; using a = 0 (bias-corrected percentile interval).",
            DegenerateStatisticWarning,
            stacklevel=4,
        )
        return 0.0
    return numer / denom


def _interval(
    draws: np.ndarray, estimate: float, confidence: float, ci: str, acceleration: float
) -> tuple[float, float]:
    alpha = 1.0 - confidence
    levels = np.array([alpha / 2.0, 1.0 - alpha / 2.0])
    if ci == "bca":
        # mid-rank share of draws below the estimate: the draws of a quantile have many ties
        share = (np.count_nonzero(draws < estimate) + np.count_nonzero(draws <= estimate)) / (2.0 * draws.size)
        z0 = float(ndtri(share))
        if not np.isfinite(z0):
            warnings.warn(
                f"Every bootstrap draw lies on one side of the estimate (share {share}); the BCa "
                "bias correction is infinite, returning NaN. Use ci='percentile'.",
                DegenerateStatisticWarning,
                stacklevel=3,
            )
            return float("nan"), float("nan")
        z = ndtri(levels)
        levels = ndtr(z0 + (z0 + z) / (1.0 - acceleration * (z0 + z)))
    low, high = np.quantile(draws, levels)
    if ci == "basic":
        return 2.0 * estimate - float(high), 2.0 * estimate - float(low)
    return float(low), float(high)


# -- public ---------------------------------------------------------------------------------------


def _validate_bootstrap(
    x: ArrayLike,
    q: float,
    method: str,
    ci: str,
    n_resamples: int,
    confidence: float,
    block_length: int | None,
    estimator: str,
    seed: int,
) -> tuple[np.ndarray, float]:
    sample = _as_sample(x)
    q_arr = _as_probabilities(q)
    if q_arr.ndim != 0:
        raise InvalidArgument(f"`q` must be a single probability; got shape {q_arr.shape}. Call once per q.")
    if method not in _METHODS:
        raise InvalidArgument(
            f"`method` must be one of {_METHODS}; got {method!r}. Use `choose_bootstrap(x)` to pick one."
        )
    if ci not in _INTERVALS:
        raise InvalidArgument(f"`ci` must be one of {_INTERVALS}; got {ci!r}. Use ci='percentile' (the default).")
    if estimator not in _ESTIMATORS:
        raise InvalidArgument(
            f"`estimator` must be one of {_ESTIMATORS}; got {estimator!r}. Use the default, 'order-statistic'."
        )
    if ci == "bca" and method != "iid":
        raise InvalidArgument(
            f"`ci='bca'` needs iid data; got method={method!r}. Use ci='percentile' (or 'basic') for block bootstraps."
        )
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 100:
        raise InvalidArgument(
            f"`n_resamples` must be an integer ≥ 100; got {n_resamples!r}. Use 2000 or more for a 95 % CI."
        )
    if not (isinstance(confidence, (int, float)) and 0.0 < confidence < 1.0):
        raise InvalidArgument(f"`confidence` must lie strictly between 0 and 1; got {confidence!r}. Use e.g. 0.95.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgument(
            f"`seed` must be a non-negative integer; got {seed!r}. Record it to make the CI reproducible."
        )
    if block_length is not None:
        if method == "iid":
            raise InvalidArgument(
                f"`block_length` applies to block bootstraps only; got block_length={block_length!r} with "
                "method='iid'. Drop it or choose method='stationary'."
            )
        bad_type = isinstance(block_length, bool) or not isinstance(block_length, (int, np.integer))
        if bad_type or not 1 <= block_length <= max(sample.size, 1):
            raise InvalidArgument(
                f"`block_length` must be an integer in [1, {sample.size}]; got {block_length!r}. Use "
                "`optimal_block_length(x)` (or leave it None to use it)."
            )
    return sample, float(q_arr)


def _resolve_block_length(sample: np.ndarray, method: str, block_length: int | None) -> int | None:
    if method == "iid":
        return None
    if block_length is not None:
        return int(block_length)
    estimate = optimal_block_length(sample)
    value = estimate.stationary if method == "stationary" else estimate.circular
    if not np.isfinite(value):
        return 1
    return int(min(sample.size, max(1, round(value))))


def bootstrap_quantile_ci(
    x: ArrayLike,
    q: float = 0.95,
    *,
    method: BootstrapMethod = "iid",
    ci: IntervalKind = "percentile",
    n_resamples: int = 2000,
    confidence: float = 0.95,
    block_length: int | None = None,
    estimator: QuantileEstimator = "order-statistic",
    seed: int = 0,
) -> BootstrapCI:
    r"""Bootstrap confidence interval for a quantile, iid or block bootstrap.

    Parameters
    ----------
    x : array_like
        1-D sample in time order (order matters for the block bootstraps). NaN/inf raise.
    q : float
        Probability in (0, 1), e.g. 0.95 for the P95.
    method : {"iid", "moving-block", "circular-block", "stationary"}, keyword-only
        Resampling scheme. Use :func:`choose_bootstrap` to pick between iid and stationary.
    ci : {"percentile", "basic", "bca"}, keyword-only
        Interval. BCa is for ``method="iid"`` only.
    n_resamples : int, keyword-only
        Number of bootstrap draws B (≥ 100).
    confidence : float, keyword-only
        Two-sided confidence level in (0, 1).
    block_length : int or None, keyword-only
        Block length (mean length for stationary) in ``[1, n]``; None uses
        :func:`optimal_block_length` (rounded, at least 1). Must be None for iid.
    estimator : {"order-statistic", "harrell-davis"}, keyword-only
        ``"order-statistic"``: type-1 quantile :math:`x_{(k)}`, :math:`k = \lceil qn\rceil`
        (``np.quantile(..., method="inverted_cdf")``); ``"harrell-davis"``: :func:`harrell_davis`.
    seed : int, keyword-only
        Seed of ``numpy.random.default_rng``; the same seed gives the same result.

    Returns
    -------
    BootstrapCI
        NaN end points and a :class:`~tsglab.errors.DegenerateStatisticWarning` for n < 2.

    Raises
    ------
    ValueError
        For an invalid option; each message names the parameter, the value and the fix.

    Notes
    -----
    With bootstrap draws :math:`\hat\theta^*_1..\hat\theta^*_B` and their empirical quantile
    function :math:`\hat G^{-1}` (linear interpolation), at level :math:`\alpha = 1 -`
    ``confidence``:

    * percentile: :math:`[\hat G^{-1}(\alpha/2),\ \hat G^{-1}(1-\alpha/2)]`;
    * basic: :math:`[2\hat\theta - \hat G^{-1}(1-\alpha/2),\ 2\hat\theta - \hat G^{-1}(\alpha/2)]`;
    * BCa: :math:`\hat G^{-1}(\Phi(z_0 + (z_0+z_\beta)/(1 - a(z_0+z_\beta))))` for
      :math:`\beta = \alpha/2, 1-\alpha/2`, with :math:`z_0 = \Phi^{-1}` of the mid-rank share of
      draws below :math:`\hat\theta` and the jackknife acceleration
      :math:`a = \sum d_i^3 / (6(\sum d_i^2)^{3/2})`, :math:`d_i = \bar\theta_{(\cdot)} -
      \hat\theta_{(i)}` (as ``scipy.stats.bootstrap``). The leave-one-out type-1 quantile takes
      two values, :math:`x_{(k')}` and :math:`x_{(k'+1)}`, :math:`k' = \lceil q(n-1)\rceil`, so the
      jackknife is O(n); for Harrell–Davis it is prefix sums over the sorted sample. When all
      leave-one-out values are equal (ties) :math:`a = 0` with a warning.

    iid order statistic: no resampling. :math:`P(x^*_{(k)} \le x_{(j)}) = P(\mathrm{Bin}(n, j/n)
    \ge k)`, computed over the O(√n) window of j where it is not 0 or 1, is inverted at B seeded
    uniforms: O(n + B log n).

    Block bootstraps draw block starts uniformly (moving-block: in :math:`[0, n-L]`, no wrap;
    circular-block and stationary wrap around), fixed length L or, for the stationary bootstrap,
    Geometric(1/L) lengths; the resample is cut at n values.

    References
    ----------
    .. [1] B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman & Hall, 1993,
       §14.3 (BCa), §13 (percentile).
    .. [2] H. R. Künsch, "The jackknife and the bootstrap for general stationary observations",
       *Ann. Statist.* 17(3), 1989 (moving blocks); D. N. Politis and J. P. Romano, "A circular
       block-resampling procedure for stationary data", 1992, and "The stationary bootstrap",
       *JASA* 89(428), 1994.
    .. [3] A. C. Davison and D. V. Hinkley, *Bootstrap Methods and their Application*, CUP, 1997, §2.4
       (basic interval).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(1).lognormal(size=1000)
    >>> res = bootstrap_quantile_ci(x, 0.95, ci="bca", seed=7)
    >>> bool(res.ci_low <= res.estimate <= res.ci_high)
    True
    """
    sample, q = _validate_bootstrap(x, q, method, ci, n_resamples, confidence, block_length, estimator, seed)
    n = sample.size
    n_resamples, seed, confidence = int(n_resamples), int(seed), float(confidence)
    common: dict[str, Any] = dict(method=method, ci=ci, n_resamples=n_resamples, confidence=confidence,
                  estimator=estimator, seed=seed, q=q, n=n)  # fmt: skip
    if n < 2:
        warnings.warn(
            f"A bootstrap CI needs at least 2 observations; got {n}. Returning NaN.",
            DegenerateStatisticWarning,
            stacklevel=2,
        )
        estimate = float(sample[0]) if n == 1 else float("nan")
        nan = float("nan")
        return BootstrapCI(estimate, nan, nan, block_length=None, draws=np.full(0, nan), **common)
    length = _resolve_block_length(sample, method, block_length)
    rng = np.random.default_rng(seed)
    if estimator == "order-statistic":
        estimate = float(np.quantile(sample, q, method="inverted_cdf"))
        if method == "iid":
            draws = _iid_order_statistic_draws(sample, q, n_resamples, rng)
        else:
            k = _type1_rank(n, q)
            draws = _resampled_window_draws(sample, k - 1, np.array([0.0, 1.0]), method, length or 1, n_resamples,
                                            rng)
    else:
        estimate = float(harrell_davis(sample, q))
        lo, weight_cumsum = _hd_window(n, q)
        draws = _resampled_window_draws(sample, lo, weight_cumsum, method, length or 1, n_resamples, rng)
    acceleration = 0.0
    if ci == "bca":
        jackknife = (
            _jackknife_type1(sample, q) if estimator == "order-statistic" else _jackknife_harrell_davis(sample, q)
        )
        acceleration = _acceleration(jackknife)
    ci_low, ci_high = _interval(draws, estimate, confidence, ci, acceleration)
    return BootstrapCI(estimate, ci_low, ci_high, block_length=length, draws=draws, **common)


@dataclass(frozen=True)
class BootstrapChoice:
    """Which bootstrap to use for a series, and why.

    Attributes
    ----------
    method : str
        ``"iid"`` or ``"stationary"``.
    reason : str
        One sentence to record in ``bootstrap_meta.json``.
    block_length : int or None
        Rounded Politis–White stationary block length (None for iid).
    statistic, p_value : float
        Ljung–Box statistic and p-value.
    lags : int
        Lags of the test.
    alpha : float
        Level of the test.
    """

    method: str
    reason: str
    block_length: int | None
    statistic: float
    p_value: float
    lags: int
    alpha: float

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        import pandas as pd  # imported here: `import tsglab` stays cheap

        return pd.DataFrame([asdict(self)])


def choose_bootstrap(x: ArrayLike, *, lags: int = 10, alpha: float = 0.05) -> BootstrapChoice:
    r"""Pick the iid or the stationary bootstrap from a Ljung–Box test of the series.

    Parameters
    ----------
    x : array_like
        1-D series in time (dispatch) order.
    lags : int, keyword-only
        Lags of the Ljung–Box test, in ``[1, n-1]``.
    alpha : float, keyword-only
        Level of the test.

    Returns
    -------
    BootstrapChoice
        ``method="iid"`` when :math:`p \ge \alpha` (no significant autocorrelation), otherwise
        ``"stationary"`` with the Politis–White block length; ``reason`` states the test result.

    Notes
    -----
    Failing to reject is not evidence of independence; with few observations the test has little
    power, which the reason string does not hide (it quotes Q, p and n). See
    :func:`~tsglab.stats.blocklength.serial_correlation_check` and
    :func:`~tsglab.stats.blocklength.optimal_block_length`.

    References
    ----------
    .. [1] G. M. Ljung and G. E. P. Box, *Biometrika* 65(2), 297–303, 1978.
    .. [2] D. N. Politis and H. White, *Econometric Reviews* 23(1), 53–70, 2004.
    """
    check = serial_correlation_check(x, lags=lags, alpha=alpha)
    test = f"Ljung–Box Q({check.lags}) = {check.statistic:.4g} on n = {check.n}: p = {check.p_value:.3g}"
    if not check.significant:
        reason = f"{test} ≥ α = {check.alpha:g}, no significant autocorrelation; iid bootstrap."
        return BootstrapChoice("iid", reason, None, check.statistic, check.p_value, check.lags, check.alpha)
    length = _resolve_block_length(_as_sample(x), "stationary", None)
    reason = (
        f"{test} < α = {check.alpha:g}, serial correlation; stationary bootstrap with Politis–White "
        f"mean block length {length}."
    )
    return BootstrapChoice("stationary", reason, length, check.statistic, check.p_value, check.lags, check.alpha)
