from __future__ import annotations

import math

import pandas as pd
import pytest

from tsglab.report.tables import energy_table, four_view_table, load_table


def frame(n=20, *, lag=0.2, energy=None, failed=(), timeout=()):
    rows = []
    for i in range(n):
        rows.append({"arm": "a", "dispatch_lag_ms": lag * (i + 1), "raw_ms": 100.0 + i, "co_ms": 110.0 + i,
                     "timeout": i in timeout, "timeout_ms": 5000.0, "warm": i >= 2, "failed": i in failed,
                     "error_kind": "connect_error" if i in failed else ("timeout" if i in timeout else ""),
                     "energy": {"available": True, "joules": energy, "tokens": 10} if energy is not None else
                     {"available": False, "reason": "no NVIDIA GPU"}})
    return pd.DataFrame(rows)


def test_load_table_reports_dispatch_lag_as_a_distribution_and_how_requests_ended():
    table = load_table({"a": frame(failed=(3, 4), timeout=(5,))}).iloc[0]
    assert table["lag_max_ms"] == pytest.approx(4.0) and table["lag_p50_ms"] == pytest.approx(2.1)
    assert table["late_gt_1ms"] == 15 and table["errors"] == 2 and table["timeouts"] == 1
    assert table["error_kinds"] == "connect_error: 2"


def test_failed_requests_are_left_out_of_the_p95_views_and_counted():
    fast_failures = frame(failed=tuple(range(10)))
    fast_failures.loc[fast_failures["failed"], ["raw_ms", "co_ms"]] = 1.0
    views = four_view_table({"a": fast_failures}).set_index("view")
    assert views.loc["Raw / Overall", "n"] == 10 and views.loc["Raw / Overall", "errors"] == 10
    assert views.loc["Raw / Overall", "p95_ms"] > 100  # the 1 ms failures did not pull the P95 down


def test_energy_table_gives_ratios_of_sums_or_the_reason_never_zero():
    measured = energy_table({"a": frame(n=4, energy=2.0)}).iloc[0]
    assert measured["j_per_request"] == pytest.approx(2.0)
    assert measured["mwh_per_1k_tokens"] == pytest.approx(8.0 / 3.6 / 40 * 1e3)
    assert measured["tokens_per_s_per_w"] == pytest.approx(40 / 8.0)
    missing = energy_table({"a": frame(n=4)}).iloc[0]
    assert missing["n_measured"] == 0 and math.isnan(missing["j_per_request"]) and missing["note"] == "no NVIDIA GPU"
