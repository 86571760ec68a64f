"""Kaplan–Meier and SLO-cap quantiles: lifelines, naive twins, properties, errors."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter

from tsglab.errors import DegenerateStatisticWarning
from tsglab.stats import (
    CensoringSummary,
    KMQuantile,
    SLOCapQuantile,
    censoring_summary,
    harrell_davis,
    kaplan_meier,
    km_quantile,
    sample_quantile,
    slo_cap_quantile,
)
from tsglab.stats.censoring import KM_TOLERANCE

# --------------------------------------------------------------------------------------------------
# Naive, readable twins (exact rational arithmetic, so no tolerance question arises)


def as_typed(q):
    """q as the decimal a person typed (0.8 means 4/5, not the binary float just above it)."""
    return q if isinstance(q, Fraction) else Fraction(str(q))


def naive_km_curve(times, censored):
    """Product-limit estimate, one step per distinct event time; events before censorings on ties."""
    pairs = list(zip(times, censored, strict=True))
    curve = []
    survival = Fraction(1)
    for t in sorted({t for t, c in pairs if not c}):
        at_risk = sum(1 for u, _ in pairs if u >= t)
        deaths = sum(1 for u, c in pairs if u == t and not c)
        survival *= 1 - Fraction(deaths, at_risk)
        curve.append((t, survival))
    return curve


def naive_km_quantile(times, censored, q):
    """Smallest event time t with 1 - S(t) >= q, exactly; NaN if there is none."""
    q_exact = as_typed(q)
    for t, survival in naive_km_curve(times, censored):
        if 1 - survival >= q_exact:
            return t
    return math.nan


def naive_type1(x, q):
    """Inverse ECDF: smallest x with F(x) = #{x_i <= x} / n >= q."""
    xs = sorted(x)
    n = len(xs)
    for value in xs:
        if Fraction(sum(1 for v in xs if v <= value), n) >= as_typed(q):
            return value
    raise AssertionError("unreachable: F(max) = 1")


def lifelines_quantile(times, censored, q, *, tolerance=KM_TOLERANCE):
    """lifelines' KM quantile: `percentile(p)` is the first time S(t) <= p, so p = 1 - q.

    lifelines compares without slack; a tolerance as ours is added to the survival level.
    It returns inf where the curve never gets there.
    """
    fitter = KaplanMeierFitter().fit(np.asarray(times), event_observed=~np.asarray(censored))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' ApproximationWarning
        return float(fitter.percentile(1.0 - q + tolerance))


def _random_censored_sample(seed, n, censor_share):
    rng = np.random.default_rng(seed)
    latency = rng.lognormal(mean=6.0, sigma=0.7, size=n)
    censored = rng.uniform(size=n) < censor_share
    # A censored observation is cut off somewhere before its (unseen) latency.
    times = np.where(censored, latency * rng.uniform(0.2, 1.0, size=n), latency)
    return times, censored


# --------------------------------------------------------------------------------------------------
# Kaplan–Meier against lifelines and the naive twin


@pytest.mark.parametrize("censor_share", [0.15, 0.4])
@pytest.mark.parametrize("seed", range(8))
def test_km_quantile_matches_lifelines(seed, censor_share):
    times, censored = _random_censored_sample(seed, n=150 + 40 * seed, censor_share=censor_share)
    for q in (0.5, 0.8, 0.9, 0.95, 0.99):
        reference = lifelines_quantile(times, censored, q)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DegenerateStatisticWarning)
            ours = km_quantile(times, censored, q)
        if math.isinf(reference):  # seed 3 at 40 % censoring, q = 0.99
            assert not ours.reached
            assert math.isnan(ours.estimate)
            assert len(caught) == 1
        else:
            assert ours.reached
            assert not caught
            assert ours.estimate == reference


@pytest.mark.parametrize("seed", range(6))
def test_km_quantile_matches_lifelines_with_ties(seed):
    # Rounded latencies: many ties between events and censorings at the same time.
    times, censored = _random_censored_sample(100 + seed, n=120, censor_share=0.1)
    times = np.round(times / 50.0) * 50.0
    for q in (0.25, 0.5, 0.75, 0.9):
        assert km_quantile(times, censored, q).estimate == lifelines_quantile(times, censored, q)


