"""Under-delivery is loud (issue 10, item 11): a run whose load generator fell short of the planned load
says so in the CLI's summary line, in ``run.json`` and in the report's verdict; a run that kept up does not.

The end-to-end cases use the scripted backend with ``sleep: true``: a request takes ``prompt_ms`` of wall
time, so ``concurrency / prompt_ms`` is the most the run can carry, and the target rate is set well above
(under-delivery) or well below (keeps up) it.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tsglab import cli
from tsglab.events import read_manifest
from tsglab.load.delivery import LAG_P99_LIMIT_MS, RATE_FLOOR, check_delivery, delivery_warnings
from tsglab.report import ProtocolSettings
from tsglab.report.run_report import build_report

REPLY = "The answer is 42 and it is positive, as the question asked."


def write_spec(tmp_path, *, prompt_ms: float, limit: int = 15, **load) -> str:
    tiers = {t: {"backend": "scripted", "model": f"scripted-{t}", "max_tokens": 32,
                 "options": {"reply": REPLY, "sleep": True, "prompt_ms": prompt_ms}}
             for t in ("light", "std", "enh")}
    spec = {"name": "delivery", "prompts": {"limit": limit, "seed": 1},
            "arms": {"baseline": {"kind": "baseline"}, "tsg": {}}, "tiers": tiers,
            "load": {"timeout_s": 5, **load}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return str(path)


def run_cli(tmp_path, capsys, spec: str, run_id: str) -> tuple[str, dict]:
    code = cli.main(["run", spec, "--runs-dir", str(tmp_path / "runs"), "--run-id", run_id, "--no-report",
                     "--quiet"])
    assert code == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    return line, read_manifest(tmp_path / "runs" / run_id)


def report_verdict(tmp_path, run_id: str):
    return build_report(tmp_path / "runs" / run_id, settings=ProtocolSettings(n_resamples=200), write=False)


# --- the rule ---------------------------------------------------------------------------------------

def summary(planned=100.0, achieved=100.0, lag_p99=1.0):
    return {"planned_rate_per_s": planned, "achieved_rate_per_s": achieved,
            "dispatch_lag_ms": {"p50": 0.1, "p99": lag_p99, "max": lag_p99}}


def test_rate_below_the_floor_is_under_delivery_and_at_the_floor_is_not():
    below = check_delivery(summary(achieved=100 * RATE_FLOOR - 0.1))
    assert below["under_delivered"]
    assert below["reasons"] == ["achieved 94.9 req/s of 100.0 planned (95% < 95%)"]
    assert not check_delivery(summary(achieved=100 * RATE_FLOOR))["under_delivered"]
    assert not check_delivery(summary(achieved=130.0))["under_delivered"]  # early is not short


def test_lag_p99_above_the_limit_is_under_delivery_even_at_full_rate():
    late = check_delivery(summary(lag_p99=LAG_P99_LIMIT_MS + 0.5))
    assert late["under_delivered"]
    assert late["reasons"] == [f"dispatch-lag p99 50.5 ms > {LAG_P99_LIMIT_MS:g} ms"]
    assert not check_delivery(summary(lag_p99=LAG_P99_LIMIT_MS))["under_delivered"]
    seconds = check_delivery(summary(achieved=57.3, lag_p99=24_494.1))
    assert seconds["reasons"] == ["achieved 57.3 req/s of 100.0 planned (57% < 95%)",
                                  "dispatch-lag p99 24.49 s > 50 ms"]


def test_missing_figures_are_not_judged():
    assert not check_delivery({})["under_delivered"]
    assert not check_delivery(summary(planned=None, achieved=None, lag_p99=None))["under_delivered"]
    assert not check_delivery(summary(planned=float("nan")))["under_delivered"]


def test_every_segment_is_judged_and_old_manifests_are_judged_from_their_figures():
    slow, fine = summary(achieved=50.0), summary()
    manifest = {"load_generator": fine, "segments": [{"segment": 0, "load_generator": slow},
                                                     {"segment": 1, "load_generator": fine}]}
    assert delivery_warnings(manifest) == ["segment 0: achieved 50.0 req/s of 100.0 planned (50% < 95%)"]
    assert delivery_warnings({"load_generator": slow}) == ["achieved 50.0 req/s of 100.0 planned (50% < 95%)"]
    assert delivery_warnings({"segments": [{"segment": 0}]}) == []


# --- end to end: summary line, run.json, report verdict ------------------------------------------------

def test_open_loop_beyond_what_the_concurrency_carries_is_loud_everywhere(tmp_path, capsys):
    # 2 workers × 40 ms per request carry at most 50 req/s; 100 req/s are asked for
    spec = write_spec(tmp_path, prompt_ms=40, mode="open_loop", rate_per_s=100, concurrency=2)
    line, manifest = run_cli(tmp_path, capsys, spec, "short")
    assert line.startswith("run short: complete, 30/30 requests")
    assert "WARNING: under-delivered load: achieved" in line
    assert "dispatch-lag p99" in line
    delivery = manifest["load_generator"]["delivery"]
    assert delivery["under_delivered"]
    assert delivery["rate_ratio"] < 0.75
    assert manifest["segments"][-1]["load_generator"]["delivery"]["under_delivered"]
    assert json.loads((tmp_path / "runs" / "short" / "run.json").read_text())["load_generator"]["delivery"] == delivery
    report = report_verdict(tmp_path, "short")
    assert report.verdict["under_delivered"]
    assert report.verdict["load_delivery"][0].startswith("run short: achieved")
    assert "WARNING: the load generator under-delivered" in report.verdict_line()
    assert "WARNING: the load generator under-delivered" in str(report)


def test_open_loop_that_keeps_up_has_no_warning(tmp_path, capsys):
    # 4 workers × 5 ms carry 800 req/s; 25 req/s are asked for
    spec = write_spec(tmp_path, prompt_ms=5, mode="open_loop", rate_per_s=25, concurrency=4)
    line, manifest = run_cli(tmp_path, capsys, spec, "fine")
    assert line == f"run fine: complete, 30/30 requests in {tmp_path / 'runs' / 'fine'}"
    delivery = manifest["load_generator"]["delivery"]
    assert not delivery["under_delivered"]
    assert delivery["reasons"] == []
    assert delivery["rate_ratio"] == pytest.approx(1.0, abs=0.05)
    report = report_verdict(tmp_path, "fine")
    assert not report.verdict["under_delivered"]
    assert "WARNING" not in report.verdict_line()


def test_paced_run_slower_than_its_period_is_loud(tmp_path, capsys):
    # one request at a time taking 30 ms cannot keep a 10 ms period
    spec = write_spec(tmp_path, prompt_ms=30, limit=8, mode="paced", period_ms=10)
    line, manifest = run_cli(tmp_path, capsys, spec, "paced-short")
    assert "WARNING: under-delivered load: achieved" in line
    generator = manifest["load_generator"]
    assert generator["planned_rate_per_s"] == 100.0
    assert generator["achieved_rate_per_s"] < 40
    assert generator["n_dispatched"] == 16
    assert generator["delivery"]["under_delivered"]
    assert report_verdict(tmp_path, "paced-short").verdict["under_delivered"]


def test_paced_run_that_keeps_its_period_has_no_warning(tmp_path, capsys):
    spec = write_spec(tmp_path, prompt_ms=2, limit=8, mode="paced", period_ms=30)
    line, manifest = run_cli(tmp_path, capsys, spec, "paced-fine")
    assert "WARNING" not in line
    generator = manifest["load_generator"]
    assert generator["achieved_rate_per_s"] == pytest.approx(1e3 / 30, rel=0.05)
    assert not generator["delivery"]["under_delivered"]
