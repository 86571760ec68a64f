"""Figures a paper can use: one function per figure, each taking the report (or the frames or table it
holds) and returning a matplotlib :class:`~matplotlib.figure.Figure`, or None when there is nothing to
draw (a run where every request failed has no latency to plot).

* :func:`p95_views_figure` — P50 and P95 with 95 % CIs in the four views (Raw/CO × Overall/Warm-only);
* :func:`ecdf_figure` — the latency distribution per view, as Kaplan–Meier 1 − S(t) so timeouts
  (right-censored at their elapsed time) are not counted as answers at that time; they are ``+`` marks;
* :func:`km_figure` — Kaplan–Meier survival P(latency > t) with pointwise 95 % bands;
* :func:`cost_quality_figure` — cost per request against mean quality, CIs in both directions;
* :func:`enforcement_tradeoff` — per arm, CO P95 against the violation rate reaching the user, and
  energy per request (runs with guardians or claims only);
* :func:`frontier_figure` — a replay frontier: every configuration, the Pareto set with its band, the
  default with its interval cross (drawn by ``tsglab.replay.Frontier.plot``, not part of a run report);
* :func:`load_timeline` — latency and dispatch lag against the intended start, where a stall or a
  backlog shows as a ramp in CO latency that raw latency does not have.

:data:`FIGURES` maps a name to each (``fn(report, size=...)``), and the same names are the files the
report writes. ``size`` is ``"column"`` (3.5 in wide) or ``"page"`` (7.1 in, two columns); text is 8 pt
at that size, colours are Okabe–Ito with a marker and line style per arm so figures also read in grey.
:func:`save_figure` writes PDF and SVG (vector, text kept as text) and a 300-dpi PNG.

Figures are built as plain ``Figure`` objects, not through pyplot: nothing is shown, no backend is
chosen or forced (a notebook keeps its own), and a figure nobody keeps is freed like any object.
Latency axes are logarithmic, so values are clipped below at :data:`FLOOR_MS` (a 0 ms latency stays
visible)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from tsglab.errors import InvalidArgument
from tsglab.report import metrics
from tsglab.report.tables import VIEWS
from tsglab.stats import KaplanMeierCurve, ResamplePlan, kaplan_meier, resample_indices

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FIGURES", "FLOOR_MS", "FORMATS", "KMBand", "OKABE_ITO", "cost_quality_figure", "cost_quality_points",
           "ecdf_figure", "enforcement_tradeoff", "frontier_figure", "km_band", "km_figure", "load_timeline",
           "p95_views_figure", "save_figure"]

FLOOR_MS = 1e-3  # the smallest value a log axis shows
Size = Literal["column", "page"]
WIDTH_IN: dict[str, float] = {"column": 3.5, "page": 7.1}  # one column / two columns of a two-column paper
FORMATS = ("pdf", "svg", "png")

#: Okabe & Ito's colour-blind-safe palette (Color Universal Design, 2008)
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7"}
# arms in this order: the two most distinct first (baseline, gateway); yellow last, it is faint on white
_ARM_COLOURS = tuple(OKABE_ITO[name] for name in ("blue", "vermillion", "bluish green", "reddish purple",
                                                  "orange", "sky blue", "black", "yellow"))
_ARM_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_ARM_LINES = ("-", "--", "-.", ":")
_GREY = "#777777"
_FONT_PT, _SMALL_PT = 8, 7

# rcParams read while artists are made (fonts, line widths) and while files are written (font embedding)
_STYLE: dict[Any, Any] = {  # keys are matplotlib's rcParams names
    "font.size": _FONT_PT, "axes.titlesize": _FONT_PT, "axes.labelsize": _FONT_PT, "legend.fontsize": _SMALL_PT,
    "xtick.labelsize": _SMALL_PT, "ytick.labelsize": _SMALL_PT, "legend.frameon": False,
    "axes.linewidth": 0.6, "lines.linewidth": 1.0, "lines.markersize": 3.5, "errorbar.capsize": 1.5,
    "axes.spines.top": False, "axes.spines.right": False, "axes.titlepad": 3.0,
    "axes.titley": 1.0,  # a fixed title position: matplotlib skips measuring every tick label to place it
    "pdf.fonttype": 42, "ps.fonttype": 42,  # TrueType (Type 42) fonts in PDF: journals refuse Type 3
    "svg.fonttype": "none",  # text stays <text>, searchable and editable
    "svg.hashsalt": "tsglab",  # stable element ids: the same figure gives the same file
}
# no timestamps: the same figure gives the same bytes. PNG: zlib level 3 instead of 6 writes a 300-dpi page
# figure in about 2/3 of the time for files about a fifth larger
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {"pdf": {"metadata": {"CreationDate": None}},
                                            "svg": {"metadata": {"Date": None}},
                                            "png": {"pil_kwargs": {"compress_level": 3}}}


# ---- the data -----------------------------------------------------------------------------------


def _frames_of(data: Any) -> dict[str, pd.DataFrame]:
    """The arms' events frames of a RunReport (``.frames``) or of a mapping {arm: frame}."""
    frames = data if isinstance(data, Mapping) else getattr(data, "frames", None)
    if not isinstance(frames, Mapping):
        raise InvalidArgument(f"a figure needs a RunReport or a dict {{arm: events frame}}; got "
                              f"{type(data).__name__}. Pass the report from tsglab.report.build_report.")
    return dict(frames)


