"""The runner: drives the schedule against the gateway and records one event per request.

Two load modes. ``paced``: sequential, one request every ``period_ms`` on a fixed schedule (as in
the paper); a slow request delays the next dispatch, and the CO latency (completed − intended start)
shows it while the raw latency (completed − dispatched) hides it. ``open_loop``: arrivals drawn by
:func:`tsglab.load.arrivals.build_arrivals` (constant, Poisson or gamma gaps, optional ramp) are sent
at their intended times regardless of completions, with at most ``concurrency`` in flight; an
arrival that finds every worker busy waits, and its dispatch lag is part of its CO latency.

Open loop in detail: ``concurrency`` worker threads claim arrivals in order from one shared counter,
each sleeps until its arrival's intended time and sends it itself (no hand-off between threads at
send time); the GIL switch interval is lowered to :data:`SWITCH_INTERVAL_S` for the run so a waking
worker is not kept waiting behind busy ones. Every scheduled request ends as exactly one event: an
answer, an error event (a backend error, or any exception in the gateway, which does not stop the
run) or a right-censored timeout (the watchdog records a request that overran its timeout by far).
``run.json`` gets a ``load_generator`` summary (target and achieved rate, dispatch-lag percentiles).

Events are flushed as they complete; Ctrl-C or a crash leaves ``run.json`` marked incomplete, and
``resume=True`` continues the same schedule without repeating finished requests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import hashlib
import itertools
import math
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsglab._version import __version__
from tsglab.backends import build_backends
from tsglab.config import ExperimentSpec
from tsglab.errors import RunError, SpecError
from tsglab.events.energy import EnergyRecording
from tsglab.events.log import GROUP_COMMIT_INTERVAL_S, EventWriter, read_events, read_manifest, write_manifest
from tsglab.events.record import Energy, ErrorInfo, Event, Fingerprint, Plan, Quality, Route, Schedule
from tsglab.load.arrivals import build_arrivals
from tsglab.load.schedule import WorkItem, build_schedule, select_prompts
from tsglab.policy.gateway import handle
from tsglab.policy.ladder import TierLadder
from tsglab.suite import QualityScore, SuiteItem, bundled_suite_path, load_suite, score_answer


@dataclass(frozen=True)
class RunResult:
    run_id: str
    run_dir: Path
    status: str
    n_events: int
    n_planned: int


def _suite_path(spec: ExperimentSpec) -> Path:
    return bundled_suite_path() if spec.suite == "bundled" else Path(spec.suite)


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class _Recorder:
    """Runs one work item through the gateway and writes its event (thread-safe).

    ``run`` lets exceptions out (the paced mode stops on them, as it always did); ``run_guarded``
    turns any ``Exception`` into an error event so an open-loop worker survives it. Every event is
    written at most once per ``seq``: the open-loop watchdog may abandon a request that overran its
    timeout and write its censored event itself, and the late answer is then dropped.
    """

    def __init__(self, spec, ladder, writer, run_id, segment, fingerprints, progress):
        self.spec, self.ladder, self.writer = spec, ladder, writer
        self.run_id, self.segment, self.fingerprints = run_id, segment, fingerprints
        self.progress = progress
        self.lock = threading.Lock()
        self.written = 0
        self.closed = False  # set once the open loop stops accepting events (Ctrl-C, end of run)
        # seq -> (work, intended, dispatched, warm-up, the thread sending it)
        self.in_flight: dict[int, tuple[WorkItem, int, int, bool, threading.Thread]] = {}
        self.load_generator: dict | None = None
        self.energy_field: Energy | None = None  # what events say about energy until the segment ends

    def run(self, work: WorkItem, intended_ns: int, in_warmup: bool) -> None:
        dispatched_ns = time.monotonic_ns()
        event = self._handled_event(work, intended_ns, dispatched_ns, in_warmup)
        self.write(work, event)

    def run_guarded(self, work: WorkItem, intended_ns: int, in_warmup: bool) -> tuple[int, bool]:
        """Send one request now and record it; never raises ``Exception``. Returns the dispatch stamp and
        whether the event was written (False: the run stopped, or the watchdog abandoned the request)."""
        dispatched_ns = time.monotonic_ns()
        with self.lock:
            self.in_flight[work.seq] = (work, intended_ns, dispatched_ns, in_warmup, threading.current_thread())
        try:
            event = self._handled_event(work, intended_ns, dispatched_ns, in_warmup)
        except Exception as exc:  # a bug in a backend, a check or the scorer must not end the run
            event = self._error_event(work, intended_ns, dispatched_ns, time.monotonic_ns(), in_warmup,
                                      kind="runner_exception", message=f"{type(exc).__name__}: {exc}")
        return dispatched_ns, self.write(work, event, in_flight=True)

    def _handled_event(self, work: WorkItem, intended_ns: int, dispatched_ns: int, in_warmup: bool) -> Event:
        item: SuiteItem = work.item
        config = self.spec.arms[work.arm]
        handled = handle(self.ladder, config, item.prompt, json_schema=item.json_schema,
                         timeout_s=self.spec.load.timeout_s, seed=self.spec.seed, retry=self.spec.retry)
        completed_ns = time.monotonic_ns()
        ex = handled.execution
        if ex.error_kind:
            quality = QualityScore(0.0, False if item.json_schema is not None else None,
                                   f"no answer: {ex.error_kind}")
        else:
            quality = score_answer(item, ex.text)
        return Event.answered(
            run_id=self.run_id, arm=work.arm, prompt_id=item.id, prompt=item.prompt, seq=work.seq,
            segment=self.segment, bucket=item.strata, plan=Plan.from_report(handled.plan),
            route=Route.from_decision(handled.decision, ex), attempts=ex.attempts,
            schedule=Schedule(intended_ns, dispatched_ns, completed_ns),
            quality=Quality(quality.score, quality.json_ok, ex.refusal, quality.detail, ex.ok), answer=ex.text,
            error=ErrorInfo(ex.error_kind, ex.error) if ex.error_kind else None, timed_out=ex.timed_out,
            timeout_s=self.spec.load.timeout_s, overhead_ms=handled.overhead_ms, in_warmup=in_warmup,
            fingerprint=self.fingerprints[work.arm], energy=self.energy_field)

    def _error_event(self, work: WorkItem, intended_ns: int, dispatched_ns: int, completed_ns: int,
                     in_warmup: bool, *, kind: str, message: str, timed_out: bool = False) -> Event:
        """An event for a request that produced no gateway result (an exception, or abandoned by the watchdog):
        what is known about it, without running the planner again (:meth:`Event.failed`)."""
        item: SuiteItem = work.item
        return Event.failed(
            run_id=self.run_id, arm=work.arm, prompt_id=item.id, prompt=item.prompt, seq=work.seq,
            segment=self.segment, bucket=item.strata, schedule=Schedule(intended_ns, dispatched_ns, completed_ns),
            error=ErrorInfo(kind, message), timed_out=timed_out, expects_json=item.json_schema is not None,
            timeout_s=self.spec.load.timeout_s, in_warmup=in_warmup, fingerprint=self.fingerprints[work.arm],
            energy=self.energy_field)

    def write(self, work: WorkItem, event: Event, *, in_flight: bool = False) -> bool:
        """Write ``event`` unless the run stopped or (open loop) the watchdog already recorded this seq."""
        with self.lock:
            if in_flight and self.in_flight.pop(work.seq, None) is None:
                return False
            if self.closed:
                return False
            self.writer.write(event)
            self.written += 1
            if self.progress is not None:
                self.progress.update(1)
                self.progress.set_postfix_str(f"{work.arm} {work.item.id} → {event.route.final}",
                                              refresh=False)
        return True


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
    suite_path = _suite_path(spec)
    items = select_prompts(load_suite(suite_path), spec.prompts)
    schedule = build_schedule(spec, items)
    done: set[tuple[str, str]] = set()
    segment = 0
    if resume is not None:
        run_dir = Path(resume)
        manifest = read_manifest(run_dir)
        if manifest.get("spec_hash") != spec.spec_hash():
            raise SpecError(f"{run_dir}: the spec changed since this run started (hash {manifest.get('spec_hash')} "
                            f"→ {spec.spec_hash()}); start a new run instead of resuming.")
        if manifest.get("status") == "running":
            raise RunError(f"{run_dir}: run is still in progress (pid {manifest.get('pid')}).")
        events = read_events(run_dir)
        done = {(e.arm, e.prompt_id) for e in events}
        segment = max((e.segment for e in events), default=-1) + 1
        run_id = manifest["run_id"]
    else:
        run_id = run_id or f"{spec.name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        run_dir = Path(runs_dir) / run_id
        if (run_dir / "events.jsonl").exists():
            raise RunError(f"{run_dir} already holds events; pass resume={str(run_dir)!r} (CLI: --resume) "
                           "to continue it, or choose another run id.")
        manifest = {
            "run_id": run_id,
            "spec_name": spec.name,
            "spec_hash": spec.spec_hash(),
            "spec": spec.to_dict(),
            "suite": str(suite_path),
            "suite_sha256": _file_sha(suite_path),
            "arms": list(spec.arms),
            "n_planned": len(schedule),
            "tsglab_version": __version__,
            "seed": spec.seed,
            "created": _now_iso(),
            "segments": [],
        }
    remaining = [w for w in schedule if w.key not in done]
    run_dir.mkdir(parents=True, exist_ok=True)
    fingerprints = {
        arm: Fingerprint(tsglab=__version__, ladder=tuple(spec.tiers), policy_hash=cfg.config_hash(),
                         spec_hash=spec.spec_hash(), seed=spec.seed,
                         models={t: s.model for t, s in spec.tiers.items()},
                         backends={t: s.backend for t, s in spec.tiers.items()},
                         retry=dataclasses.asdict(spec.retry), energy_meter=spec.energy.meter)
        for arm, cfg in spec.arms.items()
    }
    manifest.update(status="running", pid=os.getpid())
    manifest["segments"] = [*manifest.get("segments", []), {"segment": segment, "started": _now_iso(),
                                                             "n_remaining": len(remaining)}]
    write_manifest(run_dir, manifest)
    status = "incomplete"
    # open loop: group commit keeps an fsync out of every event's path (bound on a crash's loss: log.py)
    writer = EventWriter(run_dir, fsync_interval_s=GROUP_COMMIT_INTERVAL_S if spec.load.mode == "open_loop" else 0.0)
    own_ladder = ladder is None
    bar = recorder = energy = None
    try:
        ladder = ladder or TierLadder(spec.tiers, build_backends(spec.tiers))
        manifest["load_ms"] = ladder.warm_up()
        energy = EnergyRecording(spec.energy, run_dir, segment, meter=energy_meter).start()
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(schedule), initial=len(schedule) - len(remaining), desc=run_id, unit="req")
        recorder = _Recorder(spec, ladder, writer, run_id, segment, fingerprints, bar)
        recorder.energy_field = energy.event_field()
        if spec.load.mode == "paced":
            _run_paced(spec, remaining, recorder)
        else:
            _run_open_loop(spec, remaining, recorder)
        status = "complete"
    except KeyboardInterrupt:
        print(f"\ntsglab: interrupted; {run_dir} is marked incomplete. Continue it with "
              f"`tsglab run SPEC --resume {run_dir}`.", file=sys.stderr)
        raise
    finally:
        if bar is not None:
            bar.close()
        writer.close()
        if own_ladder and ladder is not None:
            ladder.close()
        if energy is not None:
            manifest["energy"] = _finish_energy(energy)
            manifest["segments"][-1]["energy"] = manifest["energy"]
        if recorder is not None and recorder.load_generator is not None:
            manifest["load_generator"] = recorder.load_generator
            manifest["segments"][-1]["load_generator"] = recorder.load_generator
        manifest.update(status=status, pid=None, finished=_now_iso())
        write_manifest(run_dir, manifest)
    n_events = len(done) + recorder.written
    return RunResult(run_id, run_dir, status, n_events, len(schedule))


def _finish_energy(energy: EnergyRecording) -> dict:
    """Attach the measured energy to the segment's events; a failure there must not lose the run."""
    try:
        return energy.finish()
    except Exception as exc:  # the events stay as written ("pending"); the samples CSV stays for later
        return {"available": False, "reason": f"apportioning failed ({type(exc).__name__}: {exc}); samples kept "
                                              f"in energy_samples-{energy.segment}.csv"}


