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

import contextlib
import gc
import itertools
import math
import multiprocessing
import os
import pickle
import signal
import socket
import stat
import sys
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, cast

import numpy as np

from tsglab.config import ExperimentSpec
from tsglab.errors import RunError
from tsglab.load.arrivals import build_arrivals
from tsglab.load.delivery import check_delivery
from tsglab.load.recorder import Recorder
from tsglab.load.schedule import WarmupWindow, WorkItem

if TYPE_CHECKING:
    from tsglab.events.log import EventWriter

__all__ = ["SWITCH_INTERVAL_S", "OpenLoopDispatcher"]


# The GIL hands itself to a waiting thread only every switch interval (5 ms by default): a worker
# whose sleep ends while other threads run Python would wait up to that long to send. 1 ms keeps the
# dispatch lag of a busy 2-core client near the timer floor (benchmarks/results/bench_load.md).
SWITCH_INTERVAL_S = 0.001
_START_MARGIN_NS = 5_000_000  # t0 this far after the workers were started, so the first arrival is not late
_WATCHDOG_PERIOD_S = 0.2
_PROCESS_START_TIMEOUT_S = 30.0
_DRAIN_GRACE_S = 1.0


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

    def __init__(self, spec: ExperimentSpec, work: list[WorkItem], recorder: Recorder, *,
                 processes: int | None = None) -> None:
        self.spec, self.work, self.recorder = spec, work, recorder
        load = spec.load
        seed = load.seed if recorder.segment == 0 else (load.seed, recorder.segment)
        self.arrivals = build_arrivals(len(work), load, seed=seed)
        self.offsets = self.arrivals.offsets_ns.tolist()
        self.concurrency = min(load.concurrency, len(work))
        self.processes = _process_count(load.processes if processes is None else processes, self.concurrency)
        in_process_models = sorted(t for t, b in recorder.ladder.backends.items()
                                   if type(b).__module__ == "tsglab.backends.embedded")
        if self.processes > 1 and in_process_models:
            raise RunError(f"load.processes: {self.processes} forks the load generator, and the in-process llama.cpp "
                           f"models of tiers {in_process_models} do not survive a fork (their thread pools stay in "
                           "the parent); set load.processes: 1 for embedded models, or serve them over HTTP.")
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
        # freeze what exists so collections during the run only walk objects the run creates (and, with
        # several processes, so the forked children share those pages instead of copying them).
        gc.collect()
        gc.freeze()
        try:
            if not self.warmup:
                # whether an arrival is in the warm-up depends on its offset only, not on t0
                in_warmup = WarmupWindow(self.spec.load, 0)
                self.warmup = [in_warmup(w.arm, off) for w, off in zip(self.work, self.offsets, strict=True)]
            if self.processes > 1:
                self._run_processes()
                return
            self.t0 = self.t0 or time.monotonic_ns() + _START_MARGIN_NS
            for _ in range(self.concurrency):
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
            "processes": self.processes,
            "switch_interval_s": SWITCH_INTERVAL_S,
        }
        summary["delivery"] = check_delivery(summary)
        return summary


    # -- several processes ------------------------------------------------------------------------
    # One process sends at most ~1/(CPU per request) requests a second: the GIL serialises the backend
    # client's Python (an HTTP client's parsing is most of it). With ``processes`` > 1 the schedule is dealt
    # round-robin to forked children (arrival k to child k mod P), each running this same claiming-worker
    # loop with its share of the concurrency on the shared monotonic clock; their events come back over a
    # pipe and this process writes them with the run's one writer, so the run directory, the at-most-once
    # rule and the summary stay as with one process. A child that dies leaves its unrecorded requests to
    # ``resume``; Ctrl-C stops every child from claiming more and keeps what they finish within the grace.

    def _run_processes(self) -> None:
        context = multiprocessing.get_context("fork")
        n, count = len(self.work), self.processes
        children, pipes, controls = [], {}, []
        for index in range(count):
            receive, send = context.Pipe(duplex=False)  # events: child -> parent
            control_in, control_out = context.Pipe(duplex=False)  # t0, then stop: parent -> child
            share = self.concurrency // count + (index < self.concurrency % count)
            child = context.Process(target=self._child, args=(index, share, send, control_in),
                                    name=f"tsglab-load-p{index}", daemon=True)
            child.start()
            send.close()
            control_in.close()
            children.append(child)
            pipes[receive] = index
            controls.append(control_out)
        failure: BaseException | None = None
        interrupted = False
        try:
            ready = 0
            deadline = time.monotonic() + _PROCESS_START_TIMEOUT_S
            while ready < count:  # every child has its share and its ladder before t0 is set
                if not _ready(pipes, max(0.0, deadline - time.monotonic())):
                    raise RunError(f"the {count} load-generator processes did not start within "
                                   f"{_PROCESS_START_TIMEOUT_S:g} s; run with load.processes: 1.")
                for conn in _ready(pipes, 0):
                    if conn.recv_bytes() == b"R":
                        ready += 1
            self.t0 = time.monotonic_ns() + _START_MARGIN_NS
            for control in controls:
                control.send_bytes(self.t0.to_bytes(8, "little"))
            failure, interrupted = self._collect(pipes, controls)
        finally:
            _tell_stop(controls)
            for control in controls:
                control.close()  # a child still waiting sees EOF and stops
            for child in children:
                child.join(2.0)
                if child.is_alive():
                    child.terminate()
                    child.join(2.0)
            for conn in pipes:
                conn.close()
        if interrupted:
            raise KeyboardInterrupt
        if failure is not None:
            raise failure
        dead = [f"process {i} (exit code {c.exitcode})" for i, c in enumerate(children) if c.exitcode]
        if dead and any(d is None for d in self.dispatched_ns[:n]):
            missing = n - self.recorder.written
            raise RunError(f"load-generator {', '.join(dead)} ended before sending its share ({missing} of {n} "
                           "requests not recorded); the run is incomplete: resume it to send them.")

    def _collect(self, pipes: dict[Connection, int],
                 controls: list[Connection]) -> tuple[BaseException | None, bool]:
        """Write the children's events as they come until every child has reported; returns the exception
        that stopped a child (``on_error: stop``, Ctrl-C inside a backend call) and whether Ctrl-C came."""
        live, failure, interrupted = set(pipes), None, False
        grace_end: float | None = None
        while live:
            try:
                timeout = _WATCHDOG_PERIOD_S if grace_end is None else max(0.0, grace_end - time.monotonic())
                ready = _ready(live, timeout)
                if grace_end is not None and not ready and time.monotonic() >= grace_end:
                    break
                for conn in ready:
                    try:
                        message = conn.recv_bytes()
                    except (EOFError, OSError):
                        live.discard(conn)  # the child ended (or died): what it sent is written
                        continue
                    kind, body = message[:1], message[1:]
                    if kind == b"E":
                        self._write(pickle.loads(body))
                    elif kind == b"D":
                        self._merge(pipes[conn], pickle.loads(body))
                        live.discard(conn)
                    elif kind == b"X":
                        failure = pickle.loads(body)
                        _tell_stop(controls)
                        self.stop.set()
            except KeyboardInterrupt:
                if interrupted:  # a second Ctrl-C: stop waiting for the children
                    break
                interrupted = True
                _tell_stop(controls)
                self.stop.set()
                grace_end = time.monotonic() + _DRAIN_GRACE_S + 1.0
        return failure, interrupted

    def _write(self, event) -> None:
        recorder = self.recorder
        with recorder.lock:
            if recorder.closed:
                return
            recorder.writer.write(event)
            recorder.written += 1
            if recorder.progress is not None:
                recorder.progress.update(1)

    def _merge(self, index: int, figures: dict) -> None:
        for k, lag, dispatched in zip(range(index, len(self.work), self.processes), figures["lags_ns"],
                                      figures["dispatched_ns"], strict=True):
            self.lags_ns[k], self.dispatched_ns[k] = lag, dispatched
        self.abandoned += figures["abandoned"]

    def _child(self, index: int, share: int, conn: Connection, control: Connection) -> None:
        """A forked child: send arrivals index, index + P, ... with ``share`` workers; report back on ``conn``.
        ``control`` brings t0, then the order to stop (or EOF when the parent is gone)."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and tells the children
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _retire_inherited_connections()
        picked = range(index, len(self.work), self.processes)
        parent = self.recorder
        recorder = Recorder(self.spec, parent.ladder, cast("EventWriter", _PipeWriter(conn)), run_id=parent.run_id,
                            segment=parent.segment, fingerprints=parent.fingerprints, energy=parent.energy)
        child = OpenLoopDispatcher(self.spec, [self.work[k] for k in picked], recorder, processes=1)
        child.offsets = [self.offsets[k] for k in picked]
        child.warmup = [self.warmup[k] for k in picked]
        child.concurrency = max(1, min(share, len(child.work)))
        conn.send_bytes(b"R")
        try:
            child.t0 = int.from_bytes(control.recv_bytes(), "little")
        except (EOFError, OSError):
            return  # the parent gave up before t0

        def relay_stop() -> None:
            with contextlib.suppress(EOFError, OSError):
                control.recv_bytes()
            child.stop.set()

        threading.Thread(target=relay_stop, name="tsglab-load-stop", daemon=True).start()
        try:
            child.run()
        except BaseException as exc:  # noqa: BLE001 (on_error: stop in this child: the parent re-raises it)
            try:
                raised = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
                pickle.loads(raised)
            except Exception:  # noqa: BLE001 (an exception that does not survive pickling travels as its text)
                raised = pickle.dumps(RunError(f"a load-generator process stopped the run: "
                                               f"{type(exc).__name__}: {exc}"))
            conn.send_bytes(b"X" + raised)
        conn.send_bytes(b"D" + pickle.dumps({"lags_ns": child.lags_ns, "dispatched_ns": child.dispatched_ns,
                                            "abandoned": child.abandoned}, protocol=pickle.HIGHEST_PROTOCOL))
        conn.close()


class _PipeWriter:
    """The event writer of a forked child: each event goes to the parent, which writes it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def write(self, event) -> None:
        self.conn.send_bytes(b"E" + pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL))