def _answered(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame["failed"]]  # failures have no latency; timeouts are censored at their elapsed time


def _view(frame: pd.DataFrame, kind: str, scope: str) -> tuple[np.ndarray, np.ndarray]:
    """Latencies and timeout flags of one of the four views (the rows of the report's p95_views table)."""
    rows = _answered(frame)
    if scope == "Warm-only":
        rows = rows[rows["warm"]]
    return rows["raw_ms" if kind == "Raw" else "co_ms"].to_numpy(float), rows["timeout"].to_numpy(bool)


def _floor(values: np.ndarray | float) -> np.ndarray:
    return np.maximum(np.asarray(values, float), FLOOR_MS)


@dataclass(frozen=True)
class KMBand:
    """Kaplan–Meier survival with a pointwise confidence band, one value per event time of ``curve``.

    ``lower`` and ``upper`` are the Greenwood log-log limits (``method``) at level 1 − ``alpha``."""

    curve: KaplanMeierCurve
    lower: np.ndarray
    upper: np.ndarray
    alpha: float
    method: str = "greenwood log-log"


def km_band(curve: KaplanMeierCurve, *, alpha: float = 0.05) -> KMBand:
    r"""Pointwise confidence band of a Kaplan–Meier curve (:func:`tsglab.stats.kaplan_meier`).

    Notes
    -----
    Greenwood's variance of :math:`\log \hat S`, :math:`V(t) = \sum_{t_j \le t} d_j / (n_j (n_j - d_j))`,
    carried to the log-log scale: :math:`\hat S(t)^{\exp(\pm z_{1-\alpha/2} \sqrt{V(t)} / |\log \hat S(t)|)}`.
    The limits stay inside [0, 1]; where :math:`\hat S = 0` both are 0 (as lifelines reports them).

    References
    ----------
    .. [1] M. Greenwood, "The natural duration of cancer", 1926; Kalbfleisch & Prentice, *The Statistical
       Analysis of Failure Time Data*, 2nd ed., 2002, §4.3 (log-log interval).
    """
    if not 0 < alpha < 1:
        raise InvalidArgument(f"`alpha` must be in (0, 1); got {alpha!r}. Use alpha=0.05 for a 95 % band.")
    z = NormalDist().inv_cdf(1 - alpha / 2)
    survival = curve.survival
    with np.errstate(divide="ignore", invalid="ignore"):
        at_risk, events = curve.at_risk.astype(float), curve.events.astype(float)
        greenwood = np.cumsum(events / (at_risk * (at_risk - events)))
        spread = np.exp(z * np.sqrt(greenwood) / np.abs(np.log(survival)))
        lower, upper = survival ** spread, survival ** (1 / spread)
    done = survival <= 0  # the last at risk all ended: S = 0, the log-log scale has no interval
    lower[done], upper[done] = 0.0, 0.0
    return KMBand(curve=curve, lower=lower, upper=upper, alpha=alpha)


def _distribution_at(curve: KaplanMeierCurve, times: np.ndarray) -> np.ndarray:
    """1 − Ŝ(t) at ``times`` (right-continuous: an event at t counts at t)."""
    if not len(curve.time):  # every observation censored: no step yet
        return np.zeros(len(times))
    index = np.searchsorted(curve.time, times, side="right") - 1
    return np.where(index >= 0, 1.0 - curve.survival[np.maximum(index, 0)], 0.0)


