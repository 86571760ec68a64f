"""Notebook mode: one sweep point executed as a parameterised notebook under papermill.

The notebook receives the flat parameters every tsglab run notebook has (``spec``, ``runs_dir``, ``run_id``,
``resume``; see ``docs/notebooks.md``), runs the point's run directory ``points/<dirname>/`` itself, and the
executed copy is kept there as ``notebook.ipynb``. Two things make it safe to run many at once, in threads
or processes:

* **No port races.** A kernel started the usual way binds TCP ports that its manager picked as "free" a
  moment earlier; another kernel starting at the same time can take one in between. Each point's kernel
  talks over ZeroMQ ``ipc`` sockets in a directory made for that point alone, so there is nothing to race
  for.
* **No chdir.** papermill's ``cwd=`` changes the working directory of the whole process, which other
  threads share. Every path given to the notebook is absolute; the kernel process itself starts in the
  point's directory with ``TSGLAB_PROJECT_ROOT`` set in its environment (:mod:`tsglab.paths`), and the
  calling process's directory and environment are never touched.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tsglab.errors import RunError
from tsglab.events import read_manifest
from tsglab.paths import PROJECT_ROOT_ENV
from tsglab.sweep.point import PointOutcome, PointTask, one_line, worker_name

__all__ = ["EXECUTED_NOTEBOOK", "run_notebook_point"]

EXECUTED_NOTEBOOK = "notebook.ipynb"
# a unix socket path is limited to 107 bytes on Linux; ipc sockets are "<dir>/k-<n>"
_MAX_SOCKET_DIR = 90


def run_notebook_point(task: PointTask) -> PointOutcome:
    """Execute ``task.notebook`` for one point and say how the point's run ended.

    The outcome is ``complete`` or ``incomplete`` as the run directory's ``run.json`` says once the notebook
    has finished, and ``failed`` with one line when a cell raised, the kernel died or the notebook never
    produced a run. A KeyboardInterrupt propagates (the kernel is shut down on the way out).
    """
    started = time.monotonic()
    run_dir = Path(task.points_dir) / task.dirname

    def outcome(status: str, error: str = "") -> PointOutcome:
        return PointOutcome(point_id=task.point_id, status=status, error=error,
                            seconds=round(time.monotonic() - started, 3), worker=worker_name())

    if not task.notebook:
        return outcome("failed", f"point {task.point_id}: notebook mode needs the sweep's `notebook:` path.")
    try:
        _execute(task, run_dir)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 (a point's own failure is its outcome; the sweep goes on)
        return outcome("failed", _cell_error(exc))
    try:
        status = read_manifest(run_dir).get("status")
    except (RunError, OSError) as exc:
        return outcome("failed", f"the notebook ran but left no readable run in {run_dir}: {one_line(exc)}")
    if status == "complete":
        return outcome("complete")
    return outcome("incomplete", f"the run stopped with status {status!r}; the next sweep resumes it")


def _execute(task: PointTask, run_dir: Path) -> None:
    import papermill  # heavy, and only notebook mode needs it
    from traitlets.config import Config

    run_dir.mkdir(parents=True, exist_ok=True)
    parameters = {
        "spec": task.spec_path,
        "runs_dir": task.points_dir,
        "run_id": task.dirname,
        "resume": str(run_dir) if task.resume else None,
    }
    socket_dir = _socket_dir()
    config = Config({
        "KernelManager": {"transport": "ipc", "ip": os.path.join(socket_dir, "k")},
        "PointKernelManager": {"kernel_cwd": str(run_dir),
                               "kernel_env": {PROJECT_ROOT_ENV: task.project_root}},
    })
    try:
        # no cwd= here: papermill would os.chdir the whole process
        papermill.execute_notebook(
            task.notebook, str(run_dir / EXECUTED_NOTEBOOK), parameters=parameters,
            kernel_manager_class=_point_kernel_manager_class(), config=config,
            progress_bar=False, log_output=False,
        )
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)


def _socket_dir() -> str:
    """A fresh private directory for one kernel's ipc sockets, short enough for a unix socket path."""
    base = tempfile.gettempdir()
    if len(base) > _MAX_SOCKET_DIR - 20:
        base = "/tmp"  # a long TMPDIR (macOS, some CI runners) would overflow the socket path
    return tempfile.mkdtemp(prefix="tsglab-k-", dir=base)


@functools.cache
def _point_kernel_manager_class() -> Any:
    """The kernel manager nbclient creates (and shuts down) for a point: the stock asynchronous one, started
    in the point's directory with the project root in its environment. Built on first use so that importing
    this module does not import jupyter_client."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Dict, Unicode

    class PointKernelManager(AsyncKernelManager):
        kernel_cwd = Unicode("", config=True, help="working directory of the kernel process")
        kernel_env = Dict({}, config=True, help="variables added to the kernel's environment")

        # AsyncKernelManager itself declares start_kernel as an awaitable over the synchronous signature
        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            # given to the kernel's Popen: the parent's own directory and environment stay as they are
            kw["env"] = {**os.environ, **kw.get("env", {}), **self.kernel_env}
            if self.kernel_cwd:
                kw["cwd"] = self.kernel_cwd
            await super().start_kernel(**kw)

    return PointKernelManager


def _cell_error(exc: Exception) -> str:
    """One line; papermill's cell error is told as the cell and the notebook's own exception, not its
    multi-line banner."""
    ename = getattr(exc, "ename", None)
    if ename is None:
        return one_line(exc)
    text = f"notebook cell [{getattr(exc, 'exec_count', '?')}] raised {ename}: {getattr(exc, 'evalue', '')}"
    return " ".join(text.split())
