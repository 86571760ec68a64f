"""The live sweep monitor: how many points are done, running, failed or pending, what the running points
vary and how long they have run, the failed points' errors, and a results table that grows as points finish.

:class:`SweepMonitor` is what ``%tsg sweep FILE`` and ``tsglab.sweep(...)`` show inside a Jupyter kernel
(registered with the sweep driver by :mod:`tsglab.jupyter`). It follows the run monitor's rules
(:mod:`tsglab.jupyter.monitor`, docs/widgets.md):

- it never sits in a point's path: the driver's calls (``start``, ``point_done``, ``close``) only record or
  wake; everything shown is read from the sweep directory — ``sweep.json`` (the plan) and each point's
  ``point.json`` (its state; the driver rewrites both atomically, so a read sees a whole file) — by ONE
  owner thread, which pins the starting cell's parent header (ipykernel 7) and alone touches the widget;
- the status counts are read at most every ``interval_s``; the results table is rebuilt at most every
  ``table_interval_s`` and only when a point finished since the last build (a finished point's figures
  never change, so they are computed once per point);
- the display carries a ``text/plain`` and a ``text/html`` summary beside the widget view under one
  ``display_id``, refreshed about once a second, and ends as a static HTML summary with the widget closed:
  papermill and nbclient keep the final state, a reopened notebook holds no dead widget.

The table's figures: the rows of :func:`tsglab.sweep.results.sweep_table` (the report's numbers, with
CIs) when ``table="report"``; by default (``table="running"``) the run monitor's running figures
(:class:`~tsglab.jupyter.monitor.ArmFigures`) of each finished point's events — cheap enough to refresh
while the sweep goes; the sweep's result object gives the report's numbers when it ends.
"""

from __future__ import annotations

import datetime as dt
import html
import threading
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tsglab.events import EVENTS_FILE
from tsglab.jupyter.live import LiveHTML, ending_status, thread_parent
from tsglab.jupyter.monitor import ArmFigures, EventTail
from tsglab.sweep.store import (
    DONE,
    FAILED,
    INCOMPLETE,
    PENDING,
    POINT_FILE,
    POINTS_DIR,
    SWEEP_FILE,
    classify,
    is_running,
    read_json,
)

__all__ = ["RUNNING", "STATES", "PointState", "SweepMonitor", "point_rows", "read_points", "sweep_monitor_factory"]

#: a point a worker is running now (``point.json``; the store's states say incomplete or pending)
RUNNING = "running"

#: the states shown, in this order: the store's (done, incomplete, failed, pending) and running
STATES = (DONE, RUNNING, FAILED, INCOMPLETE, PENDING)
_JOIN_TIMEOUT_S = 10.0
_TABLE_CAPTION = ("running figures of each finished point's events (exact quantiles, no CIs): the sweep's "
                  "results table gives the report's numbers with CIs")

# inline styles, as the run monitor's: inside an ipywidgets HTML widget no notebook CSS applies
_STYLE_ROOT = "font-size: var(--jp-content-font-size1, 13px); line-height: 1.4; max-width: 100%;"
_STYLE_TABLE = "border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 4px 0;"
_STYLE_HEAD = ("padding: 2px 12px 3px 0; text-align: left; font-weight: 600; vertical-align: bottom; "
               "border-bottom: 1px solid var(--jp-border-color1, #bdbdbd);")
_STYLE_CELL = "padding: 2px 12px 2px 0; text-align: {align}; white-space: nowrap;"
_STYLE_TRACK = ("display: inline-block; width: 160px; height: 8px; margin-right: 8px; vertical-align: middle; "
                "border-radius: 4px; overflow: hidden; background: var(--jp-layout-color3, #e0e0e0);")
_STYLE_FILL = "display: inline-block; height: 100%; width: {percent:.1f}%; background: {color};"
_DONE_COLOR, _FAILED_COLOR = "var(--jp-brand-color1, #1976d2)", "var(--jp-error-color1, #d32f2f)"


@dataclass(frozen=True)
class PointState:
    """One point as the monitor sees it: the plan's entry (``run_dirname``: the folder of its run, shared
    by points that differ only in report settings) and its state now."""

    point_id: str
    run_dirname: str
    params: Mapping[str, Any]
    status: str = PENDING
    started: float | None = None  # epoch seconds
    error: str = ""
    worker: str = ""

    def elapsed_s(self, now: float) -> float | None:
        return None if self.started is None else max(0.0, now - self.started)


