"""The live run monitor: per arm progress and running figures of a run, read from its event log.

:class:`RunMonitor` is what ``%tsg run`` and ``tsglab.run(...)`` show inside a Jupyter kernel (the
session makes it through :func:`monitor_factory`, registered by :mod:`tsglab.jupyter`). It never sits
in the request path: ``update()`` and ``set_postfix_str()`` do nothing; the figures come from
``events.jsonl``, tailed incrementally (:class:`EventTail`: the bytes appended since the last offset,
a torn last line left for the next read) by one owner thread at most every ``interval_s`` seconds,
and once more at the end. The figures are running ones over the requests answered so far (exact
type-7 quantiles of the sample so far, "n < k" while the sample is too small); the report's numbers,
with confidence intervals, come from the report.

Threads (ipykernel 7): the kernel keeps the parent header — which cell an output or comm message
belongs to — in ``ContextVar``s, per thread and task. A new thread has none of its own and falls back
to the latest cell that ran, so a monitor thread that outlived its cell would write into whatever cell
runs next. The rule followed here:

1. the starting (cell) thread builds the widget and displays it, then captures its parent header
   (``get_ipython().get_parent()``);
2. ONE owner thread, started at once, pins that header with ``get_ipython().set_thread_parent(...)``
   (the public API of ipykernel 7; undone with ``reset_thread_parent`` when it ends) and makes every
   widget change and ``update_display`` from then on; nothing else touches the widgets;
3. ``close()`` — called by the run's session on completion, on an exception and on Ctrl-C alike —
   only records how the run ended and asks the owner to stop; the owner makes the final update and
   ends; ``close()`` joins it (so no thread outlives the run), and the run's KeyboardInterrupt goes on
   to the magic, which prints its one line.

Papermill and nbclient render no widget. The display therefore carries, besides the widget view, a
``text/plain`` and a ``text/html`` summary under one ``display_id``; about once a second the owner
sends ``update_display`` with fresh summaries (nbclient replaces the stored output in place, so an
executed notebook shows the latest progress, never a frozen 0 % bar; JupyterLab renders the widget
view). At the end the display is replaced by a static HTML summary and the widgets are closed: the
saved notebook shows the final figures and a reopened one has no dead widget.

JupyterLab may show the kernel idle while the cell runs: its subshell request, sent on the control
channel when the first widget comm opens, ends with an idle status that the server does not ignore by
default. Any widget does this; docs/widgets.md ("The kernel status while a widget cell runs") has the
evidence and the server setting that fixes it.
"""

from __future__ import annotations

import html
import json
import threading
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from tsglab.events import EVENTS_FILE, Event
from tsglab.events.log import split_torn_tail
from tsglab.jupyter.live import LiveHTML, ending_status, thread_parent

__all__ = ["ArmFigures", "EventTail", "RunMonitor", "monitor_factory"]

#: fewest answered requests before a running quantile is shown ("n < k" until then): below these a
#: P95 or P99 is little more than the sample maximum
MIN_N = {0.5: 5, 0.95: 20, 0.99: 100}
_DECODER = msgspec.json.Decoder(Event)
_JOIN_TIMEOUT_S = 10.0


