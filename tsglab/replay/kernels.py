"""Routing kernels: the TSG policy replayed over recorded answers, for thousands of configurations at once.

A configuration is one row of a float64 matrix whose columns are :data:`PARAMS` (a :class:`ConfigGrid`
builds it from :class:`~tsglab.config.PolicyConfig` values or from a grid of parameter values). For one
configuration and one prompt the kernel does what the gateway does:

1. the planner's score from the prompt's features (``chars / chars_per_unit + marks / marks_per_unit +
   heavy_weight · heavy`` for the paper scorer, ``chars / chars_per_unit`` for the length scorer, clipped
   to ``[0, score_cap]``);
2. the router's initial rung (thresholds, fast lane, the task's floor; ``baseline_tier`` for a baseline
   configuration);
3. the executor's cascade over the recorded answers (:mod:`tsglab.replay.data`): the initial answer at
   that rung, checked (JSON contract for json tasks, ``min_answer_chars``, refusal when
   ``check_refusal``); on failure one same-tier repair (when ``same_tier_repair``), then upgrades one rung
   at a time (at most ``max_upgrades``); a backend error ends the cascade with quality 0.

It returns, per configuration and prompt, the final quality, the cost summed over every attempt, the
latency summed over the attempts, the initial and final rung, whether the top rung was touched and
whether the cascade used a cell that was not recorded. :func:`replay_python` is the same algorithm in
plain Python, one configuration and one prompt at a time: the tests check the kernel against it and it
against the live gateway.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from tsglab.config import PolicyConfig, tier_index
from tsglab.errors import InvalidArgument
from tsglab.replay.data import ReplayData

__all__ = ["PARAMS", "SUMMARY_COLUMNS", "ConfigGrid", "ReplayResult", "prepare", "replay", "replay_python",
           "replay_summary"]

PARAMS: tuple[str, ...] = (
    "kind",  # 0 tsg, 1 baseline
    "scorer",  # 0 paper, 1 length
    "chars_per_unit", "marks_per_unit", "heavy_weight", "score_cap",
    "thr_std", "thr_enh",
    "json_floor", "code_floor", "def_floor",  # rungs
    "force_light_len", "force_light_score",
    "same_tier_repair", "max_upgrades", "min_answer_chars", "check_refusal",
    "baseline_tier",  # rung
)
_COL = {name: i for i, name in enumerate(PARAMS)}
_RUNG_FIELDS = ("json_floor", "code_floor", "def_floor", "baseline_tier")
# outcome flags
MISSING = 1  # the cascade needed a cell that was not recorded
TOUCHED_TOP = 2


@dataclass(frozen=True, eq=False)
class ConfigGrid:
    """A batch of policy configurations as the kernel's matrix (one row per configuration, :data:`PARAMS`
    columns), with the ladder whose rungs the tier fields index."""

    matrix: np.ndarray
    ladder: tuple[str, ...]
    labels: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.matrix.shape[0]

    @classmethod
    def from_configs(cls, configs: Sequence[PolicyConfig], ladder: Sequence[str]) -> ConfigGrid:
        ladder = tuple(ladder)
        rows = [_row(config, ladder) for config in configs]
        return cls(np.array(rows, dtype=np.float64).reshape(len(rows), len(PARAMS)), ladder,
                   tuple(c.label for c in configs))

    @classmethod
    def product(cls, base: PolicyConfig, grid: Mapping[str, Iterable[Any]], ladder: Sequence[str]) -> ConfigGrid:
        """Every combination of ``grid``'s values over ``base`` (tier fields given by name). Combinations with
        ``thr_std > thr_enh`` are left out (the policy refuses them)."""
        ladder = tuple(ladder)
        unknown = sorted(set(grid) - set(PARAMS) - {"kind", "scorer"})
        if unknown:
            raise InvalidArgument(f"grid: unknown parameter(s) {unknown}; a grid may vary {list(PARAMS)}.")
        names = list(grid)
        base_row = np.array(_row(base, ladder), dtype=np.float64)
        values = [[_encode(name, v, ladder) for v in grid[name]] for name in names]
        rows = []
        for combination in itertools.product(*values):
            row = base_row.copy()
            for name, value in zip(names, combination, strict=True):
                row[_COL[name]] = value
            if row[_COL["thr_std"]] <= row[_COL["thr_enh"]]:
                rows.append(row)
        matrix = np.array(rows, dtype=np.float64).reshape(len(rows), len(PARAMS))
        return cls(matrix, ladder)

    def config(self, index: int, label: str = "") -> PolicyConfig:
        """Row ``index`` as a :class:`PolicyConfig` (for the gateway, or a spec)."""
        row = self.matrix[index]
        values: dict[str, Any] = {}
        for name in PARAMS:
            value = row[_COL[name]]
            if name == "kind":
                values[name] = "baseline" if value else "tsg"
            elif name == "scorer":
                values[name] = "length" if value else "paper"
            elif name in _RUNG_FIELDS:
                values[name] = self.ladder[int(value)]
            elif name in ("same_tier_repair", "check_refusal"):
                values[name] = bool(value)
            elif name in ("force_light_len", "max_upgrades", "min_answer_chars"):
                values[name] = int(value)
            else:
                values[name] = float(value)
        return PolicyConfig(label=label, **values)


def _encode(name: str, value: Any, ladder: tuple[str, ...]) -> float:
    if name in _RUNG_FIELDS:
        return float(tier_index(value, ladder)) if isinstance(value, str) else float(value)
    if name == "kind":
        return 1.0 if value == "baseline" else 0.0
    if name == "scorer":
        return 1.0 if value == "length" else 0.0
    return float(value)


def _row(config: PolicyConfig, ladder: tuple[str, ...]) -> list[float]:
    config.check_ladder(ladder)
    return [_encode(name, getattr(config, name), ladder) for name in PARAMS]


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """Per configuration × prompt: final ``quality``, summed ``cost_ms`` and ``latency_ms``, ``initial`` and
    ``final`` rungs, ``attempts`` and ``flags`` (:data:`MISSING`, :data:`TOUCHED_TOP`)."""

    quality: np.ndarray
    cost_ms: np.ndarray
    latency_ms: np.ndarray
    initial: np.ndarray
    final: np.ndarray
    attempts: np.ndarray
    flags: np.ndarray

    def summary(self) -> dict[str, np.ndarray]:
        """Per configuration: mean quality, mean cost and latency, r_costly (top rung touched), attempts per
        request and the share of prompts whose replay used an unrecorded cell."""
        return {"quality": np.nanmean(self.quality, axis=1), "cost_ms": self.cost_ms.mean(axis=1),
                "latency_ms": self.latency_ms.mean(axis=1), "r_costly": ((self.flags & TOUCHED_TOP) > 0).mean(axis=1),
                "attempts": self.attempts.mean(axis=1), "missing": ((self.flags & MISSING) > 0).mean(axis=1)}


@numba.njit(cache=True, inline="always")
def _ok(task, json_ok, length, refusal, min_chars, check_refusal) -> bool:
    if task == 1 and json_ok != 1:
        return False
    if length < min_chars:
        return False
    return not (check_refusal and refusal)


@numba.njit(cache=True, inline="always")
def _score(c, chars, marks, heavy):
    raw = chars / c[2]
    if c[1] == 0.0:
        raw += marks / c[3] + (c[4] if heavy else 0.0)
    return min(max(raw, 0.0), c[5])


@numba.njit(cache=True, inline="always")
def _route(c, score, chars, task, top):
    """The router's initial rung for a TSG configuration ``c`` (baseline configurations do not route)."""
    if score < c[6]:
        by_score = 0
    elif score < c[7]:
        by_score = 1
    else:
        by_score = 2
    by_score = min(by_score, top)
    floor = int(c[8]) if task == 1 else (int(c[9]) if task == 2 else int(c[10]))
    fast = task == 0 and c[11] > 0 and chars <= c[11] and score <= c[12]
    rung = 0 if fast else by_score
    return max(rung, floor)


