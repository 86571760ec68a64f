"""Parallel executors: a local process pool and Dask distributed.

Both hand a worker one point at a time and keep at most one point per worker in flight, so ``on_start``
means "a worker has it" and a Ctrl-C leaves nothing queued inside a pool. Both call ``on_done`` in the
caller's thread as each point finishes; the driver records it there, so a finished point is never lost.

**Pool** (:class:`PoolExecutor`): one single-process :class:`concurrent.futures.ProcessPoolExecutor` per
worker slot, started with ``spawn`` (the runner uses threads and numba, which ``fork`` does not copy
safely). A pool whose process dies marks *every* future it holds as broken, so with one shared pool a
single crash would fail the points running beside it and nobody could say which point was to blame; with a
pool per slot the dead process's point is the one that fails, and only that slot is rebuilt. Worker
processes are reused across points: a fresh interpreter that imports tsglab costs 2-4 s on a 2-core machine,
against a few milliseconds per point for a reused worker (``benchmarks/results/sweep.md``), and every point
already has its own run directory and its own runner state.

**Dask** (:class:`DaskExecutor`): a ``LocalCluster`` of one-thread worker processes on 127.0.0.1 by
default, or a running scheduler (an address such as ``tcp://10.0.0.5:8786``) or a ``distributed.Client``
that the caller made. Workers must import the same tsglab (and the backends the points use): a
LocalCluster's workers run this interpreter; on a remote cluster install tsglab into every worker's
environment, and give the workers the sweep directory at the same absolute path (a shared file system).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from tsglab.errors import InvalidArgument, MissingDependencyError
from tsglab.sweep.point import PointOutcome, PointTask, one_line, run_point

__all__ = ["DaskExecutor", "PoolExecutor"]

# how long stopped workers get to mark their runs incomplete (the runner turns SIGTERM into an orderly stop)
# before they are killed outright
STOP_GRACE_S = 5.0
# Dask settings of a LocalCluster the sweep starts (its workers inherit them)
LOCAL_CLUSTER_CONFIG = {
    # a point whose worker dies fails at once (Dask's default, 3, would run it on three more workers first)
    "distributed.scheduler.allowed-failures": 0,
    # one point per one-thread worker: none waits in a queue on a worker that may die
    "distributed.scheduler.worker-saturation": 1.0,
    # the statistical profiler feeds the dashboard, which we do not start; idle, it costs each worker about
    # 2 % of a core (measured in benchmarks/bench_sweep.py), a lot with 32 workers on a small machine
    "distributed.worker.profile.enabled": False,
}


def _default_workers() -> int:
    return os.cpu_count() or 1


def _check_workers(workers: int | None) -> int:
    if workers is None:
        return _default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgument(f"workers must be a whole number >= 1; got {workers!r}.")
    return workers


# ---------------------------------------------------------------------------------------------- process pool

def _note_pid(pids: Any) -> None:
    """Pool initializer: tell the parent this worker's pid (so that Ctrl-C can stop a running point)."""
    pids.put(os.getpid())


