"""Hypothesis tests of the statistics protocol (DESIGN.md §3, Families A and C).

The report's Family A uses :func:`tsglab.stats.quality_noninferiority` (exact / betting, valid at
every n). :func:`paired_noninferiority` and :func:`paired_tost` here are large-sample tests (paired
bootstrap, paired t): fine for continuous scores, but liberal on pass/fail scores at moderate n
(size 14.5 % at n = 60, 8.6 % at n = 500); they are kept as cross-checks, not for verdicts.

* Family A — paired non-inferiority (:func:`paired_noninferiority`) and equivalence (:func:`paired_tost`)
  of a quality score, by a paired bootstrap or a paired t-test;
* multiple testing across strata — :func:`benjamini_hochberg`, :func:`benjamini_yekutieli`;
* Family C — the JSON-compliance gate (:func:`binomial_gate`, exact Clopper–Pearson);
* prospective sample sizes (:func:`sample_size_paired`, :func:`sample_size_binomial_gate`).

The traps of DESIGN.md §5 are guarded by tests: the bootstrap resamples *pairs* (never the two arms
separately), TOST returns the *maximum* of its two one-sided p-values, and BH is a real step-up.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from tsglab.errors import DegenerateStatisticWarning, InvalidArgument
from tsglab.stats._config import BOOTSTRAP_CHUNK_ELEMENTS, SAMPLE_SIZE_MAX_N, ZERO_SD_RTOL
from tsglab.stats.quantiles import _as_sample

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BinomialGate",
    "Equivalence",
    "MultipleTestResult",
    "NonInferiority",
    "benjamini_hochberg",
    "benjamini_yekutieli",
    "binomial_gate",
    "paired_noninferiority",
    "paired_tost",
    "sample_size_binomial_gate",
    "sample_size_paired",
]

PairedMethod = Literal["bootstrap", "t"]
_PAIRED_METHODS = ("bootstrap", "t")


# --------------------------------------------------------------------------------------------------
# shared helpers


def _frame(record: dict[str, object]) -> pd.DataFrame:
    import pandas as pd  # imported here: `import tsglab` stays cheap

    return pd.DataFrame([record])


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value)


def _short_repr(obj: object, names: tuple[str, ...]) -> str:
    body = ", ".join(f"{name}={_fmt(getattr(obj, name))}" for name in names)
    return f"{type(obj).__name__}({body})"


def _check_probability(value: object, *, name: str, fix: str) -> float:
    """A float strictly between 0 and 1 (bools and NaN rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidArgument(f"`{name}` must be a number strictly between 0 and 1; got {value!r}. {fix}")
    number = float(value)
    if not 0.0 < number < 1.0:
        raise InvalidArgument(f"`{name}` must be strictly between 0 and 1; got {value!r}. {fix}")
    return number


def _check_finite(
    value: object, *, name: str, minimum: float | None = None, strict: bool = False, fix: str = ""
) -> float:
    """A finite float, optionally ``>= minimum`` (``> minimum`` when ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidArgument(f"`{name}` must be a finite number; got {value!r}. {fix}".rstrip())
    number = float(value)
    if not math.isfinite(number):
        raise InvalidArgument(f"`{name}` must be a finite number; got {value!r}. {fix}".rstrip())
    if minimum is not None and (number <= minimum if strict else number < minimum):
        relation = ">" if strict else ">="
        raise InvalidArgument(f"`{name}` must be {relation} {minimum:g}; got {value!r}. {fix}".rstrip())
    return number


def _check_int(value: object, *, name: str, minimum: int, fix: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgument(f"`{name}` must be an integer >= {minimum}; got {value!r}. {fix}".rstrip())
    if value < minimum:
        raise InvalidArgument(f"`{name}` must be an integer >= {minimum}; got {value!r}. {fix}".rstrip())
    return int(value)


def _warn(message: str) -> None:
    warnings.warn(message, DegenerateStatisticWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------------
# Family A: paired non-inferiority and equivalence


def _validate_paired(
    gateway: ArrayLike, baseline: ArrayLike, *, alpha: object, method: object, n_resamples: object, seed: object
) -> tuple[np.ndarray, float, str, int, int]:
    """Validate the paired arms and shared options; return (differences, alpha, method, B, seed)."""
    gateway_arr = _as_sample(gateway, name="gateway")
    baseline_arr = _as_sample(baseline, name="baseline")
    if gateway_arr.shape != baseline_arr.shape:
        raise InvalidArgument(
            f"`gateway` and `baseline` must be paired (same length, aligned by prompt id); got lengths "
            f"{gateway_arr.size} and {baseline_arr.size}. Join the two arms on prompt id first."
        )
    alpha_f = _check_probability(alpha, name="alpha", fix="Use e.g. alpha=0.05.")
    if method not in _PAIRED_METHODS:
        raise InvalidArgument(f"`method` must be one of {_PAIRED_METHODS}; got {method!r}. Use method='bootstrap'.")
    resamples = _check_int(n_resamples, name="n_resamples", minimum=1, fix="Use e.g. n_resamples=5000.")
    seed_i = _check_int(seed, name="seed", minimum=0, fix="Pass a fixed seed such as seed=0 (it is recorded).")
    return gateway_arr - baseline_arr, alpha_f, str(method), resamples, seed_i


def _degenerate_reason(differences: np.ndarray) -> str | None:
    n = differences.size
    if n < 2:
        return f"n = {n} paired observation(s): at least 2 are needed for a test"
    sd = float(np.std(differences, ddof=1))
    if sd <= ZERO_SD_RTOL * max(1.0, float(np.max(np.abs(differences)))):
        return "all paired differences are equal (sd = 0): the sampling variability is not estimable"
    return None


def _bootstrap_means(differences: np.ndarray, *, n_resamples: int, seed: int) -> np.ndarray:
    """Means of ``n_resamples`` paired bootstrap resamples of the differences (seeded, chunked)."""
    rng = np.random.default_rng(seed)
    n = differences.size
    rows_per_chunk = max(1, BOOTSTRAP_CHUNK_ELEMENTS // n)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, rows_per_chunk):
        stop = min(n_resamples, start + rows_per_chunk)
        indices = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = differences[indices].mean(axis=1)
    return means


def _t_critical(alpha: float, n: int) -> float:
    return float(stats.t.ppf(1.0 - alpha, n - 1))


def _is_underpowered(margin: float, sd: float, n: int, alpha: float) -> bool:
    if n < 2:
        return True
    if sd == 0.0:
        return margin <= 0.0
    return bool(margin * math.sqrt(n) / sd < _t_critical(alpha, n))


@dataclass(frozen=True, repr=False)
class NonInferiority:
    r"""Result of a paired non-inferiority test, H0: mean d <= -margin vs H1: mean d > -margin.

    Attributes
    ----------
    estimate : float
        Mean paired difference :math:`\bar d` (gateway − baseline).
    ci_low : float
        One-sided lower confidence bound of the mean difference at level 1 − ``alpha``.
    p_value : float
        One-sided p-value (NaN in degenerate cases).
    margin : float
        Non-inferiority margin :math:`\varepsilon \ge 0`.
    alpha : float
        Significance level.
    method : str
        ``"bootstrap"`` (paired bootstrap) or ``"t"`` (paired t-test).
    n : int
        Number of pairs.
    n_resamples : int
        Bootstrap resamples (recorded for ``method="t"`` too, where it is unused).
    seed : int
        Seed of the bootstrap generator.
    sd : float
        Sample sd of the differences (ddof = 1; NaN when n < 2).
    passed : bool
        ``p_value < alpha`` (False when the p-value is NaN).
    underpowered : bool
        :math:`\varepsilon\sqrt n / s < t_{1-\alpha,\,n-1}`: even an observed mean difference of 0
        could not reject H0 at this n and sd.
    note : str
        Plain-language remark (degenerate input, low power), empty when there is nothing to say.
    """

    estimate: float
    ci_low: float
    p_value: float
    margin: float
    alpha: float
    method: str
    n: int
    n_resamples: int
    seed: int
    sd: float
    passed: bool
    underpowered: bool
    note: str

    def __repr__(self) -> str:
        return _short_repr(
            self, ("estimate", "ci_low", "p_value", "margin", "alpha", "method", "n", "passed", "underpowered")
        )

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        return _frame(asdict(self))


def _underpowered_note(margin: float, sd: float, n: int, alpha: float) -> str:
    return (
        f"Underpowered: with n = {n} and sd = {sd:.4g}, margin·√n/sd = {margin * math.sqrt(n) / sd:.3g} is below "
        f"t(1−α, n−1) = {_t_critical(alpha, n):.3g}; even a mean difference of 0 could not show "
        "non-inferiority. See `sample_size_paired`."
    )


def _paired_summary(
    differences: np.ndarray, alpha: float, method: str, n_resamples: int, seed: int
) -> tuple[int, float, float, dict]:
    """n, mean, sd of the paired differences and the result fields both paired tests share."""
    n = differences.size
    estimate = float(np.mean(differences)) if n else float("nan")
    sd = float(np.std(differences, ddof=1)) if n >= 2 else float("nan")
    common = dict(estimate=estimate, alpha=alpha, method=method, n=n, n_resamples=n_resamples, seed=seed, sd=sd)
    return n, estimate, sd, common


def paired_noninferiority(
    gateway: ArrayLike,
    baseline: ArrayLike,
    *,
    margin: float,
    alpha: float = 0.05,
    method: PairedMethod = "bootstrap",
    n_resamples: int = 5000,
    seed: int = 0,
) -> NonInferiority:
    r"""Paired non-inferiority test of the gateway's quality against the baseline (Family A).

    Parameters
    ----------
    gateway, baseline : array_like
        1-D quality scores of the same prompts, aligned by position (join on prompt id first).
    margin : float
        Non-inferiority margin :math:`\varepsilon \ge 0` on the score scale (0 gives a superiority test).
    alpha : float, default 0.05
        One-sided significance level, in (0, 1).
    method : {"bootstrap", "t"}, default "bootstrap"
        Paired bootstrap of the differences, or the paired t-test.
    n_resamples : int, default 5000
        Bootstrap resamples (ignored by ``method="t"``).
    seed : int, default 0
        Seed of the ``numpy.random.Generator`` used by the bootstrap.

    Returns
    -------
    NonInferiority
        Degenerate input (fewer than 2 pairs, or all differences equal) gives NaN ``p_value`` and
        ``ci_low``, ``passed=False`` and a :class:`~tsglab.errors.DegenerateStatisticWarning`.

    Raises
    ------
    ValueError
        If the arms differ in length or hold NaN/infinite values, or an option is out of range.

    Notes
    -----
    With :math:`d_i = g_i - b_i`, :math:`\bar d`, :math:`s = \mathrm{sd}(d)` (ddof 1), the hypotheses
    are :math:`H_0: \mu_d \le -\varepsilon` vs :math:`H_1: \mu_d > -\varepsilon`.

    *t-test*: :math:`T = (\bar d + \varepsilon)\sqrt n / s`, :math:`p = P(t_{n-1} \ge T)`, lower bound
    :math:`\bar d - t_{1-\alpha,n-1}\, s/\sqrt n`.

    *Paired bootstrap*: resample the *pairs* (equivalently the :math:`d_i`) with replacement
    :math:`B` times, giving means :math:`\bar d^*_b`. The null distribution is the bootstrap
    distribution shifted so that H0 holds at its boundary, :math:`\bar d^*_b - \bar d - \varepsilon`
    (the resampled differences :math:`d_i - \bar d - \varepsilon` have mean :math:`-\varepsilon`). The
    p-value is the share of these null means at or beyond the observed mean,

    .. math:: p = \frac1B\,\#\{b : \bar d^*_b - \bar d - \varepsilon \ge \bar d\}
              = \frac1B\,\#\{b : \bar d^*_b - \bar d \ge \bar d + \varepsilon\},

    (no +1 correction, so :math:`p = 0` is possible: read it as :math:`p < 1/B`). The lower bound is
    the basic (reverse-percentile) bound :math:`\bar d - Q_{1-\alpha}(\bar d^* - \bar d)`, the dual of
    that p-value: ``passed`` agrees with ``ci_low > -margin`` up to the interpolation of the quantile.

    Resampling the two arms separately (an unpaired bootstrap) ignores the correlation between arms
    and throws away most of the power on paired data (DESIGN.md §5); this function never does.

    References
    ----------
    .. [1] B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman & Hall, 1993,
       §16 (bootstrap hypothesis tests by shifting the data to the null).
    .. [2] S. Wellek, *Testing Statistical Hypotheses of Equivalence and Noninferiority*, 2nd ed.,
       CRC Press, 2010.
    """
    differences, alpha_f, method_s, resamples, seed_i = _validate_paired(
        gateway, baseline, alpha=alpha, method=method, n_resamples=n_resamples, seed=seed
    )
    margin_f = _check_finite(
        margin, name="margin", minimum=0.0, fix="The margin is the tolerated quality loss, e.g. margin=0.02."
    )
    n, estimate, sd, common = _paired_summary(differences, alpha_f, method_s, resamples, seed_i)
    common["margin"] = margin_f
    reason = _degenerate_reason(differences)
    if reason is not None:
        _warn(f"Non-inferiority test is undefined: {reason}; returning NaN.")
        return NonInferiority(
            ci_low=float("nan"),
            p_value=float("nan"),
            passed=False,
            underpowered=n < 2,
            note=f"Degenerate: {reason}.",
            **common,
        )

    if method_s == "t":
        standard_error = sd / math.sqrt(n)
        t_stat = (estimate + margin_f) / standard_error
        p_value = float(stats.t.sf(t_stat, n - 1))
        ci_low = estimate - _t_critical(alpha_f, n) * standard_error
    else:
        deviations = _bootstrap_means(differences, n_resamples=resamples, seed=seed_i) - estimate
        p_value = float(np.mean(deviations >= estimate + margin_f))
        ci_low = estimate - float(np.quantile(deviations, 1.0 - alpha_f))

    underpowered = _is_underpowered(margin_f, sd, n, alpha_f)
    note = _underpowered_note(margin_f, sd, n, alpha_f) if underpowered else ""
    return NonInferiority(
        ci_low=float(ci_low),
        p_value=p_value,
        passed=bool(p_value < alpha_f),
        underpowered=underpowered,
        note=note,
        **common,
    )


@dataclass(frozen=True, repr=False)
class Equivalence:
    r"""Result of a paired TOST, H0: mean d <= low or mean d >= high vs H1: low < mean d < high.

    Attributes
    ----------
    estimate : float
        Mean paired difference :math:`\bar d`.
    ci_low, ci_high : float
        The :math:`1 - 2\alpha` two-sided interval of the mean difference (its one-sided bounds at
        :math:`1-\alpha`); equivalence is shown when it lies inside (low, high).
    p_value : float
        :math:`\max(p_\text{low}, p_\text{high})`: the TOST p-value.
    p_low : float
        One-sided p-value of H0a: mean d <= low.
    p_high : float
        One-sided p-value of H0b: mean d >= high.
    low, high : float
        Equivalence bounds.
    alpha, method, n, n_resamples, seed, sd
        As in :class:`NonInferiority`.
    passed : bool
        ``p_value < alpha`` (both one-sided tests reject).
    note : str
        Plain-language remark, empty when there is nothing to say.
    """

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    p_low: float
    p_high: float
    low: float
    high: float
    alpha: float
    method: str
    n: int
    n_resamples: int
    seed: int
    sd: float
    passed: bool
    note: str

    def __repr__(self) -> str:
        return _short_repr(
            self, ("estimate", "ci_low", "ci_high", "p_value", "low", "high", "alpha", "method", "n", "passed")
        )

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        return _frame(asdict(self))


def paired_tost(
    gateway: ArrayLike,
    baseline: ArrayLike,
    *,
    low: float,
    high: float,
    alpha: float = 0.05,
    method: PairedMethod = "bootstrap",
    n_resamples: int = 5000,
    seed: int = 0,
) -> Equivalence:
    r"""Paired equivalence test by two one-sided tests (TOST) of the mean difference.

    Parameters
    ----------
    gateway, baseline : array_like
        1-D quality scores of the same prompts, aligned by position.
    low, high : float
        Equivalence bounds on the mean difference, ``low < high`` (typically ``-ε, +ε``).
    alpha : float, default 0.05
        Level of each one-sided test, in (0, 1).
    method : {"bootstrap", "t"}, default "bootstrap"
        Paired bootstrap (one set of resamples serves both one-sided tests) or paired t-tests.
    n_resamples : int, default 5000
        Bootstrap resamples (ignored by ``method="t"``).
    seed : int, default 0
        Seed of the bootstrap generator.

    Returns
    -------
    Equivalence
        Degenerate input gives NaN p-values and bounds and a
        :class:`~tsglab.errors.DegenerateStatisticWarning`.

    Raises
    ------
    ValueError
        If the arms are not paired, ``low >= high``, or an option is out of range.

    Notes
    -----
    *t-test*: :math:`T_\text{low} = (\bar d - \text{low})\sqrt n/s`, :math:`p_\text{low} = P(t_{n-1}
    \ge T_\text{low})`; :math:`T_\text{high} = (\bar d - \text{high})\sqrt n/s`, :math:`p_\text{high} =
    P(t_{n-1} \le T_\text{high})`. Identical to ``statsmodels.stats.weightstats.ttost_paired``.

    *Bootstrap*: with deviations :math:`\delta_b = \bar d^*_b - \bar d` of the paired bootstrap means,
    :math:`p_\text{low} = \#\{\delta_b \ge \bar d - \text{low}\}/B` and
    :math:`p_\text{high} = \#\{\delta_b \le \bar d - \text{high}\}/B` (each null shifted to its
    boundary, as in :func:`paired_noninferiority`).

    The TOST p-value is the **maximum** :math:`p = \max(p_\text{low}, p_\text{high})`: equivalence
    needs *both* nulls rejected. Returning the minimum would declare equivalence whenever either
    one-sided test rejects (DESIGN.md §5).

    References
    ----------
    .. [1] D. J. Schuirmann, "A comparison of the two one-sided tests procedure and the power
       approach for assessing the equivalence of average bioavailability", *J. Pharmacokinet.
       Biopharm.* 15(6), 657–680, 1987.
    """
    differences, alpha_f, method_s, resamples, seed_i = _validate_paired(
        gateway, baseline, alpha=alpha, method=method, n_resamples=n_resamples, seed=seed
    )
    low_f = _check_finite(low, name="low", fix="Use e.g. low=-0.02, high=0.02.")
    high_f = _check_finite(high, name="high", fix="Use e.g. low=-0.02, high=0.02.")
    if not low_f < high_f:
        raise InvalidArgument(
            f"`low` must be below `high`; got low={low!r}, high={high!r}. Use e.g. low=-0.02, high=0.02."
        )
    n, estimate, sd, common = _paired_summary(differences, alpha_f, method_s, resamples, seed_i)
    common.update(low=low_f, high=high_f)
    reason = _degenerate_reason(differences)
    if reason is not None:
        _warn(f"Equivalence test is undefined: {reason}; returning NaN.")
        nan = float("nan")
        return Equivalence(
            ci_low=nan,
            ci_high=nan,
            p_value=nan,
            p_low=nan,
            p_high=nan,
            passed=False,
            note=f"Degenerate: {reason}.",
            **common,
        )

    if method_s == "t":
        standard_error = sd / math.sqrt(n)
        p_low = float(stats.t.sf((estimate - low_f) / standard_error, n - 1))
        p_high = float(stats.t.cdf((estimate - high_f) / standard_error, n - 1))
        half_width = _t_critical(alpha_f, n) * standard_error
        ci_low, ci_high = estimate - half_width, estimate + half_width
    else:
        deviations = _bootstrap_means(differences, n_resamples=resamples, seed=seed_i) - estimate
        p_low = float(np.mean(deviations >= estimate - low_f))
        p_high = float(np.mean(deviations <= estimate - high_f))
        ci_low = estimate - float(np.quantile(deviations, 1.0 - alpha_f))
        ci_high = estimate - float(np.quantile(deviations, alpha_f))

    p_value = max(p_low, p_high)
    # The equivalence margin plays the role of the non-inferiority margin on the nearer side.
    nearest_margin = min(estimate - low_f, high_f - estimate)
    note = ""
    if nearest_margin <= 0.0:
        note = "The mean difference lies outside (low, high): equivalence cannot be shown."
    return Equivalence(
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        p_value=p_value,
        p_low=p_low,
        p_high=p_high,
        passed=bool(p_value < alpha_f),
        note=note,
        **common,
    )


# --------------------------------------------------------------------------------------------------
# multiple testing


@dataclass(frozen=True, repr=False, eq=False)
class MultipleTestResult:
    """False-discovery-rate adjustment of a family of p-values.

    Attributes
    ----------
    p_value : numpy.ndarray
        The raw p-value of each hypothesis, in input order (read-only). Named like the scalar
        ``p_value`` of the other results so that ``to_frame()`` has one ``p_value`` column.
    adjusted : numpy.ndarray
        Step-up adjusted p-values, monotone in the raw p-values and capped at 1; NaN where the raw
        p-value is NaN.
    rejected : numpy.ndarray of bool
        Hypotheses rejected at FDR level ``q`` (False where the raw p-value is NaN).
    q : float
        FDR level.
    method : str
        ``"bh"`` (Benjamini–Hochberg) or ``"by"`` (Benjamini–Yekutieli).
    m : int
        Number of hypotheses counted (non-NaN p-values).
    """

    p_value: np.ndarray
    adjusted: np.ndarray
    rejected: np.ndarray
    q: float
    method: str
    m: int

    def __repr__(self) -> str:
        return (
            f"MultipleTestResult(method={self.method!r}, q={self.q:g}, m={self.m}, "
            f"n_rejected={int(self.rejected.sum())})"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per hypothesis, one column per field: ``p_value, adjusted, rejected, q, method, m``."""
        import pandas as pd

        return pd.DataFrame(
            {
                "p_value": self.p_value,
                "adjusted": self.adjusted,
                "rejected": self.rejected,
                "q": self.q,
                "method": self.method,
                "m": self.m,
            }
        )


def _validate_p_values(p_values: ArrayLike, q: object) -> tuple[np.ndarray, float]:
    try:
        p_arr = np.array(p_values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"`p_values` must be a 1-D array of numbers in [0, 1]; got {type(p_values).__name__}. Pass a list or "
            "array of p-values (NaN for a missing test)."
        ) from exc
    if p_arr.ndim != 1:
        raise InvalidArgument(
            f"`p_values` must be 1-D; got an array of shape {p_arr.shape}. Use `np.ravel(p_values)`."
        )
    finite = p_arr[~np.isnan(p_arr)]
    bad = finite[(finite < 0.0) | (finite > 1.0)]
    if bad.size:
        raise InvalidArgument(
            f"`p_values` must lie in [0, 1] (NaN marks a missing test); got {float(bad[0])!r}. "
            "Pass p-values, not test statistics or log p-values."
        )
    q_f = _check_probability(q, name="q", fix="Use e.g. q=0.10 (the protocol's FDR level).")
    return p_arr, q_f


def _fdr_step_up(p_values: ArrayLike, q: object, *, method: str) -> MultipleTestResult:
    p_arr, q_f = _validate_p_values(p_values, q)
    present = np.flatnonzero(~np.isnan(p_arr))
    m = present.size
    adjusted = np.full(p_arr.shape, np.nan)
    rejected = np.zeros(p_arr.shape, dtype=bool)
    if m == 0:
        _warn("No p-values to adjust (empty or all NaN); the adjusted p-values are NaN and nothing is rejected.")
    else:
        dependence_factor = float(np.sum(1.0 / np.arange(1, m + 1))) if method == "by" else 1.0
        order = np.argsort(p_arr[present], kind="stable")
        sorted_p = p_arr[present][order]
        rank_share = np.arange(1, m + 1) / m  # i / m
        # Rejection straight from the step-up rule p_(i) <= (i/m) q / c(m): no rounding through `adjusted`.
        below = np.flatnonzero(sorted_p <= rank_share * q_f / dependence_factor)
        n_rejected = int(below[-1]) + 1 if below.size else 0
        sorted_adjusted = np.minimum.accumulate((dependence_factor * sorted_p / rank_share)[::-1])[::-1]
        sorted_adjusted = np.minimum(sorted_adjusted, 1.0)
        adjusted[present[order]] = sorted_adjusted
        rejected[present[order[:n_rejected]]] = True
    for array in (p_arr, adjusted, rejected):
        array.setflags(write=False)
    return MultipleTestResult(p_value=p_arr, adjusted=adjusted, rejected=rejected, q=q_f, method=method, m=m)


def benjamini_hochberg(p_values: ArrayLike, *, q: float = 0.10) -> MultipleTestResult:
    r"""Benjamini–Hochberg step-up procedure (FDR control under independence or PRDS).

    Parameters
    ----------
    p_values : array_like
        1-D p-values in [0, 1], one per stratum. NaN marks a test that could not be run: it stays NaN,
        is never rejected, and is **excluded from m** (the family is the tests that exist).
    q : float, default 0.10
        FDR level, in (0, 1).

    Returns
    -------
    MultipleTestResult
        An empty or all-NaN family gives NaN adjustments and a
        :class:`~tsglab.errors.DegenerateStatisticWarning`.

    Raises
    ------
    ValueError
        If ``p_values`` is not 1-D or holds values outside [0, 1], or ``q`` is outside (0, 1).

    Notes
    -----
    With the non-NaN p-values sorted, :math:`p_{(1)} \le \dots \le p_{(m)}`, reject
    :math:`H_{(1)},\dots,H_{(k)}` where :math:`k = \max\{i : p_{(i)} \le i q / m\}` (none if no such i).
    The adjusted p-values are

    .. math:: \tilde p_{(i)} = \min\Bigl(1,\; \min_{j \ge i} \frac{m\,p_{(j)}}{j}\Bigr),

    so :math:`H_{(i)}` is rejected iff :math:`\tilde p_{(i)} \le q` (up to rounding; the rejection set is
    computed from the step-up rule itself). Matches ``statsmodels.stats.multitest.multipletests(...,
    method="fdr_bh")``.

    References
    ----------
    .. [1] Y. Benjamini and Y. Hochberg, "Controlling the false discovery rate: a practical and
       powerful approach to multiple testing", *J. R. Stat. Soc. B* 57(1), 289–300, 1995.
    """
    return _fdr_step_up(p_values, q, method="bh")


def benjamini_yekutieli(p_values: ArrayLike, *, q: float = 0.10) -> MultipleTestResult:
    r"""Benjamini–Yekutieli step-up procedure (FDR control under any dependence).

    Parameters
    ----------
    p_values : array_like
        1-D p-values in [0, 1]; NaN entries stay NaN, are never rejected and are excluded from m.
    q : float, default 0.10
        FDR level, in (0, 1).

    Returns
    -------
    MultipleTestResult
        As :func:`benjamini_hochberg`, with ``method="by"``.

    Raises
    ------
    ValueError
        As :func:`benjamini_hochberg`.

    Notes
    -----
    Benjamini–Hochberg at level :math:`q / c(m)` with :math:`c(m) = \sum_{k=1}^m 1/k`:
    :math:`\tilde p_{(i)} = \min(1, \min_{j \ge i} c(m)\, m\, p_{(j)} / j)`. Matches
    ``multipletests(..., method="fdr_by")``.

    References
    ----------
    .. [1] Y. Benjamini and D. Yekutieli, "The control of the false discovery rate in multiple testing
       under dependency", *Ann. Statist.* 29(4), 1165–1188, 2001.
    """
    return _fdr_step_up(p_values, q, method="by")


# --------------------------------------------------------------------------------------------------
# Family C: the binomial gate


def _min_n_zero_failures(max_rate: float, alpha: float) -> int:
    """Smallest n with P(X = 0 | n, max_rate) = (1 - max_rate)^n < alpha (same cdf as the test)."""
    n = max(1, math.ceil(math.log(alpha) / math.log1p(-max_rate)))
    # The closed form can be off by one in floating point; settle it on the cdf the test uses.
    while stats.binom.cdf(0, n, max_rate) >= alpha:
        n += 1
    while n > 1 and stats.binom.cdf(0, n - 1, max_rate) < alpha:
        n -= 1
    return n


@dataclass(frozen=True, repr=False)
class BinomialGate:
    r"""Result of the failure-rate gate (Family C: JSON compliance).

    Attributes
    ----------
    failures, n : int
        Observed failures and trials.
    rate : float
        Point rate ``failures / n`` (NaN when n = 0).
    upper_bound : float
        Exact one-sided Clopper–Pearson upper bound of the rate at level 1 − ``alpha``.
    p_value : float
        Exact one-sided binomial p-value of H0: rate >= ``max_rate``.
    max_rate, alpha : float
        The gate and the level.
    passed_point : bool
        ``rate <= max_rate`` (the point gate).
    passed_test : bool
        ``p_value < alpha`` (the rate is shown to be below ``max_rate``).
    min_n_to_pass : int
        Smallest n at which 0 failures would pass the test.
    underpowered : bool
        ``n < min_n_to_pass``: no outcome can pass the test.
    note : str
        Plain-language remark, empty when there is nothing to say.
    """

    failures: int
    n: int
    rate: float
    upper_bound: float
    p_value: float
    max_rate: float
    alpha: float
    passed_point: bool
    passed_test: bool
    min_n_to_pass: int
    underpowered: bool
    note: str

    def __repr__(self) -> str:
        return _short_repr(
            self,
            (
                "failures",
                "n",
                "rate",
                "upper_bound",
                "p_value",
                "max_rate",
                "passed_point",
                "passed_test",
                "underpowered",
            ),
        )

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        return _frame(asdict(self))


def _validate_binomial_gate(
    failures: object, n: object, max_rate: object, alpha: object
) -> tuple[int, int, float, float]:
    n_i = _check_int(n, name="n", minimum=0, fix="Pass the number of JSON-task requests.")
    failures_i = _check_int(failures, name="failures", minimum=0, fix="Pass the count of failed requests.")
    if failures_i > n_i:
        raise InvalidArgument(
            f"`failures` must be <= `n`; got failures={failures_i}, n={n_i}. Count each request "
            "once (a request that failed twice is one failure)."
        )
    max_rate_f = _check_probability(max_rate, name="max_rate", fix="Use e.g. max_rate=0.005 for 0.5 %.")
    alpha_f = _check_probability(alpha, name="alpha", fix="Use e.g. alpha=0.05.")
    return failures_i, n_i, max_rate_f, alpha_f


def binomial_gate(failures: int, n: int, *, max_rate: float = 0.005, alpha: float = 0.05) -> BinomialGate:
    r"""Failure-rate gate with an exact one-sided binomial test (Family C, JSON compliance).

    Parameters
    ----------
    failures : int
        Number of failed requests (e.g. invalid JSON), ``0 <= failures <= n``.
    n : int
        Number of requests.
    max_rate : float, default 0.005
        Highest acceptable failure rate, in (0, 1).
    alpha : float, default 0.05
        One-sided significance level, in (0, 1).

    Returns
    -------
    BinomialGate
        ``n = 0`` gives a NaN rate and a :class:`~tsglab.errors.DegenerateStatisticWarning`.

    Raises
    ------
    ValueError
        If the counts are not integers with ``0 <= failures <= n``, or a rate/level is outside (0, 1).

    Notes
    -----
    With :math:`X \sim \mathrm{Bin}(n, \pi)` and observed :math:`x`, test
    :math:`H_0: \pi \ge \pi_0` vs :math:`H_1: \pi < \pi_0` (:math:`\pi_0` = ``max_rate``):

    .. math:: p = P(X \le x \mid n, \pi_0) = \sum_{k=0}^{x} \binom nk \pi_0^k (1-\pi_0)^{n-k}.

    The Clopper–Pearson upper bound at :math:`1-\alpha` is
    :math:`U = B^{-1}(1-\alpha;\, x+1,\, n-x)` (beta quantile; :math:`U = 1` when :math:`x = n`), and
    :math:`p < \alpha \iff U < \pi_0`. Zero failures pass the test iff
    :math:`(1-\pi_0)^n < \alpha`, i.e. :math:`n > \log\alpha / \log(1-\pi_0)`: 598 for the
    protocol's 0.5 % at :math:`\alpha = 0.05`.

    References
    ----------
    .. [1] C. J. Clopper and E. S. Pearson, "The use of confidence or fiducial limits illustrated in
       the case of the binomial", *Biometrika* 26(4), 404–413, 1934.
    .. [2] ``scipy.stats.binomtest(x, n, max_rate, alternative="less")`` (reference in the tests).
    """
    failures_i, n_i, max_rate_f, alpha_f = _validate_binomial_gate(failures, n, max_rate, alpha)
    min_n = _min_n_zero_failures(max_rate_f, alpha_f)
    underpowered = n_i < min_n
    if n_i == 0:
        _warn("The failure rate of 0 requests is undefined; returning NaN.")
        rate = float("nan")
    else:
        rate = failures_i / n_i
    upper_bound = 1.0 if failures_i == n_i else float(stats.beta.ppf(1.0 - alpha_f, failures_i + 1, n_i - failures_i))
    p_value = float(stats.binom.cdf(failures_i, n_i, max_rate_f))
    note = ""
    if underpowered:
        note = (
            f"n = {n_i} is too small: even 0 failures cannot show a rate below {max_rate_f * 100:g} % at "
            f"α = {alpha_f:g}; n ≥ {min_n} is needed."
        )
    return BinomialGate(
        failures=failures_i,
        n=n_i,
        rate=rate,
        upper_bound=upper_bound,
        p_value=p_value,
        max_rate=max_rate_f,
        alpha=alpha_f,
        passed_point=bool(rate <= max_rate_f),
        passed_test=bool(p_value < alpha_f),
        min_n_to_pass=min_n,
        underpowered=underpowered,
        note=note,
    )


# --------------------------------------------------------------------------------------------------
# prospective sample sizes


def _paired_t_power(n: int, *, effect: float, sd: float, alpha: float) -> float:
    """Power of the one-sided paired t-test when (true mean d + margin) = ``effect``."""
    noncentrality = effect * math.sqrt(n) / sd
    return float(stats.nct.sf(_t_critical(alpha, n), n - 1, noncentrality))


def sample_size_paired(
    sd: float, *, margin: float, alpha: float = 0.05, power: float = 0.8, true_diff: float = 0.0
) -> int:
    r"""Number of pairs for the paired non-inferiority t-test to reach the requested power.

    Parameters
    ----------
    sd : float
        Anticipated sd of the paired differences, > 0 (from a pilot run).
    margin : float
        Non-inferiority margin :math:`\varepsilon \ge 0`.
    alpha : float, default 0.05
        One-sided level, in (0, 1).
    power : float, default 0.8
        Target power, in (0, 1).
    true_diff : float, default 0.0
        Assumed true mean difference; ``true_diff + margin`` must be > 0.

    Returns
    -------
    int
        The smallest :math:`n \ge 2` whose exact power is at least ``power``.

    Raises
    ------
    ValueError
        If an input is out of range, ``true_diff <= -margin`` (H0 true: no n has power), or the
        answer exceeds ``SAMPLE_SIZE_MAX_N``.

    Notes
    -----
    Start from the normal approximation
    :math:`n_0 = \lceil ((z_{1-\alpha} + z_{\text{power}})\, \sigma / (\mu + \varepsilon))^2 \rceil`,
    then step :math:`n` to the smallest value with exact power

    .. math:: 1 - F_{t'}\bigl(t_{1-\alpha,\,n-1};\; n-1,\; \lambda = (\mu + \varepsilon)\sqrt n/\sigma\bigr)
              \ge \text{power},

    :math:`F_{t'}` the noncentral t cdf (``scipy.stats.nct``). The power increases with n.

    References
    ----------
    .. [1] S.-C. Chow, J. Shao and H. Wang, *Sample Size Calculations in Clinical Research*, 2nd ed.,
       Chapman & Hall/CRC, 2008, §3.2.
    """
    sd_f = _check_finite(
        sd, name="sd", minimum=0.0, strict=True, fix="Use the sd of the paired differences from a pilot run."
    )
    margin_f = _check_finite(margin, name="margin", minimum=0.0, fix="Use e.g. margin=0.02.")
    alpha_f = _check_probability(alpha, name="alpha", fix="Use e.g. alpha=0.05.")
    power_f = _check_probability(power, name="power", fix="Use e.g. power=0.8.")
    true_diff_f = _check_finite(true_diff, name="true_diff", fix="Use e.g. true_diff=0.0.")
    effect = true_diff_f + margin_f
    if effect <= 0.0:
        raise InvalidArgument(
            f"`true_diff + margin` must be > 0; got true_diff={true_diff!r}, margin={margin!r}. When "
            "the true difference is at or below -margin, H0 holds and no n gives power."
        )
    z_sum = stats.norm.ppf(1.0 - alpha_f) + stats.norm.ppf(power_f)
    approx = (max(z_sum, 0.0) * sd_f / effect) ** 2
    if approx > SAMPLE_SIZE_MAX_N:
        raise InvalidArgument(
            f"The required n (about {approx:.3g}) exceeds {SAMPLE_SIZE_MAX_N:g}; increase `margin` or lower `power`."
        )
    n = max(2, math.ceil(approx))
    while _paired_t_power(n, effect=effect, sd=sd_f, alpha=alpha_f) < power_f:
        n += 1
    while n > 2 and _paired_t_power(n - 1, effect=effect, sd=sd_f, alpha=alpha_f) >= power_f:
        n -= 1
    return n


def _binomial_gate_power(n: np.ndarray, *, max_rate: float, alpha: float, expected_rate: float) -> np.ndarray:
    """P(the gate's test passes | true rate = expected_rate) for an array of n."""
    # Largest k with P(X <= k | max_rate) < alpha; -1 when even 0 failures cannot pass.
    critical = stats.binom.ppf(alpha, n, max_rate) - 1
    # ppf is computed by search over the cdf; settle the boundary on the cdf itself.
    critical = np.where(stats.binom.cdf(critical, n, max_rate) >= alpha, critical - 1, critical)
    critical = np.where(stats.binom.cdf(critical + 1, n, max_rate) < alpha, critical + 1, critical)
    return np.where(critical >= 0, stats.binom.cdf(critical, n, expected_rate), 0.0)


def sample_size_binomial_gate(
    max_rate: float, *, alpha: float = 0.05, expected_rate: float = 0.0, power: float = 0.8
) -> int:
    r"""Number of requests for :func:`binomial_gate`'s test to pass with the requested power.

    Parameters
    ----------
    max_rate : float
        The gate, in (0, 1).
    alpha : float, default 0.05
        One-sided level, in (0, 1).
    expected_rate : float, default 0.0
        Assumed true failure rate, ``0 <= expected_rate < max_rate``.
    power : float, default 0.8
        Target probability that the test passes, in (0, 1).

    Returns
    -------
    int
        The smallest n whose exact power is at least ``power``. With ``expected_rate = 0`` this is
        ``BinomialGate.min_n_to_pass`` (zero failures are then certain).

    Raises
    ------
    ValueError
        If an input is out of range or the answer exceeds ``SAMPLE_SIZE_MAX_N``.

    Notes
    -----
    With :math:`k_n = \max\{k : P(X \le k \mid n, \pi_0) < \alpha\}` the largest passing failure count,
    the power is :math:`P(X \le k_n \mid n, \pi_1)`, :math:`\pi_1` = ``expected_rate``. It is a sawtooth
    in n (it drops each time :math:`k_n` stays put while n grows), so the smallest n reaching the target
    can be followed by a few n that do not; a margin of a few per cent in n is prudent.

    References
    ----------
    .. [1] S.-C. Chow, J. Shao and H. Wang, *Sample Size Calculations in Clinical Research*, 2nd ed.,
       Chapman & Hall/CRC, 2008, §4.1 (exact binomial test).
    """
    max_rate_f = _check_probability(max_rate, name="max_rate", fix="Use e.g. max_rate=0.005 for 0.5 %.")
    alpha_f = _check_probability(alpha, name="alpha", fix="Use e.g. alpha=0.05.")
    power_f = _check_probability(power, name="power", fix="Use e.g. power=0.8.")
    expected_f = _check_finite(
        expected_rate,
        name="expected_rate",
        minimum=0.0,
        fix="Use the failure rate of a pilot run, e.g. expected_rate=0.001.",
    )
    if not expected_f < max_rate_f:
        raise InvalidArgument(
            f"`expected_rate` must be below `max_rate`; got expected_rate={expected_rate!r}, "
            f"max_rate={max_rate!r}. At or above the gate the test cannot be expected to pass."
        )
    start = _min_n_zero_failures(max_rate_f, alpha_f)
    block = 4096
    while start <= SAMPLE_SIZE_MAX_N:
        candidates = np.arange(start, min(start + block, SAMPLE_SIZE_MAX_N + 1))
        reached = np.flatnonzero(
            _binomial_gate_power(candidates, max_rate=max_rate_f, alpha=alpha_f, expected_rate=expected_f) >= power_f
        )
        if reached.size:
            return int(candidates[reached[0]])
        start += block
        block *= 2
    raise InvalidArgument(
        f"The required n exceeds {SAMPLE_SIZE_MAX_N:g}; `expected_rate`={expected_rate!r} is too close "
        f"to `max_rate`={max_rate!r}. Lower `expected_rate` or `power`."
    )