def _epoch(value: Any) -> float | None:
    """A timestamp of ``point.json``/``sweep.json``: ISO 8601 text (``tsglab.load.rundir.now_iso``) or epoch seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        try:
            stamp = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.timezone.utc)
        return stamp.timestamp()
    return None


def read_points(root: str | Path) -> list[PointState]:
    """The state of every point of the sweep directory ``root`` (as ``sweep.json`` lists them; none while it
    does not exist yet).

    The state is the store's (:func:`tsglab.sweep.store.classify`: done, failed, incomplete, pending), and
    ``running`` for a point whose ``point.json`` says so and that is not done or failed — unless it started
    before the sweep now in ``sweep.json`` did (a worker of a sweep that was killed: incomplete)."""
    root = Path(root)
    plan = read_json(root / SWEEP_FILE) or {}
    sweep_started = _epoch(plan.get("started"))
    states = []
    for entry in plan.get("points") or []:
        run_dirname = str(entry.get("run_dirname") or entry["dirname"])
        run_dir = root / POINTS_DIR / run_dirname
        status = classify(run_dir)
        point = read_json(run_dir / POINT_FILE) or {}
        started = _epoch(point.get("started"))
        if status in (INCOMPLETE, PENDING) and point.get("status") == RUNNING:
            stale = started is not None and sweep_started is not None and started < sweep_started
            status = INCOMPLETE if stale else RUNNING
        states.append(PointState(point_id=str(entry["point_id"]), run_dirname=run_dirname,
                                 params=dict(entry.get("params") or {}), status=status, started=started,
                                 error=str(point.get("error") or "") if status in (FAILED, INCOMPLETE) else "",
                                 worker=str(point.get("worker") or "")))
    return states


def point_rows(root: str | Path, point: PointState) -> list[dict[str, Any]]:
    """The running-figure rows of one finished point, one per arm: the varied parameters, then the run
    monitor's figures of the point's events (:class:`~tsglab.jupyter.monitor.ArmFigures`)."""
    tail = EventTail(Path(root) / POINTS_DIR / point.run_dirname / EVENTS_FILE)
    arms: dict[str, ArmFigures] = {}
    for event in tail.read_new():
        arms.setdefault(event.arm, ArmFigures(event.arm, None)).add(event)
    rows = []
    for figures in arms.values():
        summary = figures.summary()
        errors = sum(summary["errors"].values())
        rows.append({"point_id": point.point_id, **point.params, "arm": figures.arm, "n": summary["done"],
                     "raw P50 ms": summary["raw_p50_ms"], "raw P95 ms": summary["raw_p95_ms"],
                     "CO P95 ms": summary["co_p95_ms"], "eval ms/req": summary["avg_eval_ms"],
                     "quality": summary["mean_quality"], "errors": errors})
    return rows


def _report_table(root: Path) -> list[dict[str, Any]]:
    """The finished points' rows of the sweep's results table (the report's numbers, with CIs)."""
    from tsglab.sweep.results import sweep_table

    frame = sweep_table(root)
    if "status" in frame.columns:
        frame = frame[frame["status"] == "complete"]
    return frame.to_dict(orient="records")


def _format(value: Any, *, as_given: bool = False) -> str:
    """A table cell: metrics rounded, a parameter's value (``as_given``) as the sweep file wrote it."""
    if as_given:
        return str(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}" if minutes < 60 else f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in params.items()) or "(base)"


def _html_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, css_class: str = "",
                as_given: Collection[str] = ()) -> str:
    head = "".join(f'<th style="{_STYLE_HEAD}">{html.escape(c)}</th>' for c in columns)
    body = []
    for row in rows:
        cells = "".join(f'<td style="{_STYLE_CELL.format(align="right" if isinstance(v, (int, float)) else "left")}">'
                        f"{html.escape(_format(v, as_given=c in as_given))}</td>"
                        for c, v in zip(columns, row, strict=True))
        body.append(f"<tr>{cells}</tr>")
    klass = f' class="{css_class}"' if css_class else ""
    return (f'<div style="overflow-x: auto;"><table{klass} style="{_STYLE_TABLE}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


@dataclass
class _Table:
    """The results table as last built: its rows, which points they cover, and when it was built."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    finished: frozenset[str] = frozenset()
    built_at: float = float("-inf")
    per_point: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # running figures, computed once


class SweepMonitor:
    """Live state of one sweep, read from its directory.

    The driver's interface (:class:`tsglab.sweep.driver.SweepProgress`): :meth:`start` (the sweep
    directory), :meth:`point_done` (wakes the owner so a finished point shows at once) and :meth:`close`
    (how the sweep ended: ``complete``, ``incomplete``, ``interrupted``; None reads it from the exception
    being handled). Should the driver release the sweep's lock without calling :meth:`close`, the owner
    notices and ends by itself (status ``stopped``): no thread outlives its sweep. ``show=False`` reads and
    renders without displaying (outside a kernel, and in tests)."""

    def __init__(self, *, interval_s: float = 0.5, text_interval_s: float = 1.0, table_interval_s: float = 2.0,
                 table: Literal["running", "report"] = "running", show: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        if interval_s <= 0 or text_interval_s < interval_s or table_interval_s < 0:
            raise ValueError(f"interval_s must be > 0, text_interval_s >= interval_s and table_interval_s >= 0; got "
                             f"{interval_s}, {text_interval_s}, {table_interval_s}. Use e.g. 0.5, 1.0 and 2.0.")
        if table not in ("running", "report"):
            raise ValueError(f"table must be 'running' or 'report'; got {table!r}.")
        self.interval_s, self.text_interval_s, self.table_interval_s = interval_s, text_interval_s, table_interval_s
        self.table_kind = table
        self.root: Path | None = None
        self.name = ""
        self.points: list[PointState] = []
        self.status = "running"
        self.table_builds = 0  # results-table rebuilds (the throttle's test counts them)
        self.error: BaseException | None = None  # what stopped the owner thread early, if anything
        self._locked_at_start = False  # the driver held the sweep's lock when the monitor started
        self._table = _Table()
        self._clock = clock
        self.live = LiveHTML("tsglab-sweep", show=show)
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._ending: str | None = None

    # -- the driver's interface --------------------------------------------------------------------------

    def start(self, root: str | Path, points: Sequence[Any] | None = None) -> SweepMonitor:
        """Read the directory once, build and display the widget (in the calling cell's thread), then start
        the owner thread. The points are read from ``sweep.json`` (the driver writes it before it starts the
        display; it also names the folder of each point's run), so ``points`` is not needed."""
        self.root = Path(root)
        self.name = str((read_json(self.root / SWEEP_FILE) or {}).get("name") or self.root.name)
        self._locked_at_start = is_running(self.root)
        self._refresh()
        self._build_table(force=True)
        parent = self.live.show(self.to_text(), self.to_html())
        self._thread = threading.Thread(target=self._own, args=(parent,), name=f"tsglab-sweep {self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def point_done(self, outcome: Any = None) -> None:
        """A point finished (the driver has written its ``point.json``): the owner reads the directory now."""
        self._wake.set()

    def close(self, status: str | None = None) -> None:
        """Stop the owner thread after its final update (a last read, the table rebuilt, the static summary)
        and join it."""
        if self._thread is None or self._ending is not None:
            return
        if status is None:
            status = ending_status()
        self._ending = status
        self._stopping = True
        self._wake.set()
        self._thread.join(_JOIN_TIMEOUT_S)
        if self._thread.is_alive():
            warnings.warn(f"the sweep monitor's thread did not end within {_JOIN_TIMEOUT_S:g} s; its display may be "
                          "stale (the sweep itself is unaffected).", RuntimeWarning, stacklevel=2)

    # -- the owner thread --------------------------------------------------------------------------------

    def _own(self, parent: dict | None) -> None:
        assert self.root is not None
        with thread_parent(parent):
            try:
                last_text = self._clock()
                while True:
                    self._wake.wait(self.interval_s)
                    self._wake.clear()
                    if self._stopping:
                        break
                    if self._locked_at_start and not is_running(self.root):  # the driver ended without close()
                        self._ending = self._ending or "stopped"
                        break
                    changed = self._refresh()
                    changed = self._build_table(force=False) or changed
                    now = self._clock()
                    send_text = now - last_text >= self.text_interval_s
                    if changed or send_text:  # send_text: once a second, so running points' elapsed times move
                        self._render(send_text=send_text)
                        if send_text:
                            last_text = now
                self._refresh()
                self._build_table(force=True)
                self.status = self._ending or "complete"
                self._render(send_text=True, final=True)
            except Exception as exc:  # noqa: BLE001 (a broken display must never stop the sweep; close() reports it)
                self.error = exc

    def _refresh(self) -> bool:
        """Read every point's state; True when one changed."""
        assert self.root is not None
        points = read_points(self.root)
        changed = [(p.point_id, p.status) for p in points] != [(p.point_id, p.status) for p in self.points]
        self.points = points
        return changed

    def _build_table(self, *, force: bool) -> bool:
        """Rebuild the results table when a point finished since the last build, at most every
        ``table_interval_s`` (``force``: whenever a point finished; the final build)."""
        assert self.root is not None
        finished = frozenset(p.point_id for p in self.points if p.status == DONE)
        now = self._clock()
        if finished == self._table.finished or (not force and now - self._table.built_at < self.table_interval_s):
            return False
        if self.table_kind == "report":
            rows = _report_table(self.root)
        else:
            rows = []
            for point in self.points:
                if point.point_id in finished:
                    if point.point_id not in self._table.per_point:
                        self._table.per_point[point.point_id] = point_rows(self.root, point)
                    rows += self._table.per_point[point.point_id]
        self._table.rows, self._table.finished, self._table.built_at = rows, finished, now
        self.table_builds += 1
        return True

    # -- what is shown -----------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Points per state, every state present, in :data:`STATES` order."""
        counts = dict.fromkeys(STATES, 0)
        for point in self.points:
            counts[point.status] += 1
        return counts

    def progress_text(self) -> str:
        return f"{self.counts()[DONE]}/{len(self.points)} points"

    def status_text(self) -> str:
        counts = self.counts()
        parts = [f"{counts[DONE]} done", f"{counts[RUNNING]} running", f"{counts[FAILED]} failed",
                 f"{counts[PENDING]} pending"]
        if counts[INCOMPLETE]:
            parts.insert(3, f"{counts[INCOMPLETE]} incomplete")
        return ", ".join(parts)

    def to_frame(self) -> Any:
        """The results table shown, as a DataFrame (one row per finished point × arm)."""
        import pandas as pd

        return pd.DataFrame(self._table.rows)

    def _table_columns(self) -> list[str]:
        columns: dict[str, None] = {}
        for row in self._table.rows:
            columns.update(dict.fromkeys(row))
        return list(columns)

    def _param_columns(self) -> set[str]:
        return {key for point in self.points for key in point.params} | {"point_id"}

    def to_text(self) -> str:
        now = self._clock()
        lines = [f"tsglab sweep {self.name}: {self.status}, {self.progress_text()} ({self.status_text()})"]
        lines += [f"  running {p.point_id} ({_params_text(p.params)}) for {_duration(p.elapsed_s(now))}"
                  for p in self.points if p.status == RUNNING]
        lines += [f"  failed {p.point_id} ({_params_text(p.params)}): {p.error or 'no error recorded'}"
                  for p in self.points if p.status == FAILED]
        if self._table.rows:
            columns = self._table_columns()
            lines.append("  results: " + " | ".join(columns))
            given = self._param_columns()
            lines += ["  " + " | ".join(_format(row.get(c), as_given=c in given) for c in columns)
                      for row in self._table.rows]
        return "\n".join(lines)

    def to_html(self) -> str:
        counts, total = self.counts(), len(self.points)
        done_pct = 100.0 * counts[DONE] / total if total else 0.0
        failed_pct = 100.0 * counts[FAILED] / total if total else 0.0
        bar = (f'<span style="{_STYLE_TRACK}"><span style="{_STYLE_FILL.format(percent=done_pct, color=_DONE_COLOR)}">'
               f'</span><span style="{_STYLE_FILL.format(percent=failed_pct, color=_FAILED_COLOR)}"></span></span>')
        parts = [f'<div class="tsglab-sweep" style="{_STYLE_ROOT}">',
                 (f"<div><b>tsglab sweep {html.escape(self.name)}</b> — "
                  f'<span class="tsglab-sweep-status">{html.escape(self.status)}</span></div>'),
                 (f'<div>{bar}<span class="tsglab-sweep-progress">{html.escape(self.progress_text())}</span> '
                  f"({html.escape(self.status_text())})</div>")]
        now = self._clock()
        running = [(p.point_id, _params_text(p.params), p.worker, _duration(p.elapsed_s(now)))
                   for p in self.points if p.status == RUNNING]
        if running:
            parts.append("<div><small>running</small></div>"
                         + _html_table(["point", "parameters", "worker", "elapsed"], running,
                                       css_class="tsglab-sweep-running"))
        failed = [(p.point_id, _params_text(p.params), p.error or "no error recorded")
                  for p in self.points if p.status == FAILED]
        if failed:
            parts.append("<div><small>failed</small></div>"
                         + _html_table(["point", "parameters", "error"], failed, css_class="tsglab-sweep-failed"))
        if self._table.rows:
            columns = self._table_columns()
            caption = _TABLE_CAPTION if self.table_kind == "running" else "the report's figures of the finished points"
            parts.append(_html_table(columns, ([row.get(c) for c in columns] for row in self._table.rows),
                                     css_class="tsglab-sweep-table", as_given=self._param_columns())
                         + f"<div><small>{html.escape(caption)}</small></div>")
        parts.append("</div>")
        return "".join(parts)

    @property
    def renders(self) -> int:
        """Display updates made."""
        return self.live.renders

    @property
    def display_updates(self) -> int:
        return self.live.display_updates

    def _render(self, *, send_text: bool, final: bool = False) -> None:
        """Owner thread only: push the state to the widget, and (``send_text``) the text summaries."""
        self.live.update(self.to_text(), self.to_html(), send_text=send_text, final=final)


def sweep_monitor_factory() -> SweepMonitor:
    """The sweep driver's progress factory: an unstarted monitor (the driver calls ``start(root, points)``)."""
    return SweepMonitor()
