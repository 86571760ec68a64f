"""The runner: drives a spec's schedule against the gateway and records one event per request.

:func:`run_experiment` reads like the run it performs:

1. the schedule (:mod:`tsglab.load.schedule`: prompt selection, interleaved or switchback arm order);
2. the run directory (:class:`~tsglab.load.rundir.RunDirectory`: a new one, or ``resume`` of an
   incomplete one without repeating finished requests; one segment per start);
3. the session (:class:`~tsglab.load.session.Session`: the tier ladder with its models loaded, the
   energy meter, the event writer, the progress bar);
4. a dispatcher per load mode — :class:`~tsglab.load.paced.PacedDispatcher` (sequential, one request
   every ``period_ms``) or :class:`~tsglab.load.open_loop.OpenLoopDispatcher` (arrivals at their
   intended times regardless of completions) — over one :class:`~tsglab.load.recorder.Recorder`, which
   applies the spec's one failure rule (``on_error: record | stop``) in both modes.

Events are flushed as they complete; Ctrl-C, SIGTERM, ``on_error: stop``, a full disk or a crash leaves
``run.json`` marked incomplete (or ``running`` with nobody holding the run's lock, which reads the same), and
``resume`` continues the same schedule. The run directory is locked for the whole segment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsglab._version import __version__
from tsglab.config import ExperimentSpec
from tsglab.errors import RunError, RunInterrupted
from tsglab.events import MANIFEST_FILE
from tsglab.events.record import Fingerprint
from tsglab.load.dry_route import replay_spec, warn_identical_routing
from tsglab.load.open_loop import OpenLoopDispatcher
from tsglab.load.paced import PacedDispatcher
from tsglab.load.recorder import Recorder
from tsglab.load.rundir import RunDirectory, disk_error_message, resume_command
from tsglab.load.schedule import WorkItem, build_schedule, select_prompts
from tsglab.load.session import ProgressFactory, Session, build_ladder
from tsglab.policy import TierLadder
from tsglab.suite import bundled_suite_path, load_suite

__all__ = ["RunRecord", "fingerprints", "run_experiment"]


@dataclass(frozen=True)
class RunRecord:
    """Where a run landed and how it ended: what the runner knows. ``tsglab.run`` returns it as a
    :class:`tsglab.report.RunResult`, which adds the events, the report and the notebook views."""

    run_id: str
    run_dir: Path
    status: str
    n_events: int
    n_planned: int


def fingerprints(spec: ExperimentSpec) -> dict[str, Fingerprint]:
    """What every event of each arm records about the configuration that produced it."""
    return {
        arm: Fingerprint(tsglab=__version__, ladder=spec.ladder, policy_hash=cfg.config_hash(),
                         spec_hash=spec.spec_hash(), seed=spec.seed,
                         models={t: s.model for t, s in spec.tiers.items()},
                         backends={t: s.backend for t, s in spec.tiers.items()},
                         retry=dataclasses.asdict(spec.retry), energy_meter=spec.energy.meter)
        for arm, cfg in spec.arms.items()
    }


def run_experiment(
    spec: ExperimentSpec,
    *,
    runs_dir: str | os.PathLike = "runs",
    run_id: str | None = None,
    resume: str | os.PathLike | None = None,
    ladder: TierLadder | None = None,
    progress: bool | ProgressFactory = True,
    energy_meter=None,
    overrides: dict[str, Any] | None = None,
) -> RunRecord:
    """Run every arm of ``spec`` over the selected prompts and write ``runs/<run_id>/``.

    ``resume`` names an existing run directory to continue (the spec and the suite file must be unchanged).
    ``ladder`` replaces the backends built from the spec (tests pass scripted backends);
    ``energy_meter`` replaces the meter ``spec.energy`` would detect (tests pass a fake source);
    ``progress``: True shows the default display (the live monitor inside a Jupyter kernel once
    :mod:`tsglab.jupyter` is imported, else tqdm's bar), False none, or a
    :data:`~tsglab.load.session.ProgressFactory` that makes one.
    ``overrides`` are the ``--set`` values ``spec`` was loaded with: recorded in ``run.json`` so the resume
    hint repeats them (they are not applied here).

    Before anything is sent the planner and router are replayed over the selected prompts for every arm
    (:mod:`tsglab.load.dry_route`): two arms that would route every prompt alike and differ in nothing else
    raise an :class:`~tsglab.errors.IdenticalRoutingWarning`, and the replay goes into ``run.json``
    (``routing_replay``).

    The run directory is locked for the whole segment. Ctrl-C and SIGTERM mark the run incomplete and print
    the command that resumes it; a full or read-only disk ends the run with one :class:`RunError` naming the
    path, ``run.json`` marked incomplete where it can still be written.
    """
    suite_path = bundled_suite_path() if spec.suite == "bundled" else Path(spec.suite)
    items = select_prompts(load_suite(suite_path), spec.prompts)
    schedule = build_schedule(spec, items)
    replay = replay_spec(spec, items)  # arms that would route every prompt alike: warned before anything runs
    warn_identical_routing(replay, source=spec.source, stacklevel=2)
    own_ladder = ladder is None
    ladder = ladder or build_ladder(spec)  # before anything is written: an unknown backend fails here
    try:
        if resume is not None:
            run_dir = RunDirectory.resume(spec, resume, suite_path=suite_path, overrides=overrides)
        else:
            run_dir = RunDirectory.create(spec, runs_dir=runs_dir, run_id=run_id, suite_path=suite_path,
                                          n_planned=len(schedule), overrides=overrides)
    except BaseException:
        if own_ladder:
            ladder.close()
        raise
    run_dir.manifest["routing_replay"] = replay.to_dict()  # written with the segment's start
    try:
        with _sigterm_as_interrupt():
            return _run_segment(spec, run_dir, schedule, ladder, own_ladder=own_ladder, progress=progress,
                                energy_meter=energy_meter)
    finally:
        run_dir.release()


def _run_segment(spec: ExperimentSpec, run_dir: RunDirectory, schedule: list[WorkItem], ladder: TierLadder, *,
                 own_ladder: bool, progress: bool | ProgressFactory, energy_meter) -> RunRecord:
    remaining = [w for w in schedule if w.key not in run_dir.done]
    try:
        run_dir.start_segment(len(remaining))
    except BaseException:
        if own_ladder:
            ladder.close()
        raise
    status, dispatcher, recorder = "incomplete", None, None
    manifest_error: OSError | None = None
    session = Session(spec, run_dir, ladder, own_ladder=own_ladder, energy_meter=energy_meter,
                      progress=(len(schedule), len(schedule) - len(remaining)) if progress else None,
                      progress_factory=progress if callable(progress) else None)
    hint = resume_command(spec, run_dir.path, run_dir.overrides)
    manifest = run_dir.path / MANIFEST_FILE
    try:
        try:
            with session:
                assert session.writer is not None
                assert session.energy is not None
                recorder = Recorder(spec, ladder, session.writer, run_id=run_dir.run_id, segment=run_dir.segment,
                                    fingerprints=fingerprints(spec), energy=session.energy.event_field(),
                                    progress=session.bar)
                dispatch = OpenLoopDispatcher if spec.load.mode == "open_loop" else PacedDispatcher
                dispatcher = dispatch(spec, remaining, recorder)
                dispatcher.run()
                status = "complete"
        finally:
            try:
                run_dir.finish_segment(status, load_ms=session.load_ms, energy=session.energy_summary,
                                       load_generator=dispatcher.load_generator if dispatcher is not None else None)
            except OSError as exc:  # reported below, with whatever stopped the run
                manifest_error = exc
    except KeyboardInterrupt as exc:
        how = "terminated (SIGTERM)" if str(exc) == _SIGTERM else "interrupted"
        marked = "is marked incomplete"
        if manifest_error is not None:
            why = disk_error_message(manifest_error, run_dir.path, path=manifest)
            marked = f"could not be marked incomplete ({why}); resume treats it as incomplete all the same"
        raise RunInterrupted(f"tsglab: {how}; {run_dir.path} {marked}. Continue it with `{hint}`.",
                             terminated=str(exc) == _SIGTERM) from exc
    except OSError as exc:
        if not _is_disk_error(exc):
            raise
        raise RunError(_stopped_by_disk(exc, run_dir, manifest_error, hint)) from exc
    if manifest_error is not None:
        raise RunError(f"the run ended ({status}) but {disk_error_message(manifest_error, run_dir.path, path=manifest)}"
                       f"; its events are all written. Free some space or make the directory writable; "
                       f"`{hint}` then records the end (it sends nothing already recorded).") from manifest_error
    written = recorder.written if recorder is not None else 0
    return RunRecord(run_dir.run_id, run_dir.path, status, len(run_dir.done) + written, len(schedule))


_SIGTERM = "SIGTERM"
# errors of the file system (a full disk, a read-only or vanished directory, quotas, I/O), as opposed to an
# OSError a buggy backend raises under ``on_error: stop`` (ConnectionError, TimeoutError...), which propagates
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EIO,
                          errno.EFBIG, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ESTALE})


def _is_disk_error(exc: OSError) -> bool:
    return not isinstance(exc, (ConnectionError, TimeoutError)) and exc.errno in _DISK_ERRNOS


def _stopped_by_disk(exc: OSError, run_dir: RunDirectory, manifest_error: OSError | None, hint: str) -> str:
    if manifest_error is None:
        marked = f"{run_dir.path} is marked incomplete"
    else:
        marked = (f"{run_dir.path / MANIFEST_FILE} could not be updated either "
                  f"([Errno {manifest_error.errno}] {manifest_error.strerror}), so it says 'running'; resume treats it "
                  "as incomplete once this process has ended")
    return (f"{disk_error_message(exc, run_dir.path)}; the run stopped and {marked}. Every event written is kept. "
            f"Free some space or make the directory writable, then continue with `{hint}`.")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt("SIGTERM") while the run goes, so it ends like Ctrl-C: events flushed,
    the run marked incomplete, the resume hint printed (signal handlers can only be set in the main thread;
    elsewhere SIGTERM keeps its handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(_SIGTERM)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
