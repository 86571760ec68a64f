"""Family A's test: exact for pass/fail scores, betting for bounded scores, valid at every n."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import binom, multinomial

from tsglab.stats import quality_noninferiority
from tsglab.stats._betting_kernels import betting_capital, betting_capital_python
from tsglab.stats.quality_tests import _exact_binary_p


def _pairs(plus: int, minus: int, ties: int) -> tuple[np.ndarray, np.ndarray]:
    gate = np.r_[np.ones(plus), np.zeros(minus), np.ones(ties)]
    base = np.r_[np.zeros(plus), np.ones(minus), np.ones(ties)]
    return gate, base


def _naive_score(u: int, v: int, n: int, m: float) -> float:
    """Tango's statistic, written out from the restricted likelihood without vectorisation."""
    w = n - u - v
    b = u + v - m * (u + 3 * v + 2 * w)
    p = (b + math.sqrt(max(b * b + 8 * n * v * m * (1 - m), 0.0))) / (4 * n)
    var = (2 * p + m - m * m) / n
    diff = (u - v) / n - m
    if var <= 1e-300:
        return math.inf if diff > 0 else (-math.inf if diff < 0 else 0.0)
    return diff / math.sqrt(var)


def _naive_exact_p(u: int, v: int, n: int, m: float, grid: int = 400) -> float:
    """Enumerate every outcome; maximise the tail probability over a fine grid of the nuisance."""
    z_obs = _naive_score(u, v, n, m)
    outcomes = [(a, c) for a in range(n + 1) for c in range(n + 1 - a)]
    region = [(a, c) for a, c in outcomes if _naive_score(a, c, n, m) >= z_obs - 1e-9]
    best = 0.0
    for p_minus in np.linspace(max(0.0, -m), (1 - m) / 2, grid):
        probs = [p_minus + m, p_minus, 1 - 2 * p_minus - m]
        best = max(best, sum(multinomial.pmf([a, c, n - a - c], n, probs) for a, c in region))
    return best


@pytest.mark.parametrize(("u", "v", "n"), [(0, 0, 7), (3, 1, 12), (1, 4, 15), (6, 0, 20), (2, 2, 9)])
def test_exact_binary_p_value_matches_brute_force_enumeration(u, v, n):
    assert _exact_binary_p(u, v, n, -0.05) == pytest.approx(_naive_exact_p(u, v, n, -0.05), abs=2e-4)


def test_identical_pairs_carry_p_at_least_one_minus_margin_to_the_n():
    for n in (2, 7, 30):
        gate, base = _pairs(0, 0, n)
        result = quality_noninferiority(gate, base, margin=0.05)
        assert result.p_value >= 0.95**n - 1e-12
        assert result.p_value < 1
        assert not result.passed
        assert result.decision == "underpowered"
    needed = quality_noninferiority(*_pairs(0, 0, 7), margin=0.05).n_needed
    assert quality_noninferiority(*_pairs(0, 0, needed), margin=0.05).passed
    assert not quality_noninferiority(*_pairs(0, 0, needed - 1), margin=0.05).passed


@pytest.mark.parametrize("n", [6, 12, 25])
def test_exact_test_level_holds_exactly_on_the_null_boundary(n):
    """P(reject) computed exactly (every outcome enumerated) at many nuisance values on H0's boundary."""
    m = -0.05
    reject = []
    for u, v in itertools.product(range(n + 1), repeat=2):
        if u + v <= n and _exact_binary_p(u, v, n, m) < 0.05:
            reject.append((u, v))
    for p_minus in np.linspace(0.05, 0.5, 19):
        probs = [p_minus + m, p_minus, 1 - 2 * p_minus - m]
        size = sum(multinomial.pmf([u, v, n - u - v], n, probs) for u, v in reject)
        assert size <= 0.05 + 1e-9, (n, p_minus, size)


def test_exact_test_rejects_clear_non_inferiority_and_fails_clear_inferiority():
    good = quality_noninferiority(*_pairs(5, 5, 300), margin=0.05)
    assert good.passed
    assert good.method == "exact-binary"
    assert good.ci_low > -0.05
    bad = quality_noninferiority(*_pairs(2, 40, 258), margin=0.05)
    assert not bad.passed
    assert bad.decision == "failed"
    assert bad.ci_low < -0.05
    assert bad.p_fail < 0.05


def test_confidence_bound_is_the_inverted_test():
    rng = np.random.default_rng(3)
    for _ in range(25):
        n = int(rng.integers(20, 200))
        plus, minus = rng.binomial(n, 0.05), rng.binomial(n, 0.06)
        result = quality_noninferiority(*_pairs(plus, minus, n - plus - minus), margin=0.05)
        assert result.passed == (result.ci_low > -0.05)
        assert result.ci_low <= result.estimate


def test_betting_kernel_equals_its_plain_twin():
    y = np.random.default_rng(1).random((5, 40))
    assert np.allclose(betting_capital(y, 0.45, 0.5), betting_capital_python(y, 0.45, 0.5), rtol=1e-12)