class _Slot:
    """One worker: a single-process pool, rebuilt when its process dies."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self._pids = context.SimpleQueue()
        self.pid: int | None = None
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=1, mp_context=self._context, initializer=_note_pid,
                                   initargs=(self._pids,))

    def current_pid(self) -> int | None:
        while not self._pids.empty():
            self.pid = self._pids.get()
        return self.pid

    def submit(self, task: PointTask) -> Future:
        try:
            return self.pool.submit(run_point, task)
        except BrokenProcessPool:  # the idle process died since its last point (the OOM killer, a kill)
            self.rebuild()
            return self.pool.submit(run_point, task)

    def rebuild(self) -> None:
        self.pool.shutdown(wait=False)
        self.pid = None
        self.pool = self._new_pool()

    def stop(self, signum: int) -> None:
        pid = self.current_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._pids.close()


class PoolExecutor:
    """The points on ``workers`` local processes (default: one per CPU core), started with ``spawn``."""

    name = "pool"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = _check_workers(workers)

    def __repr__(self) -> str:
        return f"PoolExecutor(workers={self.workers})"

    def run(self, tasks: Sequence[PointTask], on_done: Callable[[PointOutcome], None],
            on_start: Callable[[str], None] | None = None) -> None:
        if not tasks:
            return
        pending = deque(tasks)
        context = multiprocessing.get_context("spawn")
        slots = [_Slot(context) for _ in range(min(self.workers, len(tasks)))]
        running: dict[Future, tuple[_Slot, PointTask]] = {}
        try:
            while pending or running:
                busy = {slot for slot, _ in running.values()}
                for slot in slots:
                    if pending and slot not in busy:
                        task = pending.popleft()
                        running[slot.submit(task)] = (slot, task)
                        if on_start is not None:
                            on_start(task.point_id)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    slot, task = running.pop(future)
                    on_done(_pool_outcome(future, slot, task))
        except BaseException:
            _stop_running(running, on_done)
            raise
        finally:
            for slot in slots:
                slot.close()


def _pool_outcome(future: Future, slot: _Slot, task: PointTask) -> PointOutcome:
    try:
        return future.result()
    except BrokenProcessPool:
        pid = slot.current_pid()
        slot.rebuild()
        if pid is None:  # it died before its initializer ran: it never got as far as the point
            return _failed(task, "the worker process died while starting, before the point began. A script that "
                                 "runs a sweep on a pool must do so under `if __name__ == \"__main__\":` (spawned "
                                 "workers import the main module again).", worker="pool")
        return _failed(task, f"the worker process (pid {pid}) died while running the point: killed, out of memory, "
                             "or a crash in native code. Retry it with retry_failed (CLI: --retry-failed).",
                       worker=f"pool:{pid}")
    except KeyboardInterrupt:
        # the worker was interrupted (Ctrl-C reaches the whole process group): the run is marked incomplete
        return _interrupted(task, worker="pool")


def _stop_running(running: dict[Future, tuple[_Slot, PointTask]], on_done: Callable[[PointOutcome], None]) -> None:
    """Ctrl-C: ask each busy worker to stop (SIGTERM: the runner marks its run incomplete and the worker sends
    the interruption back), kill those still running after STOP_GRACE_S, and report the points that had
    finished but were not reported yet. Idle workers end with the pool's shutdown."""
    for slot, _ in running.values():
        slot.stop(signal.SIGTERM)
    _, still_running = wait(running, timeout=STOP_GRACE_S)
    for future in still_running:
        running[future][0].stop(signal.SIGKILL)
    for future in running:
        if future.done() and not future.cancelled() and future.exception() is None:
            with contextlib.suppress(Exception):
                on_done(future.result())


def _failed(task: PointTask, error: str, *, worker: str) -> PointOutcome:
    return PointOutcome(task.point_id, "failed", error, 0.0, worker)


def _interrupted(task: PointTask, *, worker: str) -> PointOutcome:
    return PointOutcome(task.point_id, "incomplete", "interrupted; the next start of the sweep resumes it", 0.0,
                        worker)


# ---------------------------------------------------------------------------------------------- Dask

def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError("executor 'dask' needs Dask distributed: pip install 'tsglab[dask]'.") from None
    return distributed


