"""A run directory belongs to one process: the lock is taken before the status check and held for the run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _rundir_helpers import InterruptAt, answer, event_keys, tsglab_cli, wait_for_events, write_spec
from conftest import scripted_ladder

from tsglab.config import load_spec
from tsglab.errors import RunError
from tsglab.events import read_events, read_manifest, write_manifest
from tsglab.load.runner import run_experiment


def interrupted_run(tmp_path, limit=10):
    """An incomplete run directory (Ctrl-C after a few requests) and its spec."""
    spec = load_spec(write_spec(tmp_path, limit=limit))
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, runs_dir=tmp_path / "runs", run_id="r", ladder=scripted_ladder(InterruptAt(4)),
                       progress=False)
    run_dir = tmp_path / "runs" / "r"
    assert read_manifest(run_dir)["status"] == "incomplete"
    return spec, run_dir


def test_two_resumes_started_together_one_proceeds_and_nothing_is_duplicated(tmp_path):
    spec, run_dir = interrupted_run(tmp_path)
    n_before = len(read_events(run_dir))
    outcomes: dict[int, object] = {}
    barrier = threading.Barrier(2)

    def resume(k):
        barrier.wait()
        try:
            # sleeping backends: the first resume holds the directory while the second starts
            outcomes[k] = run_experiment(spec, resume=run_dir, ladder=scripted_ladder(answer, sleep=True,
                                                                                       prompt_ms=100),
                                         progress=False)
        except RunError as exc:
            outcomes[k] = exc

    threads = [threading.Thread(target=resume, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    errors = [o for o in outcomes.values() if isinstance(o, RunError)]
    assert len(errors) == 1, outcomes
    assert f"pid {os.getpid()}" in str(errors[0])
    assert "in use" in str(errors[0])
    keys = event_keys(run_dir)
    assert max(keys.values()) == 1
    assert sum(keys.values()) == 20 > n_before
    assert read_manifest(run_dir)["status"] == "complete"


def test_two_resume_processes_race_exactly_one_proceeds(tmp_path):
    spec_path = write_spec(tmp_path, name="race", limit=12, ms=150, sleep=True)
    first = tsglab_cli("run", str(spec_path), "--runs-dir", "runs", "--run-id", "race", "--quiet", "--no-report",
                       cwd=tmp_path)
    run_dir = tmp_path / "runs" / "race"
    try:
        wait_for_events(run_dir, 3)
        first.send_signal(2)  # Ctrl-C
        first.communicate(timeout=30)
    finally:
        first.kill()
    assert read_manifest(run_dir)["status"] == "incomplete"
    n_before = len(read_events(run_dir))
    racers = [tsglab_cli("run", str(spec_path), "--resume", str(run_dir), "--quiet", "--no-report", cwd=tmp_path)
              for _ in range(2)]
    results = []
    for proc in racers:
        try:
            out, err = proc.communicate(timeout=90)
        finally:
            proc.kill()
        results.append((proc.returncode, out, err))
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 2], results
    refused = next(err for rc, _, err in results if rc == 2)
    assert "is in use by pid" in refused
    assert socket.gethostname() in refused
    assert refused.count("\n") == 1  # one line, no traceback
    keys = event_keys(run_dir)
    assert max(keys.values()) == 1
    assert sum(keys.values()) == 24 > n_before
    assert read_manifest(run_dir)["status"] == "complete"


def test_a_held_lock_refuses_run_and_resume_naming_the_holder(tmp_path):
    from tsglab.events.lock import RunLock

    spec, run_dir = interrupted_run(tmp_path)
    with RunLock.acquire(run_dir, purpose="test holder"):
        assert read_manifest(run_dir)["status"] == "incomplete"
        with pytest.raises(RunError, match=rf"is in use by pid {os.getpid()} on {socket.gethostname()}, "
                                           r"since \d{4}-\d\d-\d\dT.*test holder"):
            run_experiment(spec, resume=run_dir, ladder=scripted_ladder(answer), progress=False)
        with pytest.raises(RunError, match="is in use by pid"):
            run_experiment(spec, runs_dir=tmp_path / "runs", run_id="r", ladder=scripted_ladder(answer),
                           progress=False)
    # released: the resume proceeds
    result = run_experiment(spec, resume=run_dir, ladder=scripted_ladder(answer), progress=False)
    assert result.status == "complete"


def test_running_in_run_json_without_the_lock_means_the_holder_died(tmp_path):
    """pid reuse: run.json names a live process (here: this one) but nobody holds the lock."""
    spec, run_dir = interrupted_run(tmp_path)
    manifest = read_manifest(run_dir)
    manifest.update(status="running", pid=os.getpid())
    write_manifest(run_dir, manifest)
    stale_tmp = run_dir / "run.json.999999.1.tmp"  # left by a writer killed mid-write
    stale_tmp.write_text("{")
    assert read_manifest(run_dir)["status"] == "incomplete"  # no lock held: the writer of "running" is gone
    result = run_experiment(spec, resume=run_dir, ladder=scripted_ladder(answer), progress=False)
    assert result.status == "complete"
    assert max(event_keys(run_dir).values()) == 1
    assert not stale_tmp.exists()


def test_a_zombie_pid_in_run_json_does_not_block_resume(tmp_path):
    spec, run_dir = interrupted_run(tmp_path)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 20
        while Path(f"/proc/{zombie.pid}/stat").read_text().split()[2] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        manifest = read_manifest(run_dir)
        manifest.update(status="running", pid=zombie.pid)
        write_manifest(run_dir, manifest)
        result = run_experiment(spec, resume=run_dir, ladder=scripted_ladder(answer), progress=False)
    finally:
        zombie.wait()
    assert result.status == "complete"


def test_a_failure_before_the_run_starts_releases_the_lock(tmp_path, monkeypatch):
    from tsglab.events.lock import is_locked
    from tsglab.load import runner

    spec, run_dir = interrupted_run(tmp_path)

    def no_ladder(_spec):
        raise RuntimeError("ladder cannot be built")

    monkeypatch.setattr(runner, "build_ladder", no_ladder)
    with pytest.raises(RuntimeError, match="ladder cannot be built"):
        run_experiment(spec, resume=run_dir, progress=False)
    assert not is_locked(run_dir)
    assert run_experiment(spec, resume=run_dir, ladder=scripted_ladder(answer), progress=False).status == "complete"
    assert not is_locked(run_dir)


def test_manifest_temp_files_are_unique_per_writer(tmp_path):
    """Two writers of one run.json never share a temp file (one rename would steal the other's)."""
    failures = []
    manifest = {"run_id": "t", "status": "incomplete", "padding": "x" * 20_000}

    def writer():
        try:
            for _ in range(300):
                write_manifest(tmp_path, manifest)
        except OSError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert read_manifest(tmp_path)["run_id"] == "t"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no temp file left behind