def _retire_inherited_connections() -> None:
    """In a forked child: every TCP connection inherited from the parent (a backend's pooled keep-alive
    connection, left by a pre-flight check or a warm-up) now reads as closed by its peer, so each child's
    HTTP client drops it and opens its own instead of sharing one stream with its siblings. The parent's
    connections are untouched: only the child's file descriptors are repointed (``dup2``), to one end of a
    socket pair whose other end is closed."""
    fd_dir = "/proc/self/fd"
    if not os.path.isdir(fd_dir):
        return
    dead, peer = socket.socketpair()
    peer.close()
    try:
        for name in os.listdir(fd_dir):
            fd = int(name)
            if fd == dead.fileno():
                continue
            try:
                if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                    continue
                probe = socket.socket(fileno=fd)
            except OSError:
                continue  # the listing's own descriptor, or one closed meanwhile
            try:
                connected_tcp = probe.family in (socket.AF_INET, socket.AF_INET6) and probe.type == socket.SOCK_STREAM
                if connected_tcp:
                    probe.getpeername()  # a listening socket raises here and is left alone
                    os.dup2(dead.fileno(), fd)
            except OSError:
                pass
            finally:
                probe.detach()  # the descriptor stays open: only its meaning changed
    finally:
        dead.close()


def _tell_stop(controls: list[Connection]) -> None:
    for control in controls:
        with contextlib.suppress(OSError, ValueError):  # a child already gone, or the pipe already closed
            control.send_bytes(b"S")


def _ready(conns, timeout: float) -> list[Connection]:
    """The connections of ``conns`` with something to read (or closed) within ``timeout`` seconds."""
    ready = wait(list(conns), timeout=timeout)
    return [conn for conn in conns if conn in ready]


def _process_count(requested: int, concurrency: int) -> int:
    """Processes to send with: ``requested`` (the spec's ``load.processes``), never more than the concurrency
    (each process needs a worker), and 1 where fork is unavailable."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(requested, concurrency))


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)
