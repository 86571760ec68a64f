"""The threshold explorer: a TSG configuration replayed as its sliders move, with CIs and its place on the
frontier.

:class:`ThresholdExplorer` reads a replay data set once (:mod:`tsglab.replay.data`: a ``replay.npz`` or
``replay.jsonl`` folder, or a run directory whose events cover the cells) and, on every change of a
control, replays the configuration the controls say:

- the point (mean quality, cost, latency, ``r_costly``, attempts) comes from
  :func:`tsglab.replay.replay_summary` on a one-row :class:`~tsglab.replay.ConfigGrid`;
- its bootstrap CIs, and the comparisons with the paper's default and the all-top-tier baseline (cost
  ratio, quality difference), from the per-prompt outcomes of :func:`tsglab.replay.replay` weighted by one
  matrix of prompt counts drawn once, as :func:`tsglab.replay.frontier` draws its own (same plan, same
  seed: the current point's CI is the frontier's for the same configuration). Every configuration is
  resampled with the same prompts, so the comparisons are paired and the point does not jitter;
- the frontier (:func:`tsglab.replay.frontier`) with its band, and the current point on it.

Each change is replayed on one numba thread: a configuration is a few hundred prompts, and waking the
thread pool costs more than the work.

A change runs in a worker thread while the controls stay live (the replay and the resampling take about
2 ms for 300 prompts and 500 resamples; the figure about 100 ms, drawn after the numbers are shown).
Each request carries a generation number and only the latest one is shown: a result that arrives after
a newer change was asked for is dropped, never displayed.
``thr_std > thr_enh`` is never offered: moving one threshold past the other drags the other along, and
the widget says so.

Threads, as in the report explorer: control callbacks run in the kernel's main thread and only start
work; the worker sets the output widgets' values (comm messages routed by widget, not by cell).
"""

from __future__ import annotations

import dataclasses
import html
import io
import math
import os
import statistics
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tsglab.config import BASELINE, PAPER_TSG, PolicyConfig
from tsglab.errors import InvalidArgument, TsglabError
from tsglab.replay import SUMMARY_COLUMNS, ConfigGrid, ReplayData, replay, replay_summary
from tsglab.stats import resample_indices

__all__ = ["CONTROLS", "Comparison", "PointView", "ThresholdExplorer", "load_data", "spec_snippet",
           "threshold_explorer"]

#: the policy fields the explorer's controls set
CONTROLS = ("thr_std", "thr_enh", "force_light_len", "force_light_score", "json_floor", "code_floor", "def_floor",
            "same_tier_repair", "max_upgrades")
_CONFIDENCE = 0.95
_DECIMALS = 4  # slider floats (0.41000000000000003) are rounded to this before they become a policy


# ------------------------------------------------------------------------------------------ data sets


def load_data(source: ReplayData | str | os.PathLike[str]) -> ReplayData:
    """A replay data set from ``source``: a :class:`~tsglab.replay.ReplayData` as it is, or a replay folder or
    run directory read by :func:`tsglab.replay.load_source`."""
    if isinstance(source, ReplayData):
        return source
    from tsglab.replay import load_source

    return load_source(source)


# ----------------------------------------------------------------------------------------- what is shown


@dataclass(frozen=True)
class Comparison:
    """The current configuration against a reference on the same resamples: ``cost_ratio`` (mean cost over
    the reference's) and ``quality_diff`` (mean quality minus the reference's), each (estimate, low, high)."""

    reference: str
    cost_ratio: tuple[float, float, float]
    quality_diff: tuple[float, float, float]


@dataclass(frozen=True)
class PointView:
    """One configuration as the widget shows it: :data:`~tsglab.replay.SUMMARY_COLUMNS` means (from
    ``replay_summary``), percentile bootstrap CIs of quality and cost, the comparisons, and the time the
    replay and resampling took (``compute_ms``)."""

    config: PolicyConfig
    summary: Mapping[str, float]
    quality_ci: tuple[float, float]
    cost_ci: tuple[float, float]
    comparisons: tuple[Comparison, ...]
    compute_ms: float


