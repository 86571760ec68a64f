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
process reads as incomplete.

Torn lines are decided on bytes, by one rule (:func:`split_torn_tail`): a line is complete only when it
ends with ``b"\n"``. Whatever follows the last newline is a torn tail (a crash or a full disk
mid-write), even when it happens to be valid JSON: the reader skips it with a warning, so resume does
not count its request as recorded and sends it again; the writer, opening the file to append, copies
the torn bytes to ``events.jsonl.torn`` and cuts them off, never a complete line. So a torn tail can
neither lose a request nor duplicate one, and no reader decodes half a UTF-8 character.

Every line is validated against the typed record (:mod:`tsglab.events.record`) on reading, and an
error names the file, the line and the field; a latency that is NaN, infinite, negative or missing
gets the precise message of :mod:`tsglab.events.validate`. Version-1 lines are converted.

``events.jsonl`` is append-only: nothing rewrites it after a line is written. Energy, which can only
be apportioned once a segment ends, goes to a sidecar ``energy.jsonl`` (one :class:`EnergyEntry` per
request, appended, flushed and fsync'ed by :func:`append_energy`); :func:`read_events` joins it onto
the events, and an event without a sidecar entry keeps the ``energy`` it was written with ("pending"
or why it was not measured). When a request has several sidecar entries (energy attached again), the
last one wins.

Reading is fast when the file is clean: msgspec decodes and validates the whole file in one call,
with the cyclic garbage collector paused (20 000 events, 41 MB: 0.4-0.5 s of CPU on the 2-core build
machine, 0.6-0.7 s when every event has a sidecar entry to join; the version-1 reader, ``json`` plus
the latency checks, took 1.1-1.5 s). Only a file with a problem, or version-1 lines, is walked line by
line (a 20 000-event version-1 log: 1.0-1.1 s).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import threading
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import msgspec

from tsglab.errors import InvalidArgument, RunError, TsglabWarning
from tsglab.events.lock import LOCK_FILE, is_locked
from tsglab.events.record import SCHEMA_VERSION, EnergyEntry, Event, record_error
from tsglab.events.validate import check_latencies

__all__ = [
    "ENERGY_FILE",
    "EVENTS_FILE",
    "GROUP_COMMIT_INTERVAL_S",
    "MANIFEST_FILE",
    "SCHEMA_VERSION",
    "EventWriter",
    "append_energy",
    "read_energy",
    "write_json_atomic",
    "read_events",
    "read_manifest",
    "split_torn_tail",
    "write_manifest",
]

EVENTS_FILE = "events.jsonl"
ENERGY_FILE = "energy.jsonl"
MANIFEST_FILE = "run.json"
# fsync every 200 ms at most: one fsync costs 0.2-0.5 ms on the 2-core build machine, too much per event at
# 500 req/s when it sits in the writer lock (benchmarks/results/bench_load.md)
GROUP_COMMIT_INTERVAL_S = 0.2

_ENCODER = msgspec.json.Encoder()
_EVENT_DECODER = msgspec.json.Decoder(Event)
_ENERGY_DECODER = msgspec.json.Decoder(EnergyEntry)
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
TORN_SUFFIX = ".torn"  # events.jsonl.torn: the torn tails the writer cut off, kept for inspection
_TAIL_CHUNK = 1 << 16


def split_torn_tail(data: bytes) -> tuple[bytes, bytes]:
    """The one rule for torn lines: ``data`` split into its complete lines (everything up to and
    including the last ``b"\n"``) and the torn tail after it (empty when ``data`` ends with a newline).

    The reader decodes only the complete part; the writer cuts the torn tail before appending; resume
    counts a request as recorded only when :func:`read_events` returns it. A tail that parses as a
    whole event is still torn: its newline was never written, so it is sent again, not kept twice."""
    cut = data.rfind(b"\n") + 1
    return data[:cut], data[cut:]


class EventWriter:
    """Appends one :class:`~tsglab.events.record.Event` per line (schema version 2), flushed per event;
    fsync'ed per event (``fsync_interval_s=0``) or at most every ``fsync_interval_s`` seconds by a
    background thread (group commit). See the module docstring for what each setting can lose in a
    crash. An event with an invalid latency is refused before anything is written. ``write`` is not
    thread-safe: callers that write from several threads hold their own lock."""

    def __init__(self, run_dir: str | os.PathLike, *, fsync_interval_s: float = 0.0) -> None:
        if fsync_interval_s < 0:
            raise InvalidArgument(f"`fsync_interval_s` must be >= 0 seconds; got {fsync_interval_s}.")
        self.path = Path(run_dir) / EVENTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(self.path)
        self._file = self.path.open("ab")
        self.fsync_interval_s = fsync_interval_s
        self._dirty = threading.Event()
        self._closing = threading.Event()
        self._syncer: threading.Thread | None = None
        self._sync_error: OSError | None = None  # a failed background fsync, raised by the next write or close
        if fsync_interval_s > 0:
            self._syncer = threading.Thread(target=self._sync_loop, name="tsglab-event-fsync", daemon=True)
            self._syncer.start()

    def write(self, event: Event) -> None:
        if not isinstance(event, Event):
            raise RunError(f"{self.path}: EventWriter.write takes a tsglab.events.Event; got {type(event).__name__}. "
                           "Build it with Event.answered(...) or Event.failed(...).")
        check_latencies(event, where=f"{self.path}: refusing to write event seq {event.seq}")
        self._raise_sync_error()
        try:
            self._file.write(_ENCODER.encode(event) + b"\n")
            self._file.flush()
            if self._syncer is None:
                os.fsync(self._file.fileno())
        except OSError as exc:  # a full or read-only disk: the error names the file, for the runner's message
            _raise_naming(exc, self.path)
        if self._syncer is not None:
            self._dirty.set()

    def _raise_sync_error(self) -> None:
        if self._sync_error is not None:
            error, self._sync_error = self._sync_error, None
            _raise_naming(error, self.path)

    def _sync_loop(self) -> None:
        fd = self._file.fileno()
        while not self._closing.wait(self.fsync_interval_s):
            if self._dirty.is_set():
                self._dirty.clear()  # cleared first: a write during the fsync marks the file dirty again
                try:
                    os.fsync(fd)
                except OSError as exc:  # not a thread traceback: the writer's next call raises it
                    self._sync_error = exc
                    return

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            if self._syncer is not None:
                self._closing.set()
                self._syncer.join()
                self._raise_sync_error()
                self._file.flush()
                os.fsync(self._file.fileno())
        except OSError as exc:
            _raise_naming(exc, self.path)
        finally:
            self._file.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _raise_naming(error: OSError, path: Path) -> NoReturn:
    """Raise ``error`` with ``path`` as its file name (an fsync or write error on a file object names none)."""
    if error.filename is not None:
        raise error
    raise type(error)(error.errno, error.strerror or str(error), str(path)) from error


def _torn_tail_start(handle, size: int) -> int:
    """The offset where the file's torn tail starts (``size`` when it ends with a newline), by
    :func:`split_torn_tail` on chunks read backwards from the end: a large log is not read whole."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        handle.seek(start)
        complete, _ = split_torn_tail(handle.read(end - start))
        if complete:
            return start + len(complete)
        end = start
    return 0


def _drop_torn_tail(path: Path) -> None:
    """Before appending: cut a torn tail (bytes after the last newline, see :func:`split_torn_tail`) so
    the next line starts on a line of its own. The torn bytes are first appended to ``<file>.torn``
    (best effort); complete lines are never touched. The reader never counted the torn request, so
    resume sends it again."""
    if not path.is_file():
        return
    with path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        cut = _torn_tail_start(handle, size)
        if cut == size:
            return
        handle.seek(cut)
        torn = handle.read()
        kept = path.with_name(path.name + TORN_SUFFIX)
        try:
            with kept.open("ab") as copy:
                copy.write(torn + b"\n")
                copy.flush()
                os.fsync(copy.fileno())
            where = f"copied to {kept}"
        except OSError as exc:
            where = f"not copied ({kept}: {exc.strerror or exc})"
        handle.truncate(cut)
        handle.flush()
        os.fsync(handle.fileno())
    warnings.warn(f"{path}: cut a torn last line ({len(torn)} bytes after byte {cut}, no final newline: an "
                  f"interrupted write; {where}). Its request was not recorded and is sent again on resume.",
                  TsglabWarning, stacklevel=3)


def read_events(run_dir: str | os.PathLike, *, check_run: bool = False) -> list[Event]:
    """All events of a run as :class:`~tsglab.events.record.Event` records, each validated against the
    record, with the energy sidecar joined on. A torn last line is skipped with a warning; any other bad
    line is an error naming the file, the line and the field (a NaN, infinite, negative or missing
    latency included). Version-1 lines are converted to version 2.

    ``check_run`` (what a report reads with) also refuses a file that is not one run's log, naming both
    lines: a line of another run (another ``run_id``), a schema version lower than an earlier line's (a
    resumed version-1 run appends version-2 lines; the reverse means files were put together), or a
    request recorded twice (the same ``request_id``)."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.is_file():
        raise RunError(f"{run_dir}: no {EVENTS_FILE}; is this a tsglab run directory (runs/<run_id>)?")
    complete, torn = split_torn_tail(path.read_bytes())
    if torn:
        _warn_torn(path, complete, torn, "its request is not counted as recorded, and a resumed run sends it again")
    events = _decode_events(path, complete, check_run=check_run)
    energy = read_energy(run_dir)
    if energy:
        with _gc_paused():
            events = [dataclasses.replace(e, energy=energy[e.request_id]) if e.request_id in energy else e
                      for e in events]
    return events


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while records are decoded. Decoding allocates ~10 objects per
    event, which triggers a collection every few hundred events, and each one walks every container
    alive (the records decoded so far included): 20 000 events decode in 0.3 s without it, 0.9 s with
    it. The records hold no reference cycles, so nothing is left for the collector to find later."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _warn_torn(path: Path, complete: bytes, torn: bytes, consequence: str) -> None:
    lineno = complete.count(b"\n") + 1
    warnings.warn(f"{path}:{lineno}: skipped a torn last line ({len(torn)} bytes without the final newline: an "
                  f"interrupted write); {consequence}.", TsglabWarning, stacklevel=4)


