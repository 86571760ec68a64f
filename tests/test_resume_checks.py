"""Resume refuses a changed suite file as it refuses a changed spec, saying what changed and what to do."""

from __future__ import annotations

import json

import pytest
from _rundir_helpers import InterruptAt, answer, event_keys, write_spec
from conftest import scripted_ladder

from tsglab.config import load_spec
from tsglab.errors import SpecError
from tsglab.events import read_manifest
from tsglab.load.runner import run_experiment
from tsglab.suite import bundled_suite_path


def own_suite(tmp_path):
    path = tmp_path / "suite.jsonl"
    path.write_bytes(bundled_suite_path().read_bytes())
    return path


def start_and_interrupt(tmp_path, suite):
    spec = load_spec(write_spec(tmp_path, limit=8, suite=suite))
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, runs_dir=tmp_path / "runs", run_id="r", ladder=scripted_ladder(InterruptAt(4)),
                       progress=False)
    return spec, tmp_path / "runs" / "r"


def edit_a_prompt(suite):
    lines = suite.read_text(encoding="utf-8").splitlines(keepends=True)
    for k, line in enumerate(lines):
        if line.startswith("{"):
            item = json.loads(line)
            item["prompt"] += " Answer in French."
            lines[k] = json.dumps(item, ensure_ascii=False) + "\n"
    suite.write_text("".join(lines), encoding="utf-8")


def test_resume_refuses_a_suite_file_changed_since_the_run_started(tmp_path):
    suite = own_suite(tmp_path)
    spec, run_dir = start_and_interrupt(tmp_path, suite)
    n_before = sum(event_keys(run_dir).values())
    edit_a_prompt(suite)
    with pytest.raises(SpecError, match=r"suite file .*suite.jsonl changed since this run started \(sha256 "
                                        r"[0-9a-f]{16} → [0-9a-f]{16}\).*restore the suite file.*start a new run"):
        run_experiment(spec, resume=run_dir, ladder=scripted_ladder(answer), progress=False)
    assert sum(event_keys(run_dir).values()) == n_before  # nothing sent
    assert read_manifest(run_dir)["status"] == "incomplete"


def test_resume_accepts_the_same_suite_file_and_finishes(tmp_path):
    suite = own_suite(tmp_path)
    spec, run_dir = start_and_interrupt(tmp_path, suite)
    suite.write_bytes(suite.read_bytes())  # touched, same bytes
    result = run_experiment(spec, resume=run_dir, ladder=scripted_ladder(answer), progress=False)
    assert result.status == "complete"
    keys = event_keys(run_dir)
    assert sum(keys.values()) == 16
    assert max(keys.values()) == 1


def test_resume_refuses_a_missing_suite_file(tmp_path):
    suite = own_suite(tmp_path)
    spec, run_dir = start_and_interrupt(tmp_path, suite)
    suite.unlink()
    with pytest.raises(Exception, match=r"suite.jsonl"):
        run_experiment(spec, resume=run_dir, ladder=scripted_ladder(answer), progress=False)


def test_a_changed_spec_message_names_the_overrides_the_run_started_with(tmp_path):
    spec_path = write_spec(tmp_path, limit=8)
    spec = load_spec(spec_path, {"load.timeout_s": 7})
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, runs_dir=tmp_path / "runs", run_id="r", ladder=scripted_ladder(InterruptAt(4)),
                       progress=False, overrides={"load.timeout_s": 7})
    run_dir = tmp_path / "runs" / "r"
    assert read_manifest(run_dir)["overrides"] == {"load.timeout_s": 7}
    with pytest.raises(SpecError, match=r"spec changed since this run started.*started with --set "
                                        r"load.timeout_s=7"):
        run_experiment(load_spec(spec_path), resume=run_dir, ladder=scripted_ladder(answer), progress=False)
