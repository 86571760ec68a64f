r"""Family A: paired non-inferiority and equivalence of bounded quality scores, valid at every n.

Quality scores are bounded (in [0, 1], often pass/fail) and strata are small, which is where the
t-test and the bootstrap are liberal (DESIGN.md §5). :func:`quality_noninferiority` therefore uses
methods whose level holds in finite samples, chosen by the data:

* **exact-binary** — both arms scored 0/1. The paired differences are trinomial
  (+1, 0, −1 with probabilities :math:`p_+, p_0, p_-`); H0: :math:`p_+ - p_- \le m`. The statistic
  is Tango's score statistic (restricted maximum likelihood under :math:`p_+ - p_- = m`), and the
  p-value is exact and unconditional: the supremum over the nuisance discordance of the probability
  of a statistic at least as large as observed (Berger & Boos style maximisation on a grid, refined
  locally).
* **betting** — any other scores in [lower, upper]. A finite-sample-valid e-value for the bounded
  mean (Waudby-Smith & Ramdas 2024): the average over fixed seeded orderings of the final capital of
  a truncated aGRAPA bettor against H0: E[d] ≤ m; p = min(1, 1/E) by Markov's inequality.

Both give a p-value for any null mean ``m``; the one-sided confidence bound is the inversion of the
same test (bisection), so ``passed`` ⇔ ``p < alpha`` ⇔ ``ci_low > −margin``. Ties and identical
pairs are ordinary data here: n identical pairs give p ≥ (1 − margin)^n, never 0.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize
from scipy.special import bdtrc, gammaln, xlog1py, xlogy

from tsglab.errors import DegenerateStatisticWarning, InvalidArgument
from tsglab.stats.hypothesis_tests import _frame, _short_repr

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["QUALITY_METHODS", "QualityTest", "quality_noninferiority"]

QualityMethod = Literal["auto", "exact-binary", "betting"]
QUALITY_METHODS = ("auto", "exact-binary", "betting")

_NUISANCE_GRID = 64  # grid points over the discordance before the local refinement
_BET_SHARE = 0.5  # betting: at most half the capital's distance to ruin is staked per step
_ORDERINGS = 64  # betting: orderings averaged into the e-value
_BISECT_TOL = 1e-4  # confidence bounds are found to this accuracy on the score scale
_MAX_N_NEEDED = 10**6


@dataclass(frozen=True, repr=False)
class QualityTest:
    """Result of :func:`quality_noninferiority`.

    ``ci_low`` (and for equivalence ``ci_high``) are one-sided bounds at 1 − alpha from inverting the
    same test. ``p_fail`` is the p-value of the reverse hypothesis H0: mean d ≥ −margin (small when the
    gateway is shown to be worse than the margin), used to screen strata for failure. ``decision``:
    ``"passed"``, ``"failed"``, or ``"underpowered"`` when even identical
    scores on every pair could not pass at this n (``n_needed`` says how many pairs would).
    """

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    p_fail: float
    margin: float
    alpha: float
    n: int
    test: str
    method: str
    passed: bool
    underpowered: bool
    n_needed: int
    decision: str
    seed: int
    note: str

    def __repr__(self) -> str:
        return _short_repr(self, ("estimate", "ci_low", "ci_high", "p_value", "margin", "n", "method", "decision"))

    def to_frame(self) -> pd.DataFrame:
        return _frame(asdict(self))


# -- exact unconditional test for paired binary outcomes ------------------------------------------


def _score_statistic(plus: np.ndarray, minus: np.ndarray, n: int, m: float) -> np.ndarray:
    """Tango's score statistic for H0: p+ − p− = m, at counts (plus, minus) of n pairs."""
    plus = plus.astype(np.float64)
    minus = minus.astype(np.float64)
    b = plus + minus - m * (2 * n + minus - plus)
    disc = np.maximum(b * b + 8.0 * n * minus * m * (1.0 - m), 0.0)
    p_minus = (b + np.sqrt(disc)) / (4.0 * n)  # restricted MLE of p−
    var = np.maximum(2.0 * p_minus + m - m * m, 0.0) / n
    diff = (plus - minus) / n - m
    with np.errstate(divide="ignore", invalid="ignore"):
        z = diff / np.sqrt(var)
    return np.where(var > 1e-300, z, np.where(diff > 0, np.inf, np.where(diff < 0, -np.inf, 0.0)))


