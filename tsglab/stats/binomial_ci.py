r"""Exact (Clopper–Pearson) confidence limits of a binomial proportion, and the n they need.

* :func:`clopper_pearson` — one count: a :class:`BinomialCI` (two-sided, or one-sided with
  ``alternative="less"`` / ``"greater"`` as in ``scipy.stats.binomtest``);
* :func:`clopper_pearson_limits` — many counts at once (a detection table, a Monte Carlo of
  coverage): a :class:`BinomialLimits` of arrays;
* :func:`exact_bound_n_needed` — the number of trials at which the exact one-sided bound would clear
  a limit if the observed rate held (how many benign cases a claimed false-positive rate needs).

The limits are Beta quantiles (``scipy.special.betaincinv``, compiled and vectorised), so there is
no numba kernel here: a kernel could not call the Beta quantile and the array form is already one
vectorised call. The tests check these functions against ``scipy.stats.binomtest(...).proportion_ci
(method="exact")`` and against a naive bisection on the binomial cdf (the definition).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaincinv

from tsglab.errors import InvalidArgument
from tsglab.stats._config import SAMPLE_SIZE_MAX_N
from tsglab.stats.hypothesis_tests import _check_int, _check_probability, _frame, _short_repr, _warn

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BinomialCI", "BinomialLimits", "clopper_pearson", "clopper_pearson_limits", "exact_bound_n_needed"]

Alternative = Literal["two-sided", "less", "greater"]
_ALTERNATIVES = ("two-sided", "less", "greater")
_METHOD = "clopper-pearson (exact)"


@dataclass(frozen=True, repr=False)
class BinomialCI:
    """A proportion with its exact confidence interval.

    ``estimate`` is ``successes / n``; ``ci_low``/``ci_high`` the Clopper–Pearson limits at
    ``confidence`` (``ci_low = 0`` for ``alternative="less"``, ``ci_high = 1`` for ``"greater"``).
    """

    estimate: float
    ci_low: float
    ci_high: float
    successes: int
    n: int
    confidence: float
    alternative: str
    method: str
    note: str

    def __repr__(self) -> str:
        return _short_repr(self, ("estimate", "ci_low", "ci_high", "successes", "n", "confidence", "alternative"))

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        return _frame(asdict(self))


@dataclass(frozen=True, repr=False)
class BinomialLimits:
    """Exact limits of many proportions: arrays aligned with the ``successes`` and ``n`` given
    (NaN where ``n = 0``)."""

    successes: np.ndarray
    n: np.ndarray
    estimate: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    confidence: float
    alternative: str
    method: str

    def __repr__(self) -> str:
        return f"BinomialLimits(size={self.n.size}, confidence={self.confidence:g}, alternative={self.alternative!r})"

    def to_frame(self) -> pd.DataFrame:
        """One row per proportion: successes, n, estimate, ci_low, ci_high, and the confidence, alternative
        and method on every row (the columns are the field names, as every result's frame)."""
        import pandas as pd  # imported here: `import tsglab` stays cheap

        return pd.DataFrame({"successes": self.successes, "n": self.n, "estimate": self.estimate,
                             "ci_low": self.ci_low, "ci_high": self.ci_high, "confidence": self.confidence,
                             "alternative": self.alternative, "method": self.method})


def _check_alternative(alternative: object) -> str:
    if alternative not in _ALTERNATIVES:
        raise InvalidArgument(f"`alternative` must be one of {', '.join(_ALTERNATIVES)}; got {alternative!r}. "
                              "Use 'less' for an upper bound alone, 'greater' for a lower bound alone.")
    return str(alternative)


def _tail_masses(confidence: float, alternative: str) -> tuple[float, float]:
    """(mass below the lower limit, mass above the upper limit); 0 on a side that is not bounded."""
    alpha = 1.0 - confidence
    if alternative == "two-sided":
        return alpha / 2.0, alpha / 2.0
    return (0.0, alpha) if alternative == "less" else (alpha, 0.0)


def _limits(successes: np.ndarray, n: np.ndarray, confidence: float, alternative: str) -> tuple[np.ndarray, ...]:
    """Clopper–Pearson limits for float arrays with 0 <= successes <= n (NaN where n = 0)."""
    low_tail, high_tail = _tail_masses(confidence, alternative)
    failures = n - successes
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(n > 0, successes / np.where(n > 0, n, 1.0), np.nan)
        # the lower limit is the low_tail quantile of Beta(x, n - x + 1); 0 when x = 0 or the side is open
        low = betaincinv(np.maximum(successes, 1.0), failures + 1.0, low_tail) if low_tail > 0 else np.zeros_like(n)
        low = np.where(successes == 0, 0.0, low)
        # the upper limit is the 1 - high_tail quantile of Beta(x + 1, n - x); 1 when x = n or the side is open
        high = (betaincinv(successes + 1.0, np.maximum(failures, 1.0), 1.0 - high_tail) if high_tail > 0
                else np.ones_like(n))
        high = np.where(failures == 0, 1.0, high)
    empty = n == 0
    return estimate, np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def _validate_counts(successes: ArrayLike, n: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(successes)
    trials = np.asarray(n)
    for name, arr in (("successes", x), ("n", trials)):
        if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(np.isfinite(arr))
                                               and np.all(arr == np.round(arr))):
            raise InvalidArgument(f"`{name}` must hold whole counts; got dtype {arr.dtype} with values like "
                                  f"{arr.ravel()[:3].tolist()}. Pass integer counts.")
    try:
        x, trials = np.broadcast_arrays(x.astype(np.float64), trials.astype(np.float64))
    except ValueError:
        raise InvalidArgument(f"`successes` and `n` must have the same shape; got {x.shape} and {trials.shape}. "
                              "Pass one count per proportion.") from None
    bad = (x < 0) | (trials < 0) | (x > trials)
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise InvalidArgument(f"counts must satisfy 0 <= successes <= n; got successes={x.ravel()[i]:g}, "
                              f"n={trials.ravel()[i]:g} at position {i}. Count each trial once.")
    return x, trials


def clopper_pearson(successes: int, n: int, *, confidence: float = 0.95,
                    alternative: Alternative = "two-sided") -> BinomialCI:
    r"""Exact confidence interval of a binomial proportion (Clopper–Pearson).

    Parameters
    ----------
    successes : int
        Observed count, ``0 <= successes <= n`` (detections, false positives...).
    n : int
        Number of trials.
    confidence : float, default 0.95
        Coverage level, in (0, 1).
    alternative : {"two-sided", "less", "greater"}
        ``"two-sided"``: both limits, :math:`\alpha/2` in each tail. ``"less"``: the one-sided upper
        bound at level ``confidence`` (``ci_low = 0``). ``"greater"``: the one-sided lower bound
        (``ci_high = 1``). The names are those of ``scipy.stats.binomtest``.

    Returns
    -------
    BinomialCI
        ``n = 0`` gives NaN with a :class:`~tsglab.errors.DegenerateStatisticWarning`.

    Notes
    -----
    With :math:`x` successes in :math:`n` trials and tail masses :math:`a_l, a_u`
    (:math:`\alpha/2` each for two-sided),

    .. math:: L = B^{-1}(a_l;\ x,\ n-x+1), \qquad U = B^{-1}(1-a_u;\ x+1,\ n-x),

    :math:`B^{-1}` the Beta quantile, :math:`L = 0` when :math:`x = 0` and :math:`U = 1` when
    :math:`x = n`. Equivalently :math:`U` is the :math:`p` solving :math:`P(X \le x \mid n, p) = a_u`.
    Coverage is at least the nominal level for every :math:`p` (the interval is conservative); with
    zero successes the one-sided upper bound is :math:`1 - \alpha^{1/n}` (the "rule of three":
    about :math:`3/n` at 95 %).

    References
    ----------
    .. [1] C. J. Clopper and E. S. Pearson, "The use of confidence or fiducial limits illustrated in
       the case of the binomial", *Biometrika* 26(4), 404–413, 1934.
    .. [2] ``scipy.stats.binomtest(x, n).proportion_ci(confidence, method="exact")`` (the tests' reference).
    """
    n_i = _check_int(n, name="n", minimum=0, fix="Pass the number of trials.")
    x_i = _check_int(successes, name="successes", minimum=0, fix="Pass the observed count.")
    if x_i > n_i:
        raise InvalidArgument(f"`successes` must be <= `n`; got successes={x_i}, n={n_i}. Count each trial once.")
    level = _check_probability(confidence, name="confidence", fix="Use e.g. confidence=0.95.")
    side = _check_alternative(alternative)
    note = ""
    if n_i == 0:
        _warn("A proportion of 0 trials is undefined; returning NaN.")
        note = "n = 0: no interval"
    estimate, low, high = _limits(np.array([float(x_i)]), np.array([float(n_i)]), level, side)
    return BinomialCI(float(estimate[0]), float(low[0]), float(high[0]), x_i, n_i, level, side, _METHOD, note)


def clopper_pearson_limits(successes: ArrayLike, n: ArrayLike, *, confidence: float = 0.95,
                           alternative: Alternative = "two-sided") -> BinomialLimits:
    """:func:`clopper_pearson` for arrays of counts (broadcast together); NaN where ``n = 0``, no warning.

    The same formula as :func:`clopper_pearson` (one vectorised Beta quantile per side), for tables
    and Monte Carlo checks of coverage.
    """
    x, trials = _validate_counts(successes, n)
    level = _check_probability(confidence, name="confidence", fix="Use e.g. confidence=0.95.")
    side = _check_alternative(alternative)
    estimate, low, high = _limits(x, trials, level, side)
    return BinomialLimits(x, trials, estimate, low, high, level, side, _METHOD)


def _upper_bound_at(rate: float, n_trials: np.ndarray | float, alpha: float) -> np.ndarray:
    """One-sided (1 - alpha) upper bound when the count is ``rate * n`` (a real count: the observed
    rate carried to another n without rounding)."""
    n_arr = np.asarray(n_trials, dtype=np.float64)
    count = rate * n_arr
    if rate == 0.0:
        return 1.0 - alpha ** (1.0 / n_arr)
    return np.asarray(betaincinv(count + 1.0, np.maximum(n_arr - count, 1e-300), 1.0 - alpha))


def exact_bound_n_needed(rate: float, limit: float, *, alpha: float = 0.05,
                         bound: Literal["upper", "lower"] = "upper") -> int | None:
    r"""Smallest n at which the exact one-sided bound clears ``limit``, if the observed rate held.

    Parameters
    ----------
    rate : float
        Observed proportion, in [0, 1].
    limit : float
        The value the bound must clear, in (0, 1) (a claimed rate).
    alpha : float, default 0.05
        One-sided level: the bound is the Clopper–Pearson bound at :math:`1-\alpha`.
    bound : {"upper", "lower"}
        ``"upper"``: the smallest n with upper bound :math:`\le` ``limit`` (a false-positive rate
        below a claim). ``"lower"``: the smallest n with lower bound :math:`\ge` ``limit`` (a
        detection rate above a claim).

    Returns
    -------
    int or None
        None when no n suffices (``rate`` on the wrong side of ``limit``, or equal to it), or when the
        answer exceeds ``SAMPLE_SIZE_MAX_N``.

    Notes
    -----
    The count at n is taken as :math:`\hat p\,n` (not rounded), so the bound
    :math:`U(n) = B^{-1}(1-\alpha;\ \hat p n + 1,\ n(1-\hat p))` falls smoothly with n and the answer has
    no sawtooth. With :math:`\hat p = 0` it is :math:`U(n) = 1 - \alpha^{1/n}`, so
    :math:`n = \lceil \ln\alpha / \ln(1-\text{limit}) \rceil`: 2,995 benign cases with no false
    positive for an FPR below 0.1 % at :math:`\alpha = 0.05`. ``"lower"`` is the same computation on
    the complementary rate (:math:`1-\hat p` against :math:`1-` ``limit``).
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(rate) <= 1.0:
        raise InvalidArgument(f"`rate` must be a proportion in [0, 1]; got {rate!r}. Pass successes / n.")
    limit_f = _check_probability(limit, name="limit", fix="Pass the claimed rate, e.g. 0.001.")
    alpha_f = _check_probability(alpha, name="alpha", fix="Use e.g. alpha=0.05.")
    if bound not in ("upper", "lower"):
        raise InvalidArgument(f"`bound` must be 'upper' or 'lower'; got {bound!r}. Use 'upper' for a rate "
                              "that must stay below the limit.")
    p, target = (float(rate), limit_f) if bound == "upper" else (1.0 - float(rate), 1.0 - limit_f)
    if p >= target:
        return None
    if p == 0.0:
        n = max(1, math.ceil(math.log(alpha_f) / math.log1p(-target)))
        while n > 1 and _upper_bound_at(0.0, n - 1, alpha_f) <= target:  # closed form off by one in floats
            n -= 1
        while _upper_bound_at(0.0, n, alpha_f) > target:
            n += 1
        return n if n <= SAMPLE_SIZE_MAX_N else None
    high = 1
    while _upper_bound_at(p, high, alpha_f) > target:
        high *= 2
        if high > SAMPLE_SIZE_MAX_N:
            return None
    low = high // 2  # bound(low) > target (or low = 0)
    while high - low > 1:
        mid = (low + high) // 2
        if _upper_bound_at(p, mid, alpha_f) <= target:
            high = mid
        else:
            low = mid
    return high
