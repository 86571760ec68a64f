"""A full or read-only runs dir ends the run with one line naming the path, run.json left ``incomplete`` where it
can be written, and the run resumable without losing or repeating a request.

Tests may run as root, where chmod does not stop writes, so the disk is made full or read-only by patching
the write calls to raise the OSError the kernel would (the chmod test runs only when it can bite)."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from pathlib import Path

import pytest
from _rundir_helpers import event_keys, write_spec
from conftest import scripted_ladder

from tsglab.cli import main
from tsglab.config import load_spec
from tsglab.errors import RunError
from tsglab.events import read_manifest, synthetic_event
from tsglab.events.log import EventWriter
from tsglab.load.runner import run_experiment


def answer(request):
    return "The answer is 42 and it is positive."


def full_disk_after(monkeypatch, n_writes):
    """Event writes fail with ENOSPC after ``n_writes`` succeeded (nothing of the failed one reaches the file)."""
    original = EventWriter.write
    calls = {"n": 0}

    def write(self, event):
        calls["n"] += 1
        if calls["n"] > n_writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        original(self, event)

    monkeypatch.setattr(EventWriter, "write", write)


def manifest_writes_fail(monkeypatch, err=errno.ENOSPC):
    original = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith("run.json"):
            raise OSError(err, os.strerror(err), str(src))
        return original(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("mode", ["paced", "open_loop"])
def test_a_full_disk_mid_run_is_one_error_naming_the_file_and_the_run_resumes(tmp_path, monkeypatch, mode):
    spec = load_spec(write_spec(tmp_path, mode=mode, limit=8))
    full_disk_after(monkeypatch, 3)
    with pytest.raises(RunError, match=r"cannot write .*events.jsonl: \[Errno 28\] No space left on device.*"
                                       r"marked incomplete.*Free some space.*--resume") as info:
        run_experiment(spec, runs_dir=tmp_path / "runs", run_id="full", ladder=scripted_ladder(answer),
                       progress=False)
    assert "\n" not in str(info.value)
    run_dir = tmp_path / "runs" / "full"
    assert read_manifest(run_dir)["status"] == "incomplete"
    assert sum(event_keys(run_dir).values()) == 3
    monkeypatch.undo()
    result = run_experiment(spec, resume=run_dir, ladder=scripted_ladder(answer), progress=False)
    assert result.status == "complete"
    keys = event_keys(run_dir)
    assert sum(keys.values()) == 16
    assert max(keys.values()) == 1


def test_when_run_json_cannot_be_marked_either_the_message_says_so_and_resume_still_works(tmp_path, monkeypatch):
    spec = load_spec(write_spec(tmp_path, limit=8))
    result = None
    full_disk_after(monkeypatch, 3)
    original_replace = os.replace
    started = {"n": 0}

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith("run.json"):
            started["n"] += 1
            if started["n"] > 1:  # the start of the segment is written; its end is not
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
        return original_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(RunError, match=r"events.jsonl: \[Errno 28\].*run.json could not be updated either "
                                       r"\(\[Errno 28\].*it says 'running'; resume treats it as incomplete"):
        run_experiment(spec, runs_dir=tmp_path / "runs", run_id="full", ladder=scripted_ladder(answer),
                       progress=False)
    monkeypatch.undo()
    run_dir = tmp_path / "runs" / "full"
    assert read_manifest(run_dir)["status"] == "incomplete"  # nobody holds the lock
    result = run_experiment(spec, resume=run_dir, ladder=scripted_ladder(answer), progress=False)
    assert result.status == "complete"
    assert max(event_keys(run_dir).values()) == 1


def test_an_unwritable_run_json_at_start_stops_before_any_request(tmp_path, monkeypatch):
    spec = load_spec(write_spec(tmp_path))
    manifest_writes_fail(monkeypatch, errno.EROFS)
    calls = []
    with pytest.raises(RunError, match=r"cannot write .*run.json: \[Errno 30\] Read-only file system"):
        run_experiment(spec, runs_dir=tmp_path / "runs", run_id="ro",
                       ladder=scripted_ladder(lambda r: calls.append(r) or answer(r)), progress=False)
    assert calls == []
    assert not (tmp_path / "runs" / "ro" / "events.jsonl").exists()


def test_a_runs_dir_that_cannot_be_created_is_one_error_naming_it(tmp_path, monkeypatch):
    spec = load_spec(write_spec(tmp_path))
    original = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if "runs" in self.parts:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(RunError, match=r"cannot write .*runs.*Permission denied"):
        run_experiment(spec, runs_dir=tmp_path / "runs", run_id="ro", ladder=scripted_ladder(answer),
                       progress=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod; the patched tests above cover root")
def test_a_read_only_runs_dir_via_chmod(tmp_path):
    spec = load_spec(write_spec(tmp_path))
    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(RunError, match=r"cannot write .*runs"):
            run_experiment(spec, runs_dir=runs, run_id="ro", ladder=scripted_ladder(answer), progress=False)
    finally:
        runs.chmod(stat.S_IRWXU)


def test_cli_prints_one_line_for_a_full_disk(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec_path = write_spec(tmp_path, limit=4)
    full_disk_after(monkeypatch, 2)
    assert main(["run", str(spec_path), "--run-id", "full", "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tsglab: error: cannot write ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert read_manifest(tmp_path / "runs" / "full")["status"] == "incomplete"


def test_a_failed_write_or_background_fsync_raises_from_the_writer_naming_the_file(tmp_path, monkeypatch):
    """Write and fsync errors of the real writer name events.jsonl (a file object's errors name no file), and an
    fsync that fails in the group-commit thread is raised by the next write instead of dying as a thread."""
    thread_errors = []
    monkeypatch.setattr(threading, "excepthook", lambda hook_args: thread_errors.append(hook_args.exc_value))

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    writer = EventWriter(tmp_path, fsync_interval_s=0.01)
    writer.write(synthetic_event(f"p{0}", seq=0))
    monkeypatch.setattr(os, "fsync", full)
    writer.write(synthetic_event(f"p{1}", seq=1))  # marks the file dirty; the background fsync fails
    deadline = time.monotonic() + 5
    while writer._sync_error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(OSError, match="No space left") as raised:
        writer.write(synthetic_event(f"p{2}", seq=2))
    assert raised.value.filename == str(tmp_path / "events.jsonl")
    assert thread_errors == []
    with pytest.raises(OSError, match="No space left"):  # the disk is still full when the run closes the log
        writer.close()
    assert writer._file.closed

    direct = EventWriter(tmp_path / "direct")  # fsync per event
    with pytest.raises(OSError, match="No space left") as raised:
        direct.write(synthetic_event(f"p{0}", seq=0))
    assert raised.value.filename == str(tmp_path / "direct" / "events.jsonl")
    monkeypatch.undo()
    direct.close()
