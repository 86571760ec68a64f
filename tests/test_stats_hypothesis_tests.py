"""Tests of tsglab.stats.hypothesis_tests: references (scipy, statsmodels), naive twins, properties,
small fixed-seed Monte Carlo checks, and every user-facing error message."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from tsglab.errors import DegenerateStatisticWarning
from tsglab.stats.hypothesis_tests import (
    BinomialGate,
    Equivalence,
    MultipleTestResult,
    NonInferiority,
    benjamini_hochberg,
    benjamini_yekutieli,
    binomial_gate,
    paired_noninferiority,
    paired_tost,
    sample_size_binomial_gate,
    sample_size_paired,
)


def _correlated_pairs(rng: np.random.Generator, n: int, *, shift: float, noise: float = 0.1):
    """Pairs sharing a large per-prompt effect (sd 1) plus small arm noise: strongly correlated arms."""
    prompt_effect = rng.normal(size=n)
    baseline = prompt_effect + rng.normal(0.0, noise, size=n)
    gateway = prompt_effect + shift + rng.normal(0.0, noise, size=n)
    return gateway, baseline


# ---------------------------------------------------------------------------------------------- Family A


def test_noninferiority_t_matches_scipy_paired_t():
    rng = np.random.default_rng(3)
    gateway, baseline = _correlated_pairs(rng, 60, shift=0.01)
    margin = 0.03
    result = paired_noninferiority(gateway, baseline, margin=margin, method="t")
    reference = stats.ttest_rel(gateway + margin, baseline, alternative="greater")
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    d = gateway - baseline
    se = d.std(ddof=1) / math.sqrt(d.size)
    assert result.ci_low == pytest.approx(d.mean() - stats.t.ppf(0.95, d.size - 1) * se, rel=1e-12)
    assert result.estimate == pytest.approx(d.mean())
    assert result.passed == (result.p_value < 0.05)
    assert result.passed == (result.ci_low > -margin)


def _naive_bootstrap_p(differences, margin, n_resamples, seed):
    """Readable twin: shift the differences so H0 holds at the boundary, resample, count."""
    rng = np.random.default_rng(seed)
    observed = differences.mean()
    null_differences = differences - observed - margin  # mean exactly -margin
    count = 0
    for _ in range(n_resamples):
        resample = null_differences[rng.integers(0, differences.size, size=differences.size)]
        if resample.mean() >= observed:
            count += 1
    return count / n_resamples


def test_noninferiority_bootstrap_matches_naive_twin_and_is_seeded():
    rng = np.random.default_rng(4)
    gateway, baseline = _correlated_pairs(rng, 40, shift=0.0)
    result = paired_noninferiority(gateway, baseline, margin=0.03, n_resamples=2000, seed=11)
    naive = _naive_bootstrap_p(gateway - baseline, 0.03, 2000, 11)
    assert result.p_value == pytest.approx(naive, abs=1.5 / 2000)  # one resample may flip on rounding
    again = paired_noninferiority(gateway, baseline, margin=0.03, n_resamples=2000, seed=11)
    assert again == result
    t_version = paired_noninferiority(gateway, baseline, margin=0.03, method="t")
    assert result.p_value == pytest.approx(t_version.p_value, abs=0.02)
    assert result.ci_low == pytest.approx(t_version.ci_low, abs=0.005)
    assert (result.n, result.n_resamples, result.seed, result.method) == (40, 2000, 11, "bootstrap")


@pytest.mark.parametrize("method", ["bootstrap", "t"])
def test_noninferiority_type_one_error_at_margin(method):
    # True mean d = -margin exactly (H0 boundary): rejection rate must stay near alpha.
    rng = np.random.default_rng(2024)
    reps, alpha, margin = 400, 0.05, 0.2
    rejections = 0
    for rep in range(reps):
        baseline = rng.normal(size=40)
        gateway = baseline - margin + rng.normal(size=40)
        result = paired_noninferiority(gateway, baseline, margin=margin, method=method, n_resamples=400, seed=rep)
        rejections += result.passed
    mc_sd = math.sqrt(alpha * (1 - alpha) / reps)
    assert rejections / reps <= alpha + 3 * mc_sd


def test_unpaired_analysis_of_paired_data_loses_power():
    # Strongly correlated arms: the paired tests nearly always show non-inferiority, an unpaired
    # analysis of the same data (or a bootstrap on broken pairs) almost never does.
    rng = np.random.default_rng(7)
    margin, reps = 0.1, 100
    paired_t = paired_boot = unpaired = shuffled = 0
    for rep in range(reps):
        gateway, baseline = _correlated_pairs(rng, 50, shift=0.0)
        paired_t += paired_noninferiority(gateway, baseline, margin=margin, method="t").passed
        paired_boot += paired_noninferiority(gateway, baseline, margin=margin, n_resamples=300, seed=rep).passed
        unpaired += stats.ttest_ind(gateway + margin, baseline, alternative="greater").pvalue < 0.05
        broken = rng.permutation(baseline)
        shuffled += paired_noninferiority(gateway, broken, margin=margin, n_resamples=300, seed=rep).passed
    assert paired_t / reps >= 0.95
    assert paired_boot / reps >= 0.95
    assert unpaired / reps <= 0.30
    assert shuffled / reps <= 0.30


def test_underpowered_flag_and_note():
    rng = np.random.default_rng(5)
    d = rng.normal(0.0, 1.0, size=10)
    result = paired_noninferiority(d, np.zeros(10), margin=0.1, method="t")
    sd = d.std(ddof=1)
    assert result.underpowered == (0.1 * math.sqrt(10) / sd < stats.t.ppf(0.95, 9))
    assert result.underpowered
    assert "Underpowered" in result.note
    assert "sample_size_paired" in result.note
    big = paired_noninferiority(d, np.zeros(10), margin=5.0, method="t")
    assert not big.underpowered
    assert big.note == ""


@pytest.mark.parametrize(
    ("gateway", "baseline", "reason"),
    [([1.0], [0.5], "n = 1"), ([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], "sd = 0"), ([], [], "n = 0")],
)
def test_noninferiority_degenerate_returns_nan_with_warning(gateway, baseline, reason):
    with pytest.warns(DegenerateStatisticWarning, match="undefined"):
        result = paired_noninferiority(gateway, baseline, margin=0.1)
    assert math.isnan(result.p_value)
    assert math.isnan(result.ci_low)
    assert not result.passed
    assert reason in result.note
    with pytest.warns(DegenerateStatisticWarning):
        tost = paired_tost(gateway, baseline, low=-0.1, high=0.1, method="t")
    assert math.isnan(tost.p_value)
    assert not tost.passed


def test_tost_t_matches_statsmodels():
    rng = np.random.default_rng(8)
    for _ in range(5):
        gateway, baseline = _correlated_pairs(rng, 30, shift=rng.normal(0, 0.03))
        low, high = -0.05, 0.04
        result = paired_tost(gateway, baseline, low=low, high=high, method="t")
        p, (_, p_low, _), (_, p_high, _) = ttost_paired(gateway, baseline, low, high)
        assert result.p_value == pytest.approx(p, abs=1e-10)
        assert result.p_low == pytest.approx(p_low, abs=1e-10)
        assert result.p_high == pytest.approx(p_high, abs=1e-10)


@pytest.mark.parametrize("method", ["bootstrap", "t"])
def test_tost_returns_max_not_min(method):
    rng = np.random.default_rng(9)
    gateway, baseline = _correlated_pairs(rng, 40, shift=0.03)  # close to `high`, far from `low`
    result = paired_tost(gateway, baseline, low=-0.2, high=0.05, method=method, n_resamples=2000)
    assert result.p_low < result.p_high
    assert result.p_value == max(result.p_low, result.p_high)
    assert result.p_value != min(result.p_low, result.p_high)
    assert not result.passed  # the minimum would have passed it
    assert result.p_low < 0.05


def test_tost_interval_duality_t():
    rng = np.random.default_rng(10)
    gateway, baseline = _correlated_pairs(rng, 80, shift=0.0)
    result = paired_tost(gateway, baseline, low=-0.05, high=0.05, method="t")
    assert result.passed == (result.low < result.ci_low and result.ci_high < result.high)
    assert result.passed


# ---------------------------------------------------------------------------------------------- BH / BY


def _naive_step_up(p_values, q, *, dependence_factor=1.0):
    """Readable twin of the step-up rule; NaN entries excluded from m."""
    present = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(present)
    ranked = sorted(present, key=lambda i: p_values[i])
    k = 0
    for rank, index in enumerate(ranked, start=1):
        if p_values[index] <= (rank / m) * q / dependence_factor:
            k = rank
    rejected = [False] * len(p_values)
    for index in ranked[:k]:
        rejected[index] = True
    adjusted = [math.nan] * len(p_values)
    running = 1.0
    for rank in range(m, 0, -1):
        index = ranked[rank - 1]
        running = min(running, dependence_factor * m * p_values[index] / rank)
        adjusted[index] = running
    return np.array(adjusted), np.array(rejected)


@pytest.mark.parametrize(("ours", "theirs"), [(benjamini_hochberg, "fdr_bh"), (benjamini_yekutieli, "fdr_by")])
def test_fdr_matches_statsmodels(ours, theirs):
    rng = np.random.default_rng(12)
    for size in (1, 2, 5, 17, 100):
        p = np.concatenate([rng.uniform(0, 0.02, size=size // 3), rng.uniform(size=size - size // 3)])
        for q in (0.05, 0.10, 0.25):
            result = ours(p, q=q)
            rejected, adjusted, _, _ = multipletests(p, alpha=q, method=theirs)
            np.testing.assert_allclose(result.adjusted, adjusted, rtol=0, atol=1e-12)
            np.testing.assert_array_equal(result.rejected, rejected)


p_lists = st.lists(st.one_of(st.floats(0.0, 1.0), st.just(math.nan)), min_size=1, max_size=30).filter(
    lambda ps: any(not math.isnan(p) for p in ps)
)


@settings(max_examples=150, deadline=None)
@given(p_values=p_lists, q=st.sampled_from([0.01, 0.05, 0.1, 0.2]), method=st.sampled_from(["bh", "by"]))
def test_fdr_properties_and_naive_twin(p_values, q, method):
    function = benjamini_hochberg if method == "bh" else benjamini_yekutieli
    result = function(p_values, q=q)
    raw = np.array(p_values)
    nan = np.isnan(raw)
    m = int((~nan).sum())
    assert result.m == m
    assert np.array_equal(np.isnan(result.adjusted), nan)
    assert not result.rejected[nan].any()
    present = ~nan
    assert np.all(result.adjusted[present] >= raw[present])
    assert np.all((result.adjusted[present] >= 0.0) & (result.adjusted[present] <= 1.0))
    order = np.argsort(raw[present], kind="stable")
    assert np.all(np.diff(result.adjusted[present][order]) >= 0)  # monotone in the raw p-values
    factor = sum(1.0 / k for k in range(1, m + 1)) if method == "by" else 1.0
    sorted_p = np.sort(raw[present])
    passing = [sorted_p[i - 1] for i in range(1, m + 1) if sorted_p[i - 1] <= (i / m) * q / factor]
    expected = present & (raw <= max(passing)) if passing else np.zeros_like(present)
    np.testing.assert_array_equal(result.rejected, expected)
    naive_adjusted, naive_rejected = _naive_step_up(list(p_values), q, dependence_factor=factor)
    np.testing.assert_allclose(result.adjusted, naive_adjusted, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(result.rejected, naive_rejected)


def test_fdr_is_not_a_stub_and_has_a_frame():
    result = benjamini_hochberg([0.01, 0.04, math.nan, 0.03, 0.5], q=0.05)
    np.testing.assert_allclose(result.adjusted[[0, 1, 3, 4]], [0.04, 4 * 0.04 / 3, 4 * 0.04 / 3, 0.5])
    assert result.rejected.tolist() == [True, False, False, False, False]
    assert result.m == 4
    frame = result.to_frame()
    assert list(frame.columns) == ["p_value", "adjusted", "rejected", "q", "method", "m"]
    assert len(frame) == 5
    np.testing.assert_array_equal(frame["p_value"], result.p_value)
    assert repr(result) == "MultipleTestResult(method='bh', q=0.05, m=4, n_rejected=1)"
    with pytest.raises(ValueError, match="read-only"):
        result.adjusted[0] = 0.0
    by = benjamini_yekutieli([0.01, 0.04, 0.03, 0.5], q=0.05)
    assert np.all(by.adjusted >= benjamini_hochberg([0.01, 0.04, 0.03, 0.5]).adjusted)


def test_fdr_empty_family_warns():
    with pytest.warns(DegenerateStatisticWarning, match="No p-values"):
        result = benjamini_hochberg([math.nan, math.nan])
    assert result.m == 0
    assert np.isnan(result.adjusted).all()
    assert not result.rejected.any()


# ---------------------------------------------------------------------------------------------- Family C


@pytest.mark.parametrize(("failures", "n"), [(0, 200), (0, 598), (0, 597), (1, 1200), (3, 400), (10, 10), (2, 5000)])
def test_binomial_gate_matches_scipy_binomtest(failures, n):
    result = binomial_gate(failures, n, max_rate=0.005, alpha=0.05)
    reference = stats.binomtest(failures, n, p=0.005, alternative="less")
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert result.upper_bound == pytest.approx(reference.proportion_ci(0.95, method="exact").high, rel=1e-10)
    assert result.passed_test == (result.p_value < 0.05) == (result.upper_bound < 0.005)
    assert result.passed_point == (failures / n <= 0.005)


def test_binomial_gate_min_n_and_note():
    small = binomial_gate(0, 200)
    assert small.min_n_to_pass == 598 == math.ceil(math.log(0.05) / math.log(1 - 0.005))
    assert small.underpowered
    assert small.passed_point
    assert not small.passed_test
    assert small.note == (
        "n = 200 is too small: even 0 failures cannot show a rate below 0.5 % at α = 0.05; n ≥ 598 is needed."
    )
    assert binomial_gate(0, 598).passed_test
    assert not binomial_gate(0, 597).passed_test
    assert not binomial_gate(0, 598).underpowered
    assert binomial_gate(0, 598).note == ""
    assert isinstance(small, BinomialGate)
    assert small.to_frame().shape == (1, 12)
    assert "BinomialGate(failures=0, n=200" in repr(small)


def test_binomial_gate_zero_n_warns():
    with pytest.warns(DegenerateStatisticWarning, match="0 requests"):
        result = binomial_gate(0, 0)
    assert math.isnan(result.rate)
    assert not result.passed_test
    assert result.underpowered


# ---------------------------------------------------------------------------------------------- sample sizes


def test_sample_size_paired_monotone_and_exact():
    sizes_by_margin = [sample_size_paired(1.0, margin=m) for m in (0.2, 0.3, 0.5, 1.0)]
    assert sizes_by_margin == sorted(sizes_by_margin, reverse=True)
    assert len(set(sizes_by_margin)) == 4
    sizes_by_power = [sample_size_paired(1.0, margin=0.3, power=p) for p in (0.5, 0.7, 0.8, 0.9)]
    assert sizes_by_power == sorted(sizes_by_power)
    assert len(set(sizes_by_power)) == 4
    n = sample_size_paired(1.0, margin=0.5)

    def power(k):
        return stats.nct.sf(stats.t.ppf(0.95, k - 1), k - 1, 0.5 * math.sqrt(k))

    assert power(n) >= 0.8 > power(n - 1)
    assert sample_size_paired(1.0, margin=0.3, true_diff=0.1) < sample_size_paired(1.0, margin=0.3)


def test_sample_size_paired_matches_simulation():
    n = sample_size_paired(1.0, margin=0.5, power=0.8)
    rng = np.random.default_rng(77)
    reps = 2000
    d = rng.normal(0.0, 1.0, size=(reps, n))
    t_stat = (d.mean(axis=1) + 0.5) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    simulated = float(np.mean(t_stat > stats.t.ppf(0.95, n - 1)))
    assert simulated == pytest.approx(0.8, abs=3 * math.sqrt(0.8 * 0.2 / reps) + 0.02)  # +0.02: n is rounded up


def test_sample_size_binomial_gate():
    assert sample_size_binomial_gate(0.005) == binomial_gate(0, 10).min_n_to_pass == 598
    n = sample_size_binomial_gate(0.005, expected_rate=0.001, power=0.8)
    critical = int(stats.binom.ppf(0.05, n, 0.005)) - 1
    while stats.binom.cdf(critical + 1, n, 0.005) < 0.05:
        critical += 1
    assert stats.binom.cdf(critical, n, 0.001) >= 0.8
    assert sample_size_binomial_gate(0.005, expected_rate=0.001, power=0.9) >= n
    assert sample_size_binomial_gate(0.005, expected_rate=0.002, power=0.8) > n
    # simulation: at that n and the expected rate, the gate's test passes about 80 % of the time
    rng = np.random.default_rng(5)
    failures = rng.binomial(n, 0.001, size=2000)
    rate = np.mean(stats.binom.cdf(failures, n, 0.005) < 0.05)
    assert rate >= 0.8 - 3 * math.sqrt(0.16 / 2000)


# ---------------------------------------------------------------------------------------------- results


def test_result_objects_frame_and_repr():
    rng = np.random.default_rng(1)
    gateway, baseline = _correlated_pairs(rng, 30, shift=0.0)
    ni = paired_noninferiority(gateway, baseline, margin=0.05, n_resamples=200)
    assert isinstance(ni, NonInferiority)
    assert ni.to_frame().shape == (1, 13)
    assert repr(ni).startswith("NonInferiority(estimate=")
    assert "method='bootstrap'" in repr(ni)
    eq = paired_tost(gateway, baseline, low=-0.05, high=0.05, n_resamples=200)
    assert isinstance(eq, Equivalence)
    assert eq.to_frame().shape == (1, 16)
    assert isinstance(benjamini_hochberg([0.1]), MultipleTestResult)
    with pytest.raises(AttributeError):
        ni.p_value = 0.0  # frozen


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(gateway=[1.0, 2.0], baseline=[1.0]), r"`gateway` and `baseline` must be paired .* lengths 2 and 1"),
        (dict(gateway=[1.0, math.nan], baseline=[1.0, 2.0]), r"`gateway` contains 1 NaN"),
        (dict(gateway=[[1.0]], baseline=[[1.0]]), r"`gateway` must be 1-D"),
        (dict(margin=-0.1), r"`margin` must be >= 0; got -0.1"),
        (dict(margin=math.inf), r"`margin` must be a finite number; got inf"),
        (dict(margin="0.1"), r"`margin` must be a finite number; got '0.1'"),
        (dict(alpha=1.5), r"`alpha` must be strictly between 0 and 1; got 1.5\. Use e\.g\. alpha=0\.05"),
        (dict(alpha=True), r"`alpha` must be a number strictly between 0 and 1; got True"),
        (dict(method="percentile"), r"`method` must be one of \('bootstrap', 't'\); got 'percentile'"),
        (dict(n_resamples=0), r"`n_resamples` must be an integer >= 1; got 0\. Use e\.g\. n_resamples=5000"),
        (dict(n_resamples=10.0), r"`n_resamples` must be an integer >= 1; got 10\.0"),
        (dict(seed=-1), r"`seed` must be an integer >= 0; got -1\. Pass a fixed seed"),
        (dict(seed=None), r"`seed` must be an integer >= 0; got None"),
    ],
)
def test_noninferiority_errors(kwargs, match):
    arguments = dict(gateway=[1.0, 2.0, 3.0], baseline=[1.0, 2.5, 2.0], margin=0.1)
    arguments.update(kwargs)
    gateway, baseline = arguments.pop("gateway"), arguments.pop("baseline")
    with pytest.raises(ValueError, match=match):
        paired_noninferiority(gateway, baseline, **arguments)


def test_tost_errors():
    with pytest.raises(ValueError, match=r"`low` must be below `high`; got low=0.1, high=-0.1"):
        paired_tost([1.0, 2.0], [1.0, 2.5], low=0.1, high=-0.1)
    with pytest.raises(ValueError, match=r"`high` must be a finite number; got nan"):
        paired_tost([1.0, 2.0], [1.0, 2.5], low=-0.1, high=math.nan)


@pytest.mark.parametrize(
    ("p_values", "q", "match"),
    [
        ([0.1, 1.2], 0.1, r"`p_values` must lie in \[0, 1\] .*got 1\.2\. Pass p-values, not test statistics"),
        ([-0.1], 0.1, r"`p_values` must lie in \[0, 1\] .*got -0\.1"),
        ([[0.1]], 0.1, r"`p_values` must be 1-D; got an array of shape \(1, 1\)"),
        (["a"], 0.1, r"`p_values` must be a 1-D array of numbers in \[0, 1\]; got list"),
        ([0.1], 0.0, r"`q` must be strictly between 0 and 1; got 0\.0\. Use e\.g\. q=0\.10"),
    ],
)
def test_fdr_errors(p_values, q, match):
    with pytest.raises(ValueError, match=match):
        benjamini_hochberg(p_values, q=q)
    with pytest.raises(ValueError, match=match):
        benjamini_yekutieli(p_values, q=q)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((5, 3), {}, r"`failures` must be <= `n`; got failures=5, n=3"),
        ((-1, 3), {}, r"`failures` must be an integer >= 0; got -1"),
        ((0, 2.5), {}, r"`n` must be an integer >= 0; got 2\.5\. Pass the number of JSON-task requests"),
        ((0, 100), {"max_rate": 0.0}, r"`max_rate` must be strictly between 0 and 1; got 0\.0\. Use e\.g\. max_rate"),
        ((0, 100), {"alpha": 0.0}, r"`alpha` must be strictly between 0 and 1; got 0\.0"),
    ],
)
def test_binomial_gate_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        binomial_gate(*args, **kwargs)


def test_sample_size_errors():
    with pytest.raises(ValueError, match=r"`sd` must be > 0; got 0\.0\. Use the sd of the paired differences"):
        sample_size_paired(0.0, margin=0.1)
    with pytest.raises(ValueError, match=r"`true_diff \+ margin` must be > 0; got true_diff=-0\.2, margin=0\.1"):
        sample_size_paired(1.0, margin=0.1, true_diff=-0.2)
    with pytest.raises(ValueError, match=r"`power` must be strictly between 0 and 1; got 1\.0"):
        sample_size_paired(1.0, margin=0.1, power=1.0)
    with pytest.raises(ValueError, match=r"The required n \(about .*\) exceeds 1e\+08; increase `margin`"):
        sample_size_paired(1.0, margin=1e-6)
    with pytest.raises(ValueError, match=r"`expected_rate` must be below `max_rate`; got expected_rate=0\.01"):
        sample_size_binomial_gate(0.005, expected_rate=0.01)
    with pytest.raises(ValueError, match=r"`expected_rate` must be >= 0; got -0\.1"):
        sample_size_binomial_gate(0.005, expected_rate=-0.1)