def cost_quality_points(data: Any, *, n_resamples: int | None = None, seed: int | None = None) -> pd.DataFrame:
    """Per arm: average eval ms per request (all attempts) and mean quality, each with a 95 % percentile
    bootstrap CI from one resample of prompts shared by both (so the cross shows their joint spread).

    Prompts, not requests, are resampled (a prompt asked twice moves together); the estimates are the
    report's own (:func:`tsglab.report.metrics.avg_cost_ms`, :func:`~tsglab.report.metrics.mean_quality`).
    ``n_resamples`` and ``seed`` default to the report's settings (else 2000 and 0)."""
    settings = getattr(data, "meta", {}).get("settings", {}) if not isinstance(data, Mapping) else {}
    n_resamples = int(n_resamples if n_resamples is not None else settings.get("n_resamples", 2000))
    seed = int(seed if seed is not None else settings.get("seed", 0))
    rows = []
    for arm, frame in _frames_of(data).items():
        row = {"arm": arm, "n": len(frame), "n_prompts": int(frame["prompt_id"].nunique()),
               "cost_ms": metrics.avg_cost_ms(frame), "quality": metrics.mean_quality(frame)}
        bounds = {f"{name}_{end}": math.nan for name in ("cost", "quality") for end in ("ci_low", "ci_high")}
        if row["n_prompts"]:
            per_prompt = frame.groupby("prompt_id", sort=True).agg(
                cost=("cost_ms", "sum"), quality=("quality", "sum"), count=("cost_ms", "size"))
            sums = {name: per_prompt[name].to_numpy(float) for name in ("cost", "quality", "count")}
            draws: dict[str, list[np.ndarray]] = {"cost": [], "quality": []}
            plan = ResamplePlan(n=len(per_prompt), n_resamples=n_resamples, seed=seed)
            for index in resample_indices(plan):
                count = sums["count"][index].sum(axis=1)
                for name in draws:
                    draws[name].append(sums[name][index].sum(axis=1) / count)
            for name, chunks in draws.items():
                low, high = np.quantile(np.concatenate(chunks), (0.025, 0.975))
                bounds[f"{name}_ci_low"], bounds[f"{name}_ci_high"] = float(low), float(high)
        rows.append({**row, **bounds})
    return pd.DataFrame(rows)


# ---- style --------------------------------------------------------------------------------------


def _style():
    import matplotlib

    return matplotlib.rc_context(_STYLE)


def _arm_styles(arms: Iterable[str]) -> dict[str, dict[str, Any]]:
    return {arm: {"color": _ARM_COLOURS[i % len(_ARM_COLOURS)], "marker": _ARM_MARKERS[i % len(_ARM_MARKERS)],
                  "linestyle": _ARM_LINES[i % len(_ARM_LINES)]} for i, arm in enumerate(arms)}


def _validate_size(size: str) -> str:
    if size not in WIDTH_IN:
        raise InvalidArgument(f"`size` must be 'column' or 'page'; got {size!r}. Use size='column' for one "
                              "column of a two-column paper (3.5 in), 'page' for its full width (7.1 in).")
    return size


def _new_figure(size: str, heights: Mapping[str, float], nrows: int = 1, ncols: int = 1,
                **subplots: Any) -> tuple[Figure, np.ndarray]:
    from matplotlib.figure import Figure

    size = _validate_size(size)
    figure = Figure(figsize=(WIDTH_IN[size], heights[size]), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False, **subplots)
    for ax in axes.flat:  # set now: ticks are made when drawn, maybe outside this style's context
        ax.tick_params(which="both", labelsize=_SMALL_PT, width=0.6)
        ax.tick_params(which="major", length=3)
        ax.tick_params(which="minor", length=1.5)
    return figure, axes


def _plain_log_formatter_class() -> type:
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        """matplotlib's choice of which log ticks get a label, written as plain numbers ("0.1", not "1e-01")."""

        def __call__(self, x: float, pos: int | None = None) -> str:
            return f"{x:g}" if super().__call__(x, pos) else ""

    return PlainLogFormatter


def _PlainLogFormatter(base: float, **options: Any) -> Any:  # noqa: N802 (reads as the class it makes)
    return _plain_log_formatter_class()(base, **options)


def _log_scale(ax: Axes, axis: str = "x") -> None:
    """A log axis labelled with plain numbers ("100", "2000", "0.001"): readable at 7 pt, and much quicker
    to lay out than mathtext powers of ten. Minor ticks are labelled only when the axis spans less than
    about a decade (matplotlib's rule), so a narrow range still has numbers on it."""
    from matplotlib.ticker import LogLocator

    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    # minor ticks at 2 and 5 only: enough to read a value, and every tick costs a label to lay out
    target.set_minor_locator(LogLocator(10, subs=(2.0, 5.0)))
    target.set_major_formatter(_PlainLogFormatter(10))
    target.set_minor_formatter(_PlainLogFormatter(10, labelOnlyBase=False))


def _note(ax: Axes, text: str, y: float = 0.98) -> None:
    ax.text(0.02, y, text, transform=ax.transAxes, ha="left", va="top", fontsize=_SMALL_PT - 1, color=_GREY,
            gid="note")


def _legend_handles(styles: Mapping[str, Mapping[str, Any]], *, lines: bool) -> list:
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=s["color"], marker=s["marker"], linestyle=s["linestyle"] if lines else "none",
                   label=arm) for arm, s in styles.items()]


# ---- the figures --------------------------------------------------------------------------------