def _thresholds(n: int, m: float, z_obs: float) -> np.ndarray:
    """For each discordant count k, the smallest count of +1 pairs whose statistic reaches z_obs
    (k + 1 when none does). At fixed k the statistic increases with the +1 count (more wins, fewer
    losses), so a vectorised bisection over all k at once finds the thresholds in O(n log n) time and
    O(n) memory; the brute-force test in tests/test_stats_quality_tests.py enumerates the region."""
    k = np.arange(n + 1)
    low = np.zeros(n + 1, dtype=np.int64)  # invariant: the answer lies in [low, high]
    high = k + 1
    while np.any(low < high):
        mid = (low + high) // 2
        active = low < high
        reaches = np.zeros(n + 1, dtype=bool)
        reaches[active] = _score_statistic(mid[active], k[active] - mid[active], n, m) >= z_obs - 1e-9
        high = np.where(active & reaches, mid, high)
        low = np.where(active & ~reaches, mid + 1, low)
    return low


def _binom_pmf(k: np.ndarray, n: int, p: float) -> np.ndarray:
    """Binomial pmf from scipy.special ufuncs (scipy.stats.binom costs ~100 µs per call in overhead)."""
    log = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1) + xlogy(k, p) + xlog1py(n - k, -p)
    return np.exp(log)


def _binom_at_least(t: np.ndarray, k: np.ndarray, p: float) -> np.ndarray:
    """P(Bin(k, p) >= t) elementwise: 1 for t <= 0, 0 for t > k."""
    inside = (t >= 1) & (t <= k)
    out = np.where(t <= 0, 1.0, 0.0)
    out[inside] = bdtrc(t[inside] - 1, k[inside], p)
    return out


def _tail_probability(p_minus: np.ndarray, n: int, m: float, thresholds: np.ndarray) -> np.ndarray:
    """P(Z >= z_obs) at each nuisance value p− on the boundary p+ = p− + m.

    The discordant count is Binomial(n, p+ + p−); only counts within 12 sd of its mean carry mass
    above 1e-30, so each value sums O(√n) terms instead of n + 1.
    """
    p_minus = np.atleast_1d(np.asarray(p_minus, dtype=np.float64))
    out = np.empty(p_minus.size)
    for i, p in enumerate(p_minus):
        p_plus = p + m
        discordant = min(1.0, max(0.0, p_plus + p))
        share_plus = min(1.0, max(0.0, p_plus / discordant)) if discordant > 0 else 1.0
        spread = 12.0 * math.sqrt(n * discordant * (1.0 - discordant)) + 5.0
        k = np.arange(max(0, math.floor(n * discordant - spread)), min(n, math.ceil(n * discordant + spread)) + 1)
        out[i] = np.sum(_binom_pmf(k, n, discordant) * _binom_at_least(thresholds[k], k, share_plus))
    return out


def _exact_binary_p(plus: int, minus: int, n: int, m: float) -> float:
    """Exact unconditional p-value of H0: p+ − p− <= m (supremum over the nuisance on the boundary)."""
    if m <= -1.0:
        return 1.0
    if m >= 1.0:
        return 0.0 if plus - minus > m * n else 1.0
    z_obs = float(_score_statistic(np.array([plus]), np.array([minus]), n, m)[0])
    thresholds = _thresholds(n, m, z_obs)
    low, high = max(0.0, -m), (1.0 - m) / 2.0
    grid = np.linspace(low, high, _NUISANCE_GRID)
    values = _tail_probability(grid, n, m, thresholds)
    best = int(np.argmax(values))
    a, b = grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)]
    if b > a:  # the maximum lies between the grid neighbours of the best grid point: refine there
        res = optimize.minimize_scalar(lambda p: -float(_tail_probability(p, n, m, thresholds)[0]), bounds=(a, b),
                                       method="bounded", options={"xatol": 1e-7})
        return float(min(1.0, max(values[best], -res.fun)))
    return float(min(1.0, values[best]))


# -- betting e-value for a bounded mean -----------------------------------------------------------


def _orderings(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((_ORDERINGS, n)), axis=1)


def _betting_p(d: np.ndarray, m: float, lower: float, upper: float, orderings: np.ndarray) -> float:
    from tsglab.stats._betting_kernels import betting_capital

    span = upper - lower
    mu0 = (m - lower) / span
    if mu0 <= 0.0:
        return 1.0
    if mu0 >= 1.0:
        return 0.0 if np.all(d > m) else 1.0
    y = (d - lower) / span
    e_value = float(np.mean(betting_capital(y[orderings], mu0, _BET_SHARE)))
    return min(1.0, 1.0 / e_value) if e_value > 0 else 1.0


# -- the public test ------------------------------------------------------------------------------


