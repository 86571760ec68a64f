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

Events are flushed as they complete; Ctrl-C, ``on_error: stop`` or a crash leaves ``run.json`` marked
incomplete, and ``resume`` continues the same schedule.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tsglab._version import __version__
from tsglab.config import ExperimentSpec
from tsglab.events.record import Fingerprint
from tsglab.load.open_loop import OpenLoopDispatcher
from tsglab.load.paced import PacedDispatcher
from tsglab.load.recorder import Recorder
from tsglab.load.rundir import RunDirectory
from tsglab.load.schedule import build_schedule, select_prompts
from tsglab.load.session import Session, build_ladder
from tsglab.policy import TierLadder
from tsglab.suite import bundled_suite_path, load_suite

__all__ = ["RunResult", "fingerprints", "run_experiment"]


@dataclass(frozen=True)
class RunResult:
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
    progress: bool = True,
    energy_meter=None,
) -> RunResult:
    """Run every arm of ``spec`` over the selected prompts and write ``runs/<run_id>/``.

    ``resume`` names an existing run directory to continue (the spec must be unchanged).
    ``ladder`` replaces the backends built from the spec (tests pass scripted backends);
    ``energy_meter`` replaces the meter ``spec.energy`` would detect (tests pass a fake source).
    """
    suite_path = bundled_suite_path() if spec.suite == "bundled" else Path(spec.suite)
    schedule = build_schedule(spec, select_prompts(load_suite(suite_path), spec.prompts))
    if resume is not None:
        run_dir = RunDirectory.resume(spec, resume)
    else:
        run_dir = RunDirectory.create(spec, runs_dir=runs_dir, run_id=run_id, suite_path=suite_path,
                                      n_planned=len(schedule))
    remaining = [w for w in schedule if w.key not in run_dir.done]
    own_ladder = ladder is None
    ladder = ladder or build_ladder(spec)  # before anything is written: an unknown backend fails here
    run_dir.start_segment(len(remaining))
    status, dispatcher, recorder = "incomplete", None, None
    session = Session(spec, run_dir, ladder, own_ladder=own_ladder, energy_meter=energy_meter,
                      progress=(len(schedule), len(schedule) - len(remaining)) if progress else None)
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
    except KeyboardInterrupt:
        print(f"\ntsglab: interrupted; {run_dir.path} is marked incomplete. Continue it with "
              f"`tsglab run SPEC --resume {run_dir.path}`.", file=sys.stderr)
        raise
    finally:
        run_dir.finish_segment(status, load_ms=session.load_ms, energy=session.energy_summary,
                               load_generator=dispatcher.load_generator if dispatcher is not None else None)
    written = recorder.written if recorder is not None else 0
    return RunResult(run_dir.run_id, run_dir.path, status, len(run_dir.done) + written, len(schedule))