@numba.njit(cache=True)
def _cascade(rung, repair, max_upgrades, min_chars, check_refusal, p, task, present, error, json_ok, length,
             refusal, quality, cost, latency, top):
    """The executor from ``rung``: (quality, cost, latency, final rung, attempts, flags)."""
    kind = 0
    repaired = False
    upgrades = 0
    total_cost = 0.0
    total_latency = 0.0
    attempts = 0
    flags = 0
    while True:
        attempts += 1
        if not present[p, rung, kind]:
            flags |= 1
        if rung == top:
            flags |= 2
        total_cost += cost[p, rung, kind]
        total_latency += latency[p, rung, kind]
        if error[p, rung, kind]:
            return 0.0, total_cost, total_latency, rung, attempts, flags
        if present[p, rung, kind] and _ok(task, json_ok[p, rung, kind], length[p, rung, kind], refusal[p, rung, kind],
                                          min_chars, check_refusal):
            return quality[p, rung, kind], total_cost, total_latency, rung, attempts, flags
        if repair and not repaired:
            repaired = True
            kind = 1
            continue
        if upgrades < max_upgrades and rung < top:
            rung += 1
            upgrades += 1
            kind = 0
            continue
        q = quality[p, rung, kind] if present[p, rung, kind] else 0.0
        return q, total_cost, total_latency, rung, attempts, flags