def _decode_events(path: Path, data: bytes, *, check_run: bool = False) -> list[Event]:
    with _gc_paused():
        try:
            events = _EVENT_DECODER.decode_lines(data)  # the whole file in one call when every line is a clean v2 event
            versions: dict[int, int] = {}
            if len(events) != data.count(b"\n") and len(events) != len(_line_numbers(data)):
                raise msgspec.DecodeError("a line holds more than one record")  # line numbers must be exact
        except (*_DECODE_ERRORS, RecursionError):
            # a version-1 line, a NaN literal or a bad line: find it line by line
            events, versions = _decode_line_by_line(path, data)
    if check_run:
        _check_one_run(path, data, events, versions)
    return events


_LINE_FIX = ("Correct or delete that line; a deleted request is sent again by `tsglab run SPEC --resume RUN_DIR`, "
             "or re-run the arm.")


def _decode_line_by_line(path: Path, data: bytes) -> tuple[list[Event], dict[int, int]]:
    """The events, and the schema version each line was written with (line number → version)."""
    events = []
    versions: dict[int, int] = {}
    for lineno, line in enumerate(data.split(b"\n"), start=1):  # every line is complete: split_torn_tail ran
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            events.append(_EVENT_DECODER.decode(line))
            versions[lineno] = SCHEMA_VERSION
            continue
        except _DECODE_ERRORS:
            pass
        except RecursionError as exc:
            raise RunError(_too_deep(where)) from exc
        obj = _parse_json_line(line, where, "event log")
        event = Event.from_json(obj, where=where, fix=_LINE_FIX)
        versions[lineno] = int(obj["schema_version"])  # 1 or 2: from_json accepted it
        events.append(event)
    return events, versions


