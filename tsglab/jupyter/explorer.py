"""The report explorer: a run's report recomputed as its protocol settings change, in a notebook.

:class:`ReportExplorer` loads the pairing of the two arms once (:func:`tsglab.report.pairing.load_arm_pair`)
and calls :func:`tsglab.report.compute_report` for each combination of settings asked for — nothing is
written. Results are cached by settings, so going back to a combination is instant. A recompute runs in
a worker thread while the controls stay live and the widget shows a busy state; when the settings
changed again before it finished, its result goes to the cache but is not shown (the latest request
wins).

Controls: the latency view (Raw/CO × Overall/Warm-only: Raw or CO chooses the latency Family B tests,
Overall or Warm-only the rows shown), the strata, the estimator (Family A's quality method — the
latency quantiles have one estimator, censored Harrell–Davis), the quality margin, the P95 delta, the
resampling of the latency bootstraps (auto / iid / stationary / moving-block) and B.

Threads: callbacks of the controls run in the kernel's main thread and only start work; the worker
thread computes and then sets the values of the output widgets (comm messages, which the frontend routes
by widget, not by cell). No Output widget is written from a thread.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import os
import threading
from typing import Any

from tsglab.report import ProtocolSettings, RunReport, compute_report
from tsglab.report.pairing import load_arm_pair
from tsglab.report.protocol import RESAMPLING_CHOICES

__all__ = ["LATENCY_VIEWS", "ReportExplorer"]

#: the latency views offered: (label, latency kind, scope)
LATENCY_VIEWS = (("CO / Overall", "CO", "Overall"), ("CO / Warm-only", "CO", "Warm-only"),
                 ("Raw / Overall", "Raw", "Overall"), ("Raw / Warm-only", "Raw", "Warm-only"))
STRATA_KEYS = ("task", "ctx_bucket", "lang")
QUALITY_METHODS = ("auto", "exact-binary", "betting")
RESAMPLE_COUNTS = (500, 1000, 2000, 5000)


class ReportExplorer:
    """Controls over the protocol settings and the report's tables and figures, recomputed on change.

    ``run_dir_or_report`` is a run directory or a :class:`~tsglab.report.RunReport` (its run is read again
    and its settings start the controls). ``figures=False`` leaves the figures out (they take seconds to
    draw); ``background=False`` recomputes in the calling thread (tests).
    """

    def __init__(self, run_dir_or_report: str | os.PathLike | RunReport, *, vs: str | os.PathLike | None = None,
                 baseline_arm: str = "baseline", gateway_arm: str | None = None,
                 settings: ProtocolSettings | None = None, allow_suite_change: bool = False,
                 figures: bool = True, background: bool = True) -> None:
        self.cache: dict[ProtocolSettings, RunReport] = {}
        self._html: dict[tuple[ProtocolSettings, str], str] = {}  # rendered once per settings and view
        if isinstance(run_dir_or_report, RunReport):
            report = run_dir_or_report
            vs = vs if vs is not None else report.meta.get("runs", {}).get("vs")
            gateway_arm = gateway_arm or report.gateway
            if settings is None and report.meta.get("settings"):
                stored = dict(report.meta["settings"])
                stored["strata"] = tuple(stored.get("strata", ("task",)))
                settings = ProtocolSettings(**stored)
            run_dir: str | os.PathLike = report.run_dir
        else:
            report, run_dir = None, run_dir_or_report
        self.pair = load_arm_pair(run_dir, vs=vs, baseline_arm=baseline_arm, gateway_arm=gateway_arm,
                                  allow_suite_change=allow_suite_change)
        self.settings = settings or ProtocolSettings()
        if report is not None and not self.pair.unpaired:
            self.cache[self.settings] = report
        self.view = next(label for label, kind, _ in LATENCY_VIEWS if (kind == "CO") == self.settings.co_correction)
        self.background, self.figures = background, figures
        self.computations = 0  # compute_report calls made (the cache's test counts them)
        self.report: RunReport | None = None  # the report shown
        self._generation = 0
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._build()
        self._request()

    # -- settings and recomputing ----------------------------------------------------------------------

    def current_settings(self) -> ProtocolSettings:
        """The settings the controls say now."""
        kind = next(k for label, k, _ in LATENCY_VIEWS if label == self.controls["view"].value)
        return dataclasses.replace(
            self.settings, co_correction=kind == "CO", strata=tuple(self.controls["strata"].value) or ("task",),
            quality_method=self.controls["estimator"].value, quality_margin=float(self.controls["margin"].value),
            p95_delta=float(self.controls["delta"].value), resampling=self.controls["resampling"].value,
            n_resamples=int(self.controls["n_resamples"].value))

    def _request(self, _change: Any = None) -> None:
        settings = self.current_settings()
        self.view = self.controls["view"].value
        with self._lock:
            self._generation += 1
            generation = self._generation
        cached = self.cache.get(settings)
        if cached is not None:
            self._show(cached, settings, generation)
            return
        self._set_busy(True)
        if not self.background:
            self._compute(settings, generation)
            return
        worker = threading.Thread(target=self._compute, args=(settings, generation), daemon=True,
                                  name="tsglab-explorer")
        self._workers = [w for w in self._workers if w.is_alive()] + [worker]
        worker.start()

    def _compute(self, settings: ProtocolSettings, generation: int) -> None:
        try:
            report = compute_report(self.pair, settings)
        except Exception as exc:  # noqa: BLE001 (shown in the widget: a notebook control must not die silently)
            with self._lock:
                if generation == self._generation:
                    self._set_busy(False)
                    self.output.value = (f'<div class="tsglab-verdict">Could not compute: '
                                         f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</div>")
            return
        with self._lock:
            self.computations += 1
            self.cache[settings] = report
        self._show(report, settings, generation)

    def _show(self, report: RunReport, settings: ProtocolSettings, generation: int) -> None:
        with self._lock:
            if generation != self._generation:  # settings changed since: a newer request will show its own
                return
            self.report = report
            key = (settings, self.view)
            if key not in self._html:
                self._html[key] = self.render_html(report, settings)
            self.output.value = self._html[key]
            self._set_busy(False)

    def wait(self, timeout: float = 60.0) -> None:
        """Wait for the recomputes under way (tests, scripts)."""
        for worker in list(self._workers):
            worker.join(timeout)

    # -- what is shown ---------------------------------------------------------------------------------

    def render_html(self, report: RunReport, settings: ProtocolSettings) -> str:
        """The verdict banner, the tables of the chosen view and the figures, as one HTML block."""
        _, kind, scope = next(v for v in LATENCY_VIEWS if v[0] == self.view)
        views = report.p95_views[report.p95_views["view"] == f"{kind} / {scope}"]
        tables = report.tables()
        family_b = tables["family_B"][1]
        if "view" in family_b:
            family_b = family_b[family_b["view"] == scope]
        footnotes = report.footnotes()
        parts = [report.verdict_banner_html(),
                 f"<p><small>{html.escape(_settings_line(settings))}</small></p>",
                 _table("headline", "Headline", report.headline, report),
                 _table("p95_views", f"P50/P95 with CIs — {kind} / {scope}", views, report),
                 _table("p95_views", "P95 latency, four views", report.p95_views, report),
                 _table("family_A", tables["family_A"][0], tables["family_A"][1], report, footnotes),
                 _table("family_B", f"{tables['family_B'][0]} — {scope} "
                        f"({'CO' if settings.co_correction else 'Raw'} latency)", family_b, report, footnotes),
                 _table("family_C", tables["family_C"][0], tables["family_C"][1], report)]
        if self.figures:
            parts += [f'<img alt="{html.escape(name)}" src="data:image/png;base64,{png}"/>'
                      for name, png in _figures_png(report, kind)]
        return "\n".join(parts)

    def _build(self) -> None:
        import ipywidgets as w  # type: ignore[import-untyped]

        s = self.settings
        # room for the whole description (ipywidgets' default cuts "Latency view" and "Quality margin"), the
        # same for every control so the inputs line up; the browser test checks no label is cut
        label = {"style": {"description_width": "110px"}}
        self.controls: dict[str, Any] = {
            "view": w.Dropdown(options=[v[0] for v in LATENCY_VIEWS], value=self.view, description="Latency view",
                               **label),
            "strata": w.SelectMultiple(options=STRATA_KEYS, value=tuple(k for k in s.strata if k in STRATA_KEYS),
                                       description="Strata", rows=3, **label),
            "estimator": w.Dropdown(options=QUALITY_METHODS, value=s.quality_method, description="Estimator", **label),
            "margin": w.BoundedFloatText(value=s.quality_margin, min=0.0, max=1.0, step=0.01,
                                         description="Quality margin", **label),
            "delta": w.BoundedFloatText(value=s.p95_delta, min=0.0, max=10.0, step=0.05, description="P95 delta",
                                        **label),
            "resampling": w.Dropdown(options=RESAMPLING_CHOICES, value=s.resampling, description="Resampling",
                                     **label),
            "n_resamples": w.Dropdown(options=sorted({*RESAMPLE_COUNTS, s.n_resamples}), value=s.n_resamples,
                                      description="B", **label),
        }
        self.controls["view"].add_class("tsglab-explorer-view")
        self.controls["resampling"].add_class("tsglab-explorer-resampling")
        self.busy = w.HTML("")
        self.output = w.HTML("")
        self.output.add_class("tsglab-explorer-output")
        for control in self.controls.values():
            control.observe(self._request, names="value")
        self.widget = w.VBox([w.HBox([w.VBox([self.controls[k] for k in ("view", "strata", "estimator")]),
                                      w.VBox([self.controls[k] for k in ("margin", "delta", "resampling",
                                                                         "n_resamples")])]),
                              self.busy, self.output])
        self.widget.add_class("tsglab-explorer")

    def _set_busy(self, busy: bool) -> None:
        self.busy.value = "<i>computing…</i>" if busy else ""
        if busy:
            self.widget.add_class("tsglab-explorer-busy")
        else:
            self.widget.remove_class("tsglab-explorer-busy")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        pair = self.pair
        bundle["text/plain"] = f"ReportExplorer({pair.run_dir.name}: {pair.gateway_label} vs {pair.baseline_label})"
        return bundle


def _settings_line(settings: ProtocolSettings) -> str:
    return (f"strata {', '.join(settings.strata)}; quality method {settings.quality_method}, margin "
            f"{settings.quality_margin:g}; P95 delta {settings.p95_delta:g}; resampling {settings.resampling}, "
            f"B = {settings.n_resamples}, seed {settings.seed}; Family B on "
            f"{'CO' if settings.co_correction else 'Raw'} latency")


def _table(name: str, title: str, frame: Any, report: RunReport, footnotes: dict | None = None) -> str:
    """One table as the report's styled HTML (:func:`tsglab.report.publish.to_html`)."""
    from tsglab.report.publish import to_html

    if not len(frame):
        return f"<h4>{html.escape(title)}</h4><p><i>no rows</i></p>"
    return to_html(name, frame, title=title, note=report.notes.get(name, ""), footnotes=(footnotes or {}).get(name))


def _figures_png(report: RunReport, kind: str) -> list[tuple[str, str]]:
    """The report's figures (:data:`tsglab.report.figures.FIGURES`) as base64 PNGs."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from tsglab.report import figures as report_figures

    out = []
    for name, make in report_figures.FIGURES.items():
        try:
            figure = make(report, size="page")
        except Exception:  # noqa: BLE001 (one figure that cannot be drawn must not hide the tables)
            continue
        if figure is None:
            continue
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        plt.close(figure)
        out.append((name, base64.b64encode(buffer.getvalue()).decode("ascii")))
    return out