# 300 betting tests: 0.7 s compiled, 31 s as plain Python (NUMBA_DISABLE_JIT=1 stage); the kernel's twin test
# above covers the plain code there
@pytest.mark.jit_heavy
def test_betting_test_holds_its_level_at_the_margin_for_bounded_scores():
    rng = np.random.default_rng(7)
    reps, passes = 300, 0
    for seed in range(reps):  # graded scores, true mean difference exactly -margin, heavy ties
        base = np.array([0.25, 0.5, 0.75])[rng.integers(0, 3, 150)]
        step = rng.choice([-1, 0, 1], size=150, p=[0.3, 0.6, 0.1])
        passes += quality_noninferiority(base + 0.25 * step, base, margin=0.05, seed=seed).passed
    assert passes / reps <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / reps)


def test_betting_test_passes_identical_graded_scores_at_large_n_and_names_its_method():
    base = np.tile([0.25, 0.5, 0.75, 1.0], 100)
    result = quality_noninferiority(base, base.copy(), margin=0.05)
    assert result.method == "betting"
    assert result.passed
    assert result.ci_low > -0.05


def test_tost_takes_the_larger_one_sided_p_value():
    gate, base = _pairs(30, 5, 265)  # clearly better: non-inferior but not equivalent
    ni = quality_noninferiority(gate, base, margin=0.05)
    tost = quality_noninferiority(gate, base, margin=0.05, equivalence=True)
    assert ni.passed
    assert not tost.passed
    assert tost.p_value >= ni.p_value
    assert tost.ci_low <= tost.estimate <= tost.ci_high


def test_exact_p_for_a_single_discordant_pair_matches_the_binomial_bound():
    # n = 1, one loss: outcomes with a statistic at least as large are every outcome: p = 1
    assert _exact_binary_p(0, 1, 1, -0.05) == pytest.approx(1.0)
    # n pairs all won: p = sup P(all won) = max over p- of (p- - 0.05)^n on the boundary
    assert _exact_binary_p(5, 0, 5, -0.05) == pytest.approx(binom.pmf(5, 5, 0.475), rel=1e-3)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"gateway": [0.5, 1.2], "baseline": [0.5, 1.0]}, r"scores must be finite and in \[0, 1\]"),
    ({"gateway": [1.0], "baseline": [1.0, 0.0]}, "must be 1-D and paired"),
    ({"gateway": [1.0], "baseline": [1.0], "alpha": 0.7}, "`alpha` must be in"),
    ({"gateway": [1.0], "baseline": [1.0], "margin": -0.1}, "`margin` must be in"),
    ({"gateway": [1.0], "baseline": [1.0], "method": "t"}, "`method` must be one of"),
    ({"gateway": [0.5], "baseline": [1.0], "method": "exact-binary"}, "needs scores of exactly"),
])
def test_errors_name_the_parameter_and_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        quality_noninferiority(**kwargs)


@pytest.mark.parametrize("method", ["exact-binary", "betting"])
def test_the_lower_bound_of_a_test_that_does_not_pass_is_found_not_the_range_edge(method):
    # The bound of a non-passing test used to be the range's edge (-1) whatever the data, because the
    # bisection probed the edge itself, where no test can reject. It must be the inverted test there too.
    rng = np.random.default_rng(1)
    base = (rng.random(50) < 0.25).astype(float)
    gate = base.copy()
    flip = rng.choice(50, 8, replace=False)
    gate[flip] = 1 - gate[flip]
    if method == "betting":
        base = rng.random(50)
        gate = np.clip(base + rng.normal(0, 0.2, 50), 0, 1)
    result = quality_noninferiority(gate, base, margin=0.05, method=method)
    assert not result.passed
    assert -1.0 < result.ci_low < -0.05
    assert result.ci_low <= result.estimate
    just_below = quality_noninferiority(gate, base, margin=-result.ci_low + 0.002, method=method)
    assert just_below.p_value < 0.05  # the test rejects just below the bound: the bound is the inverted test


def test_the_lower_bound_covers_the_true_mean_difference():
    # Monte Carlo coverage of the one-sided 95 % bound the report prints (Family A's ci_low), on paired binary
    # scores with a known mean difference of -0.12: the share of bounds at or below it is >= 95 % up to MC
    # error. (Measured with 1,000 repetitions: 0.959 ± 0.006.)
    rng = np.random.default_rng(5)
    reps, n, truth = 300, 40, 0.6 * 0.7 + 0.4 * 0.05 - 0.6
    covered = 0
    for _ in range(reps):
        base = (rng.random(n) < 0.6).astype(float)
        gate = (rng.random(n) < np.where(base == 1, 0.7, 0.05)).astype(float)
        covered += quality_noninferiority(gate, base, margin=0.05).ci_low <= truth
    rate = covered / reps
    assert rate >= 0.95 - 2 * math.sqrt(0.95 * 0.05 / reps)