def p95_views_figure(data: Any, *, size: Size = "column") -> Figure | None:
    """P95 (filled) and P50 (open) per arm in the four views, each with its 95 % bootstrap CI.

    A P95 that is not identifiable (more than 5 % censored) is drawn as an open triangle at its lower
    bound, pointing right; a view without an answered request is named in a note. ``data`` is the
    report or its ``p95_views`` table; None when no view has an answered request."""
    table = getattr(data, "p95_views", data)
    if not isinstance(table, pd.DataFrame):
        raise InvalidArgument(f"p95_views_figure needs a RunReport or its p95_views table; got "
                              f"{type(data).__name__}.")
    if not len(table) or not (table["n"] > 0).any():
        return None
    arms = list(dict.fromkeys(table["arm"]))
    views = [f"{kind} / {scope}" for kind, scope in VIEWS]
    styles = _arm_styles(arms)
    offsets = np.linspace(0.22, -0.22, len(arms)) if len(arms) > 1 else np.zeros(1)
    with _style():
        figure, axes = _new_figure(size, {"column": 2.5, "page": 2.3})
        ax = axes[0, 0]
        missing, no_interval = [], []
        for position, view in enumerate(views):
            y_view = len(views) - 1 - position
            for arm, offset in zip(arms, offsets, strict=True):
                rows = table[(table["arm"] == arm) & (table["view"] == view)]
                if not len(rows):
                    continue
                row, y, style = rows.iloc[0], y_view + offset, styles[arm]
                if row["n"] == 0:
                    missing.append(f"{arm}, {view}")
                    continue
                if np.isfinite(row["p95_ms"]) and not np.isfinite(row["p95_ci_high"]):
                    no_interval.append(f"{arm}, {view}")
                _dot_and_whisker(ax, row, "p95", y, style, filled=True)
                _dot_and_whisker(ax, row, "p50", y, style, filled=False)
                if not np.isfinite(row["p95_ms"]) and np.isfinite(row["p95_lower_bound_ms"]):
                    ax.plot(_floor(row["p95_lower_bound_ms"]), y, marker=">", linestyle="none", color=style["color"],
                            markerfacecolor="white", markersize=5, gid="lower-bound")
        ax.set_yticks(range(len(views)), views[::-1])
        ax.set_ylim(-0.6, len(views) - 0.4)
        _log_scale(ax)
        ax.set_xlabel("latency (ms, log scale)")
        ax.grid(axis="x", which="major", color="#dddddd", linewidth=0.5)
        ax.set_axisbelow(True)
        notes = [f"not computed (no answered request): {item}" for item in missing]
        if no_interval:  # the points are there without whiskers; say why once
            notes.append("a P95 without whiskers has no CI (too few requests above it)")
        if notes:
            # below the axis label, in points so it clears it at any height; part of the axes, so laid out
            ax.annotate("\n".join(notes), (0, 0), xycoords="axes fraction", xytext=(0, -26),
                        textcoords="offset points", ha="left", va="top", fontsize=_SMALL_PT - 1, color=_GREY,
                        gid="note")
        _p95_legend(figure, styles)
    return figure


def _dot_and_whisker(ax: Axes, row: pd.Series, name: str, y: float, style: Mapping[str, Any], *,
                     filled: bool) -> None:
    estimate = row[f"{name}_ms"]
    if not np.isfinite(estimate):
        return
    low, high = row[f"{name}_ci_low"], row[f"{name}_ci_high"]
    point = float(_floor(estimate))
    whisker = None
    if np.isfinite(low) and np.isfinite(high):  # n = 1 has no CI: the point alone
        whisker = [[point - float(_floor(low))], [max(float(_floor(high)) - point, 0.0)]]
    drawn = ax.errorbar(point, y, xerr=whisker, marker=style["marker"], linestyle="none", color=style["color"],
                        markerfacecolor=style["color"] if filled else "white", elinewidth=1.0 if filled else 0.7)
    drawn.lines[0].set_gid(name)  # the point itself (not its caps): what a reader or a test looks up


def _p95_legend(figure: Figure, styles: Mapping[str, Mapping[str, Any]]) -> None:
    from matplotlib.lines import Line2D

    kinds = [Line2D([], [], color="black", marker="o", linestyle="none", label="P95 ± 95 % CI"),
             Line2D([], [], color="black", marker="o", markerfacecolor="white", linestyle="none", label="P50"),
             Line2D([], [], color="black", marker=">", markerfacecolor="white", linestyle="none",
                    label="P95 ≥ (> 5 % censored)")]
    figure.legend(handles=_legend_handles(styles, lines=False) + kinds, loc="outside upper center",
                  ncol=min(len(styles) + 3, 3), handletextpad=0.3, columnspacing=0.9)


