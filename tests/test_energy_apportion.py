"""Apportioning energy to requests: hand-computed cases, conservation (hypothesis), numpy vs plain twin."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsglab.energy import EnergyError, RequestSpan, Samples, apportion, spans_from_events
from tsglab.energy._apportion import _shares_numpy, _shares_python

S = 1_000_000_000  # ns per second


def constant_power(watts: float, seconds: float, hz: float = 10.0, t0: int = 5 * S) -> Samples:
    t = t0 + np.round(np.arange(round(seconds * hz) + 1) * (S / hz)).astype(np.int64)
    return Samples.from_arrays(t, watts * (t - t0) / S, meter="fake", domain="test")


def span(rid: str, start_s: float, end_s: float, tokens: float, t0: int = 5 * S) -> RequestSpan:
    return RequestSpan(rid, t0 + round(start_s * S), t0 + round(end_s * S), tokens)


# -- hand-computed cases ---------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["numpy", "python"])
def test_one_request_owns_a_window_and_empty_windows_are_unattributed(engine):
    result = apportion(constant_power(100.0, 3.0), [span("a", 1.0, 2.0, 10)], window_s=1.0, idle_w=0.0,
                       engine=engine)
    assert result.joules.tolist() == pytest.approx([100.0])
    assert result.window_in_flight.tolist() == [0, 1, 0]
    assert (result.unattributed_windows, result.unattributed_j) == (2, pytest.approx(200.0))
    assert (result.net_j, result.attributed_j) == (pytest.approx(300.0), pytest.approx(100.0))
    assert result.mwh_per_1k_tokens[0] == pytest.approx(100.0 / 3.6 / 10 * 1000)
    assert result.tokens_per_s_per_w[0] == pytest.approx(10 / 1.0 / 100.0)  # tokens / s / (J / s)


@pytest.mark.parametrize("engine", ["numpy", "python"])
def test_two_requests_split_by_tokens_inside_each_window(engine):
    # window 0: only a (10 of its 20 tokens) -> a 100 J; window 1: a has 10 tokens, b 30 -> 25 / 75 J.
    requests = [span("a", 0.0, 2.0, 20), span("b", 1.0, 2.0, 30)]
    result = apportion(constant_power(100.0, 2.0), requests, window_s=1.0, idle_w=0.0, engine=engine)
    assert result.joules.tolist() == pytest.approx([125.0, 75.0])
    assert result.tokens.tolist() == pytest.approx([20.0, 30.0])
    assert result.unattributed_j == 0.0


@pytest.mark.parametrize("engine", ["numpy", "python"])
def test_idle_is_subtracted_and_clipping_is_counted(engine):
    requests = [span("a", 0.0, 2.0, 20)]
    result = apportion(constant_power(100.0, 2.0), requests, window_s=1.0, idle_w=40.0, engine=engine)
    assert (result.gross_j, result.idle_j, result.net_j) == (pytest.approx(200.0), pytest.approx(80.0),
                                                             pytest.approx(120.0))
    assert result.joules.tolist() == pytest.approx([120.0])
    assert result.clipped_windows == 0
    clipped = apportion(constant_power(100.0, 2.0), requests, window_s=1.0, idle_w=150.0, engine=engine)
    assert (clipped.net_j, clipped.clipped_windows, clipped.clipped_j) == (0.0, 2, pytest.approx(100.0))
    assert clipped.joules.tolist() == [0.0]
    assert clipped.measured.tolist() == [True]  # measured zero net
    assert math.isnan(clipped.tokens_per_s_per_w[0])  # tokens per zero joules is undefined, not inf


def test_window_bounds_are_interpolated_between_samples():
    # samples at 0, 0.3, 1.3, 2.0 s; energy 0, 30, 230, 300 J. E(1.0) = 30 + 0.7 * 200 = 170.
    t = 5 * S + np.array([0, 300, 1300, 2000]) * 1_000_000
    trace = Samples.from_arrays(t, [0.0, 30.0, 230.0, 300.0])
    result = apportion(trace, [span("a", 0.0, 1.0, 5), span("b", 1.0, 2.0, 5)], window_s=1.0, idle_w=0.0)
    assert result.window_gross_j.tolist() == pytest.approx([170.0, 130.0])
    assert result.joules.tolist() == pytest.approx([170.0, 130.0])


def test_partial_last_window_subtracts_idle_for_its_own_length():
    result = apportion(constant_power(100.0, 2.5), [span("a", 0.0, 2.5, 25)], window_s=1.0, idle_w=20.0)
    assert result.n_windows == 3
    assert result.window_net_j.tolist() == pytest.approx([80.0, 80.0, 40.0])
    assert result.joules[0] == pytest.approx(200.0)


def test_tokenless_requests_split_by_time_and_points_count_once():
    trace = constant_power(100.0, 2.0)
    requests = [span("failed-long", 0.0, 1.0, 0), span("failed-short", 0.5, 1.0, 0),
                span("point", 1.5, 1.5, 8), span("outside", 7.0, 8.0, 4)]
    for engine in ("numpy", "python"):
        result = apportion(trace, requests, window_s=1.0, idle_w=0.0, engine=engine)
        # window 0: no tokens in flight -> by time in flight 1.0 s : 0.5 s; window 1: the point owns it
        assert result.joules[:3].tolist() == pytest.approx([100 * 2 / 3, 100 / 3, 100.0])
        assert math.isnan(result.joules[3])
        assert result.measured.tolist() == [True, True, True, False]
        assert math.isnan(result.mwh_per_1k_tokens[0])  # no tokens: undefined, not zero
        assert result.coverage.tolist() == [1.0, 1.0, 1.0, 0.0]


def test_request_partly_outside_the_trace_counts_only_what_was_measured():
    result = apportion(constant_power(100.0, 2.0), [span("a", 1.0, 3.0, 40)], window_s=1.0, idle_w=0.0)
    assert result.joules[0] == pytest.approx(100.0)
    assert (result.tokens[0], result.coverage[0]) == (pytest.approx(20.0), pytest.approx(0.5))


def test_result_helpers():
    result = apportion(constant_power(100.0, 2.0), [span("a", 0.0, 2.0, 20)], window_s=1.0, idle_w=0.0)
    assert result.index("a") == 0
    with pytest.raises(EnergyError, match=r"request_id 'zz' is not in this apportionment \(1 requests\)"):
        result.index("zz")
    totals = result.totals()
    assert totals["net_j"] == pytest.approx(200.0)
    assert totals["n_measured"] == 1
    assert "EnergyApportionment(meter='fake'" in repr(result)
    frame = result.to_frame()
    assert frame["joules"].tolist() == pytest.approx([200.0])


def test_spans_from_events_sum_all_attempts():
    events = [{"request_id": "r/a/1", "schedule": {"dispatched_ns": 10, "completed_ns": 30},
               "attempts": [{"prompt_tokens": 5, "completion_tokens": 7},
                            {"prompt_tokens": 5, "completion_tokens": 3}]}]
    assert spans_from_events(events) == [RequestSpan("r/a/1", 10, 30, 20)]


def test_apportion_errors():
    trace = constant_power(100.0, 2.0)
    ok = [span("a", 0.0, 1.0, 1)]
    with pytest.raises(EnergyError, match=r"`window_s` must be >= 1 s .*got 0.5"):
        apportion(trace, ok, window_s=0.5, idle_w=0.0)
    with pytest.raises(EnergyError, match=r"`idle_w` must be a finite number of watts >= 0; got -1.*measure_idle"):
        apportion(trace, ok, window_s=1.0, idle_w=-1)
    with pytest.raises(EnergyError, match=r"`engine` must be 'numpy' or 'python'; got 'fast'"):
        apportion(trace, ok, window_s=1.0, idle_w=0.0, engine="fast")
    with pytest.raises(EnergyError, match=r"`samples` must be a tsglab.energy.Samples; got tuple"):
        apportion((trace.t_ns, trace.energy_j), ok, window_s=1.0, idle_w=0.0)
    with pytest.raises(EnergyError, match=r"at least 2 samples to measure energy; got 1"):
        apportion(Samples.from_arrays([1], [0.0]), ok, window_s=1.0, idle_w=0.0)
    with pytest.raises(EnergyError, match=r"request_id 'a' appears more than once"):
        apportion(trace, ok + ok, window_s=1.0, idle_w=0.0)
    with pytest.raises(EnergyError, match=r"request 'b': completed_ns \(\d+\) is before dispatched_ns"):
        apportion(trace, [span("b", 1.0, 0.5, 1)], window_s=1.0, idle_w=0.0)
    with pytest.raises(EnergyError, match=r"request 'c': tokens must be a finite count >= 0; got -3"):
        apportion(trace, [span("c", 0.0, 1.0, -3)], window_s=1.0, idle_w=0.0)


# -- properties: conservation and the twins ---------------------------------------------------------------

@st.composite
def scenarios(draw):
    n = draw(st.integers(2, 40))
    gaps = draw(st.lists(st.integers(1, 700_000_000), min_size=n - 1, max_size=n - 1))
    t = np.cumsum([10 * S, *gaps]).astype(np.int64)
    steps = draw(st.lists(st.floats(0, 500, allow_nan=False), min_size=n - 1, max_size=n - 1))
    energy = np.concatenate([[0.0], np.cumsum(steps)])
    lo, hi = int(t[0]) - 2 * S, int(t[-1]) + 2 * S
    requests = []
    for i in range(draw(st.integers(0, 25))):
        a = draw(st.integers(lo, hi))
        b = a if draw(st.booleans()) and i % 3 == 0 else draw(st.integers(a, hi))
        requests.append(RequestSpan(f"r{i}", a, b, draw(st.sampled_from([0, 1, 7, 100, 2048]))))
    window_s = draw(st.sampled_from([1.0, 1.5, 2.0, 3.0]))
    idle_w = draw(st.floats(0, 400, allow_nan=False))
    return Samples.from_arrays(t, energy), requests, window_s, idle_w


@given(scenarios())
def test_conservation_and_twins_agree(scenario):
    trace, requests, window_s, idle_w = scenario
    fast = apportion(trace, requests, window_s=window_s, idle_w=idle_w)
    plain = apportion(trace, requests, window_s=window_s, idle_w=idle_w, engine="python")
    tol = 1e-9 * max(1.0, fast.gross_j)
    assert abs(fast.conservation_error_j) <= tol
    assert abs(plain.conservation_error_j) <= tol
    assert fast.net_j == pytest.approx(fast.attributed_j + fast.unattributed_j, abs=tol)
    assert fast.gross_j - fast.idle_j + fast.clipped_j == pytest.approx(fast.net_j, abs=tol)
    assert np.all(fast.joules[fast.measured] >= 0)
    assert np.all(np.isnan(fast.joules[~fast.measured]))
    assert np.allclose(fast.joules, plain.joules, rtol=1e-9, atol=tol, equal_nan=True)
    assert np.allclose(fast.tokens, plain.tokens, rtol=1e-9, atol=1e-9)
    assert np.array_equal(fast.window_in_flight, plain.window_in_flight)
    assert fast.unattributed_j == pytest.approx(plain.unattributed_j, abs=tol)


def test_numpy_chunking_gives_the_same_shares():
    rng = np.random.default_rng(7)
    window_ns, n_windows = S, 50
    edges = np.arange(n_windows + 1, dtype=np.int64) * window_ns
    net = rng.uniform(0, 300, n_windows)
    d = rng.integers(-5 * S, 55 * S, 300)
    c = d + rng.integers(0, 20 * S, 300)
    c[::7] = d[::7]
    tokens = rng.integers(0, 500, 300).astype(float)
    whole = _shares_numpy(edges, window_ns, net, d, c, tokens)
    for max_cells in (1, 5, 97):
        chunked = _shares_numpy(edges, window_ns, net, d, c, tokens, max_cells=max_cells)
        for a, b in zip(whole, chunked, strict=True):
            assert np.allclose(a, b, rtol=1e-12)
    plain = _shares_python(edges.tolist(), net.tolist(), d.tolist(), c.tolist(), tokens.tolist())
    assert np.allclose(whole[0], plain[0], rtol=1e-9)
    assert whole[2].tolist() == plain[2]


def test_ten_thousand_requests_by_an_hour_of_windows_runs():
    # Speed is measured in benchmarks/ (numbers in the module report); this keeps the size working.
    rng = np.random.default_rng(3)
    trace = constant_power(300.0, 3600.0, hz=20.0)
    t0 = int(trace.t_ns[0])
    d = t0 + rng.integers(0, 3590 * S, 10_000)
    c = d + rng.integers(0, 30 * S, 10_000)
    requests = [RequestSpan(str(i), int(a), int(b), 100) for i, (a, b) in enumerate(zip(d, c, strict=True))]
    result = apportion(trace, requests, window_s=1.0, idle_w=100.0)
    assert result.n_windows == 3600
    assert abs(result.conservation_error_j) <= 1e-9 * result.gross_j


@pytest.mark.parametrize("engine", ["numpy", "python"])
def test_tokenless_points_alone_in_a_window_split_it_equally(engine):
    requests = [span("p1", 0.25, 0.25, 0), span("p2", 0.75, 0.75, 0), span("end", 2.0, 2.0, 3)]
    result = apportion(constant_power(100.0, 2.0), requests, window_s=1.0, idle_w=0.0, engine=engine)
    assert result.joules.tolist() == pytest.approx([50.0, 50.0, 100.0])  # a point at the last sample counts
    assert result.unattributed_j == 0.0
