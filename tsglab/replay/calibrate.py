"""Threshold calibration on replay data: choose a configuration on some prompts, judge it on the others.

:func:`calibrate` splits the prompts (stratified by task, seeded) into a calibration part and a held-out part. On
the calibration prompts it picks, among the configurations whose mean quality is within ``select_margin`` of the
top tier alone (the top tier alone included), the one that minimises the objective (mean cost, latency or top-tier
share). On the held-out prompts — which played no part in the choice — it reports the chosen configuration's
quality and cost with bootstrap intervals and the paired non-inferiority test against the top tier alone, by the
same function the run report's Family A uses (:func:`tsglab.stats.quality_noninferiority`: exact for pass/fail
scores, a betting e-value otherwise; valid at every n).

With ``folds=k`` the choice is cross-fitted: each fold is judged by the configuration chosen on the other
k − 1 folds, so every prompt is held out once; the test then concerns the *procedure* (choose on k − 1 folds),
and ``config`` is the choice on all prompts, which the held-out figures do not judge directly.

Under-escalation: a held-out prompt whose delivered answer failed (quality below ``pass_quality``) on a tier
below the top while the top tier alone answered it well (quality ≥ ``pass_quality``). Its held-out rate comes
with an exact one-sided Clopper–Pearson bound (prompts iid) and the conformal bound ``(k + 1)/(n + 1)`` on the
expected rate for a new prompt exchangeable with the held-out ones (Angelopoulos et al., conformal risk
control with a loss bounded by 1; a bound on the expectation, not a high-probability bound).

:func:`simulate_replay` makes replay data with known per-prompt outcome distributions, for calibrating these
functions (``benchmarks/calibrate_frontier.py``) and for tests.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tsglab.config import PolicyConfig
from tsglab.errors import DegenerateStatisticWarning, InvalidArgument
from tsglab.replay.data import KINDS, TASKS, ReplayData
from tsglab.replay.frontier import RESAMPLING, Outcomes, outcomes, prompt_weights, resampling_plan
from tsglab.replay.kernels import ConfigGrid
from tsglab.stats import QualityTest, clopper_pearson, quality_noninferiority, resample_indices

__all__ = ["OBJECTIVES", "Calibration", "calibrate", "simulate_replay"]

Objective = Literal["min_cost", "min_latency", "min_costly"]
OBJECTIVES: tuple[str, ...] = ("min_cost", "min_latency", "min_costly")
_OBJECTIVE_FIELD = {"min_cost": "cost_ms", "min_latency": "latency_ms", "min_costly": "touched"}


@dataclass(frozen=True, repr=False)
class Calibration:
    """Result of :func:`calibrate`. Held-out figures (``quality``, ``cost_ms``, their intervals, ``test``) are on
    prompts the choice did not see; ``baseline_*`` is the top tier alone on the same prompts."""

    config: PolicyConfig
    config_index: int
    objective: str
    margin: float
    select_margin: float
    scheme: str
    n_calibration: int
    n_heldout: int
    calibration_quality: float
    calibration_cost_ms: float
    quality: float
    quality_ci_low: float
    quality_ci_high: float
    cost_ms: float
    cost_ci_low: float
    cost_ci_high: float
    baseline_quality: float
    baseline_cost_ms: float
    cost_saving: float
    test: QualityTest
    under_escalation: float
    under_escalation_upper: float
    under_escalation_conformal: float
    confidence: float
    resampling: str
    seed: int
    note: str

    def to_frame(self) -> pd.DataFrame:
        """One row: the choice, its held-out figures and the test's estimate, bound, p-value and decision."""
        row = {k: v for k, v in asdict(self).items() if k not in ("config", "test")}
        row["config"] = self.config.label or _describe(self.config)
        row.update({"mean_diff": self.test.estimate, "diff_ci_low": self.test.ci_low, "p_value": self.test.p_value,
                    "decision": self.test.decision, "method": self.test.method})
        return pd.DataFrame([row])

    def __repr__(self) -> str:
        return (f"Calibration({self.scheme}: {_describe(self.config)}; held-out n={self.n_heldout}: quality "
                f"{self.quality:.3f} [{self.quality_ci_low:.3f}, {self.quality_ci_high:.3f}] vs top tier "
                f"{self.baseline_quality:.3f}, cost {self.cost_ms:.4g} ms ({self.cost_saving:.1%} saved), "
                f"non-inferiority at {self.margin:g}: {self.test.decision} (p={self.test.p_value:.3g}))")