def ecdf_figure(data: Any, *, size: Size = "column") -> Figure | None:
    """The latency distribution of each arm in the four views, estimated as Kaplan–Meier 1 − S(t).

    Timeouts are right-censored at their elapsed time: they lower the number at risk but add no step,
    so a run with timeouts never reaches 1 (the timed-out share is above every drawn latency); each
    is a ``+`` mark on its arm's curve. The dashed line is 0.95 (where the P95 is read). None when no
    arm has an answered or timed-out request."""
    frames = _frames_of(data)
    if not any(len(_answered(frame)) for frame in frames.values()):
        return None
    styles = _arm_styles(frames)
    with _style():
        figure, axes = _new_figure(size, {"column": 3.3, "page": 3.4}, 2, 2, sharex=True, sharey=True)
        for ax, (kind, scope) in zip(axes.flat, VIEWS, strict=True):
            ax.set_title(f"{kind} / {scope}")
            empty = []
            for arm, frame in frames.items():
                times, censored = _view(frame, kind, scope)
                if not len(times):
                    empty.append(arm)
                    continue
                curve = kaplan_meier(times, censored)
                level = 1.0 - curve.survival
                x = np.concatenate(([times.min()], curve.time, [times.max()]))
                y = np.concatenate(([0.0], level, [level[-1] if len(level) else 0.0]))
                style = styles[arm]
                ax.plot(_floor(x), y, drawstyle="steps-post", color=style["color"], linestyle=style["linestyle"],
                        gid="distribution")
                if censored.any():
                    ax.plot(_floor(times[censored]), _distribution_at(curve, times[censored]), marker="+",
                            linestyle="none", color=style["color"], markersize=5, markeredgewidth=0.9, gid="censored")
            ax.axhline(0.95, color=_GREY, linewidth=0.6, linestyle=(0, (3, 2)), gid="q95")
            if empty:
                _note(ax, "n = 0: " + ", ".join(empty), y=0.62)
        _axis_labels(axes, x="latency (ms, log)", y="1 − S(t)")
        _log_scale(axes[0, 0])
        axes[0, 0].set_ylim(0, 1.02)
        _arm_legend(figure, styles, censored_mark=True)
    return figure


def _axis_labels(axes: np.ndarray, *, x: str, y: str) -> None:
    for ax in axes[-1, :]:
        ax.set_xlabel(x)
    for ax in axes[:, 0]:
        ax.set_ylabel(y)


def _arm_legend(figure: Figure, styles: Mapping[str, Mapping[str, Any]], *, censored_mark: bool) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=s["color"], linestyle=s["linestyle"], label=arm) for arm, s in styles.items()]
    if censored_mark:
        handles.append(Line2D([], [], color="black", marker="+", linestyle="none", label="timeout (censored)"))
    figure.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), 4), handlelength=2.2,
                  columnspacing=1.0)


def km_figure(data: Any, *, size: Size = "column") -> Figure | None:
    """Kaplan–Meier survival P(latency > t) of raw and CO latency (all answered and timed-out requests)
    per arm, with pointwise 95 % Greenwood log-log bands (:func:`km_band`) and timeouts as ``+`` marks.
    A column figure stacks the two panels, a page figure puts them side by side. None when no arm has
    an answered or timed-out request."""
    frames = _frames_of(data)
    if not any(len(_answered(frame)) for frame in frames.values()):
        return None
    styles = _arm_styles(frames)
    shape = (2, 1) if size == "column" else (1, 2)
    with _style():
        figure, axes = _new_figure(size, {"column": 3.6, "page": 2.4}, *shape, sharex=True, sharey=True)
        for ax, kind in zip(axes.flat, ("Raw", "CO"), strict=True):
            ax.set_title(f"{kind} / Overall")
            empty = []
            for arm, frame in frames.items():
                times, censored = _view(frame, kind, "Overall")
                if not len(times):
                    empty.append(arm)
                    continue
                band = km_band(kaplan_meier(times, censored))
                _draw_km(ax, band, times, censored, styles[arm])
            if empty:
                _note(ax, "n = 0: " + ", ".join(empty), y=0.2)
            ax.set_ylabel("S(t) = P(latency > t)")
        for ax in axes[-1, :]:
            ax.set_xlabel("latency (ms, log)")
        _log_scale(axes[0, 0])
        axes[0, 0].set_ylim(0, 1.02)
        _arm_legend(figure, styles, censored_mark=True)
    return figure


def _draw_km(ax: Axes, band: KMBand, times: np.ndarray, censored: np.ndarray, style: Mapping[str, Any]) -> None:
    curve = band.curve
    x = _floor(np.concatenate(([times.min()], curve.time, [times.max()])))
    last = curve.survival[-1] if len(curve.survival) else 1.0
    ax.fill_between(x, np.concatenate(([1.0], band.lower, [band.lower[-1] if len(band.lower) else 1.0])),
                    np.concatenate(([1.0], band.upper, [band.upper[-1] if len(band.upper) else 1.0])),
                    step="post", color=style["color"], alpha=0.18, linewidth=0, gid="band")
    ax.plot(x, np.concatenate(([1.0], curve.survival, [last])), drawstyle="steps-post", color=style["color"],
            linestyle=style["linestyle"], gid="survival")
    if censored.any():
        ax.plot(_floor(times[censored]), 1.0 - _distribution_at(curve, times[censored]), marker="+",
                linestyle="none", color=style["color"], markersize=5, markeredgewidth=0.9, gid="censored")


