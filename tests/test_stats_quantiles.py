"""Harrell–Davis and type-7 sample quantiles: reference library, naive twins, properties, errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import comb
from scipy.stats import beta
from scipy.stats.mstats import hdquantiles

from tsglab.errors import DegenerateStatisticWarning
from tsglab.stats import harrell_davis, sample_quantile

# --------------------------------------------------------------------------------------------------
# Naive, readable twins


def naive_harrell_davis(x, q):
    """Harrell & Davis (1982), eq. (1.2): a Beta(q(n+1), (1-q)(n+1))-weighted sum of order stats."""
    xs = sorted(x)
    n = len(xs)
    a = q * (n + 1)
    b = (1 - q) * (n + 1)
    total = 0.0
    for i in range(1, n + 1):
        weight = beta.cdf(i / n, a, b) - beta.cdf((i - 1) / n, a, b)
        total += weight * xs[i - 1]
    return total


def legacy_binomial_weights(x, q):
    """The estimator some code calls "Harrell–Davis": binomial (Bernstein) weights. Not HD."""
    xs = sorted(x)
    n = len(xs)
    total = 0.0
    for i in range(1, n + 1):
        weight = comb(n - 1, i - 1) * q ** (i - 1) * (1 - q) ** (n - i)
        total += weight * xs[i - 1]
    return total


def naive_type7(x, q):
    """Hyndman & Fan (1996) definition 7: h = (n-1)q, interpolate between x_(floor h), x_(floor h + 1)."""
    xs = sorted(x)
    h = (len(xs) - 1) * q
    j = math.floor(h)
    if j + 1 >= len(xs):
        return xs[-1]
    return xs[j] + (h - j) * (xs[j + 1] - xs[j])


def _samples():
    rng = np.random.default_rng(20240611)
    bimodal = np.concatenate([rng.normal(100, 5, 60), rng.normal(400, 20, 40)])
    return {
        "normal-2": rng.normal(size=2),
        "uniform-5": rng.uniform(size=5),
        "exponential-20": rng.exponential(scale=200.0, size=20),
        "lognormal-100": rng.lognormal(mean=5.0, sigma=1.0, size=100),
        "bimodal-100": bimodal,
        "pareto-1000": rng.pareto(2.5, size=1000) * 50.0,
        "ties-50": rng.integers(0, 5, size=50).astype(float),
    }


SAMPLES = _samples()
PROBS = np.array([0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99])


# --------------------------------------------------------------------------------------------------
# Harrell–Davis


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_hd_matches_scipy_hdquantiles(name):
    x = SAMPLES[name]
    ours = harrell_davis(x, PROBS)
    reference = np.asarray(hdquantiles(x, prob=PROBS))
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=0.0)


@pytest.mark.parametrize("name", ["normal-2", "uniform-5", "exponential-20", "bimodal-100", "ties-50"])
def test_hd_matches_naive_loop(name):
    x = SAMPLES[name]
    for q in PROBS:
        assert harrell_davis(x, q) == pytest.approx(naive_harrell_davis(x, q), rel=1e-12, abs=1e-12)


def test_hd_published_scipy_example():
    # Values printed in the `scipy.stats.mstats.hdquantiles` docstring (SciPy 1.17) for this data.
    data = np.array([1.2, 2.5, 3.7, 4.0, 5.1, 6.3, 7.0, 8.2, 9.4])
    result = harrell_davis(data, [0.25, 0.5, 0.75])
    np.testing.assert_allclose(result, [3.1505820231763066, 5.194344084883956, 7.430626414674935], rtol=1e-9)


def test_hd_is_not_the_binomial_weights_estimator():
    x = [1.0, 2.0, 3.0, 10.0, 50.0]
    hd = harrell_davis(x, 0.9)
    legacy = legacy_binomial_weights(x, 0.9)
    assert hd == pytest.approx(naive_harrell_davis(x, 0.9), rel=1e-12)
    # 43.35 vs 35.87 on this sample: the binomial-weights smoother is a different estimator.
    assert abs(hd - legacy) > 5.0
    assert hd == pytest.approx(43.345436142383, rel=1e-9)
    assert legacy == pytest.approx(35.8741, rel=1e-9)


def test_hd_shapes_and_types():
    x = SAMPLES["exponential-20"]
    scalar = harrell_davis(x, 0.5)
    assert isinstance(scalar, float)
    matrix = harrell_davis(x, [[0.1, 0.5], [0.9, 0.95]])
    assert isinstance(matrix, np.ndarray)
    assert matrix.shape == (2, 2)
    assert matrix[1, 1] == pytest.approx(harrell_davis(x, 0.95), rel=1e-15)


def test_hd_single_value():
    assert harrell_davis([7.5], 0.95) == 7.5
    np.testing.assert_array_equal(harrell_davis([7.5], [0.1, 0.9]), [7.5, 7.5])


def test_hd_empty_is_nan_with_warning():
    with pytest.warns(DegenerateStatisticWarning, match="empty sample"):
        value = harrell_davis([], 0.5)
    assert math.isnan(value)
    with pytest.warns(DegenerateStatisticWarning):
        values = harrell_davis(np.array([]), [0.5, 0.9])
    assert values.shape == (2,)
    assert np.isnan(values).all()


@pytest.mark.parametrize("func", [harrell_davis, sample_quantile])
def test_nan_input_names_the_count(func):
    with pytest.raises(ValueError, match=r"`x` contains 2 NaN value\(s\) out of 4"):
        func([1.0, np.nan, 3.0, np.nan], 0.5)


@pytest.mark.parametrize("func", [harrell_davis, sample_quantile])
def test_infinite_input_is_rejected(func):
    with pytest.raises(ValueError, match=r"1 infinite value\(s\).*right-censored"):
        func([1.0, np.inf, 3.0], 0.5)


@pytest.mark.parametrize("func", [harrell_davis, sample_quantile])
@pytest.mark.parametrize("bad_q", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_q_outside_open_unit_interval(func, bad_q):
    with pytest.raises(ValueError, match="`q` must lie strictly between 0 and 1"):
        func([1.0, 2.0, 3.0], bad_q)
    with pytest.raises(ValueError, match="`q` must lie strictly between 0 and 1"):
        func([1.0, 2.0, 3.0], [0.5, bad_q])


@pytest.mark.parametrize("func", [harrell_davis, sample_quantile])
def test_input_shape_and_type_errors(func):
    with pytest.raises(ValueError, match=r"`x` must be 1-D; got an array of shape \(2, 2\)"):
        func([[1.0, 2.0], [3.0, 4.0]], 0.5)
    with pytest.raises(ValueError, match=r"`x` must be 1-D; got an array of shape \(\)"):
        func(3.0, 0.5)
    with pytest.raises(ValueError, match="`x` must be a 1-D array of numbers"):
        func(["a", "b"], 0.5)
    with pytest.raises(ValueError, match="`q` must be a number or an array of numbers"):
        func([1.0, 2.0], "p95")


finite_samples = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=60
)
probabilities = st.lists(
    st.floats(min_value=1e-4, max_value=1 - 1e-4, allow_nan=False), min_size=2, max_size=8
)


@settings(max_examples=150, deadline=None)
@given(x=finite_samples, qs=probabilities)
def test_hd_monotone_in_q_and_within_range(x, qs):
    qs = np.sort(np.asarray(qs))
    estimates = harrell_davis(x, qs)
    lo, hi = min(x), max(x)
    slack = 1e-9 * max(1.0, abs(lo), abs(hi))  # weights sum to 1 up to rounding
    assert np.all(np.diff(estimates) >= -slack)
    assert np.all(estimates >= lo - slack)
    assert np.all(estimates <= hi + slack)


# --------------------------------------------------------------------------------------------------
# Type-7 sample quantile


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_quantile_matches_numpy_and_naive(name):
    x = SAMPLES[name]
    ours = sample_quantile(x, PROBS)
    np.testing.assert_allclose(ours, np.quantile(x, PROBS), rtol=1e-12)
    for q, value in zip(PROBS, ours, strict=True):
        assert value == pytest.approx(naive_type7(x, q), rel=1e-12, abs=1e-12)


def test_sample_quantile_known_values_and_types():
    assert sample_quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert isinstance(sample_quantile([1.0, 2.0], 0.5), float)
    np.testing.assert_allclose(sample_quantile([1.0, 2.0, 3.0, 4.0, 5.0], [0.25, 0.95]), [2.0, 4.8])
    assert sample_quantile([4.0], 0.3) == 4.0


def test_sample_quantile_empty_is_nan_with_warning():
    with pytest.warns(DegenerateStatisticWarning, match="sample quantile of an empty sample"):
        value = sample_quantile([], 0.95)
    assert math.isnan(value)


@settings(max_examples=100, deadline=None)
@given(x=finite_samples, qs=probabilities)
def test_sample_quantile_monotone_in_q(x, qs):
    qs = np.sort(np.asarray(qs))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimates = sample_quantile(x, qs)
    assert np.all(np.diff(estimates) >= -1e-9 * max(1.0, float(np.max(np.abs(x)))))
    assert np.all((estimates >= min(x)) & (estimates <= max(x)))
