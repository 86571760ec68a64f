from __future__ import annotations

import json
import time
from collections import Counter

import pandas as pd
import pytest
from conftest import scripted_ladder

from tsglab.config import spec_from_dict
from tsglab.errors import RunError, SpecError, TsglabWarning
from tsglab.events import read_events, read_manifest
from tsglab.load.runner import run_experiment
from tsglab.report import build_report

TIERS = {"light": {"max_tokens": 16}, "std": {"max_tokens": 64}, "enh": {"max_tokens": 128}}


def make_spec(**load):
    return spec_from_dict({
        "name": "unit",
        "prompts": {"limit": 6, "seed": 1},
        "arms": {"baseline": {"kind": "baseline"}, "tsg": {}},
        "tiers": TIERS,
        "load": {"mode": "paced", "period_ms": 0, "warmup_count": 2, "timeout_s": 5, **load},
    })


def answer(request):
    # a json-looking answer for json tasks, a sentence otherwise; deterministic
    if request.json_schema is not None or "json" in request.messages[-1].content.lower():
        return '{"answer": 1}'
    return "The answer is 42 and it is positive."


def test_run_writes_paired_interleaved_events_and_a_complete_manifest(tmp_path):
    result = run_experiment(make_spec(), runs_dir=tmp_path, run_id="r1", ladder=scripted_ladder(answer),
                            progress=False)
    assert result.status == "complete"
    assert result.n_events == result.n_planned == 12
    events = read_events(result.run_dir)
    by_arm = {arm: [e.prompt_id for e in events if e.arm == arm] for arm in ("baseline", "tsg")}
    assert sorted(by_arm["baseline"]) == sorted(by_arm["tsg"])  # same prompts in both arms
    arms_in_order = [e.arm for e in events]
    assert arms_in_order[:4] == ["baseline", "tsg", "tsg", "baseline"]  # ABBA interleaving
    for e in events:
        s = e.schedule
        assert s.intended_start_ns <= s.dispatched_ns <= s.completed_ns
        assert e.latency.co_ms >= e.latency.raw_ms >= 0
        assert e.schema_version == 2
        assert e.fingerprint.policy_hash
        assert e.fingerprint.ladder == ("light", "std", "enh")
        assert len(e.prompt_sha) == 16
    # warm-up counts per arm: ABBA order puts each arm's first two requests in the first four slots
    assert [e.in_warmup for e in events][:6] == [True, True, True, True, False, False]
    assert all(e.route.initial == "enh" for e in events if e.arm == "baseline")
    assert read_manifest(result.run_dir)["status"] == "complete"


def test_switchback_runs_blocks_per_arm(tmp_path):
    spec = make_spec(arm_order="switchback", switchback_block=3)
    result = run_experiment(spec, runs_dir=tmp_path, run_id="sb", ladder=scripted_ladder(answer), progress=False)
    arms = [e.arm for e in read_events(result.run_dir)]
    assert arms == ["baseline"] * 3 + ["tsg"] * 3 + ["tsg"] * 3 + ["baseline"] * 3


class Interrupt:
    """Answers normally, then raises KeyboardInterrupt on call number ``at`` (a user's Ctrl-C)."""

    def __init__(self, at):
        self.at, self.calls = at, 0

    def __call__(self, request):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return answer(request)


def test_ctrl_c_leaves_a_valid_partial_run_and_resume_finishes_it_without_repeats(tmp_path):
    spec = make_spec()
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, runs_dir=tmp_path, run_id="cut", ladder=scripted_ladder(Interrupt(at=5)),
                       progress=False)
    run_dir = tmp_path / "cut"
    assert read_manifest(run_dir)["status"] == "incomplete"
    partial = read_events(run_dir)
    assert 0 < len(partial) < 12
    result = run_experiment(spec, resume=run_dir, ladder=scripted_ladder(answer), progress=False)
    events = read_events(run_dir)
    keys = Counter((e.arm, e.prompt_id) for e in events)
    assert result.status == "complete"
    assert len(events) == 12
    assert max(keys.values()) == 1
    assert {e.segment for e in events} == {0, 1}
    assert read_manifest(run_dir)["status"] == "complete"


def test_a_crash_mid_write_drops_only_the_torn_line(tmp_path):
    spec = make_spec()
    result = run_experiment(spec, runs_dir=tmp_path, run_id="torn", ladder=scripted_ladder(answer), progress=False)
    path = result.run_dir / "events.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:7]) + lines[7][:40])  # a crash while writing event 8
    manifest = read_manifest(result.run_dir)
    manifest["status"] = "running"
    manifest["pid"] = 2**22 + 12345  # a process that no longer exists
    (result.run_dir / "run.json").write_text(json.dumps(manifest))
    assert read_manifest(result.run_dir)["status"] == "incomplete"
    with pytest.warns(TsglabWarning, match="torn last line"):
        assert len(read_events(result.run_dir)) == 7
    with pytest.warns(TsglabWarning, match="torn last line"):
        run_experiment(spec, resume=result.run_dir, ladder=scripted_ladder(answer), progress=False)
    assert len(read_events(result.run_dir)) == 12


