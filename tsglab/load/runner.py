"""The runner: drives the schedule against the gateway and records one event per request.

Two load modes. ``paced``: sequential, one request every ``period_ms`` on a fixed schedule (as in
the paper); a slow request delays the next dispatch, and the CO latency (completed − intended start)
shows it while the raw latency (completed − dispatched) hides it. ``open_loop``: arrivals at a
constant rate regardless of completions, with at most ``concurrency`` in flight.

Events are flushed as they complete; Ctrl-C or a crash leaves ``run.json`` marked incomplete, and
``resume=True`` continues the same schedule without repeating finished requests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tsglab._version import __version__
from tsglab.errors import RunError, SpecError
from tsglab.events.log import EventWriter, read_events, read_manifest, write_manifest
from tsglab.events.schema import build_event
from tsglab.load.schedule import WorkItem, build_schedule, select_prompts
from tsglab.policy.gateway import handle
from tsglab.policy.ladder import TierLadder
from tsglab.spec import ExperimentSpec
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
    """Runs one work item through the gateway and writes its event (thread-safe)."""

    def __init__(self, spec, ladder, writer, run_id, segment, fingerprints, progress):
        self.spec, self.ladder, self.writer = spec, ladder, writer
        self.run_id, self.segment, self.fingerprints = run_id, segment, fingerprints
        self.progress = progress
        self.lock = threading.Lock()
        self.written = 0

    def run(self, work: WorkItem, intended_ns: int, in_warmup: bool) -> None:
        item: SuiteItem = work.item
        config = self.spec.arms[work.arm]
        dispatched_ns = time.monotonic_ns()
        handled = handle(self.ladder, config, item.prompt, json_schema=item.json_schema,
                         timeout_s=self.spec.load.timeout_s, seed=self.spec.seed)
        completed_ns = time.monotonic_ns()
        ex = handled.execution
        if ex.error_kind:
            quality = QualityScore(0.0, False if item.json_schema is not None else None,
                                   f"no answer: {ex.error_kind}")
        else:
            quality = score_answer(item, ex.text)
        event = build_event(run_id=self.run_id, arm=work.arm, seq=work.seq, segment=self.segment, item=item,
                            handled=handled, quality=quality, intended_ns=intended_ns,
                            dispatched_ns=dispatched_ns, completed_ns=completed_ns, in_warmup=in_warmup,
                            timeout_s=self.spec.load.timeout_s, fingerprint=self.fingerprints[work.arm])
        with self.lock:
            self.writer.write(event)
            self.written += 1
            if self.progress is not None:
                self.progress.update(1)
                self.progress.set_postfix_str(f"{work.arm} {item.id} → {ex.final_tier}", refresh=False)


def run_experiment(
    spec: ExperimentSpec,
    *,
    runs_dir: str | os.PathLike = "runs",
    run_id: str | None = None,
    resume: str | os.PathLike | None = None,
    ladder: TierLadder | None = None,
    progress: bool = True,
) -> RunResult:
    """Run every arm of ``spec`` over the selected prompts and write ``runs/<run_id>/``.

    ``resume`` names an existing run directory to continue (the spec must be unchanged).
    ``ladder`` replaces the backends built from the spec (tests pass scripted backends).
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
        done = {(e["arm"], e["prompt_id"]) for e in events}
        segment = max((e["segment"] for e in events), default=-1) + 1
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
        arm: {"tsglab": __version__, "policy_hash": cfg.config_hash(), "spec_hash": spec.spec_hash(),
              "seed": spec.seed, "models": {t: s.model for t, s in spec.tiers.items()}}
        for arm, cfg in spec.arms.items()
    }
    manifest.update(status="running", pid=os.getpid())
    manifest["segments"] = [*manifest.get("segments", []), {"segment": segment, "started": _now_iso(),
                                                             "n_remaining": len(remaining)}]
    write_manifest(run_dir, manifest)
    status = "incomplete"
    writer = EventWriter(run_dir)
    own_ladder = ladder is None
    bar = None
    try:
        ladder = ladder or TierLadder(spec.tiers)
        manifest["load_ms"] = ladder.warm_up()
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(schedule), initial=len(schedule) - len(remaining), desc=run_id, unit="req")
        recorder = _Recorder(spec, ladder, writer, run_id, segment, fingerprints, bar)
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
        manifest.update(status=status, pid=None, finished=_now_iso())
        write_manifest(run_dir, manifest)
    n_events = len(done) + recorder.written
    return RunResult(run_id, run_dir, status, n_events, len(schedule))


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


def _run_open_loop(spec: ExperimentSpec, work: list[WorkItem], recorder: _Recorder) -> None:
    interval_ns = int(1e9 / spec.load.rate_per_s)
    t0 = time.monotonic_ns()
    in_warmup = _WarmupWindow(spec, t0)
    pool = ThreadPoolExecutor(max_workers=spec.load.concurrency, thread_name_prefix="tsglab-load")
    futures = []
    try:
        for k, item in enumerate(work):
            intended = t0 + k * interval_ns
            delay = intended - time.monotonic_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
            futures.append(pool.submit(recorder.run, item, intended, in_warmup(item.arm, intended)))
        for future in futures:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