class EventTail:
    """The events appended to one ``events.jsonl`` since the last :meth:`read_new`.

    Only complete lines are decoded (a line is complete when it ends with a newline, the log's one
    rule: :func:`tsglab.events.log.split_torn_tail`); a torn last line stays for the next read. A line
    that does not decode as an event is skipped and counted in ``unreadable`` (the report names it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.offset = 0
        self.unreadable = 0

    def read_new(self) -> list[Event]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:  # the writer creates it with the first event
            return []
        complete, _torn = split_torn_tail(data)
        self.offset += len(complete)
        if not complete:
            return []
        try:
            return list(_DECODER.decode_lines(complete))
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self._line_by_line(complete)

    def _line_by_line(self, complete: bytes) -> list[Event]:
        events = []
        for line in complete.split(b"\n"):
            if not line.strip():
                continue
            try:
                events.append(Event.from_json(json.loads(line)))  # also converts version-1 lines
            except Exception:  # noqa: BLE001 (a monitor shows what it can read; the report names bad lines)
                self.unreadable += 1
        return events


def _running_quantile(values: list[float], q: float) -> float | None:
    """The type-7 quantile of the sample so far, or None while it is smaller than ``MIN_N[q]``."""
    from tsglab.stats import sample_quantile

    if len(values) < MIN_N[q]:
        return None
    return float(sample_quantile(np.asarray(values, dtype=float), q))


@dataclass
class ArmFigures:
    """Running figures of one arm over the events read so far: progress, latency of the answered
    requests (raw and CO), cost (eval ms per request, all attempts), mean quality (0 for a request
    without an answer, as the report counts it), errors by kind and dispatch lag."""

    arm: str
    planned: int | None
    done: int = 0
    raw_ms: list[float] = field(default_factory=list)
    co_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    cost_ms_sum: float = 0.0
    quality_sum: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, event: Event) -> None:
        self.done += 1
        self.lag_ms.append(event.latency.dispatch_lag_ms)
        self.cost_ms_sum += event.latency.cost_ms
        self.quality_sum += event.quality.score
        if event.error is not None:
            self.errors[event.error.kind] += 1
        else:
            self.raw_ms.append(event.latency.raw_ms)
            self.co_ms.append(event.latency.co_ms)

    def summary(self) -> dict[str, Any]:
        """The figures shown: quantiles are None while their sample is too small (see :data:`MIN_N`)."""
        return {
            "arm": self.arm, "done": self.done, "planned": self.planned, "answered": len(self.raw_ms),
            "raw_p50_ms": _running_quantile(self.raw_ms, 0.5), "raw_p95_ms": _running_quantile(self.raw_ms, 0.95),
            "co_p50_ms": _running_quantile(self.co_ms, 0.5), "co_p95_ms": _running_quantile(self.co_ms, 0.95),
            "avg_eval_ms": self.cost_ms_sum / self.done if self.done else None,
            "mean_quality": self.quality_sum / self.done if self.done else None,
            "errors": dict(sorted(self.errors.items())),
            "lag_p50_ms": _running_quantile(self.lag_ms, 0.5), "lag_p99_ms": _running_quantile(self.lag_ms, 0.99),
        }

    def progress_text(self) -> str:
        return f"{self.done}/{self.planned if self.planned is not None else '?'} requests"


def _ms(value: float | None, q: float, n: int) -> str:
    return f"n < {MIN_N[q]}" if value is None or n < MIN_N[q] else f"{value:.1f} ms"


def _quantile_pair(summary: dict[str, Any], low: str, high: str, n_key: str) -> str:
    """Two running quantiles in one cell: ``412.3 / 455.0 ms``, or ``n < k`` for one not shown yet."""
    q_low, q_high = (0.5, 0.99) if high.endswith("p99_ms") else (0.5, 0.95)
    n = summary[n_key]
    parts = [_ms(summary[low], q_low, n), _ms(summary[high], q_high, n)]
    if all(part.endswith(" ms") for part in parts):
        return f"{parts[0][:-3]} / {parts[1]}"
    return " / ".join(parts)


def _columns(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures of one arm as (column heading, value): the table's cells and the text summary's parts."""
    errors = ", ".join(f"{kind}: {count}" for kind, count in summary["errors"].items()) or "none"
    return [
        ("raw P50 / P95", _quantile_pair(summary, "raw_p50_ms", "raw_p95_ms", "answered")),
        ("CO P50 / P95", _quantile_pair(summary, "co_p50_ms", "co_p95_ms", "answered")),
        ("cost", f"{summary['avg_eval_ms']:.1f} ms" if summary["avg_eval_ms"] is not None else "-"),
        ("quality", f"{summary['mean_quality']:.3f}" if summary["mean_quality"] is not None else "-"),
        ("errors", errors),
        ("lag P50 / P99", _quantile_pair(summary, "lag_p50_ms", "lag_p99_ms", "done")),
    ]


#: what a heading means, shown when the pointer rests on it
_HEADING_TITLES = {
    "progress": "events recorded / requests planned for the arm",
    "raw P50 / P95": "completed - dispatched, of the answered requests (exact quantiles of the sample so far)",
    "CO P50 / P95": "completed - intended start, of the answered requests (exact quantiles of the sample so far)",
    "cost": "mean eval ms per request over every attempt (the report's Avg eval ms/req)",
    "quality": "mean quality score; a request without an answer scores 0",
    "lag P50 / P99": "dispatch lag: dispatched - intended start, of every request",
}


def _caption(status: str) -> str:
    if status == "running":
        return "running figures so far (exact quantiles of the answered requests; approximate: the report gives CIs)"
    return "final figures (the report gives CIs)"


