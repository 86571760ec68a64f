"""The sweep directory: its layout, its lock, the state of each point, and ``sweep.json``.

::

    <sweeps_dir>/<name>/
      sweep.json          the plan and how the last start went (rewritten atomically)
      run.lock            held by the driver for the whole sweep (:mod:`tsglab.events.lock`)
      points/<dirname>/   one ordinary run directory per point (run id = dirname), plus
        spec.yaml         the resolved spec the point runs
        point.json        status, worker, times, error, attempts (written by the driver only)

A point is **done** when its run's ``run.json`` says ``complete``; **failed** when its ``point.json`` says
so; **incomplete** when the run directory holds a ``run.json`` that is not complete (resumed next time);
else **pending**. The key is in the folder name, so a point whose values changed gets a new folder and a
new run. Points that differ only in report settings share the run of the first of them
(:meth:`tsglab.sweep.plan.Sweep.run_dirname`).

The lock is the run directory's lock (one module owns locking), so its file is ``run.lock``: the kernel
releases it when the driver exits however it exits, and :func:`is_running` asks whether a sweep holds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import yaml

from tsglab._version import __version__
from tsglab.errors import RunError
from tsglab.events import MANIFEST_FILE
from tsglab.events.lock import LOCK_FILE, RunLock, is_locked, lock_holder
from tsglab.events.log import write_json_atomic
from tsglab.load.rundir import now_iso
from tsglab.sweep.plan import Sweep, SweepPoint

__all__ = ["DONE", "FAILED", "INCOMPLETE", "LOCK_FILE", "PENDING", "POINTS_DIR", "POINT_FILE", "SPEC_FILE",
           "STATES", "SWEEP_FILE", "SweepStore", "classify", "is_running", "point_states", "read_json",
           "sweep_root", "write_json"]

SWEEP_FILE = "sweep.json"
POINTS_DIR = "points"
POINT_FILE = "point.json"
SPEC_FILE = "spec.yaml"
DONE, INCOMPLETE, FAILED, PENDING = "done", "incomplete", "failed", "pending"
STATES = (DONE, INCOMPLETE, FAILED, PENDING)


def sweep_root(sweeps_dir: str | os.PathLike, name: str) -> Path:
    return Path(sweeps_dir) / name


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically (:func:`tsglab.events.log.write_json_atomic`; paths and dates as text)."""
    write_json_atomic(path, data, default=str)


def read_json(path: Path) -> dict[str, Any] | None:
    """The mapping in ``path``, or None when the file does not exist."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: cannot read it ({exc}); it is written atomically, so something else changed it. "
                       "Delete it to let the sweep rebuild it.") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: expected a JSON object; got {type(data).__name__}. Delete it to let the sweep "
                       "rebuild it.")
    return data


def classify(point_dir: Path) -> str:
    """The state of the point whose run lives in ``point_dir``: done, failed, incomplete or pending."""
    manifest = read_json(point_dir / MANIFEST_FILE)
    if manifest is not None and manifest.get("status") == "complete":
        return DONE
    state = read_json(point_dir / POINT_FILE) or {}
    if state.get("status") == FAILED:
        return FAILED
    return INCOMPLETE if manifest is not None else PENDING


def is_running(root: str | os.PathLike) -> bool:
    """Whether a sweep holds the lock of the sweep directory ``root`` now."""
    return is_locked(root)


def point_states(root: str | os.PathLike) -> dict[str, str]:
    """Each point of the sweep in ``root`` (as ``sweep.json`` lists them) and its state."""
    root = Path(root)
    plan = read_json(root / SWEEP_FILE)
    if plan is None:
        raise RunError(f"{root}: no {SWEEP_FILE}; is this a sweep directory (runs/sweeps/<name>)? Run the sweep "
                       "first: tsglab sweep FILE.")
    return {entry["point_id"]: classify(root / POINTS_DIR / entry["run_dirname"]) for entry in plan["points"]}


class SweepStore:
    """One sweep directory while a driver owns it (the lock is held from :meth:`open` until :meth:`release`)."""

    def __init__(self, root: Path, lock: RunLock) -> None:
        self.root, self._lock = root, lock

    @classmethod
    def open(cls, root: str | os.PathLike, *, purpose: str) -> SweepStore:
        """Create ``root`` if needed and lock it; a second sweep on the same directory is refused in one line."""
        root = Path(root)
        try:
            (root / POINTS_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create {root / POINTS_DIR}: [Errno {exc.errno}] {exc.strerror}; choose a "
                           "writable --sweeps-dir.") from None
        try:
            lock = RunLock.acquire(root, purpose=purpose)
        except RunError:
            if not is_locked(root):
                raise
            holder = lock_holder(root) or {}
            who = (f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}" if holder
                   else "another process")
            stop = f" (kill {holder.get('pid')})" if holder.get("host") == socket.gethostname() else ""
            raise RunError(f"{root} is in use by another sweep: {who}; a sweep directory belongs to one process at a "
                           f"time. Wait for it to finish, or stop it{stop} and run the sweep again: finished points "
                           "are kept.") from None
        return cls(root, lock)

    @property
    def points_dir(self) -> Path:
        return self.root / POINTS_DIR

    def point_dir(self, dirname: str) -> Path:
        return self.points_dir / dirname

    def write_sweep(self, sweep: Sweep, **fields: Any) -> None:
        """``sweep.json``: the plan (every point, with the folder of its run) and ``fields`` (executor, started,
        finished, status...)."""
        source = sweep.source.resolve()
        points = [{"point_id": p.point_id, "dirname": p.dirname, "run_dirname": sweep.run_dirname(p), "key": p.key,
                   "params": p.params, "replicate": p.replicate, "seed": p.seed, "report": p.report}
                  for p in sweep.points]
        write_json(self.root / SWEEP_FILE, {
            "name": sweep.name, "source": str(source), "source_sha256": _file_sha256(source),
            "tsglab": __version__, "mode": sweep.mode, "notebook": str(sweep.notebook) if sweep.notebook else None,
            "varied": list(sweep.varied), "baseline_arm": sweep.baseline_arm, "gateway_arm": sweep.gateway_arm,
            "reference": sweep.reference,
            "compare": {"baseline_arm": sweep.baseline_arm, "gateway_arm": sweep.gateway_arm,
                        "reference": sweep.reference},
            "points": points, **fields})

    def write_spec(self, point: SweepPoint) -> Path:
        """``points/<dirname>/spec.yaml``: the resolved spec the point runs (rewritten only when it changed)."""
        folder = self.point_dir(point.dirname)
        folder.mkdir(exist_ok=True)
        path = folder / SPEC_FILE
        text = yaml.safe_dump(point.spec, sort_keys=False, allow_unicode=True, default_flow_style=False)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            tmp = path.with_name(f"{SPEC_FILE}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        return path

    def state(self, sweep: Sweep, point: SweepPoint) -> str:
        return classify(self.point_dir(sweep.run_dirname(point)))

    def read_point(self, dirname: str) -> dict[str, Any]:
        return read_json(self.point_dir(dirname) / POINT_FILE) or {}

    def write_point(self, dirname: str, **fields: Any) -> dict[str, Any]:
        """Update ``points/<dirname>/point.json`` with ``fields``; returns the new content."""
        state = {**self.read_point(dirname), **fields, "updated": now_iso()}
        write_json(self.point_dir(dirname) / POINT_FILE, state)
        return state

    def release(self) -> None:
        self._lock.release()


def _file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:  # a Sweep built in memory may name a file that is gone; the plan is in sweep.json anyway
        return None
