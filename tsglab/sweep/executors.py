"""Executors: how a sweep's points are spread over processes. One protocol, three kinds.

``seq`` runs the points one after another in this process (:class:`SequentialExecutor`); ``pool`` (a local
process pool) and ``dask`` (Dask distributed: a LocalCluster, a scheduler address or a Client) live in
:mod:`tsglab.sweep.parallel`, imported only when asked for. Every executor calls ``on_done`` in the caller's
thread as each point finishes, so the driver records it at once (a later Ctrl-C or a dead worker loses
nothing already finished).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tsglab.errors import InvalidArgument, MissingDependencyError
from tsglab.sweep.point import PointOutcome, PointTask, run_point

__all__ = ["EXECUTORS", "Executor", "SequentialExecutor", "make_executor"]

EXECUTORS = ("seq", "pool", "dask")


class Executor(Protocol):
    name: str  # "seq" | "pool" | "dask"
    workers: int

    def run(self, tasks: Sequence[PointTask], on_done: Callable[[PointOutcome], None],
            on_start: Callable[[str], None] | None = None) -> None:
        """Run every task; call ``on_done(outcome)`` in the caller's thread as each finishes. A worker process
        that dies makes that task's outcome ``failed`` with the reason; on KeyboardInterrupt cancel what has
        not started, stop the workers, and re-raise."""
        ...


class SequentialExecutor:
    """The points one after another in this process: no pickling, the simplest to debug."""

    name = "seq"
    workers = 1

    def run(self, tasks: Sequence[PointTask], on_done: Callable[[PointOutcome], None],
            on_start: Callable[[str], None] | None = None) -> None:
        for task in tasks:
            if on_start is not None:
                on_start(task.point_id)
            on_done(run_point(task))


def make_executor(kind: str = "seq", *, workers: int | None = None, dask: Any = None) -> Executor:
    """The executor ``kind`` names. ``workers``: processes of ``pool`` or ``dask`` (None: their default);
    ``dask``: None (a LocalCluster of ``workers`` processes on 127.0.0.1), an address ``tcp://host:port``, or
    a ``distributed.Client``."""
    if kind not in EXECUTORS:
        raise InvalidArgument(f"executor must be one of {list(EXECUTORS)}; got {kind!r}. Use 'seq' to run the points "
                              "one after another, 'pool' for a local process pool, 'dask' for Dask distributed.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InvalidArgument(f"workers must be a whole number >= 1; got {workers!r}.")
    if dask is not None and kind != "dask":
        raise InvalidArgument(f"dask={dask!r} is given but the executor is {kind!r}; pass executor='dask' "
                              "(CLI: --executor dask) or leave dask out.")
    if kind == "seq":
        if workers not in (None, 1):
            raise InvalidArgument(f"workers={workers} needs a parallel executor; pass executor='pool' or 'dask' "
                                  "(CLI: --executor pool), or leave workers out.")
        return SequentialExecutor()
    try:
        parallel = importlib.import_module("tsglab.sweep.parallel")
    except ModuleNotFoundError as exc:
        if exc.name != "tsglab.sweep.parallel":
            raise
        raise MissingDependencyError(f"executor {kind!r} needs tsglab.sweep.parallel, which this installation "
                                     "lacks; use executor='seq' (CLI: --executor seq), or update tsglab.") from None
    if kind == "pool":
        return parallel.PoolExecutor(workers)
    return parallel.DaskExecutor(workers=workers, address_or_client=dask)
