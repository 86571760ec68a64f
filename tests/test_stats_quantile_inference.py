"""Censored Harrell–Davis, its CI, and the paired quantile-ratio test of Family B."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tsglab.stats import (
    censored_harrell_davis,
    harrell_davis,
    km_quantile,
    quantile_ci,
    quantile_ratio_test,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _panel import _correlated_normals, latency_pair


def _naive_km_hd(values, censored, q, grid=200_001):
    """∫ F_KM^{-1}(u) Beta(u; q(n+1), (1-q)(n+1)) du on a fine grid, KM by lifelines."""
    from lifelines import KaplanMeierFitter

    n = len(values)
    km = KaplanMeierFitter().fit(values, event_observed=~np.asarray(censored))
    times = km.survival_function_.index.to_numpy()
    cdf = 1.0 - km.survival_function_.iloc[:, 0].to_numpy()
    u = (np.arange(grid) + 0.5) / grid
    pos = np.searchsorted(cdf, u - 1e-12, side="left")
    inverse = np.where(pos < len(times), times[np.minimum(pos, len(times) - 1)], np.max(values))
    weights = stats.beta.pdf(u, q * (n + 1), (1 - q) * (n + 1))
    return float(np.sum(inverse * weights) / np.sum(weights))


def test_without_censoring_it_is_harrell_davis():
    rng = np.random.default_rng(1)
    for n in (5, 50, 999):
        x = rng.lognormal(size=n)
        for q in (0.5, 0.95):
            assert censored_harrell_davis(x, q) == pytest.approx(harrell_davis(x, q), rel=1e-12)


def test_censoring_above_every_event_equals_hd_with_censored_values_kept():
    rng = np.random.default_rng(2)
    x = rng.lognormal(size=200)
    x[:4] = 50.0  # four timeouts at the cap, above every answered latency
    flags = np.zeros(200, bool)
    flags[:4] = True
    assert censored_harrell_davis(x, 0.95, censored=flags) == pytest.approx(harrell_davis(x, 0.95), rel=1e-12)


def test_interleaved_censoring_matches_a_naive_km_integration():
    rng = np.random.default_rng(3)
    x = rng.lognormal(size=120)
    flags = rng.random(120) < 0.04
    x[flags] *= 0.7  # censoring times below some events: KM redistributes their mass
    got = censored_harrell_davis(x, 0.95, censored=flags)
    assert got == pytest.approx(_naive_km_hd(x, flags, 0.95), rel=2e-3)


def test_one_timeout_never_lowers_the_p95_where_the_km_switch_did():
    """The issue's trap: HD → KM on the first timeout dropped the P95 in 55 % of samples."""
    rng = np.random.default_rng(4)
    drops_km = drops_ours = 0
    for _ in range(200):
        x = rng.lognormal(6.5, 0.5, 200)
        before = censored_harrell_davis(x, 0.95)
        timed_out = x.copy()
        i = rng.integers(200)
        timed_out[i] = 30_000.0  # that request ran into the 30 s timeout
        flags = np.zeros(200, bool)
        flags[i] = True
        after = censored_harrell_davis(timed_out, 0.95, censored=flags)
        drops_ours += after < before - 1e-9
        assert abs(after - before) / before < 0.5
        drops_km += km_quantile(timed_out, flags, 0.95).estimate < before - 1e-9
    assert drops_ours == 0
    assert drops_km > 50


def test_quantile_ci_covers_on_iid_data_and_says_its_method():
    rng = np.random.default_rng(5)
    truth = math.exp(0.5 * stats.norm.ppf(0.95))
    covered = 0
    for seed in range(150):
        result = quantile_ci(np.exp(0.5 * rng.standard_normal(300)), 0.95, n_resamples=400, seed=seed)
        covered += result.ci_low <= truth <= result.ci_high
    assert 0.89 <= covered / 150 <= 0.995
    assert "percentile bootstrap" in result.method
    assert result.resampling.startswith("iid")


def test_quantile_ci_uses_the_woodruff_interval_on_serially_correlated_data():
    latent, _ = _correlated_normals(np.random.default_rng(6), 400, 0.6, ar_phi=0.7)
    result = quantile_ci(np.exp(latent), 0.95, n_resamples=300)
    assert "Woodruff" in result.method
    assert result.resampling.startswith("stationary")
    assert result.ci_low < result.estimate < result.ci_high


def test_quantile_ci_is_not_identifiable_above_five_percent_censored():
    x = np.random.default_rng(7).lognormal(size=100)
    flags = np.zeros(100, bool)
    flags[:8] = True
    x[:8] = 99.0
    result = quantile_ci(x, 0.95, censored=flags, n_resamples=200)
    assert not result.identifiable
    assert math.isnan(result.estimate)
    assert result.lower_bound > 0
    assert "not identifiable" in result.note