@pytest.mark.parametrize("seed", range(6))
def test_km_curve_matches_lifelines_and_naive(seed):
    times, censored = _random_censored_sample(200 + seed, n=80, censor_share=0.3)
    times = np.round(times / 100.0) * 100.0
    curve = kaplan_meier(times, censored)
    fitter = KaplanMeierFitter().fit(times, event_observed=~censored)
    reference = fitter.survival_function_["KM_estimate"]
    np.testing.assert_allclose(curve.survival, reference.loc[curve.time].to_numpy(), rtol=1e-12)
    naive = naive_km_curve(times.tolist(), censored.tolist())
    np.testing.assert_array_equal(curve.time, [t for t, _ in naive])
    np.testing.assert_allclose(curve.survival, [float(s) for _, s in naive], rtol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_km_quantile_matches_naive(seed):
    times, censored = _random_censored_sample(300 + seed, n=60, censor_share=0.2)
    times = np.round(times / 100.0) * 100.0
    for q in (0.1, 0.5, 0.9, 0.95):
        expected = naive_km_quantile(times.tolist(), censored.tolist(), q)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateStatisticWarning)
            result = km_quantile(times, censored, q)
        if math.isnan(expected):
            assert math.isnan(result.estimate)
        else:
            assert result.estimate == expected


def test_km_hand_example_ties_and_tolerance():
    # t=1: 5 at risk, 1 event -> S=0.8; t=2: 4 at risk (censoring at 2 still at risk), 1 event -> 0.6;
    # t=3: 2 at risk, 1 event -> 0.3.
    times = [1.0, 2.0, 2.0, 3.0, 4.0]
    censored = [False, True, False, False, True]
    curve = kaplan_meier(times, censored)
    np.testing.assert_array_equal(curve.time, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(curve.at_risk, [5, 4, 2])
    np.testing.assert_array_equal(curve.events, [1, 1, 1])
    np.testing.assert_allclose(curve.survival, [0.8, 0.6, 0.3], rtol=1e-15)
    # 1 - S(2) = 0.4 exactly, but 0.8 * 0.75 = 0.6000000000000001 in floats: without the tolerance
    # (lifelines' plain comparison) the 0.4-quantile moves to the next event time, 3.
    assert km_quantile(times, censored, 0.4).estimate == 2.0
    assert lifelines_quantile(times, censored, 0.4, tolerance=0.0) == 3.0
    assert naive_km_quantile(times, censored, Fraction(2, 5)) == 2.0
    result = km_quantile(times, censored, 0.5)
    assert result == KMQuantile(
        estimate=3.0, reached=True, censored_fraction=0.4, n=5, n_events=3, q=0.5, method="kaplan-meier"
    )
    frame = result.to_frame()
    assert list(frame.columns) == ["estimate", "reached", "censored_fraction", "n", "n_events", "q", "method"]
    assert frame.shape == (1, 7)
    curve_frame = curve.to_frame()
    assert list(curve_frame.columns) == ["time", "at_risk", "events", "survival", "n", "n_censored"]
    assert curve_frame.shape == (3, 6)
    assert (curve_frame["n"] == curve.n).all()


def test_km_exactly_five_percent_tail_censoring_reaches_p95():
    times = np.arange(1.0, 101.0)
    censored = times > 95  # 5 % censored, all above the last event
    result = km_quantile(times, censored, 0.95)
    assert result.reached
    assert result.estimate == 95.0


def test_km_not_reached_is_nan_with_warning():
    times = np.arange(1.0, 101.0)
    censored = times > 94  # 6 % censored in the tail: S stays at 0.06
    with pytest.warns(DegenerateStatisticWarning, match=r"never reaches q=0.95.*slo_cap_quantile"):
        result = km_quantile(times, censored, 0.95)
    assert math.isnan(result.estimate)
    assert not result.reached
    assert result.censored_fraction == pytest.approx(0.06)
    assert lifelines_quantile(times, censored, 0.95) == math.inf


def test_km_empty_and_all_censored():
    with pytest.warns(DegenerateStatisticWarning):
        empty = km_quantile([], [], 0.5)
    assert math.isnan(empty.estimate)
    assert empty.n == 0
    assert math.isnan(empty.censored_fraction)
    with pytest.warns(DegenerateStatisticWarning):
        all_censored = km_quantile([1.0, 2.0], [True, True], 0.5)
    assert not all_censored.reached
    assert all_censored.n_events == 0


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.integers(min_value=0, max_value=40).map(float), st.booleans()), min_size=1, max_size=50
    )
)
def test_km_survival_non_increasing_in_unit_interval(data):
    times = [t for t, _ in data]
    censored = [c for _, c in data]
    curve = kaplan_meier(times, censored)
    assert np.all(curve.survival >= 0.0)
    assert np.all(curve.survival <= 1.0)
    assert np.all(np.diff(curve.survival) <= 0.0)
    assert np.all(np.diff(curve.time) > 0.0)


