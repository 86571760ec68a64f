"""The run directory on disk: an append-only ``events.jsonl`` and a ``run.json`` manifest.

Each event is written and flushed to the operating system as soon as its request completes, so a
crash of the Python process (an exception, Ctrl-C, ``kill -9``) loses at most the requests in
flight. Durability against an operating-system crash or power loss depends on the writer's
``fsync_interval_s``: 0 (the default, used by paced runs) fsyncs every event, so such a crash loses
at most the event being written; a positive interval (open-loop runs use
:data:`GROUP_COMMIT_INTERVAL_S`) fsyncs from a background thread at most that often (group commit),
so it loses at most the events completed in the last interval plus one fsync's duration — and
nothing at all if the run ends normally, since ``close()`` fsyncs. The manifest says ``running``
while a run goes, ``complete`` or ``incomplete`` after; a manifest left at ``running`` by a killed
process reads as incomplete. A torn last line (a crash mid-write) is dropped on reading, with a
warning. An event whose latency is NaN, infinite, negative or missing is refused on reading, with the
file, the line and the field (:mod:`tsglab.events.validate`).
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tsglab.errors import RunError, TsglabWarning
from tsglab.events.validate import check_latencies

SCHEMA_VERSION = 1
EVENTS_FILE = "events.jsonl"
MANIFEST_FILE = "run.json"
# fsync every 200 ms at most: one fsync costs 0.2-0.5 ms on the 2-core build machine, too much per event at
# 500 req/s when it sits in the writer lock (benchmarks/results/bench_load.md)
GROUP_COMMIT_INTERVAL_S = 0.2


class EventWriter:
    """Appends one JSON object per line, flushed per event; fsync'ed per event (``fsync_interval_s=0``)
    or at most every ``fsync_interval_s`` seconds by a background thread (group commit). See the
    module docstring for what each setting can lose in a crash. ``write`` is not thread-safe: callers
    that write from several threads hold their own lock."""

    def __init__(self, run_dir: str | os.PathLike, *, fsync_interval_s: float = 0.0) -> None:
        if fsync_interval_s < 0:
            raise ValueError(f"`fsync_interval_s` must be >= 0 seconds; got {fsync_interval_s}.")
        self.path = Path(run_dir) / EVENTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(self.path)
        self._file = self.path.open("a", encoding="utf-8")
        self.fsync_interval_s = fsync_interval_s
        self._dirty = threading.Event()
        self._closing = threading.Event()
        self._syncer: threading.Thread | None = None
        if fsync_interval_s > 0:
            self._syncer = threading.Thread(target=self._sync_loop, name="tsglab-event-fsync", daemon=True)
            self._syncer.start()

    def write(self, event: dict[str, Any]) -> None:
        self._file.write(json.dumps(event, ensure_ascii=False, allow_nan=True) + "\n")
        self._file.flush()
        if self._syncer is None:
            os.fsync(self._file.fileno())
        else:
            self._dirty.set()

    def _sync_loop(self) -> None:
        fd = self._file.fileno()
        while not self._closing.wait(self.fsync_interval_s):
            if self._dirty.is_set():
                self._dirty.clear()  # cleared first: a write during the fsync marks the file dirty again
                os.fsync(fd)

    def close(self) -> None:
        if self._file.closed:
            return
        if self._syncer is not None:
            self._closing.set()
            self._syncer.join()
            self._file.flush()
            os.fsync(self._file.fileno())
        self._file.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line without its newline (a write interrupted by a crash) before appending."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    with path.open("r+b") as handle:
        handle.truncate(cut)
    warnings.warn(f"{path}: dropped a torn last line ({len(data) - cut} bytes) left by an interrupted write.",
                  TsglabWarning, stacklevel=3)


def read_events(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """All events of a run; a torn last line is skipped with a warning, any other bad line is an error
    (including a NaN, infinite, negative or missing latency: the error names the file, line and field)."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.is_file():
        raise RunError(f"{run_dir}: no {EVENTS_FILE}; is this a tsglab run directory (runs/<run_id>)?")
    return list(_iter_events(path))


def _iter_events(path: Path) -> Iterator[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    torn_tail = lines[-1] != ""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            if torn_tail and lineno == len(lines):
                warnings.warn(f"{path}:{lineno}: skipped a torn last line (interrupted write).", TsglabWarning,
                              stacklevel=3)
                return
            raise RunError(f"{path}:{lineno}: not valid JSON ({exc.msg}); the event log is corrupt.") from exc
        version = event.get("schema_version")
        if version != SCHEMA_VERSION:
            raise RunError(f"{path}:{lineno}: field 'schema_version' is {version!r}; this tsglab reads "
                           f"version {SCHEMA_VERSION}.")
        check_latencies(event, where=f"{path}:{lineno}", require_latency=False)
        yield event


def write_manifest(run_dir: str | os.PathLike, manifest: dict[str, Any]) -> None:
    """Atomically replace ``run.json`` (write to a temp file, then rename)."""
    path = Path(run_dir) / MANIFEST_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / MANIFEST_FILE
    if not path.is_file():
        raise RunError(f"{run_dir}: no {MANIFEST_FILE}; is this a tsglab run directory (runs/<run_id>)?")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: not valid JSON ({exc.msg}).") from exc
    if manifest.get("status") == "running" and not _pid_alive(manifest.get("pid")):
        manifest["status"] = "incomplete"
    return manifest


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
