"""The run directory: its owner (a lock), its manifest (``run.json``), resuming, and one segment per start.

A run directory holds one experiment's append-only ``events.jsonl`` and its ``run.json``. Every start
of the runner — the first, and each ``--resume`` — is a *segment*: it takes the directory's lock
(:mod:`tsglab.events.lock`) *before* it looks at the manifest, appends a segment record, marks the run
``running`` while it goes, and ``complete`` or ``incomplete`` when it stops; the lock is held until then,
so a second run or resume of the same directory is refused with the holder's pid, host and start time.
``running`` in ``run.json`` with nobody holding the lock means the previous process died: resume accepts it.

Resuming checks that the spec is unchanged (its hash) and so is the suite file (its sha256), and skips every
(arm, prompt) already recorded. Names never escape the runs dir: the run id is a plain name
(:func:`tsglab.config.names.check_name`) and every path written must resolve inside the runs dir (a new run)
or inside the run directory (a resume), so a symlink planted there cannot redirect a write.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shlex
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsglab._version import __version__
from tsglab.config import ExperimentSpec, load_yaml
from tsglab.config.names import check_name
from tsglab.errors import RunError, SpecError
from tsglab.events import ENERGY_FILE, EVENTS_FILE, MANIFEST_FILE, read_events, read_manifest, write_manifest
from tsglab.events.lock import LOCK_FILE, RunLock

__all__ = ["RunDirectory", "check_inside", "disk_error_message", "now_iso", "resume_command"]

_RUN_FILES = (MANIFEST_FILE, EVENTS_FILE, ENERGY_FILE, LOCK_FILE)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def check_inside(path: Path, root: Path, *, what: str) -> Path:
    """``path`` resolved, if it lies inside ``root`` (symlinks followed); else a RunError naming both."""
    resolved, base = path.resolve(), root.resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise RunError(f"{path} resolves to {resolved}, outside the {what} {base}; tsglab writes only inside it. "
                       "Remove the link or choose another name.")
    return resolved


def disk_error_message(exc: OSError, fallback: Path, *, path: Path | None = None) -> str:
    """``cannot write PATH: [Errno N] reason`` for an OSError from the file system: ``path`` if given (e.g.
    ``run.json`` rather than its temp file), else the error's file name, else ``fallback``."""
    where = path if path is not None else (exc.filename if exc.filename is not None else fallback)
    return f"cannot write {where}: [Errno {exc.errno}] {exc.strerror or exc}"


def _jsonable(overrides: dict[str, Any] | None) -> dict[str, Any]:
    return json.loads(json.dumps(overrides or {}, default=str))


def _reads_back_as(text: str) -> bool:
    """Whether ``--set KEY=text`` gives back the string ``text`` (``1e3``, ``0o17``, ``true`` do not)."""
    try:
        return load_yaml(text, "--set") == text
    except SpecError:
        return False


def _set_words(overrides: dict[str, Any]) -> list[str]:
    """``--set KEY=VALUE`` words that parse back (with the CLI's strict YAML reader) to ``overrides``."""
    words = []
    for key, value in overrides.items():
        text = value if isinstance(value, str) and _reads_back_as(value) else json.dumps(value)
        words += ["--set", f"{key}={text}"]
    return words


def resume_command(spec: ExperimentSpec, run_dir: Path, overrides: dict[str, Any]) -> str:
    """The command line that continues ``run_dir``: the spec file, ``--resume`` and the run's ``--set`` values,
    quoted for a POSIX shell, so following it literally works."""
    source = spec.source if spec.source and Path(spec.source).is_file() else "SPEC"
    words = ["tsglab", "run", source, "--resume", str(run_dir), *_set_words(overrides)]
    return " ".join(shlex.quote(w) for w in words)