@settings(max_examples=150, deadline=None)
@given(
    x=st.lists(st.integers(min_value=0, max_value=30).map(float), min_size=1, max_size=60),
    q=st.sampled_from([0.05, 0.1, 0.25, 0.5, 0.75, 0.8, 0.9, 0.95, 0.99]),
)
def test_km_without_censoring_is_type1_quantile(x, q):
    result = km_quantile(x, np.zeros(len(x), dtype=bool), q)
    assert result.reached
    assert result.estimate == naive_type1(x, q)


@settings(max_examples=100, deadline=None)
@given(
    events=st.lists(st.floats(min_value=1.0, max_value=1e4, allow_nan=False), min_size=1, max_size=80),
    extra=st.integers(min_value=0, max_value=20),
)
def test_km_tail_censoring_above_five_percent_is_nan(events, extra):
    # Censor more than 5 % of the sample beyond every event: S never drops to 0.05.
    n_events = len(events)
    n_censored = math.floor(0.05 * n_events / 0.95) + 1 + extra
    times = np.concatenate([events, np.full(n_censored, 2e4)])
    censored = np.concatenate([np.zeros(n_events, bool), np.ones(n_censored, bool)])
    assert n_censored / times.size > 0.05
    with pytest.warns(DegenerateStatisticWarning):
        result = km_quantile(times, censored, 0.95)
    assert math.isnan(result.estimate)
    assert not result.reached
    with pytest.warns(DegenerateStatisticWarning, match="exceeds km_max_censored"):
        summary = censoring_summary(times, censored, cap_ms=3e4)
    assert summary.censoring_mode == "slo_cap"
    assert summary.km_flag


# --------------------------------------------------------------------------------------------------
# SLO cap


def test_slo_cap_known_values():
    times = [100.0, 200.0, 300.0, 450.0, 900.0]
    censored = [False, False, False, True, False]
    result = slo_cap_quantile(times, censored, 0.5, cap_ms=500.0, estimator="sample")
    # capped sample: 100, 200, 300, 500 (censored 450 raised to the cap), 900 (uncensored: kept)
    assert result == SLOCapQuantile(
        estimate=300.0, cap_ms=500.0, n=5, n_censored=1, n_capped=1, q=0.5, estimator="sample"
    )
    hd = slo_cap_quantile(times, censored, 0.95, cap_ms=500.0)
    assert hd.estimator == "harrell-davis"
    assert hd.estimate == pytest.approx(harrell_davis([100.0, 200.0, 300.0, 500.0, 900.0], 0.95), rel=1e-15)
    assert list(hd.to_frame().columns) == [
        "estimate",
        "cap_ms",
        "n",
        "n_censored",
        "n_capped",
        "q",
        "estimator",
    ]


def test_slo_cap_keeps_censored_values_above_the_cap():
    # a CO view: a timeout that also waited in a queue is censored above the cap; it must not drop
    result = slo_cap_quantile([100.0, 1500.0], [False, True], 0.5, cap_ms=1000.0, estimator="sample")
    assert result.estimate == pytest.approx(800.0)


def test_slo_cap_empty_is_nan_with_warning():
    with pytest.warns(DegenerateStatisticWarning):
        result = slo_cap_quantile([], [], cap_ms=1000.0)
    assert math.isnan(result.estimate)


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=1e5, allow_nan=False), st.booleans()),
        min_size=1,
        max_size=60,
    ),
    headroom=st.floats(min_value=0.0, max_value=1e5),
    q=st.floats(min_value=0.01, max_value=0.99),
    estimator=st.sampled_from(["harrell-davis", "sample"]),
)
def test_slo_cap_never_below_uncensored_quantile(data, headroom, q, estimator):
    times = np.array([t for t, _ in data])
    censored = np.array([c for _, c in data])
    cap = float(times.max()) + headroom + 1.0
    capped = slo_cap_quantile(times, censored, q, cap_ms=cap, estimator=estimator).estimate
    plain = (harrell_davis if estimator == "harrell-davis" else sample_quantile)(times, q)
    assert capped >= plain - 1e-9 * max(1.0, cap)


# --------------------------------------------------------------------------------------------------
# Summary