def cost_quality_figure(data: Any, *, size: Size = "column", n_resamples: int | None = None,
                        seed: int | None = None) -> Figure | None:
    """Cost (average eval ms per request, every attempt) against mean quality per arm, with 95 %
    bootstrap CIs in both directions (:func:`cost_quality_points`); arms are labelled at their point.
    None when there is no request at all."""
    frames = _frames_of(data)
    if not any(len(frame) for frame in frames.values()):
        return None
    points = cost_quality_points(data, n_resamples=n_resamples, seed=seed)
    styles = _arm_styles(frames)
    with _style():
        figure, axes = _new_figure(size, {"column": 2.5, "page": 3.0})
        ax = axes[0, 0]
        for row in points.itertuples(index=False):
            style = styles[row.arm]
            if not (np.isfinite(row.cost_ms) and np.isfinite(row.quality)):
                _note(ax, f"{row.arm}: no cost or quality to draw (n = {row.n})")
                continue
            ax.errorbar(row.cost_ms, row.quality,
                        xerr=[[row.cost_ms - row.cost_ci_low], [row.cost_ci_high - row.cost_ms]],
                        yerr=[[row.quality - row.quality_ci_low], [row.quality_ci_high - row.quality]],
                        marker=style["marker"], color=style["color"], linestyle="none",
                        markersize=4).lines[0].set_gid(f"arm:{row.arm}")
            ax.annotate(row.arm, (row.cost_ms, row.quality), xytext=(4, 4), textcoords="offset points",
                        fontsize=_SMALL_PT, color=style["color"])
        ax.set_xlabel("cost: eval ms per request (all attempts)")
        ax.set_ylabel("mean quality [0, 1]")
        ax.margins(0.25)
        ax.grid(color="#e5e5e5", linewidth=0.5)
        ax.set_axisbelow(True)
    return figure


def load_timeline(data: Any, *, size: Size = "column") -> Figure | None:
    """CO (dots) and raw (crosses) latency (top) and dispatch lag (bottom) against each request's intended
    start; failed requests as ticks at the top. None when there is no request at all."""
    frames = _frames_of(data)
    if not any(len(frame) for frame in frames.values()):
        return None
    styles = _arm_styles(frames)
    t0 = min(int(frame["intended_ns"].min()) for frame in frames.values() if len(frame))
    with _style():
        figure, axes = _new_figure(size, {"column": 3.0, "page": 3.0}, 2, 1, sharex=True,
                                   height_ratios=(2, 1))
        top, bottom = axes[0, 0], axes[1, 0]
        ceiling = max([float(_answered(f)["co_ms"].max()) for f in frames.values() if len(_answered(f))] or [1.0])
        for arm, frame in frames.items():
            style, answered = styles[arm], _answered(frame)
            seconds = (answered["intended_ns"].to_numpy(np.int64) - t0) / 1e9
            top.plot(seconds, _floor(answered["co_ms"].to_numpy(float)), marker=style["marker"], linestyle="none",
                     markersize=2, color=style["color"], gid="co")
            top.plot(seconds, _floor(answered["raw_ms"].to_numpy(float)), marker="x", linestyle="none",
                     markersize=2, markeredgewidth=0.5, alpha=0.6, color=style["color"], gid="raw")
            failed = frame[frame["failed"]]
            if len(failed):
                top.plot((failed["intended_ns"].to_numpy(np.int64) - t0) / 1e9, np.full(len(failed), _floor(ceiling)),
                         marker="|", linestyle="none", markersize=6, color=style["color"], gid="failed")
            bottom.plot((frame["intended_ns"].to_numpy(np.int64) - t0) / 1e9,
                        _floor(frame["dispatch_lag_ms"].to_numpy(float)), marker=style["marker"], linestyle="none",
                        markersize=2, color=style["color"], gid="lag")
        _log_scale(top, "y")
        top.set_ylabel("latency (ms)")
        _log_scale(bottom, "y")
        bottom.set_ylabel("dispatch lag (ms)")
        bottom.set_xlabel("intended start (s from the first request)")
        _timeline_legend(figure, styles, any_failed=any(frame["failed"].any() for frame in frames.values()))
    return figure


def _timeline_legend(figure: Figure, styles: Mapping[str, Mapping[str, Any]], *, any_failed: bool) -> None:
    from matplotlib.lines import Line2D

    kinds = [Line2D([], [], color="black", marker="x", linestyle="none", label="raw")]
    if any_failed:
        kinds.append(Line2D([], [], color="black", marker="|", linestyle="none", label="failed"))
    figure.legend(handles=[*_legend_handles(styles, lines=False), *kinds], loc="outside upper center",
                  ncol=min(len(styles) + 2, 4), handletextpad=0.2, columnspacing=0.8,
                  title="dots: CO latency", title_fontsize=_SMALL_PT)


