"""The sweep driver: plan → store (locked) → executor → results, and nothing finished is ever lost.

:func:`run_sweep` reads like the sweep it performs:

1. the plan (:func:`tsglab.sweep.plan.load_sweep`: every point validated and keyed before anything runs);
2. the sweep directory (:class:`~tsglab.sweep.store.SweepStore`: locked for the whole sweep, ``sweep.json``
   and each point's ``spec.yaml`` written);
3. each point classified — done (skipped), incomplete (resumed), failed (skipped unless ``retry_failed``),
   pending — and the rest handed to the executor;
4. ``point.json`` written from each outcome as it arrives, in this thread: a Ctrl-C or a killed worker
   later loses no finished point, since each point's run directory is complete on its own;
5. the combined results (:mod:`tsglab.sweep.results`), also after Ctrl-C, from what is finished.

Progress: a line per finished point on stderr and a summary, or inside a Jupyter kernel the display
registered with :func:`set_sweep_progress` (the sweep monitor of :mod:`tsglab.jupyter`).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tsglab.errors import RunError, RunInterrupted
from tsglab.events import MANIFEST_FILE
from tsglab.load.rundir import now_iso
from tsglab.sweep.executors import make_executor
from tsglab.sweep.plan import Sweep, SweepPoint, load_sweep
from tsglab.sweep.point import PointOutcome, PointTask, _notebook_module, one_line
from tsglab.sweep.store import DONE, FAILED, INCOMPLETE, PENDING, SWEEP_FILE, SweepStore, point_states, sweep_root

__all__ = ["SweepProgress", "SweepProgressFactory", "SweepStatus", "open_sweep_result", "rebuild_results",
           "run_sweep", "set_sweep_progress"]


class SweepProgress(Protocol):
    """A sweep's progress display: told the plan, each outcome as it arrives, and how the sweep ended
    (``complete``, ``incomplete`` or ``interrupted``). ``point.json`` is written before ``point_done``."""

    def start(self, root: Path, points: Sequence[SweepPoint]) -> None: ...

    def point_done(self, outcome: PointOutcome) -> None: ...

    def close(self, status: str) -> None: ...


SweepProgressFactory = Callable[[], SweepProgress]

# what ``progress=True`` shows inside a Jupyter kernel; tsglab.jupyter registers its sweep monitor here (this
# layer may not import that one), as it registers the run monitor with tsglab.load.session
_notebook_progress: SweepProgressFactory | None = None


def set_sweep_progress(factory: SweepProgressFactory | None) -> None:
    """Register the display a sweep shows by default inside a Jupyter kernel (None: lines on stderr)."""
    global _notebook_progress
    _notebook_progress = factory


def run_sweep(sweep: str | os.PathLike | Sweep, *, sweeps_dir: str | os.PathLike = "runs/sweeps",
              executor: str = "seq", workers: int | None = None, dask: Any = None, retry_failed: bool = False,
              progress: bool | SweepProgressFactory = True) -> Any:
    """Run every point of ``sweep`` (a sweep file or a :class:`~tsglab.sweep.plan.Sweep`) that is not done yet
    into ``<sweeps_dir>/<name>/``; returns the combined result (:class:`tsglab.sweep.results.SweepResult`).

    ``executor``: ``seq``, ``pool`` or ``dask`` (:func:`~tsglab.sweep.executors.make_executor`, with
    ``workers`` and ``dask``). Finished points are skipped, incomplete ones resumed, failed ones skipped unless
    ``retry_failed``. ``progress``: True prints a line per finished point (the sweep monitor inside a
    kernel), False nothing, or a factory of a :class:`SweepProgress`. Ctrl-C stops the sweep with
    :class:`~tsglab.errors.RunInterrupted` once the results of what finished are written.
    """
    plan = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
    if plan.mode == "notebook":
        _notebook_module()  # not available: say so before anything is written
    runner = make_executor(executor, workers=workers, dask=dask)
    root = sweep_root(sweeps_dir, plan.name)
    store = SweepStore.open(root, purpose=f"tsglab sweep {plan.name}")
    run = _SweepRun(plan, store, _display(progress))
    try:
        run.prepare(executor=runner.name, workers=runner.workers, retry_failed=retry_failed)
        try:
            runner.run(run.tasks, run.on_done, run.on_start)
        except KeyboardInterrupt as exc:
            run.interrupted(exc)
        except Exception as exc:  # the executor itself failed (a scheduler gone): say so, keep what finished
            run.failed(exc)
            raise
        run.finish()
    finally:
        store.release()
    if run.interruption is not None:
        raise run.interruption
    return open_sweep_result(root)


def rebuild_results(root: str | os.PathLike) -> Any:
    """Write the combined results of the sweep directory ``root`` again and return them (``tsglab sweep report``)."""
    root = Path(root)
    if not (root / SWEEP_FILE).is_file():
        raise RunError(f"{root}: no {SWEEP_FILE}; is this a sweep directory (runs/sweeps/<name>)? Run the sweep "
                       "first: tsglab sweep FILE.")
    store = SweepStore.open(root, purpose=f"tsglab sweep report {root}")
    try:
        note = _write_results(root)
    finally:
        store.release()
    if note:
        print(f"tsglab: {note}", file=sys.stderr)
    return open_sweep_result(root)


@dataclass(frozen=True)
class SweepStatus:
    """Where a sweep lives and the state of each point (what is returned while the results module is absent)."""

    root: Path
    statuses: dict[str, str]

    def __repr__(self) -> str:
        counts = {state: list(self.statuses.values()).count(state) for state in (DONE, INCOMPLETE, FAILED, PENDING)}
        shown = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        return f"<sweep {self.root}: {len(self.statuses)} points ({shown or 'none'})>"


def open_sweep_result(root: str | os.PathLike) -> Any:
    """:meth:`tsglab.sweep.results.SweepResult.open` of ``root``; a :class:`SweepStatus` without that module."""
    results = _results_module()
    if results is None:
        return SweepStatus(Path(root), point_states(root))
    return results.SweepResult.open(root)


@dataclass
class _SweepRun:
    """One start of a sweep: what it runs, and the callbacks that record each point as it goes."""

    plan: Sweep
    store: SweepStore
    display: SweepProgress | None
    tasks: list[PointTask] = field(default_factory=list)
    started: dict[str, float] = field(default_factory=dict)  # point id -> monotonic start, of this start
    outcomes: list[PointOutcome] = field(default_factory=list)
    interruption: RunInterrupted | None = None
    _by_id: dict[str, SweepPoint] = field(default_factory=dict)
    _fields: dict[str, Any] = field(default_factory=dict)
    _t0: float = field(default_factory=time.monotonic)

    def prepare(self, *, executor: str, workers: int, retry_failed: bool) -> None:
        plan, store = self.plan, self.store
        holders = [p for p in plan.points if plan.run_dirname(p) == p.dirname]  # the others read their runs
        for point in holders:
            store.write_spec(point)
        self._fields = {"executor": executor, "workers": workers, "started": now_iso()}
        store.write_sweep(plan, **self._fields, finished=None, status="running")
        states = {p.point_id: store.state(plan, p) for p in holders}
        todo = [p for p in holders if states[p.point_id] in (PENDING, INCOMPLETE)
                or (states[p.point_id] == FAILED and retry_failed)]
        self._by_id = {p.point_id: p for p in plan.points}
        self.tasks = [self._task(p) for p in todo]
        self._say(_plan_line(plan, states, len(plan.points) - len(holders), retry_failed))
        if self.display is not None:
            self.display.start(store.root, plan.points)

    def _task(self, point: SweepPoint) -> PointTask:
        folder = self.store.point_dir(point.dirname).resolve()
        notebook = self.plan.notebook
        return PointTask(point_id=point.point_id, dirname=point.dirname, points_dir=str(folder.parent),
                         spec_path=str(folder / "spec.yaml"), resume=(folder / MANIFEST_FILE).is_file(),
                         mode=self.plan.mode, notebook=str(notebook) if notebook else None,
                         project_root=str(_project_root()))

    def on_start(self, point_id: str) -> None:
        point = self._by_id[point_id]
        self.started[point_id] = time.monotonic()
        attempts = int(self.store.read_point(point.dirname).get("attempts", 0)) + 1
        self.store.write_point(point.dirname, status="running", started=now_iso(), finished=None, worker="",
                               error="", attempts=attempts, key=point.key)

    def on_done(self, outcome: PointOutcome) -> None:
        point = self._by_id[outcome.point_id]
        fields: dict[str, Any] = {}
        if outcome.point_id not in self.started:  # an executor that does not report starts
            fields["attempts"] = int(self.store.read_point(point.dirname).get("attempts", 0)) + 1
        self.store.write_point(point.dirname, **fields, status=outcome.status, worker=outcome.worker,
                               finished=now_iso(), seconds=outcome.seconds, error=outcome.error, key=point.key)
        self.outcomes.append(outcome)
        self._say(_outcome_line(outcome, point, len(self.outcomes), len(self.tasks)))
        if self.display is not None:
            self.display.point_done(outcome)

    def interrupted(self, exc: KeyboardInterrupt) -> None:
        """Ctrl-C (or SIGTERM in a run): the points that were running are marked incomplete, to be resumed."""
        finished = {o.point_id for o in self.outcomes}
        for point_id in self.started.keys() - finished:
            self.store.write_point(self._by_id[point_id].dirname, status=INCOMPLETE, finished=now_iso(),
                                   error="interrupted (Ctrl-C); the next start resumes it")
        terminated = (exc.terminated if isinstance(exc, RunInterrupted) else False) or str(exc) == "SIGTERM"
        self.interruption = RunInterrupted("", terminated=terminated)

    def failed(self, exc: Exception) -> None:
        """The executor failed: points that were running are marked incomplete (the next start resumes them)
        and the display closes instead of waiting for points that will not finish."""
        finished = {o.point_id for o in self.outcomes}
        for point_id in self.started.keys() - finished:
            self.store.write_point(self._by_id[point_id].dirname, status=INCOMPLETE, finished=now_iso(),
                                   error=f"the executor failed: {one_line(exc)}; the next start resumes it")
        self.store.write_sweep(self.plan, **self._fields, finished=now_iso(), status="failed")
        if self.display is not None:
            self.display.close(f"failed: {one_line(exc)}")

    def finish(self) -> None:
        plan, store = self.plan, self.store
        states = {p.point_id: store.state(plan, p) for p in plan.points}
        status = ("interrupted" if self.interruption is not None
                  else "complete" if all(s == DONE for s in states.values()) else "incomplete")
        store.write_sweep(plan, **self._fields, finished=now_iso(), status=status)
        note = _write_results(store.root)
        self._say(_summary_line(plan, store.root, states, time.monotonic() - self._t0, self.outcomes, note))
        if self.display is not None:
            self.display.close(status)
        if self.interruption is not None:
            done = sum(s == DONE for s in states.values())
            self.interruption = RunInterrupted(
                f"tsglab: sweep {plan.name} interrupted; {done}/{len(states)} points done and kept in {store.root}. "
                "Run the same sweep again to continue (done points are skipped, interrupted ones resumed).",
                terminated=self.interruption.terminated)

    def _say(self, line: str) -> None:
        if self.display is _LINES:
            print(line, file=sys.stderr, flush=True)


class _Lines:
    """The command line's display: the lines themselves are printed by the driver (see ``_say``)."""

    def start(self, root: Path, points: Sequence[SweepPoint]) -> None:
        return None

    def point_done(self, outcome: PointOutcome) -> None:
        return None

    def close(self, status: str) -> None:
        return None


