r"""Inference on latency quantiles: the censored Harrell–Davis estimator, its confidence interval,
and the paired quantile-ratio test of the P95 guardrail (Family B).

One estimator family everywhere (DESIGN.md §5: switching HD → KM on the first timeout makes the P95
jump): Harrell–Davis weights applied to the Kaplan–Meier distribution,

.. math:: \hat\theta_q = \int_0^1 \hat F_{KM}^{-1}(u)\, \mathrm{Beta}(u;\ q(n+1),\ (1-q)(n+1))\,du .

Without censoring :math:`\hat F_{KM}` is the ECDF and this is the Harrell–Davis estimate exactly.
Where the KM curve stops below 1 (the largest observations are censored) the remaining Beta mass is
put at the largest censoring time, so the estimate is then a lower bound; it is *identifiable* only
when the censored share is at most :math:`1-q` (for the P95: 5 %). One timeout among 200 requests
moves the estimate a little instead of switching estimators.

Intervals and tests resample through :mod:`tsglab.stats.resample` (iid, or the stationary bootstrap
with the Politis–White block length when a Ljung–Box test finds serial correlation). The defaults
below were chosen by the calibration in ``benchmarks/calibrate_protocol.py`` (results in
``benchmarks/results/calibration_protocol.md``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betainc, ndtr, ndtri

from tsglab.errors import DegenerateStatisticWarning, InvalidArgument
from tsglab.stats.bootstrap import _hd_weights as hd_weights
from tsglab.stats.bootstrap import _resolve_block_length, choose_bootstrap
from tsglab.stats.hypothesis_tests import _frame, _short_repr
from tsglab.stats.resample import RESAMPLE_METHODS, ResamplePlan, resample_indices

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "QuantileCI",
    "QuantileRatioTest",
    "censored_harrell_davis",
    "choose_resampling",
    "quantile_ci",
    "quantile_ratio_test",
]

# HD weights whose summed mass in either tail is below this are dropped (window of order statistics)
_WEIGHT_TAIL = 1e-13
# the quantile-ratio test needs at least this many observations above the quantile per arm; below it
# a bootstrap of the P95 resamples the sample maximum and does not hold its level (calibration: with 5,
# i.e. n = 100, the heavy-tailed panel rejected 6.4 ± 0.8 % at the margin)
MIN_TAIL_COUNT = 10
# a row is `underpowered` when its estimated power at ratio 1 (equal arms) is below this
UNDERPOWERED_BELOW = 0.5
# serially correlated latencies: the stationary bootstrap (Politis–White block) underestimates the
# spread of a tail-quantile ratio by about 8-10 % at AR(1) phi = 0.7 (benchmarks/calibrate_protocol.py
# measured the true sd 0.102 against a bootstrap sd 0.094 at n = 300, for any block length 5-60), so
# the one-sided bound is then taken at level alpha * SERIAL_LEVEL_FACTOR, and at least
# MIN_BLOCKS blocks of the mean length must fit in the series
SERIAL_LEVEL_FACTOR = 0.5
MIN_BLOCKS = 20
# serial-correlation check needs this many observations; shorter series are resampled iid
MIN_SERIAL_CHECK_N = 30


# -- the estimator --------------------------------------------------------------------------------


def _validate_sample(values: ArrayLike, censored: ArrayLike | None, *, name: str) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise InvalidArgument(f"`{name}` must be 1-D; got shape {arr.shape}. Pass one latency per request.")
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidArgument(
            f"`{name}` must hold finite latencies >= 0; position {i} is {float(arr[i])!r}. A request without an answer "
            "is right-censored: pass its elapsed time (or the SLO cap) with `censored=True`."
        )
    flags = np.zeros(arr.size, dtype=bool) if censored is None else np.asarray(censored, dtype=bool)
    if flags.shape != arr.shape:
        raise InvalidArgument(f"`censored` must have the shape of `{name}` {arr.shape}; got {flags.shape}. Pass "
                              "one flag per latency.")
    return arr, flags


def _hd_weights(n: int, q: float) -> tuple[int, np.ndarray]:
    """0-based first order statistic and the Harrell–Davis weights from there to the end (the
    negligible leading weights folded onto the first, so they still sum to one)."""
    weights = hd_weights(n, q)
    lo = max(0, min(int(np.searchsorted(np.cumsum(weights), _WEIGHT_TAIL, side="right")), n - 1))
    window = weights[lo:].copy()
    window[0] += weights[:lo].sum()
    return lo, window


def _top_censored(values: np.ndarray, censored: np.ndarray) -> bool:
    """True when every censoring time is at or above every event time: the KM distribution is then
    the ECDF of the sample with censored values kept at their censoring times (a lower bound)."""
    return not censored.any() or not (~censored).any() or values[censored].min() >= values[~censored].max()


def _km_hd(values: np.ndarray, censored: np.ndarray, q: float) -> float:
    """HD weights on the Kaplan–Meier quantile function (general censoring pattern)."""
    n = values.size
    order = np.lexsort((censored, values))  # events before censorings at equal times
    t, c = values[order], censored[order]
    at_risk = n - np.arange(n)
    survival = np.cumprod(np.where(c, 1.0, 1.0 - 1.0 / at_risk))
    cdf = 1.0 - survival
    a, b = q * (n + 1), (1.0 - q) * (n + 1)
    events = ~c
    if not events.any():
        return float(t[-1])
    f_events = np.minimum(cdf[events], 1.0)
    beta_cdf = betainc(a, b, f_events)
    weights = np.diff(np.concatenate(([0.0], beta_cdf)))
    estimate = float(np.dot(weights, t[events]))
    rest = 1.0 - beta_cdf[-1]
    if rest > 0:  # the curve stops below 1: put the remaining mass at the largest time (lower bound)
        estimate += rest * float(t[-1])
    return estimate


def censored_harrell_davis(values: ArrayLike, q: float = 0.95, *, censored: ArrayLike | None = None) -> float:
    r"""Harrell–Davis estimate of the q-quantile on the Kaplan–Meier distribution.

    Parameters
    ----------
    values : array_like
        Latencies (ms) ≥ 0; for a censored request its censoring time (elapsed time or SLO cap).
    q : float
        Probability in (0, 1).
    censored : array_like of bool, optional
        True where the latency is right-censored (timeout, or no answer counted at the cap).

    Returns
    -------
    float
        NaN with a :class:`~tsglab.errors.DegenerateStatisticWarning` for an empty sample. Equal to
        :func:`~tsglab.stats.harrell_davis` when nothing is censored.

    Notes
    -----
    :math:`\hat\theta_q = \sum_j t_j\,[I_{F_j}(a,b) - I_{F_{j-1}}(a,b)] + t_{max}\,[1 - I_{F_{last}}(a,b)]`
    over the event times :math:`t_j` with KM distribution values :math:`F_j`, where
    :math:`a = q(n+1)`, :math:`b = (1-q)(n+1)` and :math:`I` is the regularised incomplete Beta
    function. When all censoring times lie above the event times (one timeout for all requests)
    this equals Harrell–Davis of the sample with censored values at their censoring times.

    References
    ----------
    .. [1] F. E. Harrell and C. E. Davis, "A new distribution-free quantile estimator", *Biometrika*
       69(3), 1982.
    .. [2] E. L. Kaplan and P. Meier, "Nonparametric estimation from incomplete observations",
       *JASA* 53(282), 1958.
    """
    arr, flags = _validate_sample(values, censored, name="values")
    if not 0.0 < float(q) < 1.0:
        raise InvalidArgument(f"`q` must lie strictly between 0 and 1; got {q!r}. Use q=0.95 for the P95.")
    if arr.size == 0:
        warnings.warn("The quantile of an empty sample is undefined; returning NaN.", DegenerateStatisticWarning,
                      stacklevel=2)
        return math.nan
    if _top_censored(arr, flags):
        lo, weights = _hd_weights(arr.size, float(q))
        return float(np.dot(np.sort(arr)[lo:], weights))
    return _km_hd(arr, flags, float(q))


def _resampled_estimates(values: np.ndarray, censored: np.ndarray, q: float, index: np.ndarray) -> np.ndarray:
    """The estimate of every resample row ``values[index[r]]`` (same estimator as the sample's)."""
    if _top_censored(values, censored):
        from tsglab.stats._quantile_kernels import resampled_top_window  # numba: imported when used

        lo, weights = _hd_weights(values.size, q)
        order = np.argsort(values, kind="stable")
        ranks = np.empty(values.size, dtype=np.int64)
        ranks[order] = np.arange(values.size)
        out = np.empty(index.shape[0])
        resampled_top_window(ranks, values[order], np.ascontiguousarray(index), lo, weights, out)
        return out
    return np.array([_km_hd(values[row], censored[row], q) for row in index])


# -- choosing the resampling ----------------------------------------------------------------------


def choose_resampling(series: ArrayLike, *, n_resamples: int = 2000, seed: int = 0,
                      method: str = "auto", block_length: int | None = None) -> tuple[ResamplePlan, str]:
    """A :class:`ResamplePlan` for a series in time order, and the reason for it.

    ``method="auto"``: a Ljung–Box test (10 lags, 5 %) on the series; serial correlation found →
    the stationary bootstrap with the Politis–White mean block length, else iid. Series shorter than
    30 are resampled iid (too short to test). Any method of :data:`RESAMPLE_METHODS` can be forced.
    """
    x = np.asarray(series, dtype=np.float64)
    n = x.size
    if method not in ("auto", *RESAMPLE_METHODS):
        raise InvalidArgument(f"`resampling` must be 'auto' or one of {RESAMPLE_METHODS}; got {method!r}. Use "
                              "'auto' to choose by a Ljung–Box test.")
    if method == "iid":
        return ResamplePlan(n, "iid", None, n_resamples, seed), "iid requested"
    if method != "auto":
        length = _resolve_block_length(x, method, block_length)
        return ResamplePlan(n, method, length, n_resamples, seed), f"{method} requested"
    if n < MIN_SERIAL_CHECK_N:
        reason = f"n = {n} < {MIN_SERIAL_CHECK_N}: iid (too short to test)"
        return ResamplePlan(n, "iid", None, n_resamples, seed), reason
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        choice = choose_bootstrap(x)
    if choice.method == "iid" or not choice.block_length:
        return ResamplePlan(n, "iid", None, n_resamples, seed), choice.reason
    length = int(min(n, max(1, choice.block_length)))
    return ResamplePlan(n, "stationary", length, n_resamples, seed), choice.reason


# -- confidence interval of one quantile ----------------------------------------------------------


@dataclass(frozen=True, repr=False)
class QuantileCI:
    """A quantile with its bootstrap confidence interval.

    ``estimate`` is NaN when the quantile is not identifiable (censored share above 1 − q); the
    lower bound it would have been is ``lower_bound``.
    """

    estimate: float
    ci_low: float
    ci_high: float
    q: float
    confidence: float
    n: int
    n_censored: int
    identifiable: bool
    lower_bound: float
    method: str
    resampling: str
    n_resamples: int
    seed: int
    note: str

    def __repr__(self) -> str:
        return _short_repr(self, ("estimate", "ci_low", "ci_high", "q", "confidence", "n", "method"))

    def to_frame(self) -> pd.DataFrame:
        return _frame(asdict(self))


def _censored_share_ok(censored: np.ndarray, q: float) -> bool:
    return censored.size > 0 and censored.mean() <= 1.0 - q


def _woodruff_serial(values: np.ndarray, censored: np.ndarray, q: float, estimate: float, plan: ResamplePlan,
                     alpha: float) -> tuple[float, float]:
    r"""Woodruff interval for serially correlated data: a CI for the distribution function at the
    estimate, :math:`q \pm t_{1-\alpha/2,\,n/L-1}\sqrt{q(1-q)\kappa/n}`, mapped back through the
    same estimator. κ is the long-run variance factor of the indicator series
    :math:`1\{x_t \le \hat\theta\}` from the block bootstrap (at least 1), inflated by
    :math:`1 + 6L/n` for the bootstrap's downward variance bias at small n/L (calibrated on AR(1)
    latencies: with 3L/n the P95 covered 90.8 % at n = 200). The upper end is +inf when the interval
    for F reaches 1: the data cannot bound it."""
    from scipy.stats import t as student_t

    n, length = values.size, plan.block_length or 1
    indicator = (values <= estimate).astype(np.float64)
    means = np.concatenate([indicator[idx].mean(axis=1) for idx in resample_indices(plan)])
    kappa = max(1.0, float(means.var()) * n / (q * (1.0 - q))) * (1.0 + 6.0 * length / n)
    half = float(student_t.ppf(1.0 - alpha / 2, max(1.0, n / length - 1.0))) * math.sqrt(q * (1 - q) * kappa / n)
    low = censored_harrell_davis(values, q - half, censored=censored) if q - half > 0 else float(values.min())
    high = censored_harrell_davis(values, q + half, censored=censored) if q + half < 1 else math.inf
    return low, high


def quantile_ci(
    values: ArrayLike,
    q: float = 0.95,
    *,
    censored: ArrayLike | None = None,
    confidence: float = 0.95,
    resampling: str = "auto",
    block_length: int | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> QuantileCI:
    r"""Censored Harrell–Davis quantile with a percentile bootstrap interval (default of the report).

    Parameters
    ----------
    values : array_like
        Latencies in time order (order matters for the block bootstrap).
    q : float
        Probability in (0, 1).
    censored : array_like of bool, optional
        Right-censored flags (timeouts; requests without an answer counted at the cap).
    confidence : float
        Two-sided level.
    resampling : {"auto", "iid", "moving-block", "circular-block", "stationary"}
        ``"auto"`` chooses iid or the stationary bootstrap by a Ljung–Box test (:func:`choose_resampling`).
    block_length : int, optional
        Forced (mean) block length for the block bootstraps.
    n_resamples, seed : int
        Bootstrap size and seed.

    Notes
    -----
    Interval: iid data — percentile bootstrap of :func:`censored_harrell_davis` (Wilcox's
    recommendation for HD quantiles); serially correlated data — a Woodruff interval whose variance
    comes from the block bootstrap of the indicator series (``_woodruff_serial``), because the
    percentile block bootstrap of a tail quantile covers only ~84 % on AR(1) φ = 0.7 at n = 200.
    Coverage measured by ``benchmarks/calibrate_protocol.py`` on the same function:
    see ``benchmarks/results/calibration_protocol.md``.
    """
    arr, flags = _validate_sample(values, censored, name="values")
    if not 0.0 < float(confidence) < 1.0:
        raise InvalidArgument(f"`confidence` must be in (0, 1); got {confidence!r}. Use e.g. confidence=0.95.")
    q = float(q)
    n = arr.size
    nan = math.nan
    if n < 2:
        warnings.warn(f"A quantile interval needs at least 2 observations; got {n}. Returning NaN.",
                      DegenerateStatisticWarning, stacklevel=2)
        return QuantileCI(nan if n == 0 else float(arr[0]), nan, nan, q, confidence, n, int(flags.sum()), n > 0,
                          nan, "harrell-davis (KM)", "none", n_resamples, seed, f"n = {n}: no interval")
    estimate = censored_harrell_davis(arr, q, censored=flags)
    identifiable = _censored_share_ok(flags, q) or not flags.any()
    plan, reason = choose_resampling(arr, n_resamples=n_resamples, seed=seed, method=resampling,
                                     block_length=block_length)
    alpha = 1.0 - float(confidence)
    if plan.method == "iid":
        draws = np.concatenate([_resampled_estimates(arr, flags, q, idx) for idx in resample_indices(plan)])
        low, high = (float(v) for v in np.quantile(draws, [alpha / 2, 1 - alpha / 2]))
        method = "harrell-davis (KM), percentile bootstrap"
    else:
        low, high = _woodruff_serial(arr, flags, q, estimate, plan, alpha)
        method = "harrell-davis (KM), Woodruff interval with block-bootstrap long-run variance"
    note = "" if plan.method == "iid" else reason
    if not identifiable:
        note = (f"not identifiable: {flags.mean():.1%} of requests censored or failed (> {1 - q:.0%}); "
                f"{estimate:.4g} ms is a lower bound")
        return QuantileCI(nan, nan, nan, q, confidence, n, int(flags.sum()), False, estimate,
                          "harrell-davis (KM)", plan.describe(), n_resamples, seed, note)
    return QuantileCI(estimate, low, high, q, confidence, n, int(flags.sum()), True, estimate, method,
                      plan.describe(), n_resamples, seed, note)


# -- the paired quantile-ratio test (Family B) -----------------------------------------------------


@dataclass(frozen=True, repr=False)
class QuantileRatioTest:
    r"""One-sided test of H0: θ_g > (1+δ)·θ_b for the q-quantiles θ of two paired latency samples.

    ``decision`` is one of ``"passed"``, ``"failed"``, ``"underpowered"`` (too few observations
    above the quantile to test: cannot pass), ``"not identifiable"`` (an arm has more than 1 − q
    censored or failed requests: cannot pass). ``passed`` is True only for ``"passed"``, and then
    ``ratio_ci_high < bound``. ``p_fail`` is the bootstrap p-value of the reverse hypothesis
    (θ_g ≤ (1+δ)·θ_b): small when the gateway's quantile is shown to exceed the bound.
    """

    ratio: float
    gateway_estimate: float
    baseline_estimate: float
    ratio_ci_high: float
    bound: float
    p_value: float
    p_fail: float
    alpha: float
    q: float
    n: int
    power_at_equal: float
    underpowered: bool
    identifiable: bool
    passed: bool
    decision: str
    method: str
    resampling: str
    n_resamples: int
    seed: int
    note: str

    def __repr__(self) -> str:
        return _short_repr(self, ("ratio", "ratio_ci_high", "bound", "p_value", "n", "decision"))

    def to_frame(self) -> pd.DataFrame:
        return _frame(asdict(self))


def min_pairs_for_ratio_test(q: float = 0.95) -> int:
    """Smallest n with at least :data:`MIN_TAIL_COUNT` observations above the q-quantile."""
    return math.ceil(MIN_TAIL_COUNT / (1.0 - q) - 1e-9)


def quantile_ratio_test(
    gateway: ArrayLike,
    baseline: ArrayLike,
    *,
    q: float = 0.95,
    delta: float = 0.10,
    alpha: float = 0.05,
    gateway_censored: ArrayLike | None = None,
    baseline_censored: ArrayLike | None = None,
    resampling: str = "auto",
    block_length: int | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> QuantileRatioTest:
    r"""Paired guardrail test of a quantile ratio (Family B): H0 θ_g/θ_b ≥ 1+δ vs H1 θ_g/θ_b < 1+δ.

    Parameters
    ----------
    gateway, baseline : array_like
        Latencies of the same prompts, aligned by position, in time order.
    q, delta, alpha : float
        Quantile (0.95), margin δ (bound 1 + δ) and level.
    gateway_censored, baseline_censored : array_like of bool, optional
        Right-censored flags (timeouts; failed requests counted at the SLO cap).
    resampling, block_length, n_resamples, seed
        As in :func:`quantile_ci`; ``"auto"`` checks both arms for serial correlation and uses the
        stationary bootstrap with the longer block length when either needs it.

    Returns
    -------
    QuantileRatioTest

    Notes
    -----
    Statistic: :math:`T = \log\hat\theta_g - \log\hat\theta_b` with :func:`censored_harrell_davis`.
    Pairs of rows are resampled together (:mod:`tsglab.stats.resample`), which keeps the correlation
    of the arms through the prompt. The upper confidence bound of the ratio is the
    :math:`1-\alpha` percentile of :math:`\exp T^*`; the p-value is the bootstrap share
    :math:`(1 + \#\{T^* \ge \log(1+\delta)\})/(B+1)`, so ``p < alpha`` exactly when the bound lies
    below :math:`1+\delta` (up to the resolution 1/B). Power at ratio 1 is estimated by the normal
    approximation :math:`\Phi(\log(1+\delta)/\mathrm{sd}(T^*) - z_{1-\alpha})`.

    Validity limits (checked by ``benchmarks/calibrate_protocol.py``): at least
    :data:`MIN_TAIL_COUNT` observations above the quantile (n ≥ 100 for the P95), and at most a
    share 1 − q of censored or failed requests per arm; outside them the test does not run and
    cannot pass.
    """
    g, g_cens = _validate_sample(gateway, gateway_censored, name="gateway")
    b, b_cens = _validate_sample(baseline, baseline_censored, name="baseline")
    if g.size != b.size:
        raise InvalidArgument(f"`gateway` and `baseline` must be paired (same length); got {g.size} and {b.size}. "
                              "Join the arms on prompt id first.")
    if not 0.0 < float(alpha) < 1.0 or not 0.0 < float(q) < 1.0 or not float(delta) >= 0.0:
        raise InvalidArgument(f"need 0 < alpha < 1, 0 < q < 1, delta >= 0; got alpha={alpha}, q={q}, delta={delta}. "
                              "Use e.g. alpha=0.05, q=0.95, delta=0.10.")
    q, alpha, bound = float(q), float(alpha), 1.0 + float(delta)
    n = g.size
    nan = math.nan
    method = "log ratio of censored Harrell–Davis quantiles, paired percentile bootstrap"
    est_g = censored_harrell_davis(g, q, censored=g_cens) if n else nan
    est_b = censored_harrell_davis(b, q, censored=b_cens) if n else nan
    ratio = est_g / est_b if n and est_b > 0 else nan
    common: dict[str, Any] = dict(gateway_estimate=est_g, baseline_estimate=est_b, bound=bound, alpha=alpha, q=q, n=n,
                  method=method, n_resamples=n_resamples, seed=seed)
    identifiable = (not g_cens.any() or _censored_share_ok(g_cens, q)) and (
        not b_cens.any() or _censored_share_ok(b_cens, q))

    def untested(decision: str, note: str, **fields) -> QuantileRatioTest:
        """A row that cannot pass: not identifiable, or too little data for the test to hold its level."""
        values = dict(ratio=ratio, ratio_ci_high=nan, p_value=nan, p_fail=nan, power_at_equal=0.0,
                      underpowered=decision == "underpowered", identifiable=decision != "not identifiable",
                      passed=False, decision=decision, resampling="none", note=note)
        return QuantileRatioTest(**{**values, **fields, **common})

    if not identifiable:
        shares = f"gateway {g_cens.mean():.1%}, baseline {b_cens.mean():.1%}"
        return untested("not identifiable", f"censored or failed share above {1 - q:.0%} ({shares}): the "
                        f"P{q * 100:g} sits at the SLO cap, so the ratio compares caps; cannot pass",
                        ratio=nan, power_at_equal=nan)
    needed = min_pairs_for_ratio_test(q)
    if n < needed:
        return untested("underpowered", f"n = {n} < {needed}: fewer than {MIN_TAIL_COUNT} observations above "
                        f"the P{q * 100:g}; not tested (needs n >= {needed})")
    if resampling == "auto":
        plans = [choose_resampling(x, n_resamples=n_resamples, seed=seed) for x in (g, b)]
        blocks = [p.block_length or 0 for p, _ in plans]
        if max(blocks) > 0:
            plan = ResamplePlan(n, "stationary", max(blocks), n_resamples, seed)
            reason = "; ".join(r for p, r in plans if p.method != "iid")
        else:
            plan, reason = plans[0][0], "iid: no serial correlation found in either arm"
    else:
        plan, reason = choose_resampling(g, n_resamples=n_resamples, seed=seed, method=resampling,
                                         block_length=block_length)
    level = alpha
    if plan.method != "iid":
        block = plan.block_length or 1
        if n / block < MIN_BLOCKS:
            return untested("underpowered", f"serially correlated ({reason}); n / block = "
                            f"{n / block:.1f} < {MIN_BLOCKS} blocks: not tested (needs n >= "
                            f"{MIN_BLOCKS * block})", resampling=plan.describe())
        level = alpha * SERIAL_LEVEL_FACTOR
    log_bound = math.log(bound)
    draws = [np.log(_resampled_estimates(g, g_cens, q, idx)) - np.log(_resampled_estimates(b, b_cens, q, idx))
             for idx in resample_indices(plan)]
    t_star = np.concatenate(draws)
    t_star = t_star[np.isfinite(t_star)]
    if t_star.size < plan.n_resamples // 2:  # resampled quantiles of 0 ms: the log ratio is undefined
        return untested("not identifiable", "a resampled P95 is 0 ms in most resamples: the ratio is undefined",
                        ratio=nan, power_at_equal=nan, resampling=plan.describe())
    upper = float(np.exp(np.quantile(t_star, 1.0 - level)))
    # p-values on the alpha scale: the share beyond the bound, rescaled by the serial level factor
    p_value = min(1.0, float((1 + np.count_nonzero(t_star >= log_bound)) / (t_star.size + 1)) * alpha / level)
    p_fail = min(1.0, float((1 + np.count_nonzero(t_star <= log_bound)) / (t_star.size + 1)) * alpha / level)
    spread = float(np.std(t_star, ddof=1))
    power = float(ndtr(log_bound / spread - ndtri(1.0 - level))) if spread > 0 else 1.0
    passed = p_value < alpha and upper < bound
    underpowered = power < UNDERPOWERED_BELOW
    note = reason if plan.method != "iid" else ""
    if underpowered:
        note = (note + "; " if note else "") + (f"power at ratio 1 is about {power:.0%}: even equal arms would "
                                                "rarely pass at this n")
    return QuantileRatioTest(ratio=ratio, ratio_ci_high=upper, p_value=p_value, p_fail=p_fail, power_at_equal=power,
                             underpowered=underpowered, identifiable=True, passed=passed,
                             decision="passed" if passed else "failed", resampling=plan.describe(), note=note,
                             **common)