def _describe(config: PolicyConfig) -> str:
    default = PolicyConfig()
    changed = {k: v for k, v in asdict(config).items() if k not in ("label", "guard") and v != getattr(default, k)}
    return ", ".join(f"{k}={v}" for k, v in changed.items()) or "paper defaults"


def _split(data: ReplayData, split: float, seed: int) -> np.ndarray:
    """Boolean mask of calibration prompts: within each task stratum a seeded share ``split``."""
    rng = np.random.default_rng(seed)
    strata = np.array(data.strata if len(data.strata) == data.n_prompts else [""] * data.n_prompts)
    mask = np.zeros(data.n_prompts, bool)
    for stratum in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == stratum))
        mask[members[:round(split * members.size)]] = True
    return mask


def _folds(data: ReplayData, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    strata = np.array(data.strata if len(data.strata) == data.n_prompts else [""] * data.n_prompts)
    fold = np.empty(data.n_prompts, np.int64)
    offset = 0
    for stratum in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == stratum))
        fold[members] = (np.arange(members.size) + offset) % k
        offset += members.size
    return fold


def _choose(out: Outcomes, mask: np.ndarray, objective: str, select_margin: float) -> int:
    """The configuration (row of ``out.grid``, user grid only) the rule picks on the prompts of ``mask``."""
    quality = out.quality[:, mask].mean(axis=1)
    target = getattr(out, _OBJECTIVE_FIELD[objective])[:, mask].mean(axis=1)
    top = quality[out.outcome_of[out.strong]]
    rows = np.append(np.arange(out.n_user), out.strong)  # the top tier alone is a candidate: it is within 0 of itself
    user = out.outcome_of[rows]
    candidates = rows[quality[user] >= top - select_margin - 1e-12]
    # cheapest; ties → the higher quality, then the first row
    order = np.lexsort((-quality[out.outcome_of[candidates]], target[out.outcome_of[candidates]]))
    return int(candidates[order[0]])


