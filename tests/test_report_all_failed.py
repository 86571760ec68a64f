"""Reports of runs in which every request failed (issue 10, item 5, the report part).

Every way a run can fail entirely — each error kind, timeouts only, one arm or both, mixed kinds,
latencies of 0 ms, a single request, no events at all — must give a report (printed and written) that
says how many requests ended how, and skips the figures that have nothing to draw, instead of a
matplotlib "cannot be log-scaled" traceback.
"""

from __future__ import annotations

import dataclasses
import warnings

import pytest

from tsglab.cli import main
from tsglab.config import spec_from_dict
from tsglab.errors import RunError
from tsglab.events import EventWriter, synthetic_event, write_manifest
from tsglab.events.log import EVENTS_FILE
from tsglab.load.runner import run_experiment
from tsglab.report import ProtocolSettings, build_report

ERROR_KINDS = ("connect_error", "http_429", "http_4xx", "http_5xx", "malformed_response", "stream_interrupted",
               "backend_error", "runner_exception")
SETTINGS = ProtocolSettings(n_resamples=100, seed=1)


def event(prompt_id: str, arm: str, seq: int, kind: str, *, raw_ms: float = 120.0):
    task = "json" if prompt_id.endswith("j") else "general"
    message = f"{kind} of {arm}/{prompt_id}"
    if kind == "ok":
        return synthetic_event(prompt_id, arm=arm, seq=seq, task=task, raw_ms=raw_ms + seq, run_id="af")
    if kind == "timeout":
        return synthetic_event(prompt_id, arm=arm, seq=seq, task=task, timeout=True, raw_ms=5000.0, timeout_s=5.0,
                               run_id="af")
    if kind == "runner_exception":  # no attempt record: Event.failed
        built = synthetic_event(prompt_id, arm=arm, seq=seq, task=task, tiers=(), error_kind=kind, raw_ms=raw_ms,
                                run_id="af")
    else:
        built = synthetic_event(prompt_id, arm=arm, seq=seq, task=task, error_kind=kind, raw_ms=raw_ms, run_id="af")
    return dataclasses.replace(built, error=dataclasses.replace(built.error, message=message))


def make_run(tmp_path, base_kinds, gate_kinds, *, n: int = 6, raw_ms: float = 120.0):
    """A run of ``n`` prompts (every third a JSON task) per arm; request i of an arm ends with kind
    ``kinds[i % len(kinds)]``."""
    run_dir = tmp_path / "af"
    seq = 0
    with EventWriter(run_dir) as writer:
        for i in range(n):
            prompt_id = f"p{i}" + ("j" if i % 3 == 0 else "")
            for arm, kinds in (("baseline", base_kinds), ("tsg", gate_kinds)):
                writer.write(event(prompt_id, arm, seq, kinds[i % len(kinds)], raw_ms=raw_ms))
                seq += 1
    write_manifest(run_dir, {"run_id": "af", "status": "complete", "seed": 1, "spec": {"load": {"timeout_s": 5}}})
    return run_dir


# (mode, baseline kinds, gateway kinds, arms without an answer, kinds the head line must name)
MODES = [
    *[(f"both_{kind}", [kind], [kind], 2, {kind: 6}) for kind in ERROR_KINDS],
    ("both_timeouts_only", ["timeout"], ["timeout"], 2, {"timeout": 6}),
    ("gateway_failed_only", ["ok"], ["http_5xx"], 1, {"http_5xx": 6}),
    ("baseline_failed_only", ["connect_error"], ["ok"], 1, {"connect_error": 6}),
    ("timeouts_vs_errors", ["timeout"], ["malformed_response"], 2, {"timeout": 6, "malformed_response": 6}),
    ("mixed_kinds", ["http_5xx", "timeout", "connect_error"], ["runner_exception", "http_429"], 2,
     {"http_5xx": 2, "timeout": 2, "connect_error": 2, "runner_exception": 3, "http_429": 3}),
    ("mixed_with_timeouts_one_arm", ["timeout", "http_4xx"], ["ok"], 1, {"timeout": 3, "http_4xx": 3}),
]