@numba.njit(cache=True)
def _one(c, p, chars, marks, heavy, task, present, error, json_ok, length, refusal, quality, cost, latency, top):
    """(quality, cost, latency, initial rung, final rung, attempts, flags) of configuration ``c`` on prompt ``p``."""
    if c[0] != 0.0:  # baseline: one attempt at baseline_tier, no checks
        rung = int(c[17])
        flags = (0 if present[p, rung, 0] else 1) | (2 if rung == top else 0)
        q = 0.0 if error[p, rung, 0] else quality[p, rung, 0]
        return q, cost[p, rung, 0], latency[p, rung, 0], rung, rung, 1, flags
    score = _score(c, chars[p], marks[p], heavy[p])
    initial = _route(c, score, chars[p], task[p], top)
    q, co, la, final, attempts, flags = _cascade(initial, c[13] != 0.0, c[14], c[15], c[16] != 0.0, p, task[p],
                                                 present, error, json_ok, length, refusal, quality, cost, latency, top)
    return q, co, la, initial, final, attempts, flags


@numba.njit(cache=True, parallel=True)
def _replay_kernel(configs, chars, marks, heavy, task, present, error, json_ok, length, refusal, quality, cost,
                   latency, out_q, out_cost, out_lat, out_initial, out_final, out_attempts, out_flags):
    n_cfg = configs.shape[0]
    n_p = chars.shape[0]
    top = present.shape[1] - 1
    for i in numba.prange(n_cfg):
        c = configs[i]
        for p in range(n_p):
            q, co, la, ini, fin, att, fl = _one(c, p, chars, marks, heavy, task, present, error, json_ok, length,
                                                refusal, quality, cost, latency, top)
            out_q[i, p] = q
            out_cost[i, p] = co
            out_lat[i, p] = la
            out_initial[i, p] = ini
            out_final[i, p] = fin
            out_attempts[i, p] = att
            out_flags[i, p] = fl


@numba.njit(cache=True, parallel=True)
def _outcome_table(executors, task, present, error, json_ok, length, refusal, quality, cost, latency):
    """Per distinct executor setting (same_tier_repair, max_upgrades, min_answer_chars, check_refusal; row −1
    of ``executors`` stands for a baseline's single unchecked attempt), prompt and starting rung: quality, cost,
    latency, attempts, top touched, unrecorded cell used."""
    n_e = executors.shape[0]
    n_p = task.shape[0]
    n_t = present.shape[1]
    top = n_t - 1
    table = np.empty((n_e, n_p, n_t, 6))
    for e in numba.prange(n_e):
        x = executors[e]
        for p in range(n_p):
            for rung in range(n_t):
                if x[0] < 0:  # baseline: one attempt, no checks
                    q = 0.0 if error[p, rung, 0] else quality[p, rung, 0]
                    co, la, att = cost[p, rung, 0], latency[p, rung, 0], 1
                    fl = (0 if present[p, rung, 0] else 1) | (2 if rung == top else 0)
                else:
                    q, co, la, _fin, att, fl = _cascade(rung, x[0] != 0.0, x[1], x[2], x[3] != 0.0, p, task[p],
                                                        present, error, json_ok, length, refusal, quality, cost,
                                                        latency, top)
                table[e, p, rung, 0] = q
                table[e, p, rung, 1] = co
                table[e, p, rung, 2] = la
                table[e, p, rung, 3] = 1.0 if fl & 2 else 0.0
                table[e, p, rung, 4] = att
                table[e, p, rung, 5] = 1.0 if fl & 1 else 0.0
    return table


