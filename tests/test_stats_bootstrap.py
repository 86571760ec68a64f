"""Bootstrap CIs for quantiles, block lengths and the serial-correlation check.

Monte-Carlo comparisons use fixed seeds; KS tests compare two samples of draws of the same
statistic and must not reject at 1 %.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from tsglab.errors import DegenerateStatisticWarning
from tsglab.stats import harrell_davis
from tsglab.stats._bootstrap_kernels import resample_window_stats, resample_window_stats_python
from tsglab.stats.blocklength import optimal_block_length, serial_correlation_check
from tsglab.stats.bootstrap import (
    _hd_weights,
    _hd_window,
    _iid_order_statistic_draws,
    _jackknife_harrell_davis,
    _jackknife_type1,
    _type1_rank,
    bootstrap_quantile_ci,
    choose_bootstrap,
)


def ar1(n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=n)
    out = np.empty(n)
    out[0] = noise[0]
    for t in range(1, n):
        out[t] = phi * out[t - 1] + noise[t]
    return out


def inverted_cdf_quantile(sample, axis=-1):
    return np.quantile(sample, 0.95, method="inverted_cdf", axis=axis)


# -- kernel vs twin -------------------------------------------------------------------------------


def _kernel_inputs(n, seed):
    rng = np.random.default_rng(seed)
    x = np.round(rng.lognormal(size=n), 1)  # ties on purpose
    order = np.argsort(x, kind="stable")
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)
    return rng, x[order], ranks


@pytest.mark.parametrize("lo_frac", [0.05, 0.5, 0.95])
@pytest.mark.parametrize("window", [1, 7])
def test_kernel_matches_plain_twin(lo_frac, window):
    n = 60
    rng, sorted_x, ranks = _kernel_inputs(n, seed=3)
    lo = min(int(lo_frac * n), n - window)
    weight_cumsum = np.concatenate(([0.0], np.cumsum(rng.dirichlet(np.ones(window)))))
    starts = rng.integers(0, n, size=400)
    lengths = rng.geometric(0.2, size=400)
    fast, slow = np.full(50, np.nan), np.full(50, np.nan)
    done_fast = resample_window_stats(ranks, sorted_x, starts, lengths, lo, weight_cumsum, fast)
    done_slow = resample_window_stats_python(ranks, sorted_x, starts, lengths, lo, weight_cumsum, slow)
    assert 0 < done_fast == done_slow < 50  # the pool runs out part-way: both stop at the same resample
    np.testing.assert_allclose(fast[:done_fast], slow[:done_slow], rtol=1e-13)


def test_kernel_naive_single_resample():
    # one resample built by hand: blocks [5, 6, 7] then wrap-around [n-1, 0]
    x = np.array([3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0, 5.5, 3.5])
    order = np.argsort(x, kind="stable")
    ranks = np.empty(10, dtype=np.int64)
    ranks[order] = np.arange(10)
    starts = np.array([5, 9, 2, 0], dtype=np.int64)
    lengths = np.array([3, 2, 4, 5], dtype=np.int64)
    resample = np.sort(x[[5, 6, 7, 9, 0, 2, 3, 4, 5, 0]])
    out = np.empty(1)
    assert resample_window_stats(ranks, x[order], starts, lengths, 8, np.array([0.0, 1.0]), out) == 1
    assert out[0] == resample[8]


# -- estimators and their pieces -----------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 20, 100, 1000, 12345])
@pytest.mark.parametrize("q", [0.01, 0.05, 0.5, 0.9, 0.95, 0.99, 0.999])
def test_type1_rank_matches_numpy(n, q):
    x = np.arange(10.0, 10.0 + n)
    k = _type1_rank(n, q)
    assert x[k - 1] == np.quantile(x, q, method="inverted_cdf")
    assert abs(k - q * n) < 1 + 1e-9


@pytest.mark.parametrize("n", [2, 3, 5, 11, 20, 57])
@pytest.mark.parametrize("q", [0.05, 0.5, 0.9, 0.95, 0.99])
def test_jackknife_type1_fast_vs_brute(n, q):
    rng = np.random.default_rng(n)
    for x in (rng.normal(size=n), rng.integers(0, 4, size=n).astype(float)):
        brute = np.array([np.quantile(np.delete(x, i), q, method="inverted_cdf") for i in range(n)])
        np.testing.assert_array_equal(_jackknife_type1(x, q), brute)


@pytest.mark.parametrize("n", [3, 8, 40])
@pytest.mark.parametrize("q", [0.1, 0.5, 0.95])
def test_jackknife_harrell_davis_fast_vs_brute(n, q):
    x = np.random.default_rng(n).lognormal(size=n)
    sorted_x = np.sort(x)
    brute = np.array([harrell_davis(np.delete(sorted_x, i), q) for i in range(n)])
    np.testing.assert_allclose(_jackknife_harrell_davis(x, q), brute, rtol=1e-12)


def test_hd_window_keeps_the_estimate():
    x = np.sort(np.random.default_rng(5).lognormal(size=3000))
    lo, weight_cumsum = _hd_window(x.size, 0.95)
    assert lo > 0
    assert lo + weight_cumsum.size - 1 < x.size  # the window is a strict part
    windowed = np.diff(weight_cumsum) @ x[lo : lo + weight_cumsum.size - 1]
    assert windowed == pytest.approx(harrell_davis(x, 0.95), rel=1e-13)
    assert _hd_weights(x.size, 0.95).sum() == pytest.approx(1.0, rel=1e-13)


def test_estimates_match_reference_estimators():
    x = np.random.default_rng(2).lognormal(size=301)
    os_ci = bootstrap_quantile_ci(x, 0.9, n_resamples=200)
    hd_ci = bootstrap_quantile_ci(x, 0.9, n_resamples=200, estimator="harrell-davis", method="stationary")
    assert os_ci.estimate == np.quantile(x, 0.9, method="inverted_cdf")
    assert hd_ci.estimate == pytest.approx(stats.mstats.hdquantiles(x, prob=[0.9])[0], rel=1e-12)


# -- distributions of draws ---------------------------------------------------------------------


def test_fast_iid_order_statistic_draws_match_resampling():
    x = np.random.default_rng(11).lognormal(size=2000)
    fast = _iid_order_statistic_draws(x, 0.95, 4000, np.random.default_rng(12))
    idx = np.random.default_rng(13).integers(0, x.size, size=(4000, x.size))
    brute = inverted_cdf_quantile(x[idx])
    assert stats.ks_2samp(fast, brute).pvalue > 0.01
    # every draw is an observation near the quantile
    assert np.isin(fast, x).all()


def test_fast_iid_draws_reject_a_wrong_distribution():
    # the KS comparison above can fail: draws of the P90 are told apart from draws of the P95
    x = np.random.default_rng(11).lognormal(size=2000)
    p95 = _iid_order_statistic_draws(x, 0.95, 4000, np.random.default_rng(12))
    p94 = _iid_order_statistic_draws(x, 0.94, 4000, np.random.default_rng(12))
    assert stats.ks_2samp(p95, p94).pvalue < 1e-6


@pytest.mark.parametrize("ci", ["percentile", "bca"])
def test_iid_ci_agrees_with_scipy_bootstrap(ci):
    x = np.random.default_rng(21).lognormal(size=500)
    ours = bootstrap_quantile_ci(x, 0.95, ci=ci, n_resamples=10_000, seed=22)
    ref = stats.bootstrap((x,), inverted_cdf_quantile, n_resamples=10_000, method=ci, confidence_level=0.95, rng=23)
    # MC error of a 2.5 % quantile of 10 000 draws is ~0.04 bootstrap SD; 0.3 SD is ~5 combined SEs
    tolerance = 0.3 * ref.standard_error
    assert ours.ci_low == pytest.approx(ref.confidence_interval.low, abs=tolerance)
    assert ours.ci_high == pytest.approx(ref.confidence_interval.high, abs=tolerance)


@pytest.mark.parametrize(
    ("method", "arch_class"),
    [
        ("moving-block", "MovingBlockBootstrap"),
        ("circular-block", "CircularBlockBootstrap"),
        ("stationary", "StationaryBootstrap"),
    ],
)
def test_block_draws_match_arch(method, arch_class):
    import arch.bootstrap

    x = ar1(600, 0.7, seed=31)
    ours = bootstrap_quantile_ci(x, 0.95, method=method, block_length=12, n_resamples=1500, seed=32)
    boot = getattr(arch.bootstrap, arch_class)(12, x, seed=33)
    theirs = boot.apply(lambda y: np.array([inverted_cdf_quantile(y)]), 1500)[:, 0]
    assert stats.ks_2samp(ours.draws, theirs).pvalue > 0.01
    assert ours.block_length == 12


def test_block_bootstrap_differs_from_iid_on_dependent_data():
    # a block bootstrap that ignored the blocks would look like iid: on AR(1) data it must be wider
    x = ar1(2000, 0.9, seed=41)
    iid = bootstrap_quantile_ci(x, 0.95, n_resamples=1000, seed=1)
    mbb = bootstrap_quantile_ci(x, 0.95, method="moving-block", block_length=50, n_resamples=1000, seed=1)
    assert np.std(mbb.draws) > 1.5 * np.std(iid.draws)


# -- reproducibility, result object ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["iid", "stationary"])
@pytest.mark.parametrize("estimator", ["order-statistic", "harrell-davis"])
def test_seeded_reproducibility(method, estimator):
    x = ar1(400, 0.3, seed=51)
    first = bootstrap_quantile_ci(x, method=method, estimator=estimator, n_resamples=300, seed=5)
    again = bootstrap_quantile_ci(x, method=method, estimator=estimator, n_resamples=300, seed=5)
    other = bootstrap_quantile_ci(x, method=method, estimator=estimator, n_resamples=300, seed=6)
    np.testing.assert_array_equal(first.draws, again.draws)
    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)
    assert not np.array_equal(first.draws, other.draws)


def test_result_repr_and_frame():
    res = bootstrap_quantile_ci(np.arange(100.0), 0.5, ci="basic", n_resamples=200)
    assert "draws" not in repr(res)
    assert "ci_low=" in repr(res)
    frame = res.to_frame()
    assert list(frame.columns) == [
        "estimate", "ci_low", "ci_high", "method", "ci", "n_resamples", "confidence",
        "block_length", "estimator", "seed", "q", "n",
    ]  # fmt: skip
    assert frame.loc[0, "ci"] == "basic"
    perc = bootstrap_quantile_ci(np.arange(100.0), 0.5, n_resamples=200)
    assert res.ci_low == pytest.approx(2 * res.estimate - perc.ci_high)
    assert res.ci_high == pytest.approx(2 * res.estimate - perc.ci_low)


def test_default_block_length_is_politis_white():
    x = ar1(500, 0.6, seed=61)
    res = bootstrap_quantile_ci(x, method="circular-block", n_resamples=200)
    assert res.block_length == round(optimal_block_length(x).circular)


def test_degenerate_inputs_warn():
    with pytest.warns(DegenerateStatisticWarning, match="at least 2 observations"):
        res = bootstrap_quantile_ci([3.0], n_resamples=200)
    assert res.estimate == 3.0
    assert np.isnan(res.ci_low)
    with pytest.warns(DegenerateStatisticWarning, match="acceleration is undefined"):
        res = bootstrap_quantile_ci(np.full(50, 2.0), ci="bca", n_resamples=200)
    assert res.ci_low == res.ci_high == 2.0


@given(
    st.lists(st.floats(0.0, 1e4, allow_nan=False), min_size=2, max_size=60),
    st.sampled_from([0.1, 0.5, 0.95]),
    st.sampled_from(["iid", "moving-block", "stationary"]),
    st.sampled_from(["percentile", "basic"]),
)
def test_property_interval_ordered(values, q, method, ci):
    x = np.array(values)
    block = None if method == "iid" else 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateStatisticWarning)
        res = bootstrap_quantile_ci(x, q, method=method, ci=ci, block_length=block, n_resamples=200)
    assert res.ci_low <= res.ci_high
    if ci == "percentile":
        # the interval lies within the draws, and within the range of the data
        assert x.min() <= res.ci_low
        assert res.ci_high <= x.max()
        if np.unique(x).size >= 5 and q == 0.5:
            # non-degenerate data: the median is covered by its 95 % percentile interval
            assert res.ci_low <= res.estimate <= res.ci_high


# -- block length, serial correlation -------------------------------------------------------------


@pytest.mark.parametrize(("n", "phi", "seed"), [(200, 0.0, 1), (500, 0.5, 2), (1000, 0.9, 3), (5000, -0.4, 4)])
def test_optimal_block_length_matches_arch(n, phi, seed):
    import arch.bootstrap

    x = ar1(n, phi, seed)
    ours = optimal_block_length(x)
    ref = arch.bootstrap.optimal_block_length(x)
    assert ours.stationary == pytest.approx(ref.loc[0, "stationary"], rel=1e-8)
    assert ours.circular == pytest.approx(ref.loc[0, "circular"], rel=1e-8)
    assert ours.to_frame().loc[0, "method"] == "politis-white"


@pytest.mark.parametrize(("phi", "lags"), [(0.0, 10), (0.3, 5), (0.8, 1)])
def test_ljung_box_matches_statsmodels(phi, lags):
    from statsmodels.stats.diagnostic import acorr_ljungbox

    x = ar1(300, phi, seed=71)
    ours = serial_correlation_check(x, lags=lags)
    ref = acorr_ljungbox(x, lags=[lags])
    assert ours.statistic == pytest.approx(ref["lb_stat"].iloc[0], rel=1e-10)
    assert ours.p_value == pytest.approx(ref["lb_pvalue"].iloc[0], rel=1e-8, abs=1e-300)


def test_choose_bootstrap_both_branches():
    iid = choose_bootstrap(np.random.default_rng(81).normal(size=500))
    assert iid.method == "iid"
    assert iid.block_length is None
    assert "no significant" in iid.reason
    dep = choose_bootstrap(ar1(500, 0.7, seed=82))
    assert dep.method == "stationary"
    assert dep.block_length >= 2
    assert f"block length {dep.block_length}" in dep.reason
    assert "Ljung–Box" in dep.reason
    assert dep.to_frame().loc[0, "method"] == "stationary"


def test_constant_series_warns():
    with pytest.warns(DegenerateStatisticWarning, match="constant"):
        assert np.isnan(serial_correlation_check(np.ones(50)).p_value)
    with pytest.warns(DegenerateStatisticWarning, match="constant"):
        assert np.isnan(optimal_block_length(np.ones(50)).stationary)


# -- errors -------------------------------------------------------------------------------------

X = np.random.default_rng(0).lognormal(size=412)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "auto"}, r"`method` must be one of .*got 'auto'. Use `choose_bootstrap"),
        ({"ci": "studentized"}, r"`ci` must be one of .*got 'studentized'"),
        ({"estimator": "hd"}, r"`estimator` must be one of .*got 'hd'"),
        ({"method": "stationary", "ci": "bca"}, r"`ci='bca'` needs iid data; got method='stationary'. Use ci='pe"),
        ({"n_resamples": 10}, r"`n_resamples` must be an integer ≥ 100; got 10"),
        ({"confidence": 95}, r"`confidence` must lie strictly between 0 and 1; got 95"),
        ({"seed": -1}, r"`seed` must be a non-negative integer; got -1"),
        ({"block_length": 5}, r"`block_length` applies to block bootstraps only.*method='iid'"),
        (
            {"method": "moving-block", "block_length": 0},
            r"`block_length` must be an integer in \[1, 412\]; got 0. Use `optimal_block_length\(x\)`",
        ),
        ({"method": "stationary", "block_length": 413}, r"in \[1, 412\]; got 413"),
        ({"q": 1.0}, r"`q` must lie strictly between 0 and 1; got 1.0"),
        ({"q": [0.5, 0.9]}, r"`q` must be a single probability"),
    ],
)
def test_bootstrap_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_quantile_ci(X, **kwargs)


def test_other_errors():
    with pytest.raises(ValueError, match=r"`x` contains 1 NaN"):
        bootstrap_quantile_ci([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match=r"at least 10 observations .*got 5. Pass `block_length` explicitly"):
        bootstrap_quantile_ci(np.arange(5.0), method="stationary")
    with pytest.raises(ValueError, match=r"`lags` must be an integer in \[1, 19\].*got 20"):
        serial_correlation_check(np.arange(20.0), lags=20)
    with pytest.raises(ValueError, match=r"`alpha` must lie strictly between 0 and 1; got 1.5"):
        choose_bootstrap(np.arange(20.0), alpha=1.5)