_LINES = _Lines()


def _display(progress: bool | SweepProgressFactory) -> SweepProgress | None:
    if callable(progress):
        return progress()
    if not progress:
        return None
    if _notebook_progress is not None and _in_kernel():
        return _notebook_progress()
    return _LINES


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (a notebook, papermill), False in a terminal or in tests."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def _project_root() -> Path:
    from tsglab.errors import InvalidArgument
    from tsglab.paths import project_root

    try:
        return project_root()
    except InvalidArgument:  # outside a checkout: only notebook mode needs it, and its kernel says so
        return Path.cwd().resolve()


def _params_text(point: SweepPoint) -> str:
    return " ".join(f"{key}={value}" for key, value in point.params.items()) or "(base spec)"


def _plan_line(plan: Sweep, states: dict[str, str], shared: int, retry_failed: bool) -> str:
    counts = {state: sum(s == state for s in states.values()) for state in (DONE, INCOMPLETE, FAILED, PENDING)}
    parts = [f"{counts[DONE]} done (skipped)", f"{counts[INCOMPLETE]} incomplete (resumed)",
             f"{counts[FAILED]} failed ({'retried' if retry_failed else 'skipped; retry with --retry-failed'})",
             f"{counts[PENDING]} pending"]
    if shared:
        parts.append(f"{shared} reading another point's run (only report settings differ)")
    return f"sweep {plan.name}: {len(plan.points)} points — " + ", ".join(p for p in parts if not p.startswith("0 "))