@numba.njit(cache=True, parallel=True)
def _summary_kernel(configs, executor_of, planner_of, scores, table, weights, chars, task, out):
    """Weighted sums per configuration of the outcome table's columns, at each prompt's initial rung: the
    planner's score comes from ``scores[planner_of[i]]`` and the cascade from ``table[executor_of[i]]``."""
    n_cfg = configs.shape[0]
    n_p = chars.shape[0]
    top = table.shape[2] - 1
    for i in numba.prange(n_cfg):
        c = configs[i]
        e = executor_of[i]
        s = scores[planner_of[i]]
        acc = np.zeros(6)
        baseline = c[0] != 0.0
        for p in range(n_p):
            w = weights[p]
            if w == 0.0:
                continue
            rung = int(c[17]) if baseline else _route(c, s[p], chars[p], task[p], top)
            for j in range(6):
                acc[j] += w * table[e, p, rung, j]
        for j in range(6):
            out[i, j] = acc[j]


@numba.njit(cache=True)
def _scores(planners, chars, marks, heavy):
    out = np.empty((planners.shape[0], chars.shape[0]))
    for u in range(planners.shape[0]):
        for p in range(chars.shape[0]):
            out[u, p] = _score(planners[u], chars[p], marks[p], heavy[p])
    return out


SUMMARY_COLUMNS = ("quality", "cost_ms", "latency_ms", "r_costly", "attempts", "missing")
_EXECUTOR_COLS = [13, 14, 15, 16]
_PLANNER_COLS = [0, 1, 2, 3, 4, 5]


@dataclass(frozen=True, eq=False)
class _Prepared:
    """A grid's distinct planner and executor settings and the tables built from them."""

    executor_of: np.ndarray
    planner_of: np.ndarray
    scores: np.ndarray
    table: np.ndarray


def _prepare(data: ReplayData, grid: ConfigGrid) -> _Prepared:
    m = grid.matrix
    executors = m[:, _EXECUTOR_COLS].copy()
    executors[m[:, 0] != 0.0] = -1.0  # every baseline shares one unchecked single-attempt row
    unique_e, executor_of = np.unique(executors, axis=0, return_inverse=True)
    planners = m[:, _PLANNER_COLS].copy()
    unique_p, planner_of = np.unique(planners, axis=0, return_inverse=True)
    inputs = _inputs(data)
    chars, marks, heavy, task = inputs[:4]
    table = _outcome_table(np.ascontiguousarray(unique_e), task, *inputs[4:])
    scores = _scores(np.ascontiguousarray(unique_p), chars, marks, heavy)
    return _Prepared(executor_of.astype(np.int64).ravel(), planner_of.astype(np.int64).ravel(), scores, table)


def replay_summary(data: ReplayData, grid: ConfigGrid, weights: np.ndarray | None = None, *,
                   prepared: _Prepared | None = None) -> np.ndarray:
    """Per configuration, the means of :data:`SUMMARY_COLUMNS` over the prompts (weighted by ``weights``, e.g.
    a bootstrap resample's counts), without per-prompt arrays: the fast path for large grids.

    The cascade depends on the executor's settings only through the starting rung, so its outcome is tabled
    once per distinct executor setting, prompt and rung, and the planner's score once per distinct planner
    setting and prompt; each configuration then costs a route and a table lookup per prompt. ``prepared``
    (from :func:`prepare`) reuses the tables across calls with other weights."""
    _check_ladders(data, grid)
    w = np.ones(data.n_prompts) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (data.n_prompts,) or not np.all(w >= 0) or w.sum() <= 0:
        raise InvalidArgument(f"weights must be {data.n_prompts} non-negative numbers with a positive sum.")
    prepared = prepared if prepared is not None else _prepare(data, grid)
    out = np.zeros((len(grid), len(SUMMARY_COLUMNS)))
    matrix = np.ascontiguousarray(grid.matrix, dtype=np.float64)
    _summary_kernel(matrix, prepared.executor_of, prepared.planner_of, prepared.scores,
                    prepared.table, w, data.chars.astype(np.float64), data.task.astype(np.int64), out)
    return out / w.sum()


def prepare(data: ReplayData, grid: ConfigGrid) -> _Prepared:
    """The tables :func:`replay_summary` builds for ``grid`` on ``data``, to reuse across resamples."""
    _check_ladders(data, grid)
    return _prepare(data, grid)


def _check_ladders(data: ReplayData, grid: ConfigGrid) -> None:
    if tuple(grid.ladder) != tuple(data.ladder):
        raise InvalidArgument(f"the grid's ladder {list(grid.ladder)} is not the data's {list(data.ladder)}; build "
                              "the grid with the data's ladder (ConfigGrid.from_configs(configs, data.ladder)).")