def test_summary_none_mode():
    times = np.arange(1.0, 101.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = censoring_summary(times, np.zeros(100, bool), cap_ms=1000.0)
    assert summary.censoring_mode == "none"
    assert not summary.km_flag
    assert summary.timeouts_rate == 0.0
    assert summary.p95_km == 95.0
    assert summary.p95_slo_cap == pytest.approx(harrell_davis(times, 0.95), rel=1e-15)


def test_summary_km_mode():
    times = np.arange(1.0, 101.0)
    censored = np.zeros(100, bool)
    censored[[10, 20, 30]] = True  # 3 % censored, early
    summary = censoring_summary(times, censored, cap_ms=100.0)
    assert isinstance(summary, CensoringSummary)
    assert summary.censoring_mode == "km"
    assert not summary.km_flag
    assert summary.p95_km == km_quantile(times, censored).estimate
    assert summary.timeouts_rate == pytest.approx(0.03)
    frame = summary.to_frame()
    assert frame.loc[0, "censoring_mode"] == "km"
    assert {"n", "timeouts_rate", "p95_km", "p95_slo_cap", "censoring_mode", "km_flag"} <= set(frame.columns)


def test_summary_slo_cap_mode_when_km_not_reached_below_threshold():
    # 4 % censored, all in the tail, with the threshold raised: KM is allowed but never reaches 0.99.
    times = np.arange(1.0, 101.0)
    censored = times > 96
    with pytest.warns(DegenerateStatisticWarning, match="never reaches q=0.99"):
        summary = censoring_summary(times, censored, 0.99, cap_ms=200.0)
    assert summary.censoring_mode == "slo_cap"
    assert summary.km_flag
    assert math.isnan(summary.p95_km)
    assert summary.p95_slo_cap == pytest.approx(harrell_davis(np.where(censored, 200.0, times), 0.99))


def test_summary_threshold_is_a_parameter():
    times = np.arange(1.0, 101.0)
    censored = np.zeros(100, bool)
    censored[:10] = True  # 10 % censored, early: KM reaches 0.95
    with pytest.warns(DegenerateStatisticWarning, match="exceeds km_max_censored=0.05"):
        strict = censoring_summary(times, censored, cap_ms=100.0)
    assert strict.censoring_mode == "slo_cap"
    lenient = censoring_summary(times, censored, cap_ms=100.0, km_max_censored=0.2)
    assert lenient.censoring_mode == "km"
    assert lenient.p95_km == km_quantile(times, censored).estimate


# --------------------------------------------------------------------------------------------------
# Errors


def test_errors_name_parameter_value_and_fix():
    with pytest.raises(ValueError, match=r"same length; got 3 and 2"):
        km_quantile([1.0, 2.0, 3.0], [True, False])
    with pytest.raises(ValueError, match=r"`censored` must hold booleans"):
        km_quantile([1.0, 2.0], [0.5, 1.0])
    with pytest.raises(ValueError, match=r"`censored` must hold booleans"):
        km_quantile([1.0, 2.0], ["yes", "no"])
    with pytest.raises(ValueError, match=r"`censored` must be 1-D"):
        km_quantile([1.0, 2.0], [[True, False]])
    with pytest.raises(ValueError, match=r"`time` must be non-negative durations; got -5.0 at index 1"):
        kaplan_meier([1.0, -5.0], [False, False])
    with pytest.raises(ValueError, match=r"`time` contains 1 NaN"):
        km_quantile([1.0, np.nan], [False, False])
    with pytest.raises(ValueError, match=r"`q` must be a single probability"):
        km_quantile([1.0, 2.0], [False, False], [0.5, 0.9])
    with pytest.raises(ValueError, match=r"`q` must lie strictly between 0 and 1; got 1.0"):
        km_quantile([1.0, 2.0], [False, False], 1.0)
    with pytest.raises(ValueError, match=r"`cap_ms` must be a finite positive number of milliseconds; got 0"):
        slo_cap_quantile([1.0], [False], cap_ms=0)
    with pytest.raises(ValueError, match=r"`cap_ms` must be a positive number of milliseconds; got 'x'"):
        slo_cap_quantile([1.0], [False], cap_ms="x")
    with pytest.raises(
        ValueError, match=r"`estimator` must be one of \['harrell-davis', 'sample'\]; got 'hd'"
    ):
        slo_cap_quantile([1.0], [False], cap_ms=10.0, estimator="hd")
    with pytest.raises(ValueError, match=r"`km_max_censored` must be a share in \[0, 1\]; got 5"):
        censoring_summary([1.0], [False], cap_ms=10.0, km_max_censored=5)


def test_integer_flags_are_accepted():
    assert km_quantile([1.0, 2.0, 3.0], [0, 1, 0], 0.5) == km_quantile(
        [1.0, 2.0, 3.0], [False, True, False], 0.5
    )
