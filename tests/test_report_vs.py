"""Reports across two runs (``--vs``): pairing is checked, and nothing is written into either run."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from conftest import scripted_ladder

from tsglab.config import spec_from_dict
from tsglab.errors import RunError
from tsglab.load.runner import run_experiment
from tsglab.report import build_report

TIERS = {"light": {"max_tokens": 16}, "std": {"max_tokens": 64}, "enh": {"max_tokens": 128}}


def _suite(path, prompts: dict[str, str]):
    lines = [json.dumps({"id": pid, "task": "factual", "prompt": text,
                         "check": {"kind": "regex_any", "patterns": ["42"], "example": "42"}})
             for pid, text in prompts.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


PROMPTS = {f"q{i}": f"Question {i}: what is six times seven? Say the number." for i in range(8)}


def _run(tmp_path, run_id, suite, arms):
    spec = spec_from_dict({"name": run_id, "suite": str(suite), "arms": arms, "tiers": TIERS,
                           "load": {"timeout_s": 5}})
    return run_experiment(spec, runs_dir=tmp_path, run_id=run_id, ladder=scripted_ladder("It is 42."),
                          progress=False).run_dir


def _digest(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def two_runs(tmp_path):
    suite = _suite(tmp_path / "suite.jsonl", PROMPTS)
    old = _run(tmp_path, "old", suite, {"baseline": {"kind": "baseline"}, "tsg": {}})
    new = _run(tmp_path, "new", suite, {"tsg2": {"thr_std": 0.2}})
    return tmp_path, old, new


def test_vs_writes_into_its_own_comparison_directory_and_never_over_either_run(two_runs):
    root, old, new = two_runs
    build_report(old)  # the old run's own report: the files a paper would \input
    before_old, before_new = _digest(old), _digest(new)
    report = build_report(new, vs=old)
    assert report.baseline == "old:baseline"
    assert report.gateway == "tsg2"
    assert report.out_dir == root / "new--vs--old" != report.run_dir
    assert (report.out_dir / "tables" / "headline.tex").is_file()
    assert (report.out_dir / "metrics_summary.parquet").is_file()
    assert _digest(old) == before_old
    assert _digest(new) == before_new  # neither run touched
    seeds = (report.out_dir / "seed_manifest.txt").read_text()
    assert "run_id: new" in seeds
    assert "run_id: old" in seeds
    assert "load_seed: 0" in seeds


def test_vs_refuses_a_missing_baseline_arm_instead_of_falling_back(two_runs):
    _, old, new = two_runs
    with pytest.raises(RunError, match="no arm named 'control'"):
        build_report(new, vs=old, baseline_arm="control")
    with pytest.raises(RunError, match="no arm named 'baseline'"):
        build_report(old, vs=new)  # the new run has no arm called baseline: no silent use of 'tsg2'


def test_vs_refuses_runs_of_different_suites_unless_allowed_and_never_pairs_different_prompts(tmp_path):
    old = _run(tmp_path, "old", _suite(tmp_path / "a.jsonl", PROMPTS), {"baseline": {"kind": "baseline"}})
    edited = dict(PROMPTS, q3="Question 3, edited: what is seven times six? Say the number.")
    new = _run(tmp_path, "new", _suite(tmp_path / "b.jsonl", edited), {"tsg": {}})
    with pytest.raises(RunError, match="sha256"):
        build_report(new, vs=old, write=False)
    # allowed: the suites may differ, but q3 names two different prompts, and pairing refuses it
    with pytest.raises(RunError, match=r"different prompts under the same id.*q3"):
        build_report(new, vs=old, write=False, allow_suite_change=True)


def test_vs_with_an_added_prompt_pairs_the_shared_ones_when_allowed(tmp_path):
    old = _run(tmp_path, "old", _suite(tmp_path / "a.jsonl", PROMPTS), {"baseline": {"kind": "baseline"}})
    grown = dict(PROMPTS, q9="Question 9: what is 40 plus 2? Say the number.")
    new = _run(tmp_path, "new", _suite(tmp_path / "b.jsonl", grown), {"tsg": {}})
    report = build_report(new, vs=old, write=False, allow_suite_change=True)
    assert len(report.frames["tsg"]) == len(PROMPTS)  # q9 has no partner


def test_vs_of_a_run_with_itself_is_refused(two_runs):
    _, old, _ = two_runs
    with pytest.raises(RunError, match="names the run itself"):
        build_report(old, vs=old)


def test_to_frame_is_the_written_metrics_summary(two_runs):
    _, old, _ = two_runs
    report = build_report(old)
    written = pd.read_parquet(old / "metrics_summary.parquet")
    pd.testing.assert_frame_equal(report.to_frame().reset_index(drop=True), written)
    assert {"arm", "metric", "value", "run_id"} <= set(written.columns)