def calibrate(data: ReplayData, grid: ConfigGrid, *, objective: Objective = "min_cost", margin: float = 0.02,
              select_margin: float | None = None, split: float = 0.5, folds: int | None = None, seed: int = 0,
              alpha: float = 0.05, confidence: float = 0.95, n_resamples: int = 1000, resampling: str = "auto",
              pass_quality: float = 1.0) -> Calibration:
    """Choose a configuration of ``grid`` on calibration prompts and judge it on held-out prompts (module
    docstring).

    Parameters
    ----------
    objective : {"min_cost", "min_latency", "min_costly"}
        What the choice minimises among configurations within ``select_margin`` of the top tier alone.
    margin : float
        Non-inferiority margin ε of the held-out test (H0: mean quality difference ≤ −ε).
    select_margin : float, optional
        Margin of the choice on the calibration prompts (default ``margin``; a smaller one leaves the held-out
        test room to pass).
    split : float
        Share of each task stratum used for calibration (0 < split < 1); ignored with ``folds``.
    folds : int, optional
        Cross-fitting with this many folds (≥ 2) instead of one split.
    alpha : float
        Level of the non-inferiority test.
    confidence, n_resamples, resampling :
        Held-out bootstrap intervals of quality and cost (percentile; :func:`tsglab.replay.frontier`'s rules).
    pass_quality : float
        A delivered answer with quality below this failed (for the under-escalation count).
    """
    if objective not in OBJECTIVES:
        raise InvalidArgument(f"`objective` must be one of {OBJECTIVES}; got {objective!r}. Use 'min_cost'.")
    for name, value in (("margin", margin), ("alpha", alpha)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise InvalidArgument(f"`{name}` must be in [0, 1); got {value!r}. Use e.g. {name}=0.02.")
    select_margin = float(margin if select_margin is None else select_margin)
    if not 0 <= select_margin < 1:
        raise InvalidArgument(f"`select_margin` must be in [0, 1); got {select_margin!r}. Leave it out to use margin.")
    if folds is None and (isinstance(split, bool) or not isinstance(split, (int, float)) or not 0 < split < 1):
        raise InvalidArgument(f"`split` must be in (0, 1); got {split!r}. Use split=0.5 or folds=5.")
    if folds is not None and (isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or
                              not 2 <= folds <= data.n_prompts // 2):
        raise InvalidArgument(f"`folds` must be an integer in [2, {data.n_prompts // 2}]; got {folds!r}. Use e.g. "
                              "folds=5, or split=0.5.")
    if resampling not in RESAMPLING:
        raise InvalidArgument(f"`resampling` must be one of {RESAMPLING}; got {resampling!r}.")
    out = outcomes(data, grid)
    n = data.n_prompts
    strong = out.outcome_of[out.strong]
    if folds is None:
        calibration = _split(data, float(split), seed)
        if calibration.all() or not calibration.any():
            raise InvalidArgument(f"`split`={split} leaves no prompt on one side of {n}; use a split nearer 0.5.")
        chosen = _choose(out, calibration, objective, select_margin)
        heldout = ~calibration
        per_prompt = np.full(n, out.outcome_of[chosen])
        scheme = f"split {split:g} (calibration {int(calibration.sum())}, held out {int(heldout.sum())})"
        cal_q = float(out.quality[out.outcome_of[chosen], calibration].mean())
        cal_c = float(out.cost_ms[out.outcome_of[chosen], calibration].mean())
    else:
        fold = _folds(data, int(folds), seed)
        per_prompt = np.empty(n, np.int64)
        for f in range(int(folds)):
            per_prompt[fold == f] = out.outcome_of[_choose(out, fold != f, objective, select_margin)]
        heldout = np.ones(n, bool)
        chosen = _choose(out, heldout, objective, select_margin)
        scheme = f"{folds}-fold cross-fitting (each prompt judged by the choice made without its fold)"
        cal_q = float(out.quality[out.outcome_of[chosen]].mean())
        cal_c = float(out.cost_ms[out.outcome_of[chosen]].mean())
    idx = np.flatnonzero(heldout)
    q = out.quality[per_prompt[idx], idx]
    c = out.cost_ms[per_prompt[idx], idx]
    q_top, c_top = out.quality[strong, idx], out.cost_ms[strong, idx]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateStatisticWarning)
        test = quality_noninferiority(q, q_top, margin=float(margin), alpha=float(alpha), seed=int(seed))
    # held-out bootstrap intervals of quality and cost
    held = _held_view(data, idx)
    plan, reason = resampling_plan(held, [q, c], n_resamples=n_resamples, seed=seed, resampling=resampling)
    draws = np.vstack([prompt_weights(rows, idx.size) @ np.column_stack([q, c]) / idx.size
                       for rows in resample_indices(plan)])
    tail = (1 - confidence) / 2
    (q_lo, c_lo), (q_hi, c_hi) = np.quantile(draws, [tail, 1 - tail], axis=0)
    # under-escalation on the held-out prompts
    final_below_top = out.touched[per_prompt[idx], idx] == 0
    under = (q < pass_quality) & final_below_top & (q_top >= pass_quality)
    k = int(under.sum())
    upper = clopper_pearson(k, idx.size, confidence=1 - alpha, alternative="less").ci_high
    note = (f"held-out intervals: {plan.describe()} ({reason}); non-inferiority by "
            "tsglab.stats.quality_noninferiority (as Family A); under-escalation: a failed answer below the top tier "
            "that the top tier answered well")
    config = out.grid.config(chosen, label=out.grid.labels[chosen] if out.grid.labels else "")
    return Calibration(config, chosen, objective, float(margin), select_margin, scheme,
                       int(n - heldout.sum()) if folds is None else n, int(idx.size), cal_q, cal_c, float(q.mean()),
                       float(q_lo), float(q_hi), float(c.mean()), float(c_lo), float(c_hi), float(q_top.mean()),
                       float(c_top.mean()), float(1 - c.mean() / c_top.mean()) if c_top.mean() > 0 else math.nan,
                       test, k / idx.size, float(upper), (k + 1) / (idx.size + 1), float(confidence), plan.method,
                       int(seed), note)


def _held_view(data: ReplayData, idx: np.ndarray) -> ReplayData:
    """The held-out prompts as a data set (for the resampling rule: its source and length)."""
    def take(a: np.ndarray) -> np.ndarray:
        return a[idx]

    return ReplayData(ladder=data.ladder, prompt_ids=tuple(data.prompt_ids[i] for i in idx),
                      chars=take(data.chars), marks=take(data.marks), heavy=take(data.heavy), task=take(data.task),
                      present=take(data.present), error=take(data.error), json_ok=take(data.json_ok),
                      length=take(data.length), refusal=take(data.refusal), quality=take(data.quality),
                      cost_ms=take(data.cost_ms), latency_ms=take(data.latency_ms), tokens=take(data.tokens),
                      strata=tuple(data.strata[i] for i in idx) if data.strata else (), source=data.source)


# ------------------------------------------------------------------------------------------- simulation


def simulate_replay(n_prompts: int, *, seed: int = 0, ladder: Sequence[str] = ("light", "std", "enh"),
                    serial: float = 0.0) -> ReplayData:
    """Replay data drawn from a known model, for calibrations and tests.

    Each prompt draws a task (general 60 %, json 25 %, code 15 %), a length (log-normal, median 180 chars), marks
    (Poisson 1.5) and a heavy keyword (25 %); its difficulty ``d ∈ (0, 1)`` rises with the planner's score
    (logistic of ``2.5 (score − 0.8) + 0.8 ε``, ε standard normal; with ``serial > 0`` ε is an AR(1) series in prompt
    order with weight 2.5, costs carry the same drift (× exp(0.5 ε)) and ``source`` is ``"events"``, as for logged
    runs). Tier ``t`` (0 = lowest) answers with quality
    Bernoulli(``1 − d·(0.85 − 0.3 t)``), passes its check with probability ``0.5 + 0.5 × quality`` (json: the
    contract), a repair redraws both; cost is log-normal around ``(1 + 3 t)·chars/10`` ms. Prompts are iid (or a
    stationary series), so a configuration's true expected quality and cost are the means over a very large draw.
    """
    rng = np.random.default_rng(seed)
    ladder = tuple(ladder)
    n, tiers = int(n_prompts), len(ladder)
    task = rng.choice(3, size=n, p=[0.6, 0.25, 0.15]).astype(np.int8)
    chars = np.maximum(5, np.round(np.exp(rng.normal(np.log(180), 0.7, n)))).astype(np.int64)
    marks = rng.poisson(1.5, n).astype(np.int64)
    heavy = rng.random(n) < 0.25
    score = np.clip(chars / 200 + marks / 6 + 0.8 * heavy, 0, 1.6)
    if serial > 0:
        noise = np.empty(n)
        noise[0] = rng.normal()
        for i in range(1, n):
            noise[i] = serial * noise[i - 1] + math.sqrt(1 - serial**2) * rng.normal()
    else:
        noise = rng.normal(size=n)
    weight = 2.5 if serial > 0 else 0.8  # a serial drift dominates the prompt's own difficulty
    difficulty = 1 / (1 + np.exp(-(2.5 * (score - 0.8) + weight * noise)))
    shape = (n, tiers, len(KINDS))
    p_good = np.clip(1 - difficulty[:, None, None] * (0.85 - 0.3 * np.arange(tiers))[None, :, None], 0, 1)
    quality = (rng.random(shape) < np.broadcast_to(p_good, shape)).astype(np.float64)
    passes = rng.random(shape) < 0.5 + 0.5 * quality
    json_task = (task == 1)[:, None, None]
    json_ok = np.where(json_task, passes.astype(np.int8), np.int8(-1)).astype(np.int8)
    length = np.where(passes | json_task, 40 + rng.integers(0, 200, shape), 0).astype(np.int64)
    base = (1 + 3 * np.arange(tiers))[None, :, None] * (chars / 10)[:, None, None]
    cost = base * np.exp(rng.normal(0, 0.3, shape))
    if serial > 0:  # the same drift in cost: a server that slows down and recovers
        cost *= np.exp(0.5 * noise)[:, None, None]
    return ReplayData(ladder=ladder, prompt_ids=tuple(f"sim-{i}" for i in range(n)), chars=chars, marks=marks,
                      heavy=heavy, task=task, present=np.ones(shape, bool), error=np.zeros(shape, bool),
                      json_ok=json_ok, length=length, refusal=np.zeros(shape, bool), quality=quality, cost_ms=cost,
                      latency_ms=cost * 1.2, tokens=np.round(cost).astype(np.int64),
                      strata=tuple(TASKS[t] for t in task), source="events" if serial > 0 else "simulated",
                      notes="simulate_replay: known outcome distributions")
