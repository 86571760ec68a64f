"""``tsglab.run`` returns a RunResult with the notebook views: events as a DataFrame, a per-arm summary
that counts what the event log holds, a short repr (papermill logs), HTML/Markdown/LaTeX, its report."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _rundir_helpers import write_spec

import tsglab
from tsglab.errors import InvalidArgument, RunError
from tsglab.report import RunReport
from tsglab.report.results import RunResult


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> RunResult:
    folder = tmp_path_factory.mktemp("rr")
    return tsglab.run(write_spec(folder, name="rr", limit=5), runs_dir=folder / "runs", run_id="rr",
                      progress=False)


def test_run_returns_a_run_result_with_the_runner_fields(result):
    assert isinstance(result, RunResult)
    assert (result.run_id, result.status, result.n_events, result.n_planned) == ("rr", "complete", 10, 10)


def test_events_frame_holds_every_recorded_line(result):
    events = result.events()
    lines = (result.run_dir / "events.jsonl").read_text().splitlines()
    assert len(events) == len(lines) == result.n_events
    assert set(events["arm"]) == {"baseline", "tsg"}
    pd.testing.assert_frame_equal(result.to_frame(), events)


def test_summary_counts_match_the_event_log(result):
    summary = result.summary().set_index("arm")
    lines = [json.loads(line) for line in (result.run_dir / "events.jsonl").read_text().splitlines()]
    for arm in ("baseline", "tsg"):
        mine = [e for e in lines if e["arm"] == arm]
        assert summary.loc[arm, "requests"] == len(mine)
        assert summary.loc[arm, "answered"] + summary.loc[arm, "failed"] == len(mine)
        assert summary.loc[arm, "warm_up"] == sum(bool(e.get("in_warmup")) for e in mine)


def test_summary_counts_failures_by_kind():
    frame = pd.DataFrame({"arm": ["a", "a", "a", "b"], "failed": [True, True, False, False],
                          "timeout": [False, False, True, False], "in_warmup": [False] * 4,
                          "error_kind": ["connect", "http", "timeout", ""]})
    summary = RunResult("x", tsglab.__path__[0], "complete", 4, 4).summary(frame).set_index("arm")
    assert summary.loc["a", "failed"] == 2
    assert summary.loc["a", "timeouts"] == 1
    assert summary.loc["a", "answered"] == 1
    assert summary.loc["a", "failure_kinds"] == "connect: 1, http: 1"
    assert summary.loc["b", "failure_kinds"] == "none"


def test_repr_is_one_short_line(result):
    text = repr(result)
    assert "\n" not in text
    assert len(text) < 200
    assert "rr" in text
    assert "complete" in text
    assert "10/10" in text


def test_html_markdown_latex(result, tmp_path):
    page = result._repr_html_()
    assert "10/10 requests" in page
    assert "baseline" in page
    assert "<table" in page
    assert "baseline" in result.to_markdown()
    out = tmp_path / "summary.tex"
    text = result.to_latex(out)
    assert out.read_text() == text
    assert "\\begin{tabular" in text
    assert "\\label{tab:rr:run_summary}" in text


def test_report_and_plot(result):
    report = result.report(write=False)
    assert isinstance(report, RunReport)
    assert report.run_dir == result.run_dir
    assert result.plot() is not None
    with pytest.raises(InvalidArgument, match="timeline"):
        result.plot("ecdf")


def test_open_an_existing_run(result):
    again = RunResult.open(result.run_dir)
    assert again == result
    with pytest.raises(RunError, match=r"run\.json"):
        RunResult.open(result.run_dir / "nowhere")


def test_report_repr_is_one_line_and_str_is_the_whole_report(result):
    report = result.report(write=False)
    text = repr(report)
    assert "\n" not in text
    assert len(text) < 200
    assert "tsg vs baseline" in text
    assert ("PASS" in text) != ("FAIL" in text)
    assert "baseline n=5" in text
    assert len(str(report)) > 10 * len(text)