def _validate(gateway, baseline, margin, alpha, lower, upper, method):
    g = np.asarray(gateway, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if g.ndim != 1 or g.shape != b.shape:
        raise InvalidArgument(f"`gateway` and `baseline` must be 1-D and paired (same length); got shapes {g.shape} "
                              f"and {b.shape}. Join the arms on prompt id first.")
    for name, arr in (("gateway", g), ("baseline", b)):
        bad = ~np.isfinite(arr) | (arr < lower) | (arr > upper)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidArgument(f"`{name}` scores must be finite and in [{lower:g}, {upper:g}]; position {i} is "
                             f"{float(arr[i])!r}. Pass `lower=`/`upper=` if your score has another range.")
    if not 0 < float(alpha) < 0.5:
        raise InvalidArgument(f"`alpha` must be in (0, 0.5); got {alpha!r}. Use e.g. alpha=0.05.")
    if not 0 <= float(margin) < upper - lower:
        raise InvalidArgument(f"`margin` must be in [0, {upper - lower:g}); got {margin!r}. Use e.g. margin=0.05.")
    if method not in QUALITY_METHODS:
        raise InvalidArgument(f"`method` must be one of {QUALITY_METHODS}; got {method!r}. Use method='auto'.")
    return g, b


class _PValue:
    """p(m) of H0: E[d] <= m for one sample, by the chosen method (cached per m)."""

    def __init__(self, d: np.ndarray, method: str, lower: float, upper: float, seed: int):
        self.d, self.method, self.n = d, method, d.size
        self.lower, self.upper = lower - upper, upper - lower  # range of a difference of two scores
        self.plus, self.minus = int(np.sum(d > 0)), int(np.sum(d < 0))
        self.orderings = _orderings(d.size, seed) if method == "betting" else None
        self.cache: dict[float, float] = {}

    def __call__(self, m: float) -> float:
        if m not in self.cache:
            if self.method == "exact-binary":
                self.cache[m] = _exact_binary_p(self.plus, self.minus, self.n, m / self.upper)
            else:
                assert self.orderings is not None  # drawn in __init__ for the betting method
                self.cache[m] = _betting_p(self.d, m, self.lower, self.upper, self.orderings)
        return self.cache[m]


def _lower_bound(p_of: _PValue, alpha: float, known: float, rejected: bool) -> float:
    """sup{m : p(m) < alpha} by bisection, bracketed by ``known`` whose outcome is ``rejected``, so the
    bound lies above ``known`` exactly when the test at ``known`` rejected."""
    lo, hi = (known, p_of.upper) if rejected else (p_of.lower, known)
    if not rejected:
        # At the range's edge itself the null is a single point that no test can reject (the exact test
        # returns p = 1 there by definition), so the rejection region {m : p(m) < alpha} is open at the edge:
        # probe one tolerance inside it. Probing the edge returned the edge for every test that did not
        # reject at ``known``, printing a bound of -1 whatever the data.
        lo = p_of.lower + _BISECT_TOL
        if lo >= hi or p_of(lo) >= alpha:
            return p_of.lower
    while hi - lo > _BISECT_TOL:
        mid = 0.5 * (lo + hi)
        if p_of(mid) < alpha:
            lo = mid
        else:
            hi = mid
    return lo


@functools.lru_cache(maxsize=256)
def _n_needed(margin: float, alpha: float, method: str, lower: float, upper: float, seed: int) -> int:
    """Smallest n at which identical scores on every pair (d = 0 throughout) pass."""
    if margin <= 0:
        return _MAX_N_NEEDED

    def passes(n: int) -> bool:
        p_of = _PValue(np.zeros(n), method, lower, upper, seed)
        return p_of(-margin) < alpha

    high = 8
    while not passes(high):
        high *= 2
        if high > _MAX_N_NEEDED:
            return _MAX_N_NEEDED
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        if passes(mid):
            high = mid
        else:
            low = mid
    return high


def quality_noninferiority(
    gateway: ArrayLike,
    baseline: ArrayLike,
    *,
    margin: float = 0.05,
    alpha: float = 0.05,
    equivalence: bool = False,
    method: QualityMethod = "auto",
    lower: float = 0.0,
    upper: float = 1.0,
    seed: int = 0,
) -> QualityTest:
    r"""Paired non-inferiority (or equivalence) test of bounded quality scores, valid at every n.

    Parameters
    ----------
    gateway, baseline : array_like
        Scores of the same prompts, aligned by position, each in [lower, upper].
    margin : float
        ε ≥ 0. Non-inferiority: H0 mean d ≤ −ε vs H1 mean d > −ε (d = gateway − baseline).
        Equivalence (``equivalence=True``): TOST, H0 |mean d| ≥ ε; p = the larger one-sided p-value.
    alpha : float
        Level of each one-sided test.
    method : {"auto", "exact-binary", "betting"}
        ``"auto"``: exact-binary when every score is 0 or 1 (``lower``/``upper``), else betting.
    lower, upper : float
        Range of a score (default [0, 1]).
    seed : int
        Seed of the orderings of the betting e-value (unused by the exact test).

    Returns
    -------
    QualityTest

    Notes
    -----
    Exact-binary: with :math:`n_+`, :math:`n_-` pairs where the gateway won or lost,
    :math:`Z = ((n_+ - n_-)/n - m)/\sqrt{(2\tilde p_- + m - m^2)/n}` where :math:`\tilde p_-` is the
    restricted MLE (Tango 1998); :math:`p = \sup_{p_-} P(Z \ge z_{obs})` over
    :math:`p_+ = p_- + m`, computed as :math:`\sum_k \mathrm{Bin}(k; n, p_+ + p_-)\,
    P(\mathrm{Bin}(k, p_+/(p_+ + p_-)) \ge c_k)`.

    Betting: with :math:`y = (d - l)/(u - l)` and :math:`\mu_0 = (m - l)/(u - l)`, the capital
    :math:`K = \prod_t (1 + \lambda_t (y_t - \mu_0))`, :math:`\lambda_t \in [0, 0.5/\mu_0]` the aGRAPA
    bet from the values before t; :math:`E = ` the mean of K over 64 seeded orderings;
    :math:`E[E] \le 1` under H0, so :math:`p = \min(1, 1/E)` is valid at every n.

    References
    ----------
    .. [1] T. Tango, "Equivalence test and confidence interval for the difference in proportions for
       the paired-sample design", *Statistics in Medicine* 17, 1998.
    .. [2] R. L. Berger and D. D. Boos, "P values maximised over a confidence set for the nuisance
       parameter", *JASA* 89(427), 1994.
    .. [3] I. Waudby-Smith and A. Ramdas, "Estimating means of bounded random variables by betting",
       *JRSS B* 86(1), 2024.
    """
    g, b = _validate(gateway, baseline, margin, alpha, lower, upper, method)
    margin, alpha, seed = float(margin), float(alpha), int(seed)
    n = g.size
    test = "equivalence (TOST)" if equivalence else "non-inferiority"
    binary = bool(np.all((g == lower) | (g == upper)) and np.all((b == lower) | (b == upper)))
    if method == "auto":
        method = "exact-binary" if binary else "betting"
    if method == "exact-binary" and not binary:
        raise InvalidArgument(f"`method`='exact-binary' needs scores of exactly {lower:g} or {upper:g}; got other "
                              "scores. Use method='betting' (or method='auto').")
    needed = _n_needed(margin, alpha, method, lower, upper, seed)
    nan = math.nan
    if n == 0:
        warnings.warn("Family A needs at least one pair; got 0.", DegenerateStatisticWarning, stacklevel=2)
        return QualityTest(nan, nan, nan, nan, nan, margin, alpha, 0, test, method, False, True, needed, "underpowered",
                           seed, "no pairs")
    d = g - b
    estimate = float(np.mean(d))
    p_low = _PValue(d, method, lower, upper, seed)
    p_ni = p_low(-margin)
    ci_low = _lower_bound(p_low, alpha, -margin, p_ni < alpha)
    if equivalence:
        p_high = _PValue(-d, method, lower, upper, seed)  # H0: mean d >= margin, mirrored
        p_sup = p_high(-margin)
        ci_high = -_lower_bound(p_high, alpha, -margin, p_sup < alpha)
        p_value = max(p_ni, p_sup)
    else:
        ci_high, p_value = nan, p_ni
    p_fail = _PValue(-d, method, lower, upper, seed)(margin)  # H0: mean(-d) <= margin, i.e. d >= -margin
    passed = bool(p_value < alpha)
    underpowered = n < needed
    decision = "passed" if passed else ("underpowered" if underpowered else "failed")
    note = ""
    if underpowered and not passed:
        note = (f"underpowered: even identical scores on all {n} pairs could not pass at margin {margin:g}; "
                f"needs n >= {needed}")
    return QualityTest(estimate, ci_low, ci_high, float(p_value), float(p_fail), margin, alpha, n, test, method, passed,
                       underpowered, needed, decision, seed, note)
