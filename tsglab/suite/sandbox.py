"""Run a check program against an answer in a sandboxed Python subprocess.

Code answers are scored by running them, so the code a model wrote runs on the machine that scores it.
:func:`run_sandboxed` runs a check program (built by the checks from the item's tests and the answer)
in a child interpreter that is:

- **isolated**: ``python -I -S -B`` (no environment variables, no site-packages, no user site, no
  script directory on ``sys.path``), an empty environment, a fresh temporary directory as its working
  directory (removed afterwards) holding only the item's ``files``;
- **limited**: CPU time (``RLIMIT_CPU``), address space (``RLIMIT_AS``), file size (``RLIMIT_FSIZE``),
  open files, no core dumps, no new processes (``RLIMIT_NPROC``), and a wall-clock timeout after which
  its whole process group is killed;
- **fenced** by an audit hook (``sys.addaudithook``, installed before the answer runs and impossible
  to remove) that refuses every ``socket.*`` event (no network), opening a file for writing, removing,
  renaming or creating anything outside the temp dir, starting processes (``subprocess``, ``os.system``,
  ``exec``, ``fork``, ``spawn``) and loading ``ctypes``.

The verdict comes back on a private pipe (the answer's own output goes to a bounded buffer), tagged with
a random nonce handed over on stdin, so an answer cannot pass by printing "PASS" or by exiting early
(an early exit is a failure).

This is a guard against accidents and against answers that game a check, not a security boundary:
there is no kernel isolation (namespaces, seccomp) here, and code written on purpose to attack the
harness (reading the nonce out of the interpreter's memory, say) could forge a verdict. Run suites only
with models whose answers you would run on your own machine.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass

from tsglab.errors import InvalidArgument, SandboxError

_BOOTSTRAP = pathlib.Path(__file__).with_name("_sandbox_boot.py")
_RESULT_BYTES = 4096


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run: wall clock and CPU seconds, memory and file size in MiB."""

    timeout_s: float = 5.0
    cpu_s: int = 3
    memory_mb: int = 512
    file_size_mb: int = 4

    def __post_init__(self) -> None:
        for name in ("timeout_s", "cpu_s", "memory_mb", "file_size_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidArgument(f"SandboxLimits.{name} must be a positive number; got {value!r}.")
        if not isinstance(self.cpu_s, int) or not isinstance(self.memory_mb, int) or not isinstance(
                self.file_size_mb, int):
            raise InvalidArgument("SandboxLimits.cpu_s, memory_mb and file_size_mb must be integers.")


DEFAULT_LIMITS = SandboxLimits()


@dataclass(frozen=True)
class SandboxResult:
    """Verdict of one run: ``passed`` only when the check program ran to its end without an exception."""

    passed: bool
    detail: str
    timed_out: bool
    wall_s: float


def run_sandboxed(
    program: str, *, files: Mapping[str, str] | None = None, limits: SandboxLimits = DEFAULT_LIMITS
) -> SandboxResult:
    """Run the Python check ``program`` in the sandbox; ``files`` are written into its temp dir first.

    The program passes when it runs to its end; a failed ``assert`` (or any exception, ``SystemExit``
    included), a timeout, a crash or a kill by a resource limit is a failure whose reason is in
    ``detail``. Raises :class:`~tsglab.errors.SandboxError` only when the sandbox itself cannot start.
    """
    if not isinstance(program, str):
        raise InvalidArgument(f"run_sandboxed() needs the program as str; got {type(program).__name__}.")
    if not isinstance(limits, SandboxLimits):
        raise InvalidArgument(f"limits must be a SandboxLimits; got {type(limits).__name__}.")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tsglab-sandbox-") as workdir:
        root = pathlib.Path(workdir)
        for name, text in (files or {}).items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        (root / "_program.py").write_text(program, encoding="utf-8")
        nonce = secrets.token_hex(16)
        read_fd, write_fd = os.pipe()
        try:
            process = _start(root, limits, write_fd)
        except OSError as exc:
            os.close(read_fd)
            raise SandboxError(f"the sandbox could not start {sys.executable} ({exc}); check that the Python "
                               "interpreter running tsglab can be executed.") from exc
        finally:
            os.close(write_fd)
        try:
            timed_out = _wait(process, f"{nonce} {write_fd}", limits.timeout_s)
            verdict = _read_verdict(read_fd)
        finally:
            os.close(read_fd)
            stderr = process.stderr.read(2000).decode("utf-8", "replace") if process.stderr else ""
            if process.stderr:
                process.stderr.close()
    wall_s = time.monotonic() - started
    if timed_out:
        return SandboxResult(False, f"timed out after {limits.timeout_s:g} s", True, wall_s)
    prefix = f"{nonce} "
    if verdict.startswith(prefix + "PASS"):
        return SandboxResult(True, "passed", False, wall_s)
    if verdict.startswith(prefix + "FAIL "):
        return SandboxResult(False, verdict[len(prefix) + 5:].strip(), False, wall_s)
    return SandboxResult(False, _died(process.returncode, stderr), False, wall_s)


def _start(root: pathlib.Path, limits: SandboxLimits, write_fd: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-I", "-S", "-B", "-X", "utf8", str(_BOOTSTRAP),
               str(limits.cpu_s), str(limits.memory_mb), str(limits.file_size_mb)]
    return subprocess.Popen(command, cwd=root, env={}, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, pass_fds=(write_fd,), start_new_session=True)


def _wait(process: subprocess.Popen[bytes], handover: str, timeout_s: float) -> bool:
    """Hand the nonce and the result descriptor's number over, then wait; True when killed at the deadline."""
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError, OSError):
        process.stdin.write(f"{handover}\n".encode())
        process.stdin.close()
    try:
        process.wait(timeout=timeout_s)
        return False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def _read_verdict(read_fd: int) -> str:
    chunks: list[bytes] = []
    while sum(len(chunk) for chunk in chunks) < _RESULT_BYTES:
        ready, _, _ = select.select([read_fd], [], [], 0.5)
        if not ready:
            break
        chunk = os.read(read_fd, _RESULT_BYTES)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace").split("\n", 1)[0]


def _died(returncode: int | None, stderr: str) -> str:
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
        reason = {"SIGXCPU": "CPU time limit", "SIGKILL": "killed (memory or CPU limit)",
                  "SIGXFSZ": "file size limit"}.get(name, name)
        return f"the answer's process died ({reason}) before the check finished"
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return f"the answer's process ended (exit {returncode}) before the check finished" + (
        f": {last[:200]}" if last else "")