class _WarmupWindow:
    """The first ``warmup_count`` requests *of each arm* (so paired arms lose the same number), and
    everything scheduled within ``warmup_seconds`` of the segment's start."""

    def __init__(self, spec: ExperimentSpec, start_ns: int) -> None:
        self.count, self.seconds, self.start_ns = spec.load.warmup_count, spec.load.warmup_seconds, start_ns
        self.seen: Counter[str] = Counter()

    def __call__(self, arm: str, intended_ns: int) -> bool:
        self.seen[arm] += 1
        return self.seen[arm] <= self.count or (intended_ns - self.start_ns) < self.seconds * 1e9


def _run_paced(spec: ExperimentSpec, work: list[WorkItem], recorder: _Recorder) -> None:
    period_ns = int(spec.load.period_ms * 1e6)
    t0 = time.monotonic_ns()
    in_warmup = _WarmupWindow(spec, t0)
    slot, block = 0, work[0].block if work else 0
    for item in work:
        now = time.monotonic_ns()
        if item.block != block:  # a new switchback block starts its own schedule once the last one drained
            block, t0, slot = item.block, max(now, t0 + slot * period_ns), 0
        intended = t0 + slot * period_ns if period_ns > 0 else now
        slot += 1
        if intended > now:
            time.sleep((intended - now) / 1e9)
        recorder.run(item, intended, in_warmup(item.arm, intended))