def spec_snippet(config: PolicyConfig, name: str = "explored") -> str:
    """``config`` as an experiment spec's ``arms:`` entry (YAML): the explorer's fields, and any other field
    that differs from :class:`~tsglab.config.PolicyConfig`'s defaults."""
    default = PolicyConfig()
    lines = ["arms:", f"  {name}:"]
    for f in dataclasses.fields(PolicyConfig):
        if f.name in ("label", "guard"):
            continue
        value = getattr(config, f.name)
        if f.name in CONTROLS or value != getattr(default, f.name):
            lines.append(f"    {f.name}: {_yaml_scalar(value)}")
    return "\n".join(lines) + "\n"


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, _DECIMALS))
    return str(value)


# ---------------------------------------------------------------------------------------------- widget


class ThresholdExplorer:
    """Sliders over a TSG configuration and its replayed cost, quality and CIs (module docstring).

    ``frontier`` is a :class:`~tsglab.replay.Frontier` of the same data, drawn with the current point on it;
    ``None`` computes one over ``grid`` (default :func:`tsglab.replay.default_grid`), ``False`` draws none.
    ``n_resamples`` and ``seed`` default to the frontier's, so the current point is resampled with the very
    draws of the frontier's intervals (:func:`tsglab.replay.frontier.resampling_plan`, ``resampling``).
    ``base`` gives the fields the controls do not set and the starting values. ``background=False`` computes
    in the calling thread (tests).
    """

    def __init__(self, data: ReplayData | str | os.PathLike[str], *, frontier: Any = None,
                 grid: ConfigGrid | None = None, n_resamples: int | None = None, seed: int | None = None,
                 resampling: str = "auto", base: PolicyConfig = PAPER_TSG, background: bool = True,
                 figure: bool = True) -> None:
        from tsglab.replay.frontier import prompt_weights, resampling_plan

        self.data = load_data(data)
        ladder = self.data.ladder
        if len(ladder) < 2:
            raise InvalidArgument(f"the data's ladder {list(ladder)} has one rung; a threshold explorer needs two "
                                  "or more tiers.")
        base.check_ladder(ladder)
        self.base = dataclasses.replace(base, kind="tsg")
        given = frontier if frontier not in (None, False) else None
        n_resamples = n_resamples if n_resamples is not None else (given.n_resamples if given else 1000)
        self.seed = seed if seed is not None else (given.seed if given else 0)
        self.background, self.figure = background, figure
        self.references = {"all top tier": dataclasses.replace(BASELINE, baseline_tier=ladder[-1],
                                                               label="all top tier")}
        if _fits(PAPER_TSG, ladder):
            self.references = {"paper default": dataclasses.replace(PAPER_TSG, label="paper default"),
                               **self.references}
        self._reference_outcomes = {name: self._per_prompt(config) for name, config in self.references.items()}
        self.reference_points = {name: self._summary(config) for name, config in self.references.items()}
        # one matrix of prompt counts for every configuration, drawn as the frontier draws its own: the
        # comparisons are paired, the point does not jitter between changes, and its CI is the frontier's
        series = list(next(iter(self._reference_outcomes.values())))
        plan, self.resampling_reason = resampling_plan(self.data, series, n_resamples=n_resamples, seed=self.seed,
                                                       resampling=resampling)
        self.plan, self._resampling = plan, resampling
        self.n_resamples = plan.n_resamples
        self.weights = np.concatenate([prompt_weights(idx, self.data.n_prompts) for idx in resample_indices(plan)])
        self._weight_sums = self.weights.sum(axis=1)
        self.frontier = self._make_frontier(frontier, grid)
        self.cache: dict[PolicyConfig, PointView] = {}
        self.point: PointView | None = None  # the point shown
        self.change_ms: list[float] = []  # compute time of each change computed (not the cached ones)
        self.figure_ms: list[float] = []
        self._generation = 0
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._clamping = False
        self._build()
        self._request(wait=True)  # the first point before anything is displayed (papermill keeps its table)

    # -- computing ----------------------------------------------------------------------------------------

    def _summary(self, config: PolicyConfig) -> dict[str, float]:
        row = replay_summary(self.data, ConfigGrid.from_configs([config], self.data.ladder))[0]
        return {name: float(row[j]) for j, name in enumerate(SUMMARY_COLUMNS)}

    def _per_prompt(self, config: PolicyConfig) -> tuple[np.ndarray, np.ndarray]:
        result = replay(self.data, ConfigGrid.from_configs([config], self.data.ladder))
        return result.quality[0], result.cost_ms[0]

    def _resampled_means(self, values: np.ndarray) -> np.ndarray:
        return self.weights @ values / self._weight_sums

    def evaluate(self, config: PolicyConfig) -> PointView:
        """Replay ``config``: its means, CIs and comparisons (no widget involved; the cache is not used)."""
        import numba

        started = time.perf_counter()
        threads = numba.get_num_threads()
        # one configuration is a few hundred prompts: waking a thread pool costs more than the work (measured
        # 0.2 ms on one thread against 20-50 ms with the pool on a loaded 2-core machine); the setting is
        # this thread's only
        numba.set_num_threads(1)
        try:
            summary = self._summary(config)
            quality, cost = self._per_prompt(config)
        finally:
            numba.set_num_threads(threads)
        q_draws, c_draws = self._resampled_means(quality), self._resampled_means(cost)
        comparisons = []
        for name, (ref_quality, ref_cost) in self._reference_outcomes.items():
            ratio = float(cost.mean() / ref_cost.mean()) if ref_cost.mean() > 0 else math.nan
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio_draws = c_draws / self._resampled_means(ref_cost)
            diff_draws = self._resampled_means(quality - ref_quality)
            comparisons.append(Comparison(name, (ratio, *_interval(ratio_draws)),
                                          (float(quality.mean() - ref_quality.mean()), *_interval(diff_draws))))
        return PointView(config=config, summary=summary, quality_ci=_interval(q_draws), cost_ci=_interval(c_draws),
                         comparisons=tuple(comparisons), compute_ms=(time.perf_counter() - started) * 1e3)

    def current_config(self) -> PolicyConfig:
        """The configuration the controls say now."""
        values: dict[str, Any] = {}
        for name in CONTROLS:
            value = self.controls[name].value
            values[name] = round(float(value), _DECIMALS) if isinstance(value, float) else value
        return dataclasses.replace(self.base, label="explored", **values)

    def _changed(self, change: Any) -> None:
        if self._clamping:  # the other threshold being dragged along: one request follows, from the first change
            return
        name = change["owner"].description if change is not None else ""
        std, enh = self.controls["thr_std"], self.controls["thr_enh"]
        self.notice.value = ""
        if std.value > enh.value:
            self._clamping = True
            try:
                if name == "thr_std":
                    enh.value = std.value
                    self.notice.value = f"thr_enh raised to {enh.value:g}: the policy needs thr_std ≤ thr_enh."
                else:
                    std.value = enh.value
                    self.notice.value = f"thr_std lowered to {std.value:g}: the policy needs thr_std ≤ thr_enh."
            finally:
                self._clamping = False
        self._request()

    def _request(self, *, wait: bool = False) -> None:
        config = self.current_config()
        with self._lock:
            self._generation += 1
            generation = self._generation
            cached = self.cache.get(config)
        if cached is not None:
            self._show(cached, generation)
            if self.background:
                self._start(self._draw, cached, generation)
            else:
                self._draw(cached, generation)
            return
        self._set_busy(True)
        if self.background and not wait:
            self._start(self._compute, config, generation)
        else:
            self._compute(config, generation)

    def _start(self, target: Any, *args: Any) -> None:
        worker = threading.Thread(target=target, args=args, daemon=True, name="tsglab-threshold-explorer")
        self._workers = [w for w in self._workers if w.is_alive()] + [worker]
        worker.start()

    def _compute(self, config: PolicyConfig, generation: int) -> None:
        try:
            point = self.evaluate(config)
        except Exception as exc:  # noqa: BLE001 (shown in the widget: a notebook control must not die silently)
            with self._lock:
                if generation == self._generation:
                    self._set_busy(False)
                    self.output.value = (f"<div class='tsglab-threshold-error'>Could not replay: "
                                         f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</div>")
            return
        with self._lock:
            self.cache[config] = point
            self.change_ms.append(point.compute_ms)
        self._show(point, generation)
        self._draw(point, generation)

    def _show(self, point: PointView, generation: int) -> None:
        with self._lock:
            if generation != self._generation:  # the controls changed since: a newer request shows its own
                return
            self.point = point
            self.output.value = self.render_html(point)
            self.snippet.value = ""
            self._set_busy(False)

    def _draw(self, point: PointView, generation: int) -> None:
        if not self.figure or self.frontier is None:
            return
        with self._lock:
            if generation != self._generation:
                return
        started = time.perf_counter()
        png = self.figure_png(point)
        with self._lock:
            self.figure_ms.append((time.perf_counter() - started) * 1e3)
            if generation == self._generation:
                self.plot.value = png

    def figure_png(self, point: PointView) -> bytes:
        """The frontier with its band and ``point`` on it, as PNG bytes."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=(5.0, 3.4), dpi=80)
        ax = figure.add_subplot()
        self.frontier.plot(ax=ax, current=(point.summary["cost_ms"], point.summary["quality"]))
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def wait(self, timeout: float = 60.0) -> None:
        """Wait for the computations under way (tests, scripts)."""
        for worker in list(self._workers):
            worker.join(timeout)

    def median_change_ms(self) -> float:
        """Median compute time of the changes computed so far (kernel replay, resampling, comparisons)."""
        return statistics.median(self.change_ms) if self.change_ms else math.nan

    def _make_frontier(self, frontier: Any, grid: ConfigGrid | None) -> Any:
        if frontier is False or not self.figure:
            return None
        if frontier is not None:
            return frontier
        from tsglab.replay import default_grid
        from tsglab.replay import frontier as make_frontier

        grid = grid if grid is not None else default_grid(self.data.ladder)
        return make_frontier(self.data, grid, n_resamples=self.n_resamples, seed=self.seed,
                             resampling=self._resampling)

    # -- what is shown -----------------------------------------------------------------------------------

    def render_html(self, point: PointView) -> str:
        """The current point, the references and the comparisons, as one HTML block."""
        s = point.summary
        rows = [("current", s, point.quality_ci, point.cost_ci)] + [
            (name, values, None, None) for name, values in self.reference_points.items()]
        body = []
        for name, values, q_ci, c_ci in rows:
            body.append(
                f"<tr class='tsglab-threshold-row'><th>{html.escape(name)}</th>"
                f"<td>{values['quality']:.3f}{_ci(q_ci, 3)}</td><td>{values['cost_ms']:.1f}{_ci(c_ci, 1)}</td>"
                f"<td>{values['latency_ms']:.1f}</td><td>{values['r_costly']:.3f}</td>"
                f"<td>{values['attempts']:.3f}</td><td>{values['missing']:.3f}</td></tr>")
        comparisons = "".join(
            f"<tr><th>vs {html.escape(c.reference)}</th><td>{c.cost_ratio[0]:.3f}{_ci(c.cost_ratio[1:], 3)}</td>"
            f"<td>{c.quality_diff[0]:+.3f}{_ci(c.quality_diff[1:], 3)}</td></tr>" for c in point.comparisons)
        level = f"{_CONFIDENCE:.0%}"
        return (
            "<table class='tsglab-threshold-point'><thead><tr><th></th><th>quality</th><th>cost ms</th>"
            "<th>latency ms</th><th>r_costly</th><th>attempts</th><th>missing</th></tr></thead><tbody>"
            + "".join(body) + "</tbody></table>"
            "<table class='tsglab-threshold-vs'><thead><tr><th></th><th>cost ratio</th><th>quality difference</th>"
            "</tr></thead><tbody>" + comparisons + "</tbody></table>"
            f"<p><small>{self.data.n_prompts} prompts ({html.escape(self.data.source or 'replay')}); [{level} "
            f"percentile bootstrap CIs, the same resamples of prompts for every configuration: "
            f"{html.escape(self.plan.describe())}]; replayed in {point.compute_ms:.1f} ms</small></p>")

    def _build(self) -> None:
        import ipywidgets as w  # type: ignore[import-untyped]

        c, ladder = self.base, list(self.data.ladder)
        label = {"style": {"description_width": "130px"}, "continuous_update": True}
        cap = float(c.score_cap)
        self.controls: dict[str, Any] = {
            "thr_std": w.FloatSlider(value=c.thr_std, min=0.0, max=cap, step=0.01, description="thr_std", **label),
            "thr_enh": w.FloatSlider(value=c.thr_enh, min=0.0, max=cap, step=0.01, description="thr_enh", **label),
            "force_light_len": w.IntSlider(value=c.force_light_len, min=0, max=max(400, c.force_light_len), step=10,
                                           description="force_light_len", **label),
            "force_light_score": w.FloatSlider(value=c.force_light_score, min=0.0, max=cap, step=0.01,
                                               description="force_light_score", **label),
            "json_floor": w.Dropdown(options=ladder, value=c.json_floor, description="json_floor",
                                     style=label["style"]),
            "code_floor": w.Dropdown(options=ladder, value=c.code_floor, description="code_floor",
                                     style=label["style"]),
            "def_floor": w.Dropdown(options=ladder, value=c.def_floor, description="def_floor", style=label["style"]),
            "same_tier_repair": w.Checkbox(value=c.same_tier_repair, description="same_tier_repair",
                                           style=label["style"]),
            "max_upgrades": w.IntSlider(value=c.max_upgrades, min=0, max=max(len(ladder) - 1, c.max_upgrades),
                                        description="max_upgrades", **label),
        }
        for name, control in self.controls.items():
            control.add_class(f"tsglab-threshold-{name.replace('_', '-')}")
            control.observe(self._changed, names="value")
        self.notice = w.HTML("")
        self.notice.add_class("tsglab-threshold-notice")
        self.busy = w.HTML("")
        self.output = w.HTML("")
        self.output.add_class("tsglab-threshold-output")
        self.plot = w.Image(format="png")
        self.copy = w.Button(description="Copy as spec arms: YAML", layout={"width": "220px"})
        self.copy.on_click(lambda _button: self.show_snippet())
        self.snippet = w.Textarea(value="", layout={"width": "360px", "height": "200px"})
        self.snippet.add_class("tsglab-threshold-snippet")
        left = w.VBox([self.controls[k] for k in CONTROLS] + [self.notice, self.copy, self.snippet])
        self.widget = w.VBox([w.HBox([left, self.plot]), self.busy, self.output])
        self.widget.add_class("tsglab-threshold-explorer")

    def show_snippet(self) -> str:
        """Put the current configuration's ``arms:`` YAML in the text box (select it there and copy)."""
        self.snippet.value = spec_snippet(self.current_config())
        return self.snippet.value

    def _set_busy(self, busy: bool) -> None:
        self.busy.value = "<i>replaying…</i>" if busy else ""

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        text = f"ThresholdExplorer({self.data.n_prompts} prompts, ladder {'/'.join(self.data.ladder)})"
        bundle["text/plain"] = text
        if self.point is not None:  # papermill and nbclient keep this when no frontend renders the widget
            bundle["text/html"] = self.render_html(self.point)
        return bundle


def _fits(config: PolicyConfig, ladder: tuple[str, ...]) -> bool:
    try:
        config.check_ladder(ladder)
    except TsglabError:
        return False
    return True


def _interval(draws: np.ndarray) -> tuple[float, float]:
    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return math.nan, math.nan
    low, high = np.quantile(finite, [(1 - _CONFIDENCE) / 2, (1 + _CONFIDENCE) / 2])
    return float(low), float(high)


def _ci(bounds: Any, digits: int) -> str:
    if bounds is None:
        return ""
    return f" <small>[{bounds[0]:.{digits}f}, {bounds[1]:.{digits}f}]</small>"


def threshold_explorer(data: ReplayData | str | os.PathLike[str], **options: Any) -> ThresholdExplorer:
    """A :class:`ThresholdExplorer` of a replay data set or a run directory (options: ``frontier``, ``grid``,
    ``n_resamples``, ``seed``, ``base``)."""
    return ThresholdExplorer(data, **options)