# Inline styles: the live view is an ipywidgets HTML widget (no notebook CSS applies inside it, and it
# inherits a 28 px line height), the final view a plain HTML output; both must look the same. Figures
# and headings never break inside a cell (nowrap), so a row stays one row; a notebook narrower than the
# table scrolls it sideways. Rows get an explicit background: JupyterLab stripes the rows of an HTML
# output but not those inside a widget, and the live and final views should not differ.
_STYLE_ROOT = "font-size: 13px; line-height: 1.4; max-width: 100%;"
_STYLE_TABLE = ("border-collapse: collapse; font-size: 13px; line-height: 1.4; font-variant-numeric: tabular-nums; "
                "margin: 4px 0;")
_STYLE_HEAD = ("padding: 2px 8px 3px 0; text-align: {align}; font-weight: 600; white-space: nowrap; "
               "border-bottom: 1px solid var(--jp-border-color1, #bdbdbd);")
_STYLE_ROW = "background: transparent;"
_STYLE_CELL = "padding: 3px 8px 3px 0; text-align: {align}; white-space: nowrap; line-height: 1.4;"
_STYLE_TRACK = ("display: inline-block; width: 72px; height: 8px; margin-right: 6px; vertical-align: middle; "
                "border-radius: 4px; overflow: hidden; background: var(--jp-layout-color3, #e0e0e0);")
_STYLE_FILL = "display: block; height: 100%; width: {percent:.1f}%; background: var(--jp-brand-color1, #1976d2);"


def _bar_html(done: int, planned: int | None) -> str:
    percent = 100.0 * min(done / planned, 1.0) if planned else 0.0
    return f'<span style="{_STYLE_TRACK}"><span style="{_STYLE_FILL.format(percent=percent)}"></span></span>'