# The GIL hands itself to a waiting thread only every switch interval (5 ms by default): a worker
# whose sleep ends while other threads run Python would wait up to that long to send. 1 ms keeps the
# dispatch lag of a busy 2-core client near the timer floor (benchmarks/results/bench_load.md).
SWITCH_INTERVAL_S = 0.001
_START_MARGIN_NS = 5_000_000  # t0 this far after the workers were started, so the first arrival is not late
_WATCHDOG_PERIOD_S = 0.2


def _abandon_after_ns(timeout_s: float) -> int:
    """How long past dispatch a request may run before the watchdog records it as a censored timeout
    (backends enforce ``timeout_s`` themselves; this only catches one that does not)."""
    return int((timeout_s * 1.5 + 2.0) * 1e9)


class _OpenLoop:
    """``concurrency`` workers share one arrival counter. Each claims the next arrival, sleeps until
    its intended time and sends it itself, so nothing is handed over between threads at send time;
    when every worker is busy the next arrival waits for the first one free, and its dispatch lag
    (and so its CO latency) shows the wait. A watchdog in the calling thread records requests that
    overran their timeout by far, and Ctrl-C stops the workers from claiming more."""

    def __init__(self, spec: ExperimentSpec, work: list[WorkItem], recorder: _Recorder) -> None:
        self.spec, self.work, self.recorder = spec, work, recorder
        load = spec.load
        seed = load.seed if recorder.segment == 0 else (load.seed, recorder.segment)
        self.arrivals = build_arrivals(len(work), load, seed=seed)
        self.offsets = self.arrivals.offsets_ns.tolist()
        self.lags_ns = [None] * len(work)
        self.dispatched_ns = [None] * len(work)
        self.claim = itertools.count()  # next() on a C iterator is atomic under the GIL
        self.stop = threading.Event()
        self.interrupt: BaseException | None = None
        self.abandoned = 0
        self.workers: list[threading.Thread] = []
        self.retired: set[threading.Thread] = set()  # stuck in an abandoned request; not waited for
        self.t0 = 0
        self.warmup: list[bool] = []

    def worker(self) -> None:
        n = len(self.work)
        offsets, work, recorder = self.offsets, self.work, self.recorder
        while not self.stop.is_set():
            k = next(self.claim)
            if k >= n:
                return
            intended = self.t0 + offsets[k]
            delay_ns = intended - time.monotonic_ns()
            if delay_ns > 0:
                time.sleep(delay_ns / 1e9)
            if self.stop.is_set():
                return  # claimed but never sent: the run is incomplete and a resume sends it
            try:
                dispatched, written = recorder.run_guarded(work[k], intended, self.warmup[k])
            except BaseException as exc:  # KeyboardInterrupt/SystemExit raised inside a backend call
                self.interrupt = exc
                self.stop.set()
                return
            self.dispatched_ns[k] = dispatched
            self.lags_ns[k] = dispatched - intended
            if not written:
                return  # abandoned by the watchdog, which started a replacement: keep the concurrency bound

    def _start_worker(self) -> None:
        thread = threading.Thread(target=self.worker, name=f"tsglab-load-{len(self.workers)}", daemon=True)
        self.workers.append(thread)
        thread.start()

    def run(self) -> None:
        previous_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        # A full collection walks every object alive (the suite, numpy, pandas...) holding the GIL for
        # ~30 ms on the 2-core build machine, stalling every worker at once. Collect now, before t0, and
        # freeze what exists so collections during the run only walk objects the run creates.
        gc.collect()
        gc.freeze()
        try:
            self.t0 = time.monotonic_ns() + _START_MARGIN_NS
            in_warmup = _WarmupWindow(self.spec, self.t0)
            self.warmup = [in_warmup(w.arm, self.t0 + off) for w, off in zip(self.work, self.offsets, strict=True)]
            for _ in range(min(self.spec.load.concurrency, len(self.work))):
                self._start_worker()
            try:
                self._watch()
            except KeyboardInterrupt:
                self.stop.set()
                self._drain(grace_s=1.0)
                raise
            if self.interrupt is not None:
                self._drain(grace_s=1.0)
                raise self.interrupt
        finally:
            with self.recorder.lock:
                self.recorder.closed = True
            gc.unfreeze()
            sys.setswitchinterval(previous_interval)
            self.recorder.load_generator = self.summary()

    def _watch(self) -> None:
        abandon_ns = _abandon_after_ns(self.spec.load.timeout_s)
        while not self.stop.is_set():
            alive = [t for t in self.workers if t.is_alive() and t not in self.retired]
            if not alive:
                return
            alive[0].join(_WATCHDOG_PERIOD_S)
            now = time.monotonic_ns()
            with self.recorder.lock:
                overdue = [seq for seq, (_, _, dispatched, _, _) in self.recorder.in_flight.items()
                           if now - dispatched > abandon_ns]
            for seq in overdue:
                self._abandon(seq)

    def _abandon(self, seq: int) -> None:
        with self.recorder.lock:
            entry = self.recorder.in_flight.get(seq)
        if entry is None:
            return
        work, intended, dispatched, in_warmup, thread = entry
        timeout_s = self.spec.load.timeout_s
        event = self.recorder._error_event(
            work, intended, dispatched, time.monotonic_ns(), in_warmup, kind="timeout", timed_out=True,
            message=f"no result {_abandon_after_ns(timeout_s) / 1e9:g} s after dispatch (timeout {timeout_s:g} s); "
                    "the backend did not enforce its timeout and the load generator abandoned the request")
        if self.recorder.write(work, event, in_flight=True):
            self.abandoned += 1
            self.retired.add(thread)
            self._start_worker()  # the stuck thread holds its slot; keep the planned concurrency

    def _drain(self, grace_s: float) -> None:
        """Give requests in flight a moment to finish and be recorded before the writer closes."""
        deadline = time.monotonic() + grace_s
        for thread in self.workers:
            if thread not in self.retired:
                thread.join(max(0.0, deadline - time.monotonic()))

    def summary(self) -> dict:
        lags = np.array([lag for lag in self.lags_ns if lag is not None], dtype=np.int64)
        sent = np.array([d for d in self.dispatched_ns if d is not None], dtype=np.int64)
        span_s = (sent.max() - sent.min()) / 1e9 if sent.size > 1 else 0.0
        lag_ms = lags / 1e6

        def pct(q: float) -> float | None:
            return round(float(np.percentile(lag_ms, q)), 4) if lags.size else None

        load = self.spec.load
        return {
            "arrival": load.arrival,
            "burstiness": load.burstiness if load.arrival == "gamma" else None,
            "ramp_seconds": load.ramp_seconds,
            "seed": list(self.arrivals.seed) if isinstance(self.arrivals.seed, tuple) else self.arrivals.seed,
            "target_rate_per_s": load.rate_per_s,
            "planned_rate_per_s": _finite_or_none(self.arrivals.planned_rate_per_s),
            "achieved_rate_per_s": round((sent.size - 1) / span_s, 3) if span_s > 0 else None,
            "n_planned": len(self.work),
            "n_dispatched": int(sent.size),
            "n_abandoned": self.abandoned,
            "dispatch_lag_ms": {"p50": pct(50), "p99": pct(99),
                                "max": round(float(lag_ms.max()), 4) if lags.size else None},
            "n_lag_over_1ms": int((lags > 1_000_000).sum()),
            "concurrency": load.concurrency,
            "switch_interval_s": SWITCH_INTERVAL_S,
        }


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


def _run_open_loop(spec: ExperimentSpec, work: list[WorkItem], recorder: _Recorder) -> None:
    _OpenLoop(spec, work, recorder).run()