def _outcome_line(outcome: PointOutcome, point: SweepPoint, index: int, total: int) -> str:
    line = f"[{index}/{total}] {outcome.point_id} {outcome.status} in {outcome.seconds:.1f} s — {_params_text(point)}"
    return f"{line}: {outcome.error}" if outcome.error else line


def _summary_line(plan: Sweep, root: Path, states: dict[str, str], seconds: float, outcomes: list[PointOutcome],
                  note: str) -> str:
    done = sum(s == DONE for s in states.values())
    line = f"sweep {plan.name}: {done}/{len(states)} points done ({len(outcomes)} run now) in {seconds:.1f} s → {root}"
    failed = [p for p, s in states.items() if s == FAILED]
    if failed:
        line += f"; failed: {', '.join(failed)} (errors in point.json; retry with --retry-failed)"
    return f"{line}; {note}" if note else line


def _results_module() -> Any:
    """:mod:`tsglab.sweep.results`, or None where it is not installed."""
    try:
        return importlib.import_module("tsglab.sweep.results")
    except ModuleNotFoundError as exc:
        if exc.name != "tsglab.sweep.results":
            raise
        return None


def _write_results(root: Path) -> str:
    """Write the combined results; returns a note when they could not be written (the sweep itself is kept)."""
    results = _results_module()
    if results is None:
        return "results table not written (tsglab.sweep.results is not installed)"
    try:
        results.write_sweep_results(root)
    except Exception as exc:  # noqa: BLE001 (every point is kept; `tsglab sweep report DIR` writes them later)
        return f"results not written ({one_line(exc)}); fix it and run `tsglab sweep report {root}`"
    return ""