class RunMonitor:
    """Live progress and running figures of one run, per arm, from its ``events.jsonl``.

    ``arms`` and ``planned_per_arm`` come from the run's manifest (:func:`monitor_factory`); an arm that
    appears in the log without being announced gets a row of its own. ``show=False`` computes and
    renders without displaying (outside a kernel, and in tests). The object is what the run's session
    calls: ``update``/``set_postfix_str`` are no-ops (the figures come from the log), ``close()`` ends it.
    """

    def __init__(self, events_path: str | Path, *, arms: Sequence[str], planned_per_arm: int | None,
                 run_id: str = "", interval_s: float = 0.25, text_interval_s: float = 1.0, show: bool = True) -> None:
        if interval_s <= 0 or text_interval_s < interval_s:
            raise ValueError(f"interval_s must be > 0 and text_interval_s >= interval_s; got {interval_s}, "
                             f"{text_interval_s}. Use e.g. 0.25 and 1.0.")
        self.tail = EventTail(events_path)
        self.run_id = run_id
        self.interval_s, self.text_interval_s = interval_s, text_interval_s
        self.planned_per_arm = planned_per_arm
        self.arms: dict[str, ArmFigures] = {arm: ArmFigures(arm, planned_per_arm) for arm in arms}
        self.status = "running"
        self.error: BaseException | None = None  # what stopped the owner thread early, if anything
        self.live = LiveHTML("tsglab-monitor", show=show)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ending: str | None = None

    # -- the session's progress interface --------------------------------------------------------------

    def update(self, n: int = 1) -> None:
        """No-op: the request path only writes events; the owner thread reads them."""

    def set_postfix_str(self, text: str = "", refresh: bool = False) -> None:
        """No-op (see :meth:`update`)."""

    def close(self) -> None:
        """Stop the owner thread after its final update; the status comes from the exception being
        handled, if any (the session closes its progress display inside the run's ``with`` block)."""
        if self._thread is None or self._ending is not None:
            return
        self._ending = ending_status()
        self._stop.set()
        self._thread.join(_JOIN_TIMEOUT_S)
        if self._thread.is_alive():
            warnings.warn(f"the run monitor's thread did not end within {_JOIN_TIMEOUT_S:g} s; its display may be "
                          "stale (the run itself is unaffected).", RuntimeWarning, stacklevel=2)

    # -- starting and the owner thread -----------------------------------------------------------------

    def start(self) -> RunMonitor:
        """Build and display the widgets (in the calling cell's thread), then start the owner thread."""
        parent = self.live.show(self.to_text(), self.to_html())
        self._thread = threading.Thread(target=self._own, args=(parent,), name=f"tsglab-monitor {self.run_id}",
                                        daemon=True)
        self._thread.start()
        return self

    def _own(self, parent: dict | None) -> None:
        with thread_parent(parent):
            try:
                ticks_per_text = max(1, round(self.text_interval_s / self.interval_s))
                tick = 0
                while not self._stop.wait(self.interval_s):
                    tick += 1
                    if self._refresh() or tick % ticks_per_text == 0:
                        self._render(send_text=tick % ticks_per_text == 0)
                self._refresh()
                self.status = self._ending or "complete"
                self._render(send_text=True, final=True)
            except Exception as exc:  # noqa: BLE001 (a broken display must never stop the run; close() reports it)
                self.error = exc

    def _refresh(self) -> bool:
        """Read the events appended since last time; True when there were any."""
        new = self.tail.read_new()
        for event in new:
            figures = self.arms.get(event.arm)
            if figures is None:
                figures = self.arms[event.arm] = ArmFigures(event.arm, self.planned_per_arm)
            figures.add(event)
        return bool(new)

    # -- what is shown ---------------------------------------------------------------------------------

    @property
    def done(self) -> int:
        return sum(f.done for f in self.arms.values())

    @property
    def planned(self) -> int | None:
        if self.planned_per_arm is None:
            return None
        return self.planned_per_arm * len(self.arms)

    def progress_text(self) -> str:
        return f"{self.done}/{self.planned if self.planned is not None else '?'} requests"

    def to_text(self) -> str:
        lines = [f"tsglab run {self.run_id}: {self.status}, {self.progress_text()} — {_caption(self.status)}"]
        for figures in self.arms.values():
            parts = [f"{heading} {value}" for heading, value in _columns(figures.summary())]
            lines.append(f"  {figures.arm}: {figures.progress_text()}; " + "; ".join(parts))
        if self.tail.unreadable:
            lines.append(f"  ({self.tail.unreadable} unreadable lines skipped)")
        return "\n".join(lines)

    def to_html(self) -> str:
        """One table, a row per arm: the live widget shows it and the final summary is it."""
        headings = ["arm", "progress"] + [heading for heading, _ in _columns(ArmFigures("", None).summary())]
        head = "".join(f'<th style="{_STYLE_HEAD.format(align="left" if i < 2 else "right")}" '
                       f'title="{html.escape(_HEADING_TITLES.get(h, h))}">{html.escape(h)}</th>'
                       for i, h in enumerate(headings))
        left, right = _STYLE_CELL.format(align="left"), _STYLE_CELL.format(align="right")
        rows = []
        for figures in self.arms.values():
            values = _columns(figures.summary())
            cells = "".join(f'<td style="{right}">{html.escape(value)}</td>' for _, value in values)
            rows.append(f'<tr class="tsglab-monitor-arm" style="{_STYLE_ROW}"><th style="{left} font-weight: 600;">'
                        f'{html.escape(figures.arm)}</th><td style="{left}">{_bar_html(figures.done, figures.planned)}'
                        f'<span class="tsglab-monitor-progress">{html.escape(figures.progress_text())}</span></td>'
                        f"{cells}</tr>")
        unreadable = (f" · {self.tail.unreadable} unreadable lines skipped" if self.tail.unreadable else "")
        return (f'<div class="tsglab-monitor" style="{_STYLE_ROOT}">'
                f"<div><b>tsglab run {html.escape(self.run_id)}</b> — "
                f'<span class="tsglab-monitor-status">{html.escape(self.status)}</span>, '
                f"{html.escape(self.progress_text())}</div>"
                f'<div style="overflow-x: auto;"><table style="{_STYLE_TABLE}"><thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(rows)}</tbody></table></div>"
                f"<div><small>{html.escape(_caption(self.status) + unreadable)}</small></div></div>")

    @property
    def renders(self) -> int:
        """Display updates made (the throttle's test counts them)."""
        return self.live.renders

    @property
    def display_updates(self) -> int:
        return self.live.display_updates

    def _render(self, *, send_text: bool, final: bool = False) -> None:
        """Owner thread only: push the figures to the widget, and (``send_text``) the text summaries."""
        self.live.update(self.to_text(), self.to_html(), send_text=send_text, final=final)


def monitor_factory(run_dir: Any, total: int, initial: int) -> RunMonitor:
    """The session's progress factory (:data:`tsglab.load.session.ProgressFactory`): a started monitor of
    ``run_dir`` (a :class:`~tsglab.load.rundir.RunDirectory`); every arm runs the same prompts, so each
    plans ``total / arms`` requests. Events already in the log (a resumed run) count as done."""
    arms: Iterable[str] = run_dir.manifest.get("arms") or ()
    arms = list(arms)
    planned = total // len(arms) if arms else None
    return RunMonitor(Path(run_dir.path) / EVENTS_FILE, arms=arms, planned_per_arm=planned,
                      run_id=run_dir.run_id).start()
