"""Tests of tsglab.stats.binomial_ci: scipy's exact interval, a naive bisection on the binomial cdf
(the definition), the array form against the scalar one, coverage by Monte Carlo, n needed, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tsglab.errors import DegenerateStatisticWarning, InvalidArgument
from tsglab.stats import BinomialCI, clopper_pearson, clopper_pearson_limits, exact_bound_n_needed

# scipy's binomtest finds the exact limits with a root finder (relative error ~1e-10 at n = 3000, where
# betainc at our limit is 0.05 to 1e-17 and at scipy's to 1e-11), so the comparison allows 1e-8
SCIPY_REL = 1e-8
COUNTS = [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (0, 1000), (1, 1000), (998, 1000), (57, 400), (2, 3000)]


def naive_upper(x: int, n: int, tail: float) -> float:
    """The p with P(X <= x | n, p) = tail, by bisection on the binomial cdf (decreasing in p)."""
    if x == n:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(200):
        mid = (low + high) / 2
        if stats.binom.cdf(x, n, mid) > tail:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def naive_lower(x: int, n: int, tail: float) -> float:
    """The p with P(X >= x | n, p) = tail."""
    return 0.0 if x == 0 else 1.0 - naive_upper(n - x, n, tail)


@pytest.mark.parametrize(("x", "n"), COUNTS)
@pytest.mark.parametrize("confidence", [0.90, 0.95, 0.99])
def test_two_sided_matches_scipy_exact(x, n, confidence):
    ours = clopper_pearson(x, n, confidence=confidence)
    ref = stats.binomtest(x, n).proportion_ci(confidence_level=confidence, method="exact")
    assert ours.ci_low == pytest.approx(ref.low, rel=SCIPY_REL, abs=1e-14)
    assert ours.ci_high == pytest.approx(ref.high, rel=SCIPY_REL, abs=1e-14)
    assert ours.estimate == x / n


@pytest.mark.parametrize(("x", "n"), COUNTS)
@pytest.mark.parametrize("alternative", ["less", "greater"])
def test_one_sided_matches_scipy_exact(x, n, alternative):
    ours = clopper_pearson(x, n, confidence=0.95, alternative=alternative)
    ref = stats.binomtest(x, n, alternative=alternative).proportion_ci(confidence_level=0.95, method="exact")
    assert ours.ci_low == pytest.approx(ref.low, rel=SCIPY_REL, abs=1e-14)
    assert ours.ci_high == pytest.approx(ref.high, rel=SCIPY_REL, abs=1e-14)


@pytest.mark.parametrize(("x", "n"), COUNTS)
def test_matches_the_definition(x, n):
    ours = clopper_pearson(x, n, confidence=0.95)
    assert ours.ci_high == pytest.approx(naive_upper(x, n, 0.025), abs=1e-9)
    assert ours.ci_low == pytest.approx(naive_lower(x, n, 0.025), abs=1e-9)


def test_zero_successes_one_sided_is_the_closed_form():
    for n in (1, 30, 2995):
        assert clopper_pearson(0, n, alternative="less").ci_high == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-12)


def test_array_form_equals_scalar_form():
    x = np.array([c[0] for c in COUNTS])
    n = np.array([c[1] for c in COUNTS])
    for alternative in ("two-sided", "less", "greater"):
        limits = clopper_pearson_limits(x, n, confidence=0.9, alternative=alternative)
        for i, (xi, ni) in enumerate(COUNTS):
            one = clopper_pearson(xi, ni, confidence=0.9, alternative=alternative)
            assert (limits.ci_low[i], limits.ci_high[i]) == pytest.approx((one.ci_low, one.ci_high), rel=1e-12)
    frame = clopper_pearson_limits(x, n).to_frame()
    assert list(frame.columns) == ["successes", "n", "estimate", "ci_low", "ci_high", "confidence", "alternative",
                                   "method"]
    assert len(frame) == len(COUNTS)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_interval_contains_estimate_and_widens_with_confidence(counts):
    x, n = counts
    narrow = clopper_pearson(x, n, confidence=0.8)
    wide = clopper_pearson(x, n, confidence=0.99)
    assert wide.ci_low <= narrow.ci_low <= narrow.estimate <= narrow.ci_high <= wide.ci_high


@pytest.mark.parametrize(("n", "p"), [(20, 0.05), (100, 0.3), (500, 0.002), (1000, 0.998)])
def test_coverage_monte_carlo(n, p):
    rng = np.random.default_rng(12)
    draws = 4000
    x = rng.binomial(n, p, size=draws)
    limits = clopper_pearson_limits(x, np.full(draws, n), confidence=0.95)
    covered = (limits.ci_low <= p) & (p <= limits.ci_high)
    se = math.sqrt(0.95 * 0.05 / draws)
    # exact intervals are conservative: coverage >= 95 % up to Monte Carlo noise (3 s.e.)
    assert covered.mean() >= 0.95 - 3 * se


def test_zero_trials_is_nan_with_warning():
    with pytest.warns(DegenerateStatisticWarning, match="0 trials"):
        result = clopper_pearson(0, 0)
    assert math.isnan(result.ci_low)
    assert math.isnan(result.estimate)
    assert np.isnan(clopper_pearson_limits([0], [0]).ci_high[0])


def test_result_object():
    result = clopper_pearson(3, 10)
    assert isinstance(result, BinomialCI)
    assert repr(result).startswith("BinomialCI(estimate=0.3")
    assert result.to_frame().loc[0, "n"] == 10


@pytest.mark.parametrize(("call", "match"), [
    (lambda: clopper_pearson(5, 3), "must be <= `n`"),
    (lambda: clopper_pearson(-1, 3), "`successes` must be an integer >= 0"),
    (lambda: clopper_pearson(1.5, 3), "`successes` must be an integer"),
    (lambda: clopper_pearson(1, 3, confidence=1.2), "`confidence` must be strictly between 0 and 1"),
    (lambda: clopper_pearson(1, 3, alternative="upper"), "`alternative` must be one of"),
    (lambda: clopper_pearson_limits([1, 5], [3, 3]), r"0 <= successes <= n; got successes=5"),
    (lambda: clopper_pearson_limits([0.5], [3]), "`successes` must hold whole counts"),
    (lambda: clopper_pearson_limits([1, 2], [3, 3, 3]), "same shape"),
    (lambda: exact_bound_n_needed(1.5, 0.1), r"`rate` must be a proportion in \[0, 1\]"),
    (lambda: exact_bound_n_needed(0.0, 0.1, bound="below"), "`bound` must be 'upper' or 'lower'"),
])
def test_errors_name_the_parameter(call, match):
    with pytest.raises(InvalidArgument, match=match):
        call()


# ------------------------------------------------------------------------------------------ n needed


@pytest.mark.parametrize(("limit", "alpha"), [(0.001, 0.05), (0.002, 0.05), (0.01, 0.01), (0.005, 0.05)])
def test_n_needed_with_zero_failures_is_the_closed_form(limit, alpha):
    n = exact_bound_n_needed(0.0, limit, alpha=alpha)
    assert n == math.ceil(math.log(alpha) / math.log(1 - limit))
    assert clopper_pearson(0, n, confidence=1 - alpha, alternative="less").ci_high <= limit
    assert clopper_pearson(0, n - 1, confidence=1 - alpha, alternative="less").ci_high > limit


def test_published_claims_need_these_n():
    # 0.1 % FPR with no false positive, 99.8 % detection with no miss (alpha = 0.05, one-sided)
    assert exact_bound_n_needed(0.0, 0.001) == 2995
    assert exact_bound_n_needed(1.0, 0.998, bound="lower") == 1497


@pytest.mark.parametrize(("rate", "limit"), [(0.0005, 0.001), (0.01, 0.02), (0.2, 0.3)])
def test_n_needed_is_the_first_n_whose_bound_clears(rate, limit):
    n = exact_bound_n_needed(rate, limit)
    # at n trials with the observed rate carried over (count rate * n) the bound clears; at n - 1 not
    for trials, clears in ((n, True), (n - 1, False)):
        count = rate * trials
        upper = stats.beta.ppf(0.95, count + 1, trials - count)
        assert bool(upper <= limit) is clears
    # and with a whole count near rate * n, the exact interval agrees to within a few per cent of n
    near = clopper_pearson(round(rate * n * 1.05), round(n * 1.05), confidence=0.95, alternative="less")
    assert near.ci_high <= limit * 1.05


def test_n_needed_lower_bound_mirrors_upper():
    assert exact_bound_n_needed(0.995, 0.99, bound="lower") == exact_bound_n_needed(0.005, 0.01)


def test_no_n_on_the_wrong_side():
    assert exact_bound_n_needed(0.002, 0.001) is None
    assert exact_bound_n_needed(0.001, 0.001) is None
    assert exact_bound_n_needed(0.99, 0.998, bound="lower") is None
