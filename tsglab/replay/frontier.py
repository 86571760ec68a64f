"""The cost–quality frontier of a grid of policy configurations, with bootstrap confidence intervals.

:func:`frontier` replays every configuration of a :class:`~tsglab.replay.ConfigGrid` over a replay data set
and resamples the prompts: **one** resample of prompt weights is applied to every configuration at once,
so the per-configuration intervals, the band of the frontier curve and the router metrics all come from
the same paired draws (resampling each configuration on its own would make the maximum over
configurations — the frontier — look better than it is).

How it is fast: configurations that route every prompt of the data alike have the same per-prompt outcome
vectors (quality, cost, latency, top tier touched, unrecorded cell used), so the grid is replayed once
(:func:`~tsglab.replay.replay`, in chunks) and reduced to its distinct outcome vectors. A resample is a row of
prompt counts ``w`` (from :func:`tsglab.stats.resample_indices`); the resampled means of every distinct
outcome are one matrix product ``W @ Q.T / n``. The curve statistics of each resample (frontier at fixed cost
levels, APGR, CPT, AIQ, the default's gap) are one numba kernel per resample row (:func:`_curve_row_py`, jitted
by assignment).

Resampling: ``"auto"`` resamples prompts iid for collected data (a suite is a set of prompts, not a time
series); for data read from logged runs (``source == "events"``, prompts in dispatch order) a Ljung–Box test
on the default configuration's per-prompt quality and cost chooses iid or the stationary bootstrap with the
Politis–White block length (:func:`tsglab.stats.choose_resampling`). Any method of
:data:`tsglab.stats.resample.RESAMPLE_METHODS` can be forced.

Metrics (each with a percentile bootstrap interval over the same resamples):

* **APGR** (RouteLLM's average performance gap recovered): with ``weak`` = the lowest tier alone and
  ``strong`` = the top tier alone, ``PGR(x) = (Q(x) − q_weak) / (q_strong − q_weak)`` where ``Q(x)`` is the best
  quality of a configuration whose **share of requests touching the top tier** (``r_costly``) is ≤ x;
  ``APGR = ∫₀¹ PGR(x) dx``. Not clipped: a cascade can beat the top tier alone (PGR > 1).
* **CPT(50 %)**, **CPT(80 %)**: the smallest top-tier share x with PGR(x) ≥ 0.5 (0.8); NaN if never reached.
* **AIQ** (RouterBench's average improvement in quality): the area under the non-decreasing upper convex hull
  of (cost_ms, quality) over all configurations, divided by the cost range (mixing two configurations at
  random realises any point of the hull).
* **default gap**: the frontier's quality at the default configuration's cost minus the default's quality
  (quality left on the table at the same cost).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numba
import numpy as np
import pandas as pd

from tsglab.config import PAPER_TSG, PolicyConfig
from tsglab.errors import InvalidArgument, SpecError, TsglabError
from tsglab.replay.data import ReplayData
from tsglab.replay.kernels import _RUNG_FIELDS, PARAMS, ConfigGrid, replay
from tsglab.stats import ResamplePlan, choose_resampling, resample_indices
from tsglab.stats.resample import RESAMPLE_METHODS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["METRICS", "RESAMPLING", "Frontier", "FrontierRun", "collect_spec", "default_grid", "frontier",
           "frontier_report", "load_grid", "load_source"]

RESAMPLING: tuple[str, ...] = ("auto", *RESAMPLE_METHODS)
METRICS: tuple[str, ...] = ("APGR", "CPT(50%)", "CPT(80%)", "AIQ", "default gap")
_METRIC_AXES = ("r_costly", "r_costly", "r_costly", "cost_ms", "cost_ms")
BAND_LEVELS = 60  # cost levels at which the frontier band is given
_REPLAY_CHUNK = 4096  # configurations replayed at once (per-prompt arrays of a chunk: ~10 MB at 273 prompts)
_RESAMPLE_CHUNK = 256  # resamples per matrix product (three 256 × U float64 blocks)


# ---------------------------------------------------------------------------------------- outcomes


@dataclass(frozen=True, eq=False)
class Outcomes:
    """A grid reduced to its distinct per-prompt outcome vectors (rows of ``quality`` … ``missing``, one per
    distinct outcome); ``outcome_of[i]`` is configuration ``i``'s row. ``grid`` is the user's grid followed by
    the reference configurations ``weak`` (lowest tier alone), ``strong`` (top tier alone) and ``default`` (the
    paper's defaults; −1 when the ladder does not name its tiers)."""

    grid: ConfigGrid
    n_user: int
    quality: np.ndarray
    cost_ms: np.ndarray
    latency_ms: np.ndarray
    touched: np.ndarray
    missing: np.ndarray
    outcome_of: np.ndarray
    weak: int
    strong: int
    default: int

    @property
    def n_prompts(self) -> int:
        return self.quality.shape[1]


def references(ladder: Sequence[str]) -> tuple[list[PolicyConfig], int]:
    """The weak, strong and default configurations for ``ladder`` (default dropped when the paper's tier names
    are not rungs of it) and the default's position (−1 when dropped)."""
    refs = [PolicyConfig(kind="baseline", baseline_tier=ladder[0], label=f"{ladder[0]} alone"),
            PolicyConfig(kind="baseline", baseline_tier=ladder[-1], label=f"{ladder[-1]} alone")]
    try:
        PAPER_TSG.check_ladder(ladder)
    except SpecError:
        return refs, -1
    return [*refs, PolicyConfig(label="default")], 2


def outcomes(data: ReplayData, grid: ConfigGrid) -> Outcomes:
    """Replay ``grid`` and the reference configurations over ``data`` and keep the distinct outcome vectors."""
    if not isinstance(data, ReplayData):
        raise InvalidArgument(f"`data` must be a ReplayData; got {type(data).__name__}. Load one with "
                              "tsglab.replay.load_replay(DIR).")
    if not isinstance(grid, ConfigGrid) or len(grid) == 0:
        raise InvalidArgument("`grid` must be a non-empty ConfigGrid; build one with ConfigGrid.product(base, "
                              "{param: values}, data.ladder) or tsglab.replay.default_grid(data.ladder).")
    refs, default_at = references(data.ladder)
    extra = ConfigGrid.from_configs(refs, data.ladder)  # raises on a ladder mismatch of the grid below
    if tuple(grid.ladder) != tuple(data.ladder):
        raise InvalidArgument(f"the grid's ladder {list(grid.ladder)} is not the data's {list(data.ladder)}; build "
                              "the grid with the data's ladder.")
    matrix = np.vstack([grid.matrix, extra.matrix])
    combined = ConfigGrid(matrix, data.ladder, tuple(grid.labels or ("",) * len(grid)) + tuple(c.label for c in refs))
    index: dict[bytes, int] = {}
    rows: list[tuple[np.ndarray, ...]] = []
    outcome_of = np.empty(len(combined), dtype=np.int64)
    for start in range(0, len(combined), _REPLAY_CHUNK):
        part = replay(data, ConfigGrid(matrix[start:start + _REPLAY_CHUNK], data.ladder))
        for j in range(part.quality.shape[0]):
            key = (part.quality[j].tobytes() + part.cost_ms[j].tobytes() + part.latency_ms[j].tobytes()
                   + part.flags[j].tobytes())
            found = index.get(key)
            if found is None:
                found = index[key] = len(rows)
                rows.append((part.quality[j].copy(), part.cost_ms[j].copy(), part.latency_ms[j].copy(),
                             part.flags[j].copy()))
            outcome_of[start + j] = found
    quality, cost, latency, flags = (np.array([r[k] for r in rows]) for k in range(4))
    n = len(grid)
    default = n + default_at if default_at >= 0 else -1
    return Outcomes(combined, n, quality, cost, latency, ((flags & 2) > 0).astype(np.float64),
                    ((flags & 1) > 0).astype(np.float64), outcome_of, n, n + 1, default)


# --------------------------------------------------------------------------------- curve kernel


def _curve_row_py(cost: np.ndarray, quality: np.ndarray, share: np.ndarray, levels: np.ndarray, weak: int,
                  strong: int, default: int, band_out: np.ndarray, metrics_out: np.ndarray) -> None:
    """One resample's curve statistics over the distinct outcomes: the frontier (best quality at cost ≤ c) at
    each of ``levels`` into ``band_out``; APGR, CPT(50 %), CPT(80 %), AIQ and the default's gap into
    ``metrics_out`` (module docstring)."""
    u = cost.shape[0]
    order = np.argsort(cost, kind="mergesort")
    cs = np.empty(u)
    qs = np.empty(u)
    runmax = np.empty(u)
    best = -np.inf
    for j in range(u):
        k = order[j]
        cs[j] = cost[k]
        qs[j] = quality[k]
        best = max(best, quality[k])
        runmax[j] = best
    for i in range(levels.shape[0]):
        n_below = np.searchsorted(cs, levels[i], side="right")
        band_out[i] = runmax[n_below - 1] if n_below > 0 else np.nan
    # the frontier's quality at the default's cost minus the default's quality
    if default >= 0:
        n_below = np.searchsorted(cs, cost[default], side="right")
        metrics_out[4] = runmax[n_below - 1] - quality[default]
    else:
        metrics_out[4] = np.nan
    # AIQ: the upper convex hull from the cheapest point up to its highest point, then flat
    hx = np.empty(u)
    hy = np.empty(u)
    h = 0
    for j in range(u):
        x, y = cs[j], qs[j]
        if h > 0 and x == hx[h - 1]:
            if y <= hy[h - 1]:
                continue
            h -= 1
        while h >= 2 and (hx[h - 1] - hx[h - 2]) * (y - hy[h - 2]) - (hy[h - 1] - hy[h - 2]) * (x - hx[h - 2]) >= 0:
            h -= 1
        hx[h] = x
        hy[h] = y
        h += 1
    top = 0
    for j in range(h):
        if hy[j] > hy[top]:
            top = j
    span = cs[u - 1] - cs[0]
    if span > 0:
        area = 0.0
        for j in range(top):
            area += 0.5 * (hy[j] + hy[j + 1]) * (hx[j + 1] - hx[j])
        area += hy[top] * (cs[u - 1] - hx[top])
        metrics_out[3] = area / span
    else:
        metrics_out[3] = hy[top]
    # APGR and CPT on the top-tier share axis
    gap = quality[strong] - quality[weak]
    if not gap > 0:
        metrics_out[0] = np.nan
        metrics_out[1] = np.nan
        metrics_out[2] = np.nan
        return
    order2 = np.argsort(share, kind="mergesort")
    area = 0.0
    x_prev = 0.0
    current = quality[weak]
    cpt50 = np.nan
    cpt80 = np.nan
    for j in range(u):
        k = order2[j]
        x = min(max(share[k], 0.0), 1.0)
        if x > x_prev:
            area += (x - x_prev) * (current - quality[weak]) / gap
            x_prev = x
        if quality[k] > current:
            current = quality[k]
        pgr = (current - quality[weak]) / gap
        if np.isnan(cpt50) and pgr >= 0.5:
            cpt50 = x
        if np.isnan(cpt80) and pgr >= 0.8:
            cpt80 = x
    area += (1.0 - x_prev) * (current - quality[weak]) / gap
    metrics_out[0] = area
    metrics_out[1] = cpt50
    metrics_out[2] = cpt80


_curve_row = numba.njit(cache=True)(_curve_row_py)


@numba.njit(cache=True, parallel=True)
def _curve_rows(cost, quality, share, levels, weak, strong, default, band_out, metrics_out):
    for b in numba.prange(cost.shape[0]):
        _curve_row(cost[b], quality[b], share[b], levels, weak, strong, default, band_out[b], metrics_out[b])


def curve_statistics(cost: np.ndarray, quality: np.ndarray, share: np.ndarray, levels: np.ndarray, *, weak: int,
                     strong: int, default: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of (cost, quality, share) per distinct outcome → (frontier at ``levels``, metrics) per row."""
    cost, quality, share = (np.ascontiguousarray(np.atleast_2d(a), dtype=np.float64) for a in (cost, quality, share))
    band = np.empty((cost.shape[0], len(levels)))
    metrics = np.empty((cost.shape[0], len(METRICS)))
    _curve_rows(cost, quality, share, np.ascontiguousarray(levels, dtype=np.float64), weak, strong, default, band,
                metrics)
    return band, metrics


# --------------------------------------------------------------------------------------- resampling


def resampling_plan(data: ReplayData, series: Sequence[np.ndarray], *, n_resamples: int, seed: int,
                    resampling: str) -> tuple[ResamplePlan, str]:
    """How the prompts are resampled (module docstring): a plan and the reason for it."""
    if resampling not in RESAMPLING:
        raise InvalidArgument(f"`resampling` must be one of {RESAMPLING}; got {resampling!r}. Use 'auto' (iid for "
                              "collected data, a Ljung–Box test for logged runs) or 'iid'.")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 10:
        raise InvalidArgument(f"`n_resamples` must be an integer >= 10; got {n_resamples!r}. Use e.g. 1000.")
    n = data.n_prompts
    if resampling == "auto" and data.source != "events":
        return (ResamplePlan(n, "iid", None, int(n_resamples), int(seed)),
                "collected replay data: the prompts are a suite, not a time series; iid over prompts")
    if resampling != "auto":
        return choose_resampling(series[0], n_resamples=int(n_resamples), seed=int(seed), method=resampling)
    plans = [choose_resampling(s, n_resamples=int(n_resamples), seed=int(seed)) for s in series]
    serial = [p for p in plans if p[0].method != "iid"]
    if not serial:
        return plans[0][0], "logged runs in dispatch order: " + plans[0][1]
    chosen = max(serial, key=lambda p: p[0].block_length or 1)
    return chosen[0], "logged runs in dispatch order: " + chosen[1]


def prompt_weights(indices: np.ndarray, n: int) -> np.ndarray:
    """Resample index rows → prompt counts per row (``(rows, n)`` float64)."""
    rows = indices.shape[0]
    flat = (indices + n * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)


# -------------------------------------------------------------------------------------- the result


@dataclass(frozen=True, eq=False, repr=False)
class Frontier:
    """Result of :func:`frontier`.

    ``points``: one row per configuration (the grid's rows first, ``config`` = the row of :attr:`grid`, then the
    references: lowest tier alone, top tier alone, the paper's default) — the grid parameters that vary,
    ``quality`` and ``cost_ms`` with their bootstrap intervals, ``latency_ms``, ``r_costly``, ``missing`` (share of
    prompts whose replay used an unrecorded cell), ``outcome`` (configurations with the same outcome id route
    every prompt alike) and ``on_frontier``. ``frontier``: the Pareto set (min cost, max quality), one row per
    distinct outcome, cheapest first, ``n_equivalent`` configurations each. ``band``: per cost level the
    frontier's quality (best quality at cost ≤ level) and its interval over the paired resamples. ``default``:
    the paper's default configuration's row of ``points`` with its gap to the frontier. ``metrics``: APGR,
    CPT(50 %), CPT(80 %), AIQ and the default gap, with intervals and the cost axis of each."""

    points: pd.DataFrame
    frontier: pd.DataFrame
    band: pd.DataFrame
    default: pd.DataFrame
    metrics: pd.DataFrame
    grid: ConfigGrid
    confidence: float
    n_resamples: int
    seed: int
    n_prompts: int
    resampling: str
    reason: str
    note: str = ""

    def config(self, index: int) -> PolicyConfig:
        """Configuration ``index`` (the ``config`` column of :attr:`points`) as a PolicyConfig."""
        return self.grid.config(int(index), label=self.grid.labels[int(index)] if self.grid.labels else "")

    def to_frame(self) -> pd.DataFrame:
        """:attr:`points`."""
        return self.points.copy()

    def table(self) -> pd.DataFrame:
        """The frontier with the references, as the ``frontier`` publication table prints it."""
        refs = self.points[self.points["label"] != ""]
        rows = pd.concat([self.frontier.assign(role="frontier"), refs.assign(role=refs["label"])], ignore_index=True)
        keep = ["role", "config", *[c for c in self.varying if c in rows], "quality", "quality_ci_low",
                "quality_ci_high", "cost_ms", "cost_ci_low", "cost_ci_high", "r_costly", "missing"]
        return rows[keep]

    @property
    def varying(self) -> list[str]:
        return [c for c in self.points.columns if c in PARAMS]

    def plot(self, ax: Axes | None = None, size: Literal["column", "page"] = "column",
             current: tuple[float, float] | None = None) -> Figure:
        """The frontier, its band, every configuration (faint) and the default with its interval cross;
        ``current=(cost_ms, quality)`` marks one more point (e.g. the threshold explorer's selection)."""
        from tsglab.report.figures import frontier_figure

        return frontier_figure(self.points, self.frontier, self.band, self.default, ax=ax, size=size,
                               current=current, confidence=self.confidence)

    def __repr__(self) -> str:
        metrics = ", ".join(f"{r.metric}={r.estimate:.3g}" for r in self.metrics.itertuples())
        return (f"Frontier({len(self.points)} configurations, {len(self.frontier)} on the frontier, "
                f"{self.n_prompts} prompts, B={self.n_resamples}, {self.resampling}; {metrics})")

    def _repr_html_(self) -> str:
        from tsglab.report.publish import to_html

        return to_html("frontier", self.table(), title=repr(self)) + to_html("frontier_metrics", self.metrics)


def _validate_confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.5 <= confidence < 1:
        raise InvalidArgument(f"`confidence` must be in [0.5, 1); got {confidence!r}. Use e.g. 0.95.")
    return float(confidence)


def _decode(name: str, value: float, ladder: Sequence[str]) -> Any:
    if name in _RUNG_FIELDS:
        return ladder[int(value)]
    if name == "kind":
        return "baseline" if value else "tsg"
    if name == "scorer":
        return "length" if value else "paper"
    if name in ("same_tier_repair", "check_refusal"):
        return bool(value)
    if name in ("force_light_len", "max_upgrades", "min_answer_chars"):
        return int(value)
    return float(value)


def _pareto(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats (cost ≤ and quality ≥, one strictly), cheapest first; of
    points with equal cost and quality the first is kept."""
    order = np.lexsort((-quality, cost))
    keep, best = [], -np.inf
    for k in order:
        if quality[k] > best:
            keep.append(k)
            best = quality[k]
    return np.array(keep, dtype=np.int64)


def frontier(data: ReplayData, grid: ConfigGrid, *, n_resamples: int = 1000, seed: int = 0,
             resampling: str = "auto", confidence: float = 0.95,
             band_levels: Sequence[float] | None = None) -> Frontier:
    """The cost–quality frontier of ``grid`` on ``data`` with paired bootstrap intervals (module docstring).

    Parameters
    ----------
    data : ReplayData
        Per prompt × tier answers (:func:`tsglab.replay.collect`, :func:`tsglab.replay.load_replay`).
    grid : ConfigGrid
        The configurations, built with ``data.ladder``. The lowest tier alone, the top tier alone and the
        paper's default are added as references.
    n_resamples, seed : int
        Bootstrap resamples (≥ 10) and the seed of their draws.
    resampling : {"auto", "iid", "moving-block", "circular-block", "stationary"}
        How prompts are resampled; ``"auto"``: iid for collected data, a Ljung–Box test on logged runs.
    confidence : float
        Level of every interval (percentile intervals, two-sided).
    band_levels : sequence of float, optional
        Cost levels (ms) of the band; default 60 levels from the cheapest to the dearest configuration.

    Returns
    -------
    Frontier
    """
    confidence = _validate_confidence(confidence)
    out = outcomes(data, grid)
    n = out.n_prompts
    means = {name: getattr(out, name).mean(axis=1) for name in ("quality", "cost_ms", "latency_ms", "touched",
                                                                 "missing")}
    default_series = out.default if out.default >= 0 else out.strong
    series = [out.quality[out.outcome_of[default_series]], out.cost_ms[out.outcome_of[default_series]]]
    plan, reason = resampling_plan(data, series, n_resamples=n_resamples, seed=seed, resampling=resampling)
    levels = (np.linspace(means["cost_ms"].min(), means["cost_ms"].max(), BAND_LEVELS) if band_levels is None
              else np.sort(np.asarray(band_levels, dtype=np.float64)))
    if levels.ndim != 1 or levels.size == 0 or not np.isfinite(levels).all():
        raise InvalidArgument(f"`band_levels` must be finite cost levels in ms; got {band_levels!r}. Leave it out for "
                              "60 levels over the grid's cost range.")
    weak, strong = int(out.outcome_of[out.weak]), int(out.outcome_of[out.strong])
    default = int(out.outcome_of[out.default]) if out.default >= 0 else -1
    u = out.quality.shape[0]
    q_draws = np.empty((plan.n_resamples, u), dtype=np.float32)
    c_draws = np.empty((plan.n_resamples, u), dtype=np.float32)
    band_draws = np.empty((plan.n_resamples, levels.size))
    metric_draws = np.empty((plan.n_resamples, len(METRICS)))
    done = 0
    for indices in resample_indices(plan):
        for start in range(0, indices.shape[0], _RESAMPLE_CHUNK):
            w = prompt_weights(indices[start:start + _RESAMPLE_CHUNK], n) / n
            q, c, s = w @ out.quality.T, w @ out.cost_ms.T, w @ out.touched.T
            rows = slice(done, done + w.shape[0])
            q_draws[rows], c_draws[rows] = q, c
            band_draws[rows], metric_draws[rows] = curve_statistics(c, q, s, levels, weak=weak, strong=strong,
                                                                    default=default)
            done += w.shape[0]
    tail = (1 - confidence) / 2
    q_ci = np.quantile(q_draws, [tail, 1 - tail], axis=0)
    c_ci = np.quantile(c_draws, [tail, 1 - tail], axis=0)
    band_est, metric_est = curve_statistics(means["cost_ms"], means["quality"], means["touched"], levels, weak=weak,
                                            strong=strong, default=default)
    on = _pareto(means["cost_ms"], means["quality"])
    on_frontier = np.zeros(u, bool)
    on_frontier[on] = True

    varying = [name for j, name in enumerate(PARAMS) if len(np.unique(out.grid.matrix[:out.n_user, j])) > 1]
    o = out.outcome_of
    points = pd.DataFrame({"config": np.arange(len(out.grid)), "label": list(out.grid.labels)})
    for name in varying:
        j = PARAMS.index(name)
        points[name] = [_decode(name, v, data.ladder) for v in out.grid.matrix[:, j]]
    points = points.assign(
        quality=means["quality"][o], quality_ci_low=q_ci[0][o].astype(float), quality_ci_high=q_ci[1][o].astype(float),
        cost_ms=means["cost_ms"][o], cost_ci_low=c_ci[0][o].astype(float), cost_ci_high=c_ci[1][o].astype(float),
        latency_ms=means["latency_ms"][o], r_costly=means["touched"][o], missing=means["missing"][o], outcome=o,
        on_frontier=on_frontier[o])
    first = points.drop_duplicates("outcome").set_index("outcome")
    counts = points["outcome"].value_counts()
    front = first.loc[on].reset_index().assign(n_equivalent=lambda f: counts.loc[f["outcome"]].to_numpy())

    with np.errstate(all="ignore"):
        band_lo = np.nanquantile(band_draws, tail, axis=0)
        band_hi = np.nanquantile(band_draws, 1 - tail, axis=0)
        covered = np.mean(np.isfinite(band_draws), axis=0)
    band = pd.DataFrame({"cost_ms": levels, "quality": band_est[0], "low": band_lo, "high": band_hi,
                         "share_defined": covered})
    metrics = _metrics_frame(metric_est[0], metric_draws, tail)
    if out.default >= 0:
        default_row = points.iloc[[out.default]].reset_index(drop=True).assign(
            gap=metric_est[0][4], gap_ci_low=metrics.loc[4, "ci_low"], gap_ci_high=metrics.loc[4, "ci_high"])
    else:
        default_row = points.iloc[[]].reset_index(drop=True)
    missing = float(means["missing"][o[:out.n_user]].max())
    note = (f"{plan.describe()}; {reason}; percentile intervals at {confidence:.0%}"
            + (f"; up to {missing:.1%} of the prompts of a configuration used unrecorded cells (replayed as failing)"
               if missing > 0 else ""))
    return Frontier(points, front, band, default_row, metrics, out.grid, confidence, plan.n_resamples, int(seed), n,
                    plan.method, reason, note)


def _metrics_frame(estimate: np.ndarray, draws: np.ndarray, tail: float) -> pd.DataFrame:
    rows = []
    for j, name in enumerate(METRICS):
        column = draws[:, j]
        finite = column[np.isfinite(column)]
        low, high = (np.quantile(finite, [tail, 1 - tail]) if finite.size else (math.nan, math.nan))
        note = "" if finite.size == column.size else f"undefined in {column.size - finite.size} resamples"
        rows.append({"metric": name, "estimate": float(estimate[j]), "ci_low": float(low), "ci_high": float(high),
                     "cost_axis": _METRIC_AXES[j], "note": note})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------- grids


DEFAULT_THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(17))  # 0.0, 0.1, …, 1.6


def default_grid(ladder: Sequence[str], base: PolicyConfig = PAPER_TSG) -> ConfigGrid:
    """thr_std × thr_enh on a 0..1.6 lattice (step 0.1, thr_std ≤ thr_enh) × json_floor (every rung) × def_floor
    (the two lowest rungs) × fast lane (off, 120 chars) × same-tier repair × max_upgrades (0, 1, 2): 11,016
    configurations on a three-rung ladder."""
    ladder = tuple(ladder)
    return ConfigGrid.product(base, {"thr_std": DEFAULT_THRESHOLDS, "thr_enh": DEFAULT_THRESHOLDS,
                                     "json_floor": list(ladder), "def_floor": list(ladder[:2]),
                                     "force_light_len": [0, 120], "same_tier_repair": [False, True],
                                     "max_upgrades": [0, 1, 2]}, ladder)


_GRID_FIELDS = set(PARAMS) - {"kind"}


def load_grid(path: str | os.PathLike[str], ladder: Sequence[str]) -> ConfigGrid:
    """A grid file: YAML ``{base: {policy parameters}, grid: {parameter: [values]}}`` over ``ladder``.

    ``base`` is a :class:`~tsglab.config.PolicyConfig` (missing keys keep the paper's defaults); ``grid`` lists
    the values of each varied parameter (tier parameters by rung name). Errors name the file, the key and the fix.
    """
    from tsglab.config.yaml_loader import load_yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the grid file ({exc.strerror or exc}); pass a YAML file with "
                        "`base:` and `grid:`.") from None
    spec = load_yaml(text, str(path))
    if not isinstance(spec, dict) or "grid" not in spec:
        raise SpecError(f"{path}: a grid file is a mapping with `grid: {{parameter: [values]}}` (and optionally "
                        "`base: {policy parameters}`); write e.g. `grid: {thr_std: [0.2, 0.4], thr_enh: [0.85]}`.")
    unknown = sorted(set(spec) - {"base", "grid"})
    if unknown:
        raise SpecError(f"{path}: unknown key(s) {unknown}; a grid file has only `base:` and `grid:`.")
    base_values = spec.get("base") or {}
    if not isinstance(base_values, dict):
        raise SpecError(f"{path}: base: must be a mapping of policy parameters, e.g. `base: {{max_upgrades: 1}}`.")
    known = set(PolicyConfig.__dataclass_fields__) - {"guard"}
    wrong = sorted(set(base_values) - known)
    if wrong:
        raise SpecError(f"{path}: base.{wrong[0]}: not a policy parameter; use one of {sorted(known)}.")
    try:
        base = PolicyConfig(**base_values)
        base.check_ladder(ladder)
    except SpecError as exc:
        raise SpecError(f"{path}: base: {exc}") from None
    values = spec["grid"]
    if not isinstance(values, dict) or not values:
        raise SpecError(f"{path}: grid: must map parameters to lists of values, e.g. `grid: {{thr_std: [0.2, 0.4]}}`.")
    for name, options in values.items():
        if name not in _GRID_FIELDS:
            raise SpecError(f"{path}: grid.{name}: not a parameter a grid may vary; use one of "
                            f"{sorted(_GRID_FIELDS)}.")
        if not isinstance(options, list) or not options:
            raise SpecError(f"{path}: grid.{name}: must be a non-empty list of values, e.g. `{name}: [...]`.")
        for value in options:
            if name in _RUNG_FIELDS and value not in ladder:
                raise SpecError(f"{path}: grid.{name}: {value!r} is not a rung of the ladder {list(ladder)}; name a "
                                "rung.")
            if name not in _RUNG_FIELDS and name != "scorer" and (isinstance(value, str) or value is None):
                raise SpecError(f"{path}: grid.{name}: {value!r} is not a number; write numbers (true/false for "
                                "switches).")
            if name == "scorer" and value not in ("paper", "length"):
                raise SpecError(f"{path}: grid.scorer: {value!r}; use 'paper' or 'length'.")
    try:
        grid = ConfigGrid.product(base, values, ladder)
    except TsglabError as exc:
        raise SpecError(f"{path}: grid: {exc}") from None
    if len(grid) == 0:
        raise SpecError(f"{path}: grid: every combination has thr_std > thr_enh; give thresholds with "
                        "thr_std <= thr_enh.")
    return grid



# ------------------------------------------------------------------------------------ the command line


def load_source(path: str | os.PathLike[str]) -> ReplayData:
    """Replay data from a replay folder (``replay.npz`` / ``replay.jsonl``) or a run directory (its events, in
    dispatch order, over the run's suite and ladder: :func:`tsglab.replay.from_events`)."""
    from tsglab.events import read_events, read_manifest
    from tsglab.replay.data import from_events, load_replay
    from tsglab.suite import load_suite

    path = Path(path)
    if path.is_dir() and (path / "events.jsonl").exists() and not (path / "replay.npz").exists():
        manifest = read_manifest(path)
        events = sorted(read_events(path), key=lambda e: e.schedule.dispatched_ns)
        by_id = {item.id: item for item in load_suite(manifest["suite"])}
        order = list(dict.fromkeys(e.prompt_id for e in events if e.prompt_id in by_id))
        if not order:
            raise InvalidArgument(f"{path}: no event of this run names a prompt of its suite {manifest['suite']}; "
                                  "collect replay data with `tsglab frontier collect SPEC --out DIR`.")
        return from_events(events, [by_id[i] for i in order], manifest["ladder"])
    return load_replay(path)


@dataclass(frozen=True, repr=False)
class FrontierRun:
    """What ``tsglab frontier DIR`` computed and wrote."""

    frontier: Frontier
    calibration: Any
    out: Path
    files: tuple[Path, ...]

    def __repr__(self) -> str:
        return "\n".join([repr(self.frontier), repr(self.calibration),
                          self.frontier.metrics.drop(columns="note").to_string(index=False),
                          f"{len(self.files)} files in {self.out}"])


CALIBRATION_COLUMNS = ("config", "n_heldout", "quality", "quality_ci_low", "quality_ci_high", "baseline_quality",
                       "cost_ms", "cost_ci_low", "cost_ci_high", "cost_saving", "mean_diff", "diff_ci_low", "p_value",
                       "decision", "under_escalation_upper")


def frontier_report(source: str | os.PathLike[str], *, grid: str | os.PathLike[str] | None = None,
                    out: str | os.PathLike[str] | None = None, n_resamples: int = 1000, seed: int = 0,
                    margin: float = 0.02) -> FrontierRun:
    """``tsglab frontier DIR``: the frontier and the calibration of ``grid`` (a grid file; default
    :func:`default_grid`) on the data of ``source``, written to ``out`` (default ``DIR/frontier``): tables
    ``frontier``, ``frontier_metrics``, ``calibration`` (.tex, .narrow.tex, .md, .html), ``points.csv`` and the
    figure ``frontier`` (PDF, SVG, PNG)."""
    from tsglab.replay.calibrate import calibrate
    from tsglab.report.figures import save_figure
    from tsglab.report.publish import write_tables

    data = load_source(source)
    config_grid = load_grid(grid, data.ladder) if grid is not None else default_grid(data.ladder)
    result = frontier(data, config_grid, n_resamples=n_resamples, seed=seed)
    calibration = calibrate(data, config_grid, margin=margin, seed=seed, n_resamples=n_resamples)
    target = Path(out) if out is not None else Path(source) / "frontier"
    tables = {"frontier": ("Cost–quality frontier", result.table()),
              "frontier_metrics": ("Router metrics", result.metrics),
              "calibration": ("Calibrated configuration (held-out prompts)",
                              calibration.to_frame()[list(CALIBRATION_COLUMNS)])}
    notes = {"frontier": result.note, "frontier_metrics": result.note, "calibration": calibration.note}
    files = write_tables(target / "tables", tables, notes=notes, label_prefix="tab:frontier")
    result.points.to_csv(target / "points.csv", index=False)
    figure = result.plot()
    files += save_figure(figure, target / "figures" / "frontier")
    return FrontierRun(result, calibration, target, (*files, target / "points.csv"))


def collect_spec(spec: str | os.PathLike[str], *, out: str | os.PathLike[str], limit: int | None = None,
                 progress: bool = True) -> ReplayData:
    """``tsglab frontier collect SPEC --out DIR``: every selected prompt of the spec on every tier of its ladder
    (:func:`tsglab.replay.collect`; resumable), ``limit`` overriding ``prompts.limit``."""
    from tsglab.config import load_spec
    from tsglab.load import select_prompts
    from tsglab.load.session import build_ladder
    from tsglab.replay.data import collect
    from tsglab.suite import bundled_suite_path, load_suite

    overrides = {"prompts.limit": int(limit)} if limit is not None else None
    experiment = load_spec(spec, overrides)
    suite = bundled_suite_path() if experiment.suite == "bundled" else Path(experiment.suite)
    items = select_prompts(load_suite(suite), experiment.prompts)
    ladder = build_ladder(experiment)

    def show(done: int, total: int) -> None:
        print(f"\rcollect: {done}/{total} prompt x tier cells", end="" if done < total else "\n", flush=True)

    try:
        return collect(items, ladder, out, timeout_s=experiment.load.timeout_s, seed=experiment.seed,
                       progress=show if progress else None)
    finally:
        ladder.close()
