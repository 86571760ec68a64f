"""One point of a sweep, run in whatever process an executor chose: a picklable task in, an outcome out.

:func:`run_point` never raises for the point's own failure (a backend that cannot be built, a bad spec, a
crash inside the run): it returns a ``failed`` outcome with the reason on one line, so one bad point never
stops a sweep. KeyboardInterrupt propagates: the run directory is then marked incomplete by the runner and
resumed on the next start. Workers never write ``point.json``: the driver does, from the outcome.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PointOutcome", "PointTask", "one_line", "run_point", "worker_name"]


@dataclass(frozen=True)
class PointTask:
    """What a worker needs to run one point (plain strings: it crosses process and machine boundaries)."""

    point_id: str
    dirname: str
    points_dir: str  # absolute
    spec_path: str  # absolute path of points/<dirname>/spec.yaml
    resume: bool  # the run dir exists and is incomplete
    mode: str  # "in-process" | "notebook"
    notebook: str | None  # absolute
    project_root: str  # absolute (notebook mode sets TSGLAB_PROJECT_ROOT for the kernel)


@dataclass(frozen=True)
class PointOutcome:
    """How one point ended: ``complete``, ``incomplete`` (resumable) or ``failed`` (with a one-line error)."""

    point_id: str
    status: str
    error: str
    seconds: float
    worker: str  # host:pid


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def one_line(exc: BaseException) -> str:
    """An exception as one line: its class (unless it is one of ours, whose messages are written for people)
    and its message with line breaks folded."""
    from tsglab.errors import TsglabError

    text = " ".join(str(exc).split())
    return text if isinstance(exc, TsglabError) and text else f"{type(exc).__name__}: {text}".rstrip(": ")


def run_point(task: PointTask) -> PointOutcome:
    """Run ``task`` (in-process through the runner, or its notebook through papermill) and say how it ended."""
    started = time.monotonic()
    try:
        if task.mode == "notebook":
            return _notebook_module().run_notebook_point(task)
        status, error = _run_in_process(task)
    except Exception as exc:  # noqa: BLE001 (a point's failure is its outcome; the sweep goes on)
        status, error = "failed", one_line(exc)
    return PointOutcome(task.point_id, status, error, round(time.monotonic() - started, 3), worker_name())


def _run_in_process(task: PointTask) -> tuple[str, str]:
    from tsglab.config import load_spec
    from tsglab.load.runner import run_experiment

    spec = load_spec(task.spec_path)
    run_dir = Path(task.points_dir) / task.dirname
    record = run_experiment(spec, runs_dir=task.points_dir, run_id=None if task.resume else task.dirname,
                            resume=run_dir if task.resume else None, progress=False)
    if record.status == "complete":
        return "complete", ""
    return record.status, (f"the run stopped with {record.n_events}/{record.n_planned} requests recorded; the "
                           "next start of the sweep resumes it")


def _notebook_module():
    """:mod:`tsglab.sweep.notebook`, or an error that says notebook mode is not available."""
    try:
        return importlib.import_module("tsglab.sweep.notebook")
    except ModuleNotFoundError as exc:
        if exc.name != "tsglab.sweep.notebook":
            raise
        from tsglab.errors import MissingDependencyError

        raise MissingDependencyError("mode: notebook needs tsglab.sweep.notebook, which this installation lacks; "
                                     "use mode: in-process, or update tsglab.") from None
