"""Raw / CO latency from monotonic stamps, and HdrHistogram-style CO back-fill."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsglab.stats import backfill_co, co_latency_ms, raw_latency_ms, sample_quantile

# --------------------------------------------------------------------------------------------------
# Naive twin: HdrHistogram's AbstractHistogram.recordValueWithExpectedInterval, one value at a time


def naive_backfill(latencies, period):
    # HdrHistogram subtracts P repeatedly; L - k*P is the same in exact arithmetic and does not
    # accumulate rounding, so both implementations use it.
    recorded = list(latencies)
    for value in latencies:
        if value <= period:
            continue
        k = 1
        while value - k * period >= period:
            recorded.append(value - k * period)
            k += 1
    return recorded


def trap_backfill_below_period(latencies, period):
    """The wrong variant: keeps adding L - kP down to 0 (values below P included)."""
    recorded = list(latencies)
    for value in latencies:
        missing = value - period
        while missing > 0:
            recorded.append(missing)
            missing -= period
    return recorded


# --------------------------------------------------------------------------------------------------
# Raw and CO latency


def test_latency_conversion_is_exact_for_large_stamps():
    base = 9_000_000_000_000_000_000 // 2  # large monotonic clock values stay exact in int64
    intended = np.array([base, base + 1_000_000, base + 2_000_000], dtype=np.int64)
    dispatched = intended + np.array([0, 5_000_000, 250], dtype=np.int64)
    completed = dispatched + np.array([12_345_678, 1, 1_000_000], dtype=np.int64)
    raw = raw_latency_ms(dispatched, completed)
    co = co_latency_ms(intended, completed)
    assert raw.dtype == np.float64
    assert co.dtype == np.float64
    np.testing.assert_array_equal(raw, [12.345678, 0.000001, 1.0])
    np.testing.assert_array_equal(co, [12.345678, 5.000001, 1.00025])


def test_empty_stamps_give_empty_latency():
    assert raw_latency_ms(np.array([], dtype=np.int64), np.array([], dtype=np.int64)).shape == (0,)
    assert co_latency_ms([], []).shape == (0,)


def test_latency_errors():
    with pytest.raises(
        ValueError, match=r"`dispatched_ns` and `completed_ns` must have the same length; got 2 and 1"
    ):
        raw_latency_ms([1, 2], [3])
    with pytest.raises(
        ValueError, match=r"`completed_ns` must be >= `intended_ns`; first violation at index 2"
    ):
        co_latency_ms([0, 10, 20, 30], [5, 15, 19, 29])
    with pytest.raises(
        ValueError, match=r"first violation at index 0 \(completed_ns=4, dispatched_ns=5; 1 in all\)"
    ):
        raw_latency_ms([5], [4])
    with pytest.raises(
        ValueError,
        match=r"`intended_ns` must hold integer monotonic nanoseconds \(int64\); got dtype float64",
    ):
        co_latency_ms([0.0, 1.0], [2, 3])
    with pytest.raises(
        ValueError, match=r"`completed_ns` must be a 1-D array of nanosecond stamps; got shape \(1, 2\)"
    ):
        raw_latency_ms([0, 1], [[2, 3]])


stamps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10**15),  # intended start
        st.integers(min_value=0, max_value=10**12),  # dispatch delay (intended <= dispatched)
        st.integers(min_value=0, max_value=10**12),  # service time
    ),
    min_size=1,
    max_size=50,
)


@settings(max_examples=150, deadline=None)
@given(rows=stamps)
def test_co_latency_never_below_raw_when_dispatched_late(rows):
    intended = np.array([r[0] for r in rows], dtype=np.int64)
    dispatched = intended + np.array([r[1] for r in rows], dtype=np.int64)
    completed = dispatched + np.array([r[2] for r in rows], dtype=np.int64)
    co = co_latency_ms(intended, completed)
    raw = raw_latency_ms(dispatched, completed)
    assert np.all(co >= raw)
    assert np.all(raw >= 0.0)


# --------------------------------------------------------------------------------------------------
# Back-fill


def test_backfill_known_example():
    latencies = [5.0, 10.0, 35.0, 40.0, 12.0]
    result = backfill_co(latencies, 10.0)
    # 5, 10 and 12 add nothing (12 - 10 < 10); 35 adds 25, 15; 40 adds 30, 20, 10.
    np.testing.assert_array_equal(result, [5.0, 10.0, 35.0, 40.0, 12.0, 25.0, 15.0, 30.0, 20.0, 10.0])
    assert result.tolist() == naive_backfill(latencies, 10.0)
    assert result.dtype == np.float64


def test_backfill_raises_p95_of_a_stall_and_the_trap_lowers_it():
    # Paced every 100 ms; service ~50 ms, with three multi-second stalls.
    rng = np.random.default_rng(7)
    latencies = rng.normal(50.0, 5.0, size=200).clip(1.0)
    latencies[[40, 90, 150]] = [1_500.0, 2_950.0, 800.0]
    period = 100.0
    p95_raw = sample_quantile(latencies, 0.95)
    p95_backfilled = sample_quantile(backfill_co(latencies, period), 0.95)
    assert p95_backfilled >= p95_raw
    assert p95_backfilled > 2 * p95_raw  # the stalls show up in the tail
    # Back-filling below the period pours small values in and lowers the P95 (DESIGN.md §5).
    p95_trap = sample_quantile(np.array(trap_backfill_below_period(latencies, period)), 0.95)
    assert p95_trap < p95_backfilled


def test_backfill_without_stalls_is_identity():
    latencies = np.array([1.0, 20.0, 99.9, 100.0, 150.0])
    np.testing.assert_array_equal(backfill_co(latencies, 100.0), latencies)


def test_backfill_errors():
    with pytest.raises(ValueError, match=r"`period_ms` must be a finite number > 0; got 0"):
        backfill_co([1.0], 0)
    with pytest.raises(ValueError, match=r"`period_ms` must be a finite number > 0; got -5.0"):
        backfill_co([1.0], -5.0)
    with pytest.raises(ValueError, match=r"`period_ms` must be a finite number > 0; got nan"):
        backfill_co([1.0], float("nan"))
    with pytest.raises(ValueError, match=r"`period_ms` must be a positive number of ms; got 'fast'"):
        backfill_co([1.0], "fast")
    with pytest.raises(ValueError, match=r"`latency_ms` must be finite; got nan at index 1 \(1 in all\)"):
        backfill_co([1.0, float("nan")], 10.0)
    with pytest.raises(ValueError, match=r"`latency_ms` must be non-negative; got -1.0 at index 0"):
        backfill_co([-1.0], 10.0)
    with pytest.raises(ValueError, match=r"`latency_ms` must be 1-D"):
        backfill_co([[1.0]], 10.0)
    with pytest.raises(ValueError, match=r"`latency_ms` must be a 1-D array of numbers"):
        backfill_co(["a"], 10.0)
    with pytest.raises(ValueError, match=r"would back-fill about .* Check its unit \(ms\)"):
        backfill_co([60_000.0], 1e-6)


backfill_inputs = st.tuples(
    st.lists(st.floats(min_value=0.0, max_value=2_000.0, allow_nan=False), min_size=0, max_size=40),
    st.floats(min_value=1.0, max_value=500.0, allow_nan=False),
)


@settings(max_examples=200, deadline=None)
@given(data=backfill_inputs)
def test_backfill_keeps_originals_and_adds_only_values_at_least_period(data):
    latencies, period = data
    result = backfill_co(latencies, period)
    n = len(latencies)
    np.testing.assert_array_equal(result[:n], latencies)  # never removes or changes an observation
    added = result[n:]
    assert np.all(added >= period)
    # Each L > P contributes the values L - kP >= P, as HdrHistogram does.
    np.testing.assert_array_equal(np.sort(result), np.sort(naive_backfill(latencies, period)))