#: every figure by name (the report writes ``figures/<name>.{pdf,svg,png}``); each is ``fn(report, size=...)``
def _tradeoff_points(data: Any) -> pd.DataFrame:
    """Per arm: CO P95 with its CI (the report's p95_views row "CO / Overall" where the arm is there, else the
    enforcement table's), violation rate reaching the user with its exact CI, and energy J/request with its CI."""
    section = getattr(data, "enforcement", None)
    arms = getattr(section, "arms", data)
    if not isinstance(arms, pd.DataFrame):
        raise InvalidArgument(f"enforcement_tradeoff needs a RunReport (with an enforcement section) or its "
                              f"enforcement_arms table; got {type(data).__name__}.")
    points = arms[["arm", "p95_co_ms", "p95_co_ms_ci_low", "p95_co_ms_ci_high", "violation_rate",
                   "violation_rate_ci_low", "violation_rate_ci_high", "j_per_request", "j_per_request_ci_low",
                   "j_per_request_ci_high"]].copy()
    views = getattr(data, "p95_views", None)
    if isinstance(views, pd.DataFrame) and len(views):
        co = views[views["view"] == "CO / Overall"].set_index("arm")
        for i, arm in points["arm"].items():
            if arm in co.index:
                row = co.loc[arm]
                points.loc[i, ["p95_co_ms", "p95_co_ms_ci_low", "p95_co_ms_ci_high"]] = \
                    [row["p95_ms"], row["p95_ci_low"], row["p95_ci_high"]]
    return points.reset_index(drop=True)


def _whisker(estimate: float, low: float, high: float) -> list[list[float]] | None:
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    return [[max(estimate - low, 0.0)], [max(high - estimate, 0.0)]]


def enforcement_tradeoff(data: Any, *, size: Size = "column") -> Figure | None:
    """What enforcement buys and costs, per arm: CO P95 latency (x, log scale, 95 % bootstrap CI) against
    the violation rate reaching the user (y, in %, exact 95 % CI) on the left, and energy per request
    (J, 95 % bootstrap CI) on the right; an arm without measured energy is named there instead of drawn.
    None when the report has no enforcement section."""
    if getattr(data, "enforcement", "absent") is None:
        return None
    points = _tradeoff_points(data)
    if not len(points):
        return None
    styles = _arm_styles(points["arm"])
    with _style():
        figure, axes = _new_figure(size, {"column": 2.6, "page": 2.6}, 1, 2, width_ratios=(3, 2))
        ax, energy_ax = axes[0, 0], axes[0, 1]
        no_latency, no_energy = [], []
        for y, row in enumerate(points.itertuples(index=False)):
            style = styles[row.arm]
            rate = 100 * row.violation_rate
            if np.isfinite(row.p95_co_ms) and np.isfinite(rate):
                x = float(_floor(row.p95_co_ms))
                xerr = _whisker(x, float(_floor(row.p95_co_ms_ci_low)), float(_floor(row.p95_co_ms_ci_high))) \
                    if np.isfinite(row.p95_co_ms_ci_low) else None
                yerr = _whisker(rate, 100 * row.violation_rate_ci_low, 100 * row.violation_rate_ci_high)
                ax.errorbar(x, rate, xerr=xerr, yerr=yerr, marker=style["marker"], color=style["color"],
                            linestyle="none", markersize=4).lines[0].set_gid(f"arm:{row.arm}")
            else:
                no_latency.append(row.arm)
            if np.isfinite(row.j_per_request):
                xerr = _whisker(row.j_per_request, row.j_per_request_ci_low, row.j_per_request_ci_high)
                energy_ax.errorbar(row.j_per_request, y, xerr=xerr, marker=style["marker"], color=style["color"],
                                   linestyle="none", markersize=4).lines[0].set_gid(f"energy:{row.arm}")
            else:
                no_energy.append(row.arm)
        _log_scale(ax)
        ax.set_xlabel("CO P95 latency (ms, log scale)")
        ax.set_ylabel("violations reaching the user (%)")
        ax.set_ylim(bottom=0)
        ax.margins(x=0.3, y=0.15)
        ax.grid(color="#e5e5e5", linewidth=0.5)
        ax.set_axisbelow(True)
        if no_latency:
            _note(ax, "not drawn (no P95 or no delivered text): " + ", ".join(map(str, no_latency)))
        energy_ax.set_yticks(range(len(points)), [str(a) for a in points["arm"]])
        energy_ax.set_ylim(-0.6, len(points) - 0.4)
        energy_ax.invert_yaxis()
        energy_ax.set_xlabel("energy per request (J)")
        energy_ax.grid(axis="x", color="#e5e5e5", linewidth=0.5)
        if no_energy:
            _note(energy_ax, "energy not measured:\n" + ", ".join(map(str, no_energy)), y=0.02 + 0.0)
            energy_ax.texts[-1].set_va("bottom")
        if len(no_energy) == len(points):
            energy_ax.set_xticks([])
        figure.legend(handles=_legend_handles(styles, lines=False), loc="outside upper center",
                      ncol=min(len(styles), 4), handletextpad=0.3, columnspacing=0.9)
    return figure