@pytest.mark.parametrize(("mode", "base", "gate", "n_empty", "kinds"), MODES, ids=[m[0] for m in MODES])
def test_a_run_where_everything_failed_is_reported_and_written(tmp_path, mode, base, gate, n_empty, kinds):
    run_dir = make_run(tmp_path, base, gate)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning of ours (a write failure) and no plotting noise either
        warnings.filterwarnings("ignore", category=RuntimeWarning)  # NaN statistics of empty arms
        warnings.filterwarnings("ignore", category=UserWarning)
        report = build_report(run_dir, settings=SETTINGS, write=True)
    text = str(report)
    head = report.outcome_line()
    assert head in text.splitlines()
    assert head.startswith("No request was answered in " + ("either arm" if n_empty == 2 else "1 of 2 arms"))
    for kind, count in kinds.items():
        assert f"{kind}: {count}" in head
    outcomes = report.outcomes.set_index("arm")
    assert int((outcomes["answered"] == 0).sum()) == n_empty
    assert int(outcomes["n"].sum()) == 12
    if all(k == "timeout" for k in base + gate):
        assert "every latency is censored" in head
    else:
        assert "First error: " in head
        assert " of " in head.split("First error: ")[1]  # the recorded message, not a placeholder
    # the tables are written; a figure is skipped only when it has nothing to draw
    assert (run_dir / "tables" / "outcomes.md").read_text(encoding="utf-8").count("|") > 10
    assert (run_dir / "tables" / "headline.md").exists()
    assert (run_dir / "metrics_summary.parquet").exists()
    any_latency = any(k in ("ok", "timeout") for k in base + gate)
    assert (run_dir / "figures" / "latency_ecdf.png").exists() == any_latency
    assert (run_dir / "figures" / "load_timeline.png").exists()


def test_zero_millisecond_latencies_are_drawn_not_a_crash(tmp_path):
    run_dir = make_run(tmp_path, ["ok"], ["ok"], raw_ms=0.0)
    report = build_report(run_dir, settings=SETTINGS, write=True)
    assert report.outcome_line() == ""
    assert (run_dir / "figures" / "latency_ecdf.png").stat().st_size > 1000


def test_a_single_failed_request_per_arm(tmp_path):
    run_dir = make_run(tmp_path, ["backend_error"], ["backend_error"], n=1)
    report = build_report(run_dir, settings=SETTINGS, write=True)
    assert "baseline: 1 of 1 (backend_error: 1); tsg: 1 of 1 (backend_error: 1)" in report.outcome_line()


def test_zero_events_is_one_clear_error(tmp_path, capsys):
    run_dir = make_run(tmp_path, ["ok"], ["ok"], n=0)
    with pytest.raises(RunError, match=f"^{run_dir / EVENTS_FILE}: no events .*Resume the run"):
        build_report(run_dir, settings=SETTINGS, write=False)
    assert main(["report", str(run_dir)]) == 2
    assert capsys.readouterr().err.startswith(f"tsglab: error: {run_dir / EVENTS_FILE}: no events")


@pytest.mark.parametrize("mode", ["paced", "open_loop"])
def test_a_real_run_against_a_dead_backend_is_reported_by_the_cli(tmp_path, capsys, mode):
    """The runner and the CLI end to end: every tier answers HTTP 503 (scripted), both load modes."""
    load = {"mode": mode, "timeout_s": 5, "rate_per_s": 200, "concurrency": 2}
    spec = spec_from_dict({"name": "dead", "prompts": {"limit": 4, "seed": 3}, "load": load,
                           "energy": {"meter": "none"},
                           "tiers": {t: {"backend": "scripted", "options": {"error": "http_5xx"}}
                                     for t in ("light", "std", "enh")}})
    result = run_experiment(spec, runs_dir=tmp_path, run_id=mode, progress=False)
    assert result.n_events == 8
    assert main(["report", str(result.run_dir), "--resamples", "100"]) == 0
    out = capsys.readouterr().out
    assert "No request was answered in either arm — baseline: 4 of 4 (http_5xx: 4); tsg: 4 of 4 (http_5xx: 4)" in out
    assert "scripted http_5xx" in out  # the first error message, as the backend gave it
    assert (result.run_dir / "tables" / "outcomes.md").exists()
    assert not (result.run_dir / "figures" / "latency_ecdf.png").exists()