class DaskExecutor:
    """The points on Dask distributed workers.

    ``address_or_client``: None starts a ``LocalCluster`` of ``workers`` processes (default: one per CPU
    core), one thread each, on 127.0.0.1 without a dashboard, and closes it at the end; a scheduler address
    (``"tcp://host:port"``) connects a client for this sweep and closes only that client; a
    ``distributed.Client`` is used as it is and left open. On a cluster we did not start, the scheduler's
    ``distributed.scheduler.allowed-failures`` decides how many workers a point may kill before it fails
    (Dask's default is 3; set it low on the scheduler).
    """

    name = "dask"

    def __init__(self, workers: int | None = None, address_or_client: Any = None) -> None:
        distributed = _distributed()
        if not (address_or_client is None or isinstance(address_or_client, distributed.Client)
                or (isinstance(address_or_client, str) and "://" in address_or_client)):
            raise InvalidArgument(f"dask must be a scheduler address such as 'tcp://127.0.0.1:8786', a "
                                  f"distributed.Client, or None (a LocalCluster); got {address_or_client!r}.")
        self.address_or_client = address_or_client
        # on a cluster we did not start the workers are counted once connected
        self.workers = _check_workers(workers) if address_or_client is None or workers is not None else 0

    def __repr__(self) -> str:
        where = "LocalCluster" if self.address_or_client is None else repr(self.address_or_client)
        return f"DaskExecutor(workers={self.workers}, {where})"

    def run(self, tasks: Sequence[PointTask], on_done: Callable[[PointOutcome], None],
            on_start: Callable[[str], None] | None = None) -> None:
        if not tasks:
            return
        distributed = _distributed()
        with contextlib.ExitStack() as owned:
            client = self._client(distributed, owned)
            pending = deque(tasks)
            in_flight: dict[Any, PointTask] = {}
            finished = distributed.as_completed()

            def submit_more() -> None:
                capacity = max(1, sum(client.nthreads().values()))
                self.workers = capacity
                while pending and len(in_flight) < capacity:
                    task = pending.popleft()
                    future = client.submit(run_point, task, key=f"tsglab-point-{task.dirname}-{uuid.uuid4().hex[:8]}",
                                           pure=False, retries=0)
                    in_flight[future] = task
                    finished.add(future)
                    if on_start is not None:
                        on_start(task.point_id)

            try:
                submit_more()
                for future in finished:
                    task = in_flight.pop(future)
                    on_done(_dask_outcome(future, task))
                    submit_more()
            except BaseException:
                # what has not started is dropped; a running point cannot be interrupted inside a worker
                # thread, so a cluster we started is closed (its processes end) and a remote one finishes it
                with contextlib.suppress(Exception):
                    client.cancel(list(in_flight), force=True)
                raise

    def _client(self, distributed: Any, owned: contextlib.ExitStack) -> Any:
        if isinstance(self.address_or_client, distributed.Client):
            return self.address_or_client
        if isinstance(self.address_or_client, str):
            try:
                client = distributed.Client(self.address_or_client, timeout="20s")
            except OSError as exc:
                raise InvalidArgument(f"cannot reach the Dask scheduler at {self.address_or_client}: {one_line(exc)}. "
                                      "Start one (dask scheduler) or pass another --dask address.") from None
            owned.callback(client.close, timeout=10)
            return client
        import logging

        import dask

        with dask.config.set(LOCAL_CLUSTER_CONFIG):
            cluster = distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                               host="127.0.0.1", dashboard_address=None,
                                               silence_logs=logging.ERROR)
        owned.callback(cluster.close, timeout=20)
        client = distributed.Client(cluster)
        owned.callback(client.close, timeout=10)
        return client


def _dask_outcome(future: Any, task: PointTask) -> PointOutcome:
    if future.status == "finished":
        return future.result()
    if future.status == "cancelled":
        return _failed(task, "cancelled on the Dask cluster before it finished; run the sweep again to retry it",
                       worker="dask")
    exc = future.exception()
    if type(exc).__name__ == "KilledWorker":
        return _failed(task, f"the Dask worker running it died ({one_line(exc)}): killed, out of memory, or a "
                             "crash in native code. Retry it with retry_failed (CLI: --retry-failed).", worker="dask")
    if isinstance(exc, KeyboardInterrupt):
        return _interrupted(task, worker="dask")
    # run_point returns a point's own failure; an exception here is the worker's (e.g. tsglab not importable)
    return _failed(task, f"the Dask worker could not run it: {one_line(exc)}", worker="dask")