@dataclass
class RunDirectory:
    """One run directory during one segment: where it is, its manifest, what is already done, and its lock
    (held from :meth:`create` / :meth:`resume` until :meth:`release`)."""

    path: Path
    run_id: str
    segment: int
    manifest: dict[str, Any]
    done: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (arm, prompt id) recorded
    lock: RunLock | None = None

    @classmethod
    def create(cls, spec: ExperimentSpec, *, runs_dir: str | os.PathLike, run_id: str | None, suite_path: Path,
               n_planned: int, overrides: dict[str, Any] | None = None) -> RunDirectory:
        """A new run directory ``runs_dir/run_id``, locked (refused when it already holds events or another
        process holds it, or when the run id is not a plain name or the directory resolves outside ``runs_dir``)."""
        run_id = run_id if run_id is not None else f"{spec.name}-{dt.datetime.now().astimezone():%Y%m%d-%H%M%S}"
        runs_root = Path(runs_dir)
        check_name(run_id, key="run_id", where=str(runs_root))
        path = runs_root / run_id
        check_inside(path, runs_root, what="runs dir")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"{disk_error_message(exc, path)}; nothing was sent. Choose a writable --runs-dir.") from exc
        _check_run_files(path)
        lock = RunLock.acquire(path, purpose=f"tsglab run {run_id}")
        try:
            if (path / EVENTS_FILE).exists():
                raise RunError(f"{path} already holds events; pass resume={str(path)!r} (CLI: --resume) "
                               "to continue it, or choose another run id.")
            manifest = {
                "run_id": run_id,
                "spec_name": spec.name,
                "spec_hash": spec.spec_hash(),
                "spec": spec.to_dict(),
                "suite": str(suite_path),
                "suite_sha256": _file_sha(suite_path),
                "overrides": _jsonable(overrides),
                "arms": list(spec.arms),
                "ladder": list(spec.ladder),
                "n_planned": n_planned,
                "tsglab_version": __version__,
                "seed": spec.seed,
                "created": now_iso(),
                "segments": [],
            }
        except BaseException:
            lock.release()
            raise
        return cls(path, run_id, 0, manifest, lock=lock)

    @classmethod
    def resume(cls, spec: ExperimentSpec, path: str | os.PathLike, *, suite_path: Path | None = None,
               overrides: dict[str, Any] | None = None) -> RunDirectory:
        """The run directory ``path``, locked, to continue with the same spec and suite where it stopped."""
        path = Path(path)
        if not (path / MANIFEST_FILE).is_file() and not (path / MANIFEST_FILE).is_symlink():
            read_manifest(path)  # the error that says this is not a run directory
        _check_run_files(path)
        lock = RunLock.acquire(path, purpose=f"tsglab run --resume {path}")
        try:
            _remove_stale_temp_files(path)
            manifest = read_manifest(path)  # "running" here is stale: we hold the lock, its writer is gone
            if manifest.get("spec_hash") != spec.spec_hash():
                started = manifest.get("overrides") or {}
                hint = ""
                if started and started != _jsonable(overrides):
                    flags = " ".join(shlex.quote(w) for w in _set_words(started))
                    hint = (f" This run was started with {flags}; pass the same "
                            "--set values when resuming.")
                raise SpecError(f"{path}: the spec changed since this run started (hash "
                                f"{manifest.get('spec_hash')} → {spec.spec_hash()}); start a new run instead of "
                                f"resuming.{hint}")
            recorded_sha = manifest.get("suite_sha256")
            if suite_path is not None and recorded_sha is not None:
                current_sha = _file_sha(suite_path)
                if current_sha != recorded_sha:
                    raise SpecError(f"{path}: the suite file {suite_path} changed since this run started (sha256 "
                                    f"{recorded_sha} → {current_sha}); resuming would send other prompts under the "
                                    "same ids: restore the suite file this run started with, or start a new run "
                                    "with the new suite.")
            events = read_events(path)
        except BaseException:
            lock.release()
            raise
        done = frozenset((e.arm, e.prompt_id) for e in events)
        segment = max((e.segment for e in events), default=-1) + 1
        return cls(path, manifest["run_id"], segment, manifest, done, lock=lock)

    @property
    def overrides(self) -> dict[str, Any]:
        """The ``--set`` values the run was started with."""
        return dict(self.manifest.get("overrides") or {})

    def start_segment(self, n_remaining: int) -> None:
        """Mark the run ``running`` and append this segment's record; written before any request is sent."""
        self.manifest.update(status="running", pid=os.getpid(), host=socket.gethostname())
        self.manifest["segments"] = [*self.manifest.get("segments", []),
                                     {"segment": self.segment, "started": now_iso(), "n_remaining": n_remaining}]
        try:
            write_manifest(self.path, self.manifest)
        except OSError as exc:
            where = disk_error_message(exc, self.path, path=self.path / MANIFEST_FILE)
            raise RunError(f"{where}; nothing was sent. Free some space or make the directory writable, then run "
                           "again.") from exc

    def finish_segment(self, status: str, **figures: Any) -> None:
        """Record how the segment ended; ``figures`` (``energy``, ``load_generator``, ``load_ms``, ...) go to
        both the run and the segment record (the run-level value is the last segment's). An ``OSError``
        writing ``run.json`` propagates (the lock is released by :meth:`release` either way)."""
        for key, value in figures.items():
            if value is None:
                continue
            self.manifest[key] = value
            self.manifest["segments"][-1][key] = value
        self.manifest.update(status=status, pid=None, finished=now_iso())
        write_manifest(self.path, self.manifest)

    def release(self) -> None:
        """Give the directory up (idempotent)."""
        if self.lock is not None:
            self.lock.release()


def _check_run_files(path: Path) -> None:
    """Every file the runner writes in ``path`` must resolve inside it (no symlink out of the run directory)."""
    for name in _RUN_FILES:
        target = path / name
        if target.is_symlink() or target.exists():
            check_inside(target, path, what="run directory")


def _remove_stale_temp_files(path: Path) -> None:
    """Temp files of ``run.json`` left by a process killed mid-write (only the lock holder writes the manifest,
    so under the lock every one of them is stale)."""
    for tmp in path.glob(f"{MANIFEST_FILE}.*.tmp"):
        if tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
