"""The sandbox that runs code answers: isolation, limits, and a verdict the answer cannot forge."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

import tsglab.suite.sandbox as sandbox_module
from tsglab.errors import InvalidArgument, SandboxError
from tsglab.suite import SandboxLimits, run_sandboxed

FAST = SandboxLimits(timeout_s=4.0, cpu_s=2, memory_mb=256)


def test_a_passing_and_a_failing_program() -> None:
    assert run_sandboxed("assert 1 + 1 == 2").passed
    failed = run_sandboxed("assert 1 + 1 == 3, 'arithmetic'")
    assert not failed.passed
    assert failed.detail == "AssertionError: arithmetic"


def test_the_network_is_refused() -> None:
    for program in ("import socket", "import _socket", "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9')"):
        result = run_sandboxed(program, limits=FAST)
        assert not result.passed
        assert "PermissionError: sandbox:" in result.detail, result.detail


def test_writes_outside_the_temp_dir_are_refused_and_inside_allowed(tmp_path: Path) -> None:
    target = tmp_path / "outside.txt"
    result = run_sandboxed(f"open({str(target)!r}, 'w').write('x')", limits=FAST)
    assert not result.passed
    assert "writing outside the temp dir is refused" in result.detail
    assert not target.exists()
    for program in (f"import os\nos.remove({str(tmp_path)!r})", f"import shutil\nshutil.rmtree({str(tmp_path)!r})"):
        assert not run_sandboxed(program, limits=FAST).passed
    assert tmp_path.exists()
    inside = run_sandboxed("open('here.txt', 'w').write('x')\nassert open('here.txt').read() == 'x'", limits=FAST)
    assert inside.passed, inside.detail


def test_processes_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for program in (f"import os\nos.system('touch {marker}')",
                    f"import subprocess\nsubprocess.run(['touch', '{marker}'])",
                    "import os\nos.fork()", "import ctypes"):
        result = run_sandboxed(program, limits=FAST)
        assert not result.passed, program
        assert "refused" in result.detail, result.detail
    assert not marker.exists()


def test_the_environment_is_empty_and_the_cwd_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSGLAB_SECRET_FOR_TEST", "hunter2")
    program = ("import os, sys\nassert dict(os.environ) == {}, dict(os.environ)\n"
               "assert sorted(os.listdir('.')) == ['given.txt'], os.listdir('.')\n"
               "assert open('given.txt').read() == 'data'\nassert sys.flags.isolated and sys.flags.no_site")
    result = run_sandboxed(program, files={"given.txt": "data"}, limits=FAST)
    assert result.passed, result.detail


def test_a_endless_loop_is_stopped_in_seconds() -> None:
    started = time.monotonic()
    result = run_sandboxed("while True:\n    pass", limits=SandboxLimits(timeout_s=1.5, cpu_s=1))
    assert not result.passed
    assert time.monotonic() - started < 5.0
    assert result.timed_out or "CPU time limit" in result.detail, result.detail


def test_a_sleeping_answer_hits_the_wall_clock_timeout() -> None:
    result = run_sandboxed("import time\ntime.sleep(30)", limits=SandboxLimits(timeout_s=1.0))
    assert result.timed_out
    assert result.detail == "timed out after 1 s"


def test_memory_is_limited() -> None:
    result = run_sandboxed("x = bytearray(1024 * 1024 * 1024)", limits=FAST)
    assert not result.passed
    assert "MemoryError" in result.detail or "died" in result.detail, result.detail


@pytest.mark.parametrize("program", [
    "print('PASS')\nraise AssertionError('x')",
    "import sys\nsys.exit(0)",
    "import os\nos._exit(0)",
    "import os\nos.write(1, b'PASS\\n')\nos._exit(0)",
    ("import os\nfor fd in range(3, 20):\n    try:\n        os.write(fd, b'0 PASS\\n')\n    except OSError:\n"
     "        pass\nos._exit(0)"),
])
def test_the_verdict_cannot_be_forged_by_printing_or_exiting(program: str) -> None:
    assert not run_sandboxed(program, limits=FAST).passed


def test_limits_are_validated() -> None:
    with pytest.raises(InvalidArgument, match=r"SandboxLimits\.timeout_s must be a positive number; got 0"):
        SandboxLimits(timeout_s=0)
    with pytest.raises(InvalidArgument, match=r"cpu_s, memory_mb and file_size_mb must be integers"):
        SandboxLimits(cpu_s=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"run_sandboxed\(\) needs the program as str; got bytes"):
        run_sandboxed(b"assert True")  # type: ignore[arg-type]


def test_a_sandbox_that_cannot_start_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sandbox_module.sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(SandboxError, match=r"the sandbox could not start .*no-python"):
        run_sandboxed("assert True")


def test_the_temp_dir_is_removed() -> None:
    program = "import os\nopen('left.txt', 'w').write(os.getcwd())\nassert False, os.getcwd()"
    result = run_sandboxed(program, limits=FAST)
    workdir = result.detail.removeprefix("AssertionError: ")
    assert workdir.startswith(os.path.realpath(os.path.dirname(workdir)))
    assert not os.path.exists(workdir)
    assert sys.executable  # the parent's interpreter is untouched
