from __future__ import annotations

import math

import pytest

from tsglab.events import Energy, synthetic_event
from tsglab.report.frame import events_frame
from tsglab.report.tables import energy_table, four_view_table, load_table


def frame(n=20, *, lag=0.2, energy=None, failed=(), timeout=()):
    """The report frame of ``n`` synthetic requests of arm "a": the i-th waited ``lag * (i + 1)`` ms for
    dispatch, took 100 + i ms, and failed (connection refused) or timed out when listed."""
    measured = Energy(True, meter="fake", joules=energy, tokens=10.0) if energy is not None else None
    events = [synthetic_event(f"p{i}", arm="a", seq=i, raw_ms=100.0 + i, co_ms=100.0 + i + lag * (i + 1),
                              timeout=i in timeout, error_kind="connect_error" if i in failed else "",
                              timeout_s=5.0, in_warmup=i < 2,
                              energy=measured or Energy.unavailable("no NVIDIA GPU"))
              for i in range(n)]
    return events_frame(events)


def test_load_table_reports_dispatch_lag_as_a_distribution_and_how_requests_ended():
    table = load_table({"a": frame(failed=(3, 4), timeout=(5,))}).iloc[0]
    assert table["lag_max_ms"] == pytest.approx(4.0)
    assert table["lag_p50_ms"] == pytest.approx(2.1)
    assert table["late_gt_1ms"] == 15
    assert table["errors"] == 2
    assert table["timeouts"] == 1
    assert table["error_kinds"] == "connect_error: 2"


def test_failed_requests_are_left_out_of_the_p95_views_and_counted():
    fast_failures = frame(failed=tuple(range(10)))
    fast_failures.loc[fast_failures["failed"], ["raw_ms", "co_ms"]] = 1.0
    views = four_view_table({"a": fast_failures}).set_index("view")
    assert views.loc["Raw / Overall", "n"] == 10
    assert views.loc["Raw / Overall", "errors"] == 10
    assert views.loc["Raw / Overall", "p95_ms"] > 100  # the 1 ms failures did not pull the P95 down


def test_energy_table_gives_ratios_of_sums_or_the_reason_never_zero():
    measured = energy_table({"a": frame(n=4, energy=2.0)}).iloc[0]
    assert measured["j_per_request"] == pytest.approx(2.0)
    assert measured["mwh_per_1k_tokens"] == pytest.approx(8.0 / 3.6 / 40 * 1e3)
    assert measured["tokens_per_s_per_w"] == pytest.approx(40 / 8.0)
    missing = energy_table({"a": frame(n=4)}).iloc[0]
    assert missing["n_measured"] == 0
    assert math.isnan(missing["j_per_request"])
    assert missing["note"] == "no NVIDIA GPU"