def test_ratio_test_passes_equal_arms_fails_a_slower_gateway():
    gate, base = latency_pair("lognormal", 1500, 1.0, np.random.default_rng(8))
    equal = quantile_ratio_test(gate, base, n_resamples=500)
    assert equal.passed
    assert equal.decision == "passed"
    assert equal.ratio_ci_high < equal.bound
    slow = quantile_ratio_test(gate * 1.5, base, n_resamples=500)
    assert not slow.passed
    assert slow.p_fail < 0.05
    assert slow.ratio_ci_high > slow.bound


def test_ratio_test_p_value_and_bound_agree():
    rng = np.random.default_rng(9)
    for ratio in (0.95, 1.0, 1.05, 1.1, 1.2):
        gate, base = latency_pair("routing-mixture", 400, ratio, rng)
        result = quantile_ratio_test(gate, base, n_resamples=400)
        assert result.passed == (result.p_value < 0.05)
        if result.passed:
            assert result.ratio_ci_high < result.bound


def test_ratio_test_is_paired_the_shared_prompt_effect_narrows_the_bound():
    gate, base = latency_pair("lognormal", 800, 1.0, np.random.default_rng(10))
    paired = quantile_ratio_test(gate, base, n_resamples=400)
    shuffled = quantile_ratio_test(np.random.default_rng(11).permutation(gate), base, n_resamples=400)
    assert paired.ratio_ci_high < shuffled.ratio_ci_high


def test_ratio_test_refuses_what_it_cannot_decide():
    gate, base = latency_pair("lognormal", 150, 1.0, np.random.default_rng(12))
    small = quantile_ratio_test(gate, base)
    assert small.decision == "underpowered"
    assert not small.passed
    assert "needs n >= 200" in small.note
    gate, base = latency_pair("lognormal", 400, 1.0, np.random.default_rng(13))
    failing = np.zeros(400, bool)
    failing[::10] = True  # the baseline fails 10 % of its requests
    blind = quantile_ratio_test(gate, base, baseline_censored=failing)
    assert blind.decision == "not identifiable"
    assert not blind.passed
    latent_b, latent_g = _correlated_normals(np.random.default_rng(14), 300, 0.6, ar_phi=0.9)
    serial = quantile_ratio_test(np.exp(latent_g), np.exp(latent_b))
    assert serial.decision == "underpowered"
    assert "blocks" in serial.note
    zeros = quantile_ratio_test(np.zeros(300), np.zeros(300), n_resamples=200)  # 0 ms: log ratio undefined
    assert zeros.decision == "not identifiable"
    assert not zeros.passed


@pytest.mark.parametrize(("call", "match"), [
    (lambda: censored_harrell_davis([1.0, np.nan]), "finite latencies >= 0"),
    (lambda: censored_harrell_davis([1.0, -2.0]), "position 1 is -2.0"),
    (lambda: censored_harrell_davis([1.0], 1.5), "strictly between 0 and 1"),
    (lambda: quantile_ratio_test([1.0, 2.0], [1.0]), "must be paired"),
    (lambda: quantile_ci([1.0, 2.0], censored=[True]), "`censored` must have the shape"),
    (lambda: quantile_ci([1.0, 2.0, 3.0], resampling="jackknife"), "`resampling` must be 'auto'"),
])
def test_errors_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_resampled_window_kernel_equals_sorting_and_its_plain_twin():
    from tsglab.stats._quantile_kernels import resampled_top_window
    from tsglab.stats.quantile_inference import _hd_weights

    rng = np.random.default_rng(15)
    x = np.round(rng.lognormal(size=300), 1)  # ties included
    index = rng.integers(0, 300, size=(40, 300))
    lo, weights = _hd_weights(300, 0.95)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(300, dtype=np.int64)
    ranks[order] = np.arange(300)
    jit, plain = np.empty(40), np.empty(40)
    resampled_top_window(ranks, x[order], index, lo, weights, jit)
    # with NUMBA_DISABLE_JIT=1 (CI stage 5) the kernel is the plain function itself and has no .py_func
    getattr(resampled_top_window, "py_func", resampled_top_window)(ranks, x[order], index, lo, weights, plain)
    by_sorting = np.sort(x[index], axis=1)[:, lo:] @ weights
    assert np.allclose(jit, by_sorting, rtol=1e-12)
    assert np.allclose(plain, by_sorting, rtol=1e-12)
