"""What ``tsglab.run`` returns: the runner's record of a run plus the views a notebook wants of it.

:class:`RunResult` is a :class:`tsglab.load.RunRecord` (id, directory, status, counts) that can load its
events as a DataFrame (:meth:`~RunResult.events`), summarise how its requests ended per arm
(:meth:`~RunResult.summary`), build its report (:meth:`~RunResult.report`), draw its load timeline and
render itself: a one-line ``repr`` (papermill logs stay short), an HTML card in Jupyter, Markdown and
LaTeX tables. It lives in the report layer because those views read the event log the way the report
does (:func:`tsglab.report.frame.events_frame`); the runner below knows nothing about them.

Nothing here is a statistic: the summary counts requests. Latency figures with CIs come from
:meth:`~RunResult.report`.
"""

from __future__ import annotations

import dataclasses
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from tsglab.load.runner import RunRecord

__all__ = ["RunResult"]


@dataclass(frozen=True)
class RunResult(RunRecord):
    """A finished (or stopped) run: ``run_id``, ``run_dir``, ``status``, ``n_events`` of ``n_planned``."""

    @classmethod
    def from_record(cls, record: RunRecord) -> RunResult:
        return cls(**dataclasses.asdict(record))

    @classmethod
    def open(cls, run_dir: str | os.PathLike) -> RunResult:
        """The result of an existing run directory (read from its ``run.json`` and event log)."""
        import json

        from tsglab.errors import RunError
        from tsglab.events import read_events

        path = Path(run_dir)
        try:
            manifest = json.loads((path / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunError(f"{path}: cannot read run.json ({exc}); is this a tsglab run directory?") from None
        return cls(run_id=str(manifest.get("run_id", path.name)), run_dir=path,
                   status=str(manifest.get("status", "unknown")), n_events=len(read_events(path)),
                   n_planned=int(manifest.get("n_planned") or 0))

    def events(self) -> pd.DataFrame:
        """Every recorded request as one DataFrame row (:data:`tsglab.report.frame.FRAME_COLUMNS`)."""
        from tsglab.events import read_events
        from tsglab.report.frame import events_frame

        return events_frame(read_events(self.run_dir))

    def to_frame(self) -> pd.DataFrame:
        """The events as a DataFrame (the same as :meth:`events`)."""
        return self.events()

    def summary(self, events: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per arm: requests recorded, answered, timed out, failed (by kind), in warm-up."""
        frame = self.events() if events is None else events
        rows = []
        for arm, part in frame.groupby("arm", sort=False):
            kinds = part.loc[part["failed"], "error_kind"].value_counts()
            rows.append({"arm": arm, "requests": len(part), "answered": int((~part["failed"]).sum()),
                         "timeouts": int(part["timeout"].sum()), "failed": int(part["failed"].sum()),
                         "warm_up": int(part["in_warmup"].sum()),
                         "failure_kinds": ", ".join(f"{k}: {v}" for k, v in kinds.items()) or "none"})
        return pd.DataFrame(rows, columns=["arm", "requests", "answered", "timeouts", "failed", "warm_up",
                                           "failure_kinds"])

    def report(self, **options: Any):
        """The run's report (:func:`tsglab.report.build_report`; ``options`` are its keyword arguments)."""
        from tsglab.report.run_report import build_report

        return build_report(self.run_dir, **options)

    def plot(self, kind: str = "timeline", *, size: Literal["column", "page"] = "page"):
        """The run's load timeline (latency and dispatch lag against intended start) as a matplotlib
        figure; the report's figures come from ``result.report().plot(...)``."""
        from tsglab.errors import InvalidArgument
        from tsglab.report.figures import load_timeline

        if kind != "timeline":
            raise InvalidArgument(f"RunResult.plot draws kind='timeline'; got {kind!r}. The report's figures: "
                                  "result.report(write=False).plot(kind).")
        frame = self.events()
        return load_timeline({str(arm): part for arm, part in frame.groupby("arm", sort=False)}, size=size)

    def _title(self) -> str:
        return f"run {self.run_id}: {self.status}, {self.n_events}/{self.n_planned} requests"

    def to_markdown(self) -> str:
        from tsglab.report.publish import to_markdown

        return to_markdown("run_summary", self.summary(), title=self._title(), note=f"Run directory: {self.run_dir}")

    def to_latex(self, path: str | os.PathLike | None = None) -> str:
        """The per-arm summary as a LaTeX table; written to ``path`` when given."""
        from tsglab.report.publish import label_prefix_for, to_latex

        text = to_latex("run_summary", self.summary(), title=f"Run {self.run_id}: how requests ended",
                        label_prefix=label_prefix_for(self.run_id))
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def __repr__(self) -> str:
        return f"RunResult({self.run_id!r}: {self.status}, {self.n_events}/{self.n_planned} requests → {self.run_dir})"

    def _repr_html_(self) -> str:
        from tsglab.report.publish import to_html

        try:
            table = to_html("run_summary", self.summary(), title="How requests ended, per arm")
        except Exception as exc:  # noqa: BLE001 (a notebook view must not raise: show why instead)
            table = f"<p>Events not readable: {html.escape(str(exc))}</p>"
        state = "ok" if self.status == "complete" else "warn"
        return (f"<div class='tsglab-result'><div class='tsglab-banner tsglab-{state}'><b>{html.escape(self._title())}"
                f"</b><br><code>{html.escape(str(self.run_dir))}</code></div>{table}<p>Report with CIs: "
                "<code>result.report()</code>; events: <code>result.events()</code>.</p></div>")
