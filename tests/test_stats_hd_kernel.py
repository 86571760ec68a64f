"""Windowed Harrell–Davis: kernel vs plain twin, the dropped-tail bound, agreement with the full sum."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betainc, betaincc
from scipy.stats.mstats import hdquantiles

from tsglab.stats import harrell_davis
from tsglab.stats._config import HD_TAIL_MASS
from tsglab.stats._quantile_kernels import hd_window_sum
from tsglab.stats.quantiles import _harrell_davis_windowed, _hd_windows


def _plain(kernel):
    return getattr(kernel, "py_func", kernel)


def full_harrell_davis(x, q):
    """Every order statistic weighted (the pre-window implementation)."""
    xs = np.sort(x)
    n = xs.size
    cdf = betainc(q * (n + 1), (1 - q) * (n + 1), np.arange(n + 1) / n)
    return float(np.diff(cdf) @ xs)


def test_window_sum_kernel_matches_plain_twin_and_numpy():
    rng = np.random.default_rng(3)
    window = np.sort(rng.lognormal(size=257))
    cdf = np.concatenate([[0.0], np.sort(rng.uniform(size=256)), [1.0]])
    compiled = hd_window_sum(window, cdf)
    assert compiled == pytest.approx(_plain(hd_window_sum)(window, cdf), rel=1e-14)
    assert compiled == pytest.approx(float(np.diff(cdf) @ window), rel=1e-13)


@pytest.mark.parametrize("n", [2, 3, 10, 101, 5_000, 1_000_000, 10**9])
@pytest.mark.parametrize("q", [1e-6, 0.01, 0.5, 0.95, 0.99, 1 - 1e-6])
def test_dropped_tail_mass_is_bounded(n, q):
    lo, hi = _hd_windows(n, np.array([q]), HD_TAIL_MASS)
    a, b = q * (n + 1), (1 - q) * (n + 1)
    assert 0 <= lo[0] < hi[0] <= n
    assert betainc(a, b, lo[0] / n) <= HD_TAIL_MASS
    assert betaincc(a, b, hi[0] / n) <= HD_TAIL_MASS
    if n >= 5_000 and 0.01 <= q <= 0.99:  # O(sqrt(n)) wide: about +-8.5 standard deviations of the Beta, in ranks
        assert hi[0] - lo[0] <= 20 * np.sqrt(q * (1 - q) * n) + 10


@pytest.mark.parametrize("n", [2, 7, 300, 20_000])
def test_windowed_equals_full_sum(n):
    rng = np.random.default_rng(n)
    x = rng.pareto(1.5, size=n) * 100.0
    qs = np.array([0.01, 0.5, 0.95, 0.99])
    windowed = _harrell_davis_windowed(x, qs, HD_TAIL_MASS)
    full = np.array([full_harrell_davis(x, q) for q in qs])
    bound = 2 * HD_TAIL_MASS * np.ptp(x) + 1e-12 * np.abs(full)
    assert np.all(np.abs(windowed - full) <= bound + 1e-15 * np.sum(np.abs(x)))
    np.testing.assert_allclose(windowed, full, rtol=1e-12)


def test_large_sample_matches_hdquantiles():
    x = np.random.default_rng(11).lognormal(mean=5.0, size=200_000)
    ours = harrell_davis(x, [0.5, 0.95])
    np.testing.assert_allclose(ours, np.asarray(hdquantiles(x, prob=[0.5, 0.95])), rtol=1e-9)


def test_input_order_does_not_matter():
    x = np.random.default_rng(5).normal(size=5_000)
    assert harrell_davis(x, 0.95) == pytest.approx(harrell_davis(np.sort(x)[::-1], 0.95), rel=1e-14)
