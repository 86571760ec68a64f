"""tsglab.report.publish on small frames: precision per column, merged intervals, footnoted empty
cells, humanised headers for undescribed columns, Markdown alignment, HTML styling, labels."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tsglab.report import publish
from tsglab.report.render import to_latex as frame_to_latex

NAN = math.nan


def p95_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "arm": ["baseline", "tsg"], "view": ["Raw / Overall"] * 2, "n": [40, 1], "timeouts_rate": [0.025, 0.0],
        "p50_ms": [1234.4, 0.5], "p50_ci_low": [1180.2, NAN], "p50_ci_high": [1301.0, NAN],
        "p95_ms": [NAN, 0.5], "p95_ci_low": [NAN, NAN], "p95_ci_high": [NAN, NAN],
        "p95_lower_bound_ms": [4000.0, NAN], "identifiable": [False, True], "interval": ["iid", "none"],
        "note": ["", "n = 1 < 2 needed for a CI"], "errors": [0, 0]})


def test_markdown_merges_intervals_aligns_numbers_and_footnotes_empty_cells():
    text = publish.to_markdown("p95_views", p95_frame(), title="P95", note="A note with _under_scores.")
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| Arm"))
    assert "P50 (ms)" in header
    assert "p50_ci_low" not in header
    assert "Note" not in header
    align = lines[lines.index(header) + 1]
    assert align.startswith("|:")
    assert "-:|" in align  # text left, numbers right
    assert "1,234 [1,180, 1,301]" in text  # ms >= 100: no decimals, one cell
    assert "≥ 4,000ᵃ" in text  # not identifiable: the lower bound, footnoted
    assert "ᵇ n = 1 < 2 needed for a CI" in text  # the row's note explains the missing interval
    assert "NaN" not in text
    assert "nan" not in text
    assert lines[-1] == "A note with _under_scores."  # a plain paragraph, not _italic_ markup


def test_one_precision_per_column():
    frame = pd.DataFrame({"arm": ["a", "b", "c"], "n": [3, 2, 1], "mean_quality": [1.0, 0.5, 0.0],
                          "json_fail_rate": [0.5, 0.0, 0.125], "avg_eval_ms": [12.5, 3.0, 0.25],
                          "task": ["json"] * 3, "p50_raw_ms": [5.0] * 3})
    text = publish.to_markdown("tasks", frame)
    assert "1.000" in text
    assert "0.500" in text
    assert "0.000" in text
    assert "50.0" in text
    assert "12.5" in text
    assert " 0.0 " in text  # rates as percentages, 1 decimal
    assert "12.5 " in text
    assert " 3.0 " in text
    assert " 0.2 " in text  # ms: 3 significant digits of the largest


def test_undescribed_columns_and_tables_still_render():
    frame = pd.DataFrame({"warm_p95_ms_co": [1.5], "p95_slo_cap_ms": [NAN], "flag": [True], "label": ["x"]})
    text = publish.to_markdown("never_described", frame)
    assert "Warm P95 ms CO" in text
    assert "P95 SLO cap (ms)" in text
    assert "yes" in text
    assert "—ᵃ" in text
    assert "not computed" in text


def test_latex_label_prefix_layouts_and_escaping():
    tex = publish.to_latex("p95_views", p95_frame(), title="α & 5 % <x>", label_prefix="tab:run-2")
    assert r"\label{tab:run-2:p95_views}" in tex
    assert r"\begin{table}" in tex
    assert r"\ensuremath{\alpha} \& 5 \% \textless{}x\textgreater{}" in tex
    assert r"S[table-format=4.1]@{\hspace{0.25em}}l" in tex or "S[table-format=4.0]" in tex
    narrow = publish.to_latex("p95_views", p95_frame(), layout="narrow", label_prefix="tab:run-2")
    assert r"\label{tab:run-2:p95_views:narrow}" in narrow
    assert "P50" not in narrow  # fewer columns
    assert r"\begin{table*}" in publish.to_latex("p95_views", p95_frame(), layout="table*")
    assert all(ord(c) < 128 for c in tex)
    with pytest.raises(ValueError, match="layout must be 'table', 'table\\*' or 'narrow'; got 'wide'"):
        publish.to_latex("p95_views", p95_frame(), layout="wide")  # type: ignore[arg-type]


def test_label_prefix_from_run_id():
    assert publish.label_prefix_for("quickstart-20261201_033632") == "tab:quickstart-20261201-033632"
    assert frame_to_latex(pd.DataFrame({"a": [1]}), label="tab:frameworks").count(r"\label{tab:frameworks}") == 1


def test_html_fragment_and_document():
    frame = pd.DataFrame({"stratum": ["overall"], "n_pairs": [8], "decision": ["failed"], "p_value": [0.0001]})
    fragment = publish.to_html("family_A", frame, title="A <b>")
    assert "<html" not in fragment
    assert "<style>" in fragment
    assert "A &lt;b&gt;" in fragment
    assert "class='fail'" in fragment
    assert "&lt;0.001" in fragment
    assert "position:sticky" in fragment
    page = publish.html_page([fragment, fragment], title="Report")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<style>") == 1
    assert page.count("<table>") == 2


def test_headline_rows_keep_their_own_precision_and_reasons():
    frame = pd.DataFrame({"metric": ["P50 E2E warm (ms)", "JSON failure rate", "r_costly (share touching enh)"],
                          "baseline": [NAN, 0.25, 1.0], "baseline CI low": [NAN] * 3, "baseline CI high": [NAN] * 3,
                          "tsg": [250.4, 0.125, 0.5], "tsg CI low": [240.0, NAN, NAN],
                          "tsg CI high": [260.2, NAN, NAN], "change_%": [NAN, -50.0, -50.0]})
    note = "Not computed — baseline: P50 E2E warm not computed, n = 0 warm answered requests. P50: raw."
    text = publish.to_markdown("headline", frame, note=note)
    assert "250 [240, 260]" in text
    assert "12.5" in text
    assert "Reached enh (%)" in text
    assert "P50 E2E warm not computed, n = 0 warm answered requests" in text.split("\n\n")[-2]
    assert text.rstrip().endswith("P50: raw.")
    assert "−50.0" in text


def test_footnotes_from_verdict():
    verdict = {"not_computable": ["Family B Warm-only/overall: n = 0 pairs (every request in warm-up); why",
                                  "Family A json: n = 1 pairs"]}
    notes = publish.footnotes_from_verdict(verdict)
    assert notes["family_B"] == {"Warm-only/overall": "not computed: n = 0 pairs (every request in warm-up); why"}
    assert notes["family_A"] == {"json": "not computed: n = 1 pairs"}
