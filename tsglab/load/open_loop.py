"""The open-loop dispatcher: arrivals at their intended times regardless of completions.

Arrivals come from :func:`tsglab.load.arrivals.build_arrivals` (constant, Poisson or gamma gaps,
optional ramp). ``concurrency`` worker threads claim arrivals in order from one shared counter; each
sleeps until its arrival's intended time and sends it itself (no hand-off between threads at send
time), so an arrival that finds every worker busy waits, and its dispatch lag is part of its CO
latency. The GIL switch interval is lowered to :data:`SWITCH_INTERVAL_S` for the run so a waking
worker is not kept waiting behind busy ones. A watchdog in the calling thread records a request that
overran its timeout by far as a right-censored timeout (:meth:`Recorder.abandon`). Ctrl-C stops the
workers from claiming more.
"""

from __future__ import annotations

import gc
import itertools
import math
import sys
import threading
import time

import numpy as np

from tsglab.config import ExperimentSpec
from tsglab.load.arrivals import build_arrivals
from tsglab.load.delivery import check_delivery
from tsglab.load.recorder import Recorder
from tsglab.load.schedule import WarmupWindow, WorkItem

__all__ = ["SWITCH_INTERVAL_S", "OpenLoopDispatcher"]

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


class OpenLoopDispatcher:
    """``concurrency`` workers share one arrival counter. Each claims the next arrival, sleeps until
    its intended time and sends it itself, so nothing is handed over between threads at send time;
    when every worker is busy the next arrival waits for the first one free, and its dispatch lag
    (and so its CO latency) shows the wait. A watchdog in the calling thread records requests that
    overran their timeout by far, and Ctrl-C stops the workers from claiming more."""

    def __init__(self, spec: ExperimentSpec, work: list[WorkItem], recorder: Recorder) -> None:
        self.spec, self.work, self.recorder = spec, work, recorder
        load = spec.load
        seed = load.seed if recorder.segment == 0 else (load.seed, recorder.segment)
        self.arrivals = build_arrivals(len(work), load, seed=seed)
        self.offsets = self.arrivals.offsets_ns.tolist()
        self.lags_ns: list[int | None] = [None] * len(work)
        self.dispatched_ns: list[int | None] = [None] * len(work)
        self.claim = itertools.count()  # next() on a C iterator is atomic under the GIL
        self.stop = threading.Event()
        self.interrupt: BaseException | None = None
        self.abandoned = 0
        self.workers: list[threading.Thread] = []
        self.retired: set[threading.Thread] = set()  # stuck in an abandoned request; not waited for
        self.t0 = 0
        self.load_generator: dict | None = None  # the summary for run.json, set when run() ends
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
                dispatched, written = recorder.record(work[k], intended, self.warmup[k])
            except BaseException as exc:  # noqa: BLE001 (Ctrl-C in a backend call, or on_error: stop: main re-raises)
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
            in_warmup = WarmupWindow(self.spec.load, self.t0)
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
            self.recorder.close()
            gc.unfreeze()
            sys.setswitchinterval(previous_interval)
            self.load_generator = self.summary()

    def _watch(self) -> None:
        abandon_ns = _abandon_after_ns(self.spec.load.timeout_s)
        while not self.stop.is_set():
            alive = [t for t in self.workers if t.is_alive() and t not in self.retired]
            if not alive:
                return
            alive[0].join(_WATCHDOG_PERIOD_S)
            for seq, thread in self.recorder.overdue(abandon_ns):
                self._abandon(seq, thread)

    def _abandon(self, seq: int, thread: threading.Thread) -> None:
        timeout_s = self.spec.load.timeout_s
        message = (f"no result {_abandon_after_ns(timeout_s) / 1e9:g} s after dispatch (timeout {timeout_s:g} s); "
                   "the backend did not enforce its timeout and the load generator abandoned the request")
        if self.recorder.abandon(seq, message=message):
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
        summary = {
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
        summary["delivery"] = check_delivery(summary)
        return summary


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)