def test_resume_refuses_a_changed_spec_and_new_runs_refuse_to_overwrite(tmp_path):
    spec = make_spec()
    run_experiment(spec, runs_dir=tmp_path, run_id="x", ladder=scripted_ladder(answer), progress=False)
    with pytest.raises(SpecError, match="spec changed since this run started"):
        run_experiment(make_spec(timeout_s=9), resume=tmp_path / "x", ladder=scripted_ladder(answer), progress=False)
    with pytest.raises(RunError, match="already holds events"):
        run_experiment(spec, runs_dir=tmp_path, run_id="x", ladder=scripted_ladder(answer), progress=False)


def test_paced_schedule_makes_co_latency_see_a_stall_that_raw_latency_hides(tmp_path):
    calls = {"n": 0}

    def stall_once(request):
        calls["n"] += 1
        if calls["n"] == 3:
            time.sleep(0.4)  # the server stalls for 400 ms on one request
        return answer(request)

    spec = make_spec(period_ms=50, warmup_count=0)
    result = run_experiment(spec, runs_dir=tmp_path, run_id="stall", ladder=scripted_ladder(stall_once),
                            progress=False)
    events = sorted(read_events(result.run_dir), key=lambda e: e.seq)
    after = events[3]  # the request scheduled right after the stall
    assert after.latency.raw_ms < 100
    assert after.latency.co_ms > 250  # it waited behind the stall: CO counts the wait


def test_open_loop_mode_bounds_concurrency_and_records_dispatch_lag(tmp_path):
    spec = make_spec(mode="open_loop", rate_per_s=200, concurrency=2)
    ladder = scripted_ladder(answer, sleep=True, prompt_ms=20.0, eval_ms_per_token=0.1)
    result = run_experiment(spec, runs_dir=tmp_path, run_id="ol", ladder=ladder, progress=False)
    events = read_events(result.run_dir)
    assert len(events) == 12
    lags = [e.latency.dispatch_lag_ms for e in events]
    assert max(lags) > 10  # 200 req/s against ~20 ms service with 2 workers: requests queue


def test_report_from_a_run_writes_tables_and_summary(tmp_path):
    result = run_experiment(make_spec(), runs_dir=tmp_path, run_id="rep", ladder=scripted_ladder(answer),
                            progress=False)
    report = build_report(result.run_dir)
    headline = report.headline.set_index("metric")
    assert headline.loc["r_costly (share touching enh)", "baseline"] == 1.0
    assert set(report.p95_views["view"]) == {"Raw / Overall", "Raw / Warm-only", "CO / Overall", "CO / Warm-only"}
    for name in ("headline", "p95_views", "tiers", "tasks"):
        for ext in ("md", "tex", "html"):
            assert (result.run_dir / "tables" / f"{name}.{ext}").stat().st_size > 100
    assert (result.run_dir / "figures" / "latency_ecdf.png").stat().st_size > 1000
    assert (result.run_dir / "figures" / "load_timeline.png").stat().st_size > 1000
    summary = pd.read_parquet(result.run_dir / "metrics_summary.parquet")
    assert len(summary) > 0
    assert "run_id" in summary
    assert "P95 CO overall" in str(report)


def test_report_counts_cost_over_all_attempts(tmp_path):
    # tsg answers fail the check on light every time: repair + 2 upgrades = 4 attempts per json request
    spec = spec_from_dict({"name": "cost", "prompts": {"tasks": ["json"], "limit": 4}, "tiers": TIERS,
                           "load": {"timeout_s": 5}})
    ladder = scripted_ladder("not json at all", prompt_ms=10.0, eval_ms_per_token=0.0)
    result = run_experiment(spec, runs_dir=tmp_path, run_id="c", ladder=ladder, progress=False)
    frame = build_report(result.run_dir, write=False).frames
    tsg, base = frame["tsg"], frame["baseline"]
    assert (base["cost_ms"] == 10.0).all()
    assert (tsg["cost_ms"] == 10.0 * tsg["n_attempts"]).all()
    assert (tsg["n_attempts"] > 1).all()


def test_report_errors_name_the_problem(tmp_path):
    with pytest.raises(RunError, match=r"no events\.jsonl"):
        build_report(tmp_path)
    result = run_experiment(make_spec(), runs_dir=tmp_path, run_id="b", ladder=scripted_ladder(answer),
                            progress=False)
    with pytest.raises(RunError, match="no arm named 'control'"):
        build_report(result.run_dir, baseline_arm="control")


def test_switchback_blocks_keep_one_arms_backlog_out_of_the_other_arm(tmp_path):
    calls = {"n": 0}

    def stall_second(request):
        calls["n"] += 1
        if calls["n"] == 2:
            time.sleep(0.4)  # a stall in the middle of the first block (baseline arm)
        return answer(request)

    spec = make_spec(arm_order="switchback", switchback_block=3, period_ms=50, warmup_count=0)
    result = run_experiment(spec, runs_dir=tmp_path, run_id="sbs", ladder=scripted_ladder(stall_second),
                            progress=False)
    events = sorted(read_events(result.run_dir), key=lambda e: e.seq)
    wait = [e.latency.co_ms - e.latency.raw_ms for e in events]
    assert [e.arm for e in events[:4]] == ["baseline"] * 3 + ["tsg"]
    assert wait[2] > 250  # the same arm's next request waited behind the stall: CO shows it
    assert wait[3] < 40  # the other arm's block starts on a fresh schedule: no inherited backlog