FIGURES: dict[str, Callable[..., Figure | None]] = {
    "p95_views": p95_views_figure,
    "latency_ecdf": ecdf_figure,
    "km_survival": km_figure,
    "cost_quality": cost_quality_figure,
    "load_timeline": load_timeline,
    "enforcement_tradeoff": enforcement_tradeoff,
}
ENFORCEMENT_FIGURES: tuple[str, ...] = ("enforcement_tradeoff",)
"""Figures drawn only for runs with guardians (None for the others)."""


def frontier_figure(points: pd.DataFrame, frontier: pd.DataFrame, band: pd.DataFrame, default: pd.DataFrame, *,
                    ax: Axes | None = None, size: Size = "column", current: tuple[float, float] | None = None,
                    confidence: float = 0.95) -> Figure:
    """A replay frontier (:class:`tsglab.replay.Frontier`'s frames): every configuration as a faint dot, the
    Pareto set as a step line with its points, the pointwise band of the frontier curve, the references (lowest
    and top tier alone) labelled, the paper's default with its interval cross, and ``current=(cost_ms, quality)``
    as a star. Draws into ``ax`` when given (its figure is returned)."""
    with _style():
        if ax is None:
            figure, axes = _new_figure(size, {"column": 2.6, "page": 3.2})
            ax = axes[0, 0]
        else:
            root = ax.get_figure(root=True)
            if root is None:
                raise InvalidArgument("`ax` must belong to a figure; make it with Figure().subplots().")
            figure = root
        blue, vermillion, grey = OKABE_ITO["blue"], OKABE_ITO["vermillion"], _GREY
        ax.scatter(points["cost_ms"], points["quality"], s=3, color=grey, alpha=0.25, linewidths=0,
                   rasterized=len(points) > 2000, label="configurations", gid="points")
        defined = band[np.isfinite(band["low"]) & np.isfinite(band["high"])]
        ax.fill_between(defined["cost_ms"], defined["low"], defined["high"], step="post", color=OKABE_ITO["sky blue"],
                        alpha=0.35, linewidth=0, label=f"frontier {confidence:.0%} band", gid="band")
        ax.step(frontier["cost_ms"], frontier["quality"], where="post", color=blue, linewidth=1.0, gid="frontier")
        ax.plot(frontier["cost_ms"], frontier["quality"], "o", color=blue, markersize=2.5, label="frontier")
        for row in points[points["label"].isin([lab for lab in points["label"].unique()
                                                 if lab.endswith(" alone")])].itertuples():
            ax.plot(row.cost_ms, row.quality, "D", color=OKABE_ITO["black"], markersize=3)
            ax.annotate(row.label, (row.cost_ms, row.quality), xytext=(3, -8), textcoords="offset points",
                        fontsize=_SMALL_PT - 1, color=OKABE_ITO["black"])
        for row in default.itertuples():
            ax.errorbar(row.cost_ms, row.quality,
                        xerr=[[row.cost_ms - row.cost_ci_low], [row.cost_ci_high - row.cost_ms]],
                        yerr=[[row.quality - row.quality_ci_low], [row.quality_ci_high - row.quality]], marker="s",
                        color=vermillion, linestyle="none", markersize=3.5, label="default",
                        ).lines[0].set_gid("default")
        if current is not None:
            ax.plot(current[0], current[1], "*", color=OKABE_ITO["orange"], markersize=8,
                    markeredgecolor=OKABE_ITO["black"], markeredgewidth=0.4, label="selected", gid="current")
        ax.set_xlabel("cost: eval ms per request (all attempts)")
        ax.set_ylabel("mean quality")
        ax.grid(color="#e5e5e5", linewidth=0.5)
        ax.set_axisbelow(True)
        ax.legend(loc="center right", fontsize=_SMALL_PT - 1, markerscale=1.2)
    return figure


def save_figure(fig: Figure, path_stem: str | Path, formats: Iterable[str] = FORMATS, dpi: int = 300) -> list[Path]:
    """Write ``fig`` as ``<path_stem>.<format>`` for each format: PDF (TrueType fonts embedded), SVG (text
    as ``<text>``) and PNG at ``dpi``; the figure keeps its size (no tight bounding box), so a PNG is
    exactly width × dpi pixels wide. Returns the paths written."""
    formats = tuple(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InvalidArgument(f"`formats` may hold {', '.join(FORMATS)}; got {unknown[0]!r}. Use e.g. "
                              "formats=('pdf', 'png').")
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    engine = fig.get_layout_engine()
    with _style():
        if engine is not None:
            # lay the figure out once for every format (constrained layout measures every label, the
            # costliest part of a save), then restore it: the figure is the caller's
            fig.draw_without_rendering()
            fig.set_layout_engine(None)  # None, not "none": with any engine set, savefig draws twice
        try:
            for fmt in formats:
                path = stem.with_name(f"{stem.name}.{fmt}")
                fig.savefig(path, format=fmt, dpi=dpi, **_SAVE_OPTIONS[fmt])
                paths.append(path)
        finally:
            if engine is not None:
                fig.set_layout_engine(engine)
    return paths