def _too_deep(where: str) -> str:
    return (f"{where}: JSON nested too deeply to read (beyond Python's recursion limit); no tsglab record nests more "
            f"than a few levels, so the line is corrupt or not a tsglab record. {_LINE_FIX}")


def _parse_json_line(line: bytes, where: str, what: str) -> Any:
    """One line as Python's ``json`` reads it (NaN / Infinity literals included, so a latency error can
    name its field), or a :class:`RunError` saying what is wrong and where."""
    try:
        return json.loads(line)
    except UnicodeDecodeError as exc:
        raise RunError(f"{where}: not valid UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1}: "
                       f"{exc.reason}); the {what} is corrupt there (a cut or binary write). {_LINE_FIX}") from exc
    except json.JSONDecodeError as exc:
        raise RunError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); the {what} is corrupt there. "
                       f"{_LINE_FIX}") from exc
    except RecursionError as exc:
        raise RunError(_too_deep(where)) from exc


def _line_numbers(data: bytes) -> list[int]:
    """The 1-based line number of each record, in order (blank lines hold none)."""
    return [n for n, line in enumerate(data.split(b"\n"), start=1) if line.strip()]


def _check_one_run(path: Path, data: bytes, events: list[Event], versions: dict[int, int]) -> None:
    """One ``events.jsonl`` holds one run, in one schema version, with each request once: a line of another
    run (files concatenated, lines copied), of another version, or a request recorded twice (two processes
    on one run) is refused naming both lines."""
    if not events:
        return
    first_run = events[0].run_id
    seen: dict[str, int] = {}
    for i, event in enumerate(events):
        if event.run_id != first_run:
            lines = _line_numbers(data)
            raise RunError(f"{path}:{lines[i]}: field 'run_id' is {event.run_id!r} but line {lines[0]} has "
                           f"{first_run!r}: one events.jsonl holds the events of one run (lines of another run were "
                           "appended, or files concatenated). Move that line to its own run's events.jsonl, or "
                           "delete it.")
        if event.request_id in seen:
            lines = _line_numbers(data)
            raise RunError(f"{path}:{lines[i]}: field 'request_id' {event.request_id!r} (arm {event.arm!r}, prompt "
                           f"{event.prompt_id!r}) was already recorded at line {lines[seen[event.request_id]]}: the "
                           "request is in the log twice (two processes ran the run at once, or lines were copied). "
                           "Delete one of the two lines (keep the first), then report again.")
        seen[event.request_id] = i
    newest = (0, 0)  # (version, line)
    for lineno, version in sorted(versions.items()):
        if version < newest[0]:
            raise RunError(f"{path}:{lineno}: field 'schema_version' is {version!r} but line {newest[1]} has "
                           f"{newest[0]!r}: an older tsglab's lines come after a newer one's, so lines of different "
                           "logs were put together (a resumed run only moves to newer versions). Move the lines of "
                           "each run to its own run directory, or delete that line.")
        if version > newest[0]:
            newest = (version, lineno)