def _inputs(data: ReplayData) -> tuple:
    return (data.chars.astype(np.float64), data.marks.astype(np.float64), data.heavy.astype(np.bool_),
            data.task.astype(np.int64), data.present.astype(np.bool_), data.error.astype(np.bool_),
            data.json_ok.astype(np.int64), data.length.astype(np.float64), data.refusal.astype(np.bool_),
            np.nan_to_num(data.quality.astype(np.float64), nan=0.0), data.cost_ms.astype(np.float64),
            data.latency_ms.astype(np.float64))


def replay(data: ReplayData, grid: ConfigGrid) -> ReplayResult:
    """Every configuration of ``grid`` on every prompt of ``data`` (numba, parallel over configurations)."""
    _check_ladders(data, grid)
    n_cfg, n_p = len(grid), data.n_prompts
    shape = (n_cfg, n_p)
    out = (np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape, np.int8), np.empty(shape, np.int8),
           np.empty(shape, np.int8), np.empty(shape, np.int8))
    matrix = np.ascontiguousarray(grid.matrix, dtype=np.float64)
    _replay_kernel(matrix, *_inputs(data), *out)  # type: ignore[call-arg]
    return ReplayResult(*out)


def replay_python(data: ReplayData, config: PolicyConfig, p: int) -> tuple[float, float, float, int, int, int, int]:
    """The kernel's algorithm in plain Python for one configuration and prompt (module docstring):
    (quality, cost_ms, latency_ms, initial rung, final rung, attempts, flags)."""
    ladder = data.ladder
    top = len(ladder) - 1

    def cell_flags(rung: int, kind: int) -> int:
        return (0 if data.present[p, rung, kind] else MISSING) | (TOUCHED_TOP if rung == top else 0)

    def quality(rung: int, kind: int) -> float:
        value = data.quality[p, rung, kind]
        return 0.0 if not np.isfinite(value) else float(value)

    if config.kind == "baseline":
        rung = ladder.index(config.baseline_tier)
        q = 0.0 if data.error[p, rung, 0] else quality(rung, 0)
        return (q, float(data.cost_ms[p, rung, 0]), float(data.latency_ms[p, rung, 0]), rung, rung, 1,
                cell_flags(rung, 0))
    task = int(data.task[p])
    raw = int(data.chars[p]) / config.chars_per_unit
    if config.scorer == "paper":
        raw += int(data.marks[p]) / config.marks_per_unit + (config.heavy_weight if data.heavy[p] else 0.0)
    score = min(max(raw, 0.0), config.score_cap)
    by_score = min(0 if score < config.thr_std else 1 if score < config.thr_enh else 2, top)
    floor = ladder.index((config.def_floor, config.json_floor, config.code_floor)[task])
    fast = task == 0 and config.force_light_len > 0 and data.chars[p] <= config.force_light_len \
        and score <= config.force_light_score
    rung = max(0 if fast else by_score, floor)
    initial, kind, repaired, upgrades = rung, 0, False, 0
    cost = latency = 0.0
    attempts = flags = 0
    while True:
        attempts += 1
        flags |= cell_flags(rung, kind)
        cost += float(data.cost_ms[p, rung, kind])
        latency += float(data.latency_ms[p, rung, kind])
        if data.error[p, rung, kind]:
            return 0.0, cost, latency, initial, rung, attempts, flags
        json_bad = task == 1 and data.json_ok[p, rung, kind] != 1
        passed = bool(data.present[p, rung, kind]) and not json_bad \
            and data.length[p, rung, kind] >= config.min_answer_chars \
            and not (config.check_refusal and data.refusal[p, rung, kind])
        if passed:
            return quality(rung, kind), cost, latency, initial, rung, attempts, flags
        if config.same_tier_repair and not repaired:
            repaired, kind = True, 1
            continue
        if upgrades < config.max_upgrades and rung < top:
            rung, upgrades, kind = rung + 1, upgrades + 1, 0
            continue
        q = quality(rung, kind) if data.present[p, rung, kind] else 0.0
        return q, cost, latency, initial, rung, attempts, flags


def configs_equal(grid: ConfigGrid, index: int, config: PolicyConfig) -> bool:
    """Whether row ``index`` of ``grid`` is ``config`` (label aside)."""
    return dataclasses.replace(grid.config(index), label="") == dataclasses.replace(config, label="")
