"""Reports of tiny and partial runs (issue 12, item 5): any n >= 1 per arm, every request in warm-up,
arms of unequal length, a report taken mid-run. Each must give a report whose cells that cannot be
computed are NaN with a note saying why, and whose verdict names the rows that are not computable —
never a crash (it was ``ValueError: Buffer has wrong number of dimensions`` from an empty warm view)."""

from __future__ import annotations

import json
import math

import pytest
from conftest import scripted_ladder

from tsglab.cli import main
from tsglab.config import spec_from_dict
from tsglab.errors import TsglabWarning
from tsglab.events import EventWriter, synthetic_event, write_manifest
from tsglab.events.lock import RunLock
from tsglab.events.log import EVENTS_FILE
from tsglab.load.runner import run_experiment
from tsglab.report import ProtocolSettings, build_report

SETTINGS = ProtocolSettings(n_resamples=100, seed=1)
TIERS = {"light": {"max_tokens": 16}, "std": {"max_tokens": 64}, "enh": {"max_tokens": 128}}


def answer(request):
    return "The answer is 42 and it is positive."


def scripted_run(tmp_path, n: int, warmup_count: int):
    spec = spec_from_dict({"name": "tiny", "prompts": {"tasks": ["json", "open"], "limit": n, "seed": 1},
                           "arms": {"baseline": {"kind": "baseline"}, "tsg": {}}, "tiers": TIERS,
                           "load": {"mode": "paced", "period_ms": 0, "timeout_s": 5, "warmup_count": warmup_count}})
    return run_experiment(spec, runs_dir=tmp_path, run_id=f"tiny{n}w{warmup_count}", ladder=scripted_ladder(answer),
                          progress=False).run_dir


def warm_only_rows(report):
    return report.p95_views[report.p95_views["view"].str.endswith("Warm-only")]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("extra_warmup", [0, 2])
def test_every_request_in_warm_up_gives_a_report_that_says_why(tmp_path, n, extra_warmup):
    run_dir = scripted_run(tmp_path, n, n + extra_warmup)
    report = build_report(run_dir, settings=SETTINGS, write=True)
    assert report.written_to == run_dir
    assert (run_dir / "tables" / "p95_views.md").exists()
    assert json.loads((run_dir / "bootstrap_meta.json").read_text())["verdict"]["not_computable"]
    warm = warm_only_rows(report)
    assert (warm["n"] == 0).all()
    assert warm["p95_ms"].isna().all()
    assert warm["note"].str.startswith("n = 0: no answered request in this view").all()
    assert math.isnan(report.figures["tsg"]["p50_e2e_warm_ms"])
    assert report.notes["headline"].startswith(
        "Not computed — baseline: P50 E2E warm not computed, n = 0 warm answered requests (all in warm-up or failed)")
    assert any(row.startswith("Family B Warm-only/overall: n = 0 pairs (every request in warm-up); ")
               for row in report.verdict["not_computable"])
    assert "not computable: " in report.verdict_line()
    assert report.verdict["overall"] is False
    overall = report.family_b[(report.family_b["view"] == "Overall") & (report.family_b["stratum"] == "overall")]
    assert int(overall["n_pairs"].iloc[0]) == n


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_tiny_runs_without_warm_up(tmp_path, n):
    report = build_report(scripted_run(tmp_path, n, 0), settings=SETTINGS, write=True)
    views = report.p95_views
    assert (views["n"] == n).all()
    assert ("no CI for the latencies, n = 1 < 2" in report.notes["headline"]) == (n == 1)
    assert main(["report", str(report.run_dir), "--no-write"]) == 0
    if n < 2:  # one observation: an estimate, but no interval
        assert views["p95_ci_low"].isna().all()
        assert views["p95_ms"].notna().all()
        assert (views["note"] == "n = 1 < 2 needed for a CI").all()
    else:
        assert views["p95_ci_low"].notna().all()
        assert (views["note"] == "").all()
    # at these n the P95 guardrail cannot be tested: the verdict lists every Family B row, with its n
    rows = report.verdict["not_computable"]
    assert f"Family B Overall/overall: n = {n} pairs" in " ".join(rows)
    assert len([r for r in rows if r.startswith("Family B")]) == len(report.family_b)


def synthetic_run(tmp_path, counts: dict[str, int], status: str = "complete"):
    run_dir = tmp_path / "uneven"
    seq = 0
    with EventWriter(run_dir) as writer:
        for arm, count in counts.items():
            for i in range(count):
                writer.write(synthetic_event(f"p{i}", arm=arm, seq=seq, task="general", raw_ms=100.0 + seq,
                                             run_id="uneven"))
                seq += 1
    write_manifest(run_dir, {"run_id": "uneven", "status": status, "seed": 1,
                             "spec": {"load": {"timeout_s": 5, "warmup_count": 0}}})
    return run_dir


@pytest.mark.parametrize("counts", [{"baseline": 1, "tsg": 5}, {"baseline": 5, "tsg": 1}])
def test_one_arm_with_one_event_and_the_other_with_five(tmp_path, counts):
    report = build_report(synthetic_run(tmp_path, counts), settings=SETTINGS, write=True)
    # only p0 is in both arms: the other four requests are left out of the paired report, and it says so
    longer = next(arm for arm, c in counts.items() if c == 5)
    assert report.verdict["unpaired"] == {longer: 4}
    assert f"requests left out, their prompt has no request in the other arm: {longer} 4" in report.verdict_line()
    assert int(report.family_a["n_pairs"].iloc[0]) == 1  # only p0 is in both arms
    one = next(arm for arm, c in counts.items() if c == 1)
    one_arm = report.p95_views[report.p95_views["arm"] == one]
    assert (one_arm["note"].isin(["n = 1 < 2 needed for a CI",
                                  "n = 0: no answered request in this view (all in warm-up, failed, or not yet run)"]
                                 )).all()
    assert report.verdict["not_computable"]


def test_a_report_taken_mid_run(tmp_path, request):
    """run.json says ``running`` and events.jsonl ends in a line still being written."""
    run_dir = scripted_run(tmp_path, 4, 3)
    lock = RunLock.acquire(run_dir, purpose="run")  # the runner still owns the run
    request.addfinalizer(lock.release)
    manifest = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    (run_dir / "run.json").write_text(json.dumps({**manifest, "status": "running"}), encoding="utf-8")
    lines = (run_dir / EVENTS_FILE).read_text(encoding="utf-8").splitlines(keepends=True)
    (run_dir / EVENTS_FILE).write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2], encoding="utf-8")
    with pytest.warns(TsglabWarning, match="skipped a torn last line"):  # the line the runner is writing
        report = build_report(run_dir, settings=SETTINGS, write=True)
    assert report.status == "running"
    assert "[run running: partial data]" in str(report)
    assert dict(zip(report.outcomes["arm"], report.outcomes["n"], strict=True)) == {"baseline": 1, "tsg": 1}
    assert report.verdict["unpaired"]  # the third recorded request waits for its partner
    assert report.verdict["not_computable"]