def append_energy(run_dir: str | os.PathLike, entries: Iterable[EnergyEntry]) -> int:
    """Append ``entries`` to the run's energy sidecar (``energy.jsonl``), flushed and fsync'ed; returns
    how many were written. ``events.jsonl`` is not touched."""
    path = Path(run_dir) / ENERGY_FILE
    _drop_torn_tail(path)
    lines = [_ENCODER.encode(entry) + b"\n" for entry in entries]
    with path.open("ab") as handle:
        handle.write(b"".join(lines))
        handle.flush()
        os.fsync(handle.fileno())
    return len(lines)


def read_energy(run_dir: str | os.PathLike) -> dict[str, Any]:
    """request_id → :class:`~tsglab.events.record.Energy` from the run's energy sidecar (empty when the
    run has none); the last entry of a request wins. A torn last line is skipped with a warning."""
    path = Path(run_dir) / ENERGY_FILE
    if not path.is_file():
        return {}
    complete, torn = split_torn_tail(path.read_bytes())
    if torn:
        _warn_torn(path, complete, torn, "that request keeps the energy its event was written with")
    energy = {}
    for lineno, line in enumerate(complete.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            entry = _ENERGY_DECODER.decode(line)
        except msgspec.ValidationError as exc:
            raise RunError(record_error(exc, where=f"{path}:{lineno}", record="energy sidecar entry")) from exc
        except (msgspec.DecodeError, RecursionError) as exc:
            where = f"{path}:{lineno}"
            try:
                _parse_json_line(line, where, "energy sidecar")
            except RunError as precise:
                reason = str(precise).removeprefix(f"{where}: ").split("; ")[0]
            else:
                reason = f"not valid JSON ({exc})"
            raise RunError(f"{where}: {reason}; the energy sidecar is corrupt. Delete it and attach the energy "
                           "again (tsglab.events.energy.attach_energy).") from exc
        energy[entry.request_id] = entry.energy
    return energy


def write_manifest(run_dir: str | os.PathLike, manifest: dict[str, Any]) -> None:
    """Atomically replace ``run.json`` (:func:`write_json_atomic`). On an error the ``OSError`` propagates
    (the runner turns it into one line naming the path)."""
    write_json_atomic(Path(run_dir) / MANIFEST_FILE, manifest)


def write_json_atomic(path: Path, data: dict[str, Any], *, default: Any = None) -> None:
    """Replace the JSON file ``path`` atomically: write a temp file of this process and thread (two writers
    never share one: a rename would steal the other's), fsync it, then rename it over ``path``. A reader
    sees the old file or the new one, never half of one; on an error the temp file is removed and the
    ``OSError`` propagates. ``default`` is json.dumps' (e.g. ``str`` for paths and dates)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    payload = (json.dumps(data, indent=2, ensure_ascii=False, default=default) + "\n").encode("utf-8")
    try:
        with tmp.open("wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_manifest(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / MANIFEST_FILE
    if not path.is_file():
        raise RunError(f"{run_dir}: no {MANIFEST_FILE}; is this a tsglab run directory (runs/<run_id>)?")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: not valid JSON ({exc.msg}).") from exc
    if manifest.get("status") == "running" and not _still_running(Path(run_dir), manifest):
        manifest["status"] = "incomplete"
    return manifest


def _still_running(run_dir: Path, manifest: dict[str, Any]) -> bool:
    """Whether the process that wrote ``running`` still owns the run: its lock is the truth (the kernel drops it
    when the process dies; a pid can be a zombie or reused). Runs written before the lock existed fall back to
    the pid."""
    if (run_dir / LOCK_FILE).exists():
        return is_locked(run_dir)
    return _pid_alive(manifest.get("pid"))


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
