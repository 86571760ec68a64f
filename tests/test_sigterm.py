"""SIGTERM is handled like Ctrl-C: the run is marked incomplete and the resume hint, followed literally (with the
``--set`` overrides the run started with), finishes it without losing or repeating a request."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys

import pytest
from _rundir_helpers import child_env, event_keys, tsglab_cli, wait_for_events, write_spec

from tsglab.events import read_manifest


@pytest.mark.parametrize(("mode", "sig", "rc"), [("paced", signal.SIGTERM, 143), ("open_loop", signal.SIGTERM, 143),
                                                 ("paced", signal.SIGINT, 130)])
def test_a_signal_marks_the_run_incomplete_and_the_printed_hint_resumes_it(tmp_path, mode, sig, rc):
    spec_path = write_spec(tmp_path, name="term", mode=mode, limit=20, ms=30, sleep=True)
    overrides = ["--set", "prompts.limit=12", "--set", "load.timeout_s=7", "--set", "description=two words"]
    proc = tsglab_cli("run", spec_path.name, "--runs-dir", "runs", "--run-id", "t", "--quiet", "--no-report",
                      *overrides, cwd=tmp_path)
    run_dir = tmp_path / "runs" / "t"
    try:
        wait_for_events(run_dir, 3)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == rc, err
    assert "Traceback" not in err
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "incomplete"
    assert manifest["overrides"] == {"prompts.limit": 12, "load.timeout_s": 7, "description": "two words"}
    n_before = sum(event_keys(run_dir).values())
    assert 0 < n_before < 24
    hint = re.search(r"`(tsglab run [^`]+)`", err)
    assert hint is not None, err
    command = shlex.split(hint.group(1))
    assert command[command.index("--resume") + 1] == "runs/t"
    # the hint as printed, from where the run was started
    resumed = subprocess.run([sys.executable, "-m", *command], cwd=tmp_path, env=child_env(),
                             capture_output=True, text=True, timeout=120, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "complete, 24/24 requests" in resumed.stdout
    keys = event_keys(run_dir)
    assert sum(keys.values()) == 24
    assert max(keys.values()) == 1
    assert read_manifest(run_dir)["status"] == "complete"


def test_the_hint_without_overrides_has_no_set(tmp_path):
    spec_path = write_spec(tmp_path, name="plain", limit=20, ms=30, sleep=True)
    proc = tsglab_cli("run", str(spec_path), "--run-id", "p", "--quiet", "--no-report", cwd=tmp_path)
    try:
        wait_for_events(tmp_path / "runs" / "p", 2)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    hint = re.search(r"`(tsglab run [^`]+)`", err)
    assert hint is not None, err
    assert "--set" not in hint.group(1)
    assert shlex.split(hint.group(1))[2] == str(spec_path)


def test_kill_9_of_a_run_and_of_its_resume_loses_and_repeats_nothing(tmp_path):
    """kill -9 leaves run.json at 'running' with no lock held: resume accepts it at once (the pid check alone
    could be fooled by a zombie or a reused pid), and a resume killed in turn is resumed the same way."""
    spec_path = write_spec(tmp_path, name="k9", limit=12, ms=30, sleep=True)
    run_dir = tmp_path / "runs" / "k"
    start = ["run", spec_path.name, "--runs-dir", "runs", "--run-id", "k", "--quiet", "--no-report"]
    resume = ["run", spec_path.name, "--resume", "runs/k", "--quiet", "--no-report"]
    for args, n_seen in ((start, 3), (resume, 8)):
        proc = tsglab_cli(*args, cwd=tmp_path)
        try:
            wait_for_events(run_dir, n_seen)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode == -signal.SIGKILL
        assert max(event_keys(run_dir).values()) == 1
        assert read_manifest(run_dir)["status"] == "incomplete"  # 'running' on disk, but nobody holds the lock
    done = subprocess.run([sys.executable, "-m", "tsglab", *resume], cwd=tmp_path, env=child_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    keys = event_keys(run_dir)
    assert sum(keys.values()) == 24
    assert max(keys.values()) == 1
