"""The statistics protocol of DESIGN.md §3 over two arms: families A, B, C, routing and cost.

Family A — quality non-inferiority, paired by prompt id, per pre-treatment stratum, BH/BY across
strata. Family B — P95 guardrail: P95_gateway ≤ (1+δ)·P95_baseline on the Overall and Warm-only
views, one-sided bootstrap p-value per stratum, BH/BY per view. Family C — JSON compliance: exact
one-sided binomial gate per arm and stratum. Strata are pre-treatment properties of the prompt
(``bucket`` of the events), never the route taken.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tsglab.errors import DegenerateStatisticWarning, SpecError

OVERALL = "overall"
VIEWS = ("Overall", "Warm-only")


@dataclass(frozen=True)
class ProtocolSettings:
    """Every number of the protocol (defaults: DESIGN.md §3)."""

    strata: tuple[str, ...] = ("task",)
    quality_margin: float = 0.05
    alpha: float = 0.05
    fdr_q: float = 0.10
    fdr_method: Literal["bh", "by"] = "bh"
    p95_delta: float = 0.10
    json_max_rate: float = 0.005
    n_resamples: int = 2000
    seed: int = 0
    co_correction: bool = True
    equivalence: bool = False  # Family A as TOST (|mean d| < margin) instead of one-sided non-inferiority
    min_stratum_n: int = 2

    def __post_init__(self) -> None:
        if self.fdr_method not in ("bh", "by"):
            raise SpecError(f"fdr_method must be 'bh' or 'by'; got {self.fdr_method!r}.")
        if not 0 < self.alpha < 1 or not 0 < self.fdr_q < 1:
            raise SpecError(f"alpha and fdr_q must be in (0, 1); got alpha={self.alpha}, fdr_q={self.fdr_q}.")
        if self.quality_margin < 0 or self.p95_delta < 0:
            raise SpecError("quality_margin and p95_delta must be >= 0.")
        if self.n_resamples < 100:
            raise SpecError(f"n_resamples must be >= 100; got {self.n_resamples}. Use 2000 (or 5000 for D).")
        if "route" in " ".join(self.strata) or "tier" in " ".join(self.strata):
            raise SpecError(f"strata {self.strata} name the route taken (post-treatment); use pre-treatment keys "
                            "such as task, ctx_bucket, lang, tool_use.")

    def to_dict(self) -> dict:
        return asdict(self)


def _strata(frame: pd.DataFrame, keys: tuple[str, ...]) -> pd.Series:
    missing = [k for k in keys if k not in frame]
    if missing:
        raise SpecError(f"strata {missing} are not event bucket fields; available: task, ctx_bucket, lang.")
    return frame[list(keys)].astype(str).agg("/".join, axis=1)


def _paired(base: pd.DataFrame, gate: pd.DataFrame) -> pd.DataFrame:
    """One row per prompt id present in both arms (suffixes _b and _g)."""
    return base.merge(gate, on="prompt_id", suffixes=("_b", "_g"), validate="one_to_one")


def _adjust(p_values: np.ndarray, settings: ProtocolSettings):
    from tsglab.stats.hypothesis_tests import benjamini_hochberg, benjamini_yekutieli

    adjust = benjamini_hochberg if settings.fdr_method == "bh" else benjamini_yekutieli
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateStatisticWarning)
        return adjust(p_values, q=settings.fdr_q)


def _groups(pairs: pd.DataFrame, settings: ProtocolSettings):
    """(stratum label, rows) for the overall sample and each stratum."""
    yield OVERALL, pairs
    labels = _strata(pairs.rename(columns=lambda c: c[:-2] if c.endswith("_b") else c), settings.strata)
    for label, rows in pairs.groupby(labels.to_numpy(), sort=True):
        yield str(label), rows


def family_a(base: pd.DataFrame, gate: pd.DataFrame, settings: ProtocolSettings) -> pd.DataFrame:
    """Quality per stratum, d = q_gateway − q_baseline: non-inferiority (H0: mean d ≤ −margin), or with
    ``settings.equivalence`` TOST (H0: |mean d| ≥ margin; p = the larger one-sided p-value)."""
    from tsglab.stats.hypothesis_tests import paired_noninferiority, paired_tost

    rows = []
    for label, part in _groups(_paired(base, gate), settings):
        diff = part["quality_g"].to_numpy(float) - part["quality_b"].to_numpy(float)
        row = {"stratum": label, "n_pairs": len(part), "quality_baseline": part["quality_b"].mean(),
               "quality_gateway": part["quality_g"].mean(), "margin": settings.quality_margin}
        if len(diff) >= 2 and np.all(diff == diff[0]):
            # every pair differs by the same amount (often 0: both arms answered alike); the bootstrap
            # distribution is a point, so the test is decided by that amount alone
            inside = -settings.quality_margin < diff[0] < settings.quality_margin
            decided = inside if settings.equivalence else diff[0] > -settings.quality_margin
            rows.append({**row, "test": "tost" if settings.equivalence else "non-inferiority", "mean_diff": diff[0],
                         "ci_low": diff[0], "ci_high": diff[0], "p_value": 0.0 if decided else 1.0,
                         "underpowered": False, "note": "all paired differences are equal"})
            continue
        arrays = (part["quality_g"].to_numpy(float), part["quality_b"].to_numpy(float))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateStatisticWarning)
            if settings.equivalence:
                result = paired_tost(*arrays, low=-settings.quality_margin, high=settings.quality_margin,
                                     alpha=settings.alpha, n_resamples=settings.n_resamples, seed=settings.seed)
                extra = {"test": "tost", "ci_high": result.ci_high, "underpowered": False}
            else:
                result = paired_noninferiority(*arrays, margin=settings.quality_margin, alpha=settings.alpha,
                                               n_resamples=settings.n_resamples, seed=settings.seed)
                extra = {"test": "non-inferiority", "ci_high": math.nan, "underpowered": result.underpowered}
        rows.append({**row, **extra, "mean_diff": result.estimate, "ci_low": result.ci_low,
                     "p_value": result.p_value, "note": result.note})
    return _with_fdr(pd.DataFrame(rows), settings)


def _with_fdr(table: pd.DataFrame, settings: ProtocolSettings, group: str | None = None) -> pd.DataFrame:
    """Add q-values across the strata rows (the overall row is reported, not adjusted) and verdicts."""
    table = table.copy()
    table["q_value"] = np.nan
    groups = [table.index] if group is None else [idx for _, idx in table.groupby(group).groups.items()]
    for idx in groups:
        strata = [i for i in idx if table.at[i, "stratum"] != OVERALL]
        if strata:
            table.loc[strata, "q_value"] = _adjust(table.loc[strata, "p_value"].to_numpy(float), settings).adjusted
        overall = [i for i in idx if table.at[i, "stratum"] == OVERALL]
        table.loc[overall, "q_value"] = table.loc[overall, "p_value"]
    table["passed"] = table["q_value"] < np.where(table["stratum"] == OVERALL, settings.alpha, settings.fdr_q)
    table["fdr"] = settings.fdr_method
    return table


def _p95_draws(values: np.ndarray, index: np.ndarray, k: int) -> np.ndarray:
    """Type-1 P95 (the k-th order statistic) of ``values[index[b]]`` for every resample b."""
    gathered = values[index]
    return np.partition(gathered, k - 1, axis=1)[:, k - 1]


def _resample_indices(n: int, n_resamples: int, rng: np.random.Generator, block_length: int | None,
                      chunk: int) -> np.ndarray:
    """Row indices of ``chunk`` resamples: iid, or the stationary bootstrap (Politis & Romano 1994)
    with mean block length ``block_length`` over rows in time order."""
    if not block_length or block_length <= 1:
        return rng.integers(0, n, size=(chunk, n))
    index = np.empty((chunk, n), dtype=np.int64)
    index[:, 0] = rng.integers(0, n, size=chunk)
    new_block = rng.random((chunk, n)) < 1.0 / block_length
    starts = rng.integers(0, n, size=(chunk, n))
    for t in range(1, n):
        index[:, t] = np.where(new_block[:, t], starts[:, t], (index[:, t - 1] + 1) % n)
    return index


def family_b(base: pd.DataFrame, gate: pd.DataFrame, settings: ProtocolSettings,
             block_length: int | None = None) -> pd.DataFrame:
    """P95 guardrail per stratum and view: H0: P95_g > (1+δ)·P95_b, rejected when the bootstrap
    share of θ* = P95*_g − (1+δ)·P95*_b at or above 0 is small.

    Prompts are resampled jointly for both arms (the arms are paired by prompt id), in time order
    with the stationary bootstrap when ``block_length`` is given (serial correlation).
    """
    column = "co_ms" if settings.co_correction else "raw_ms"
    pairs = _paired(base, gate).sort_values("seq_g")
    for side in ("b", "g"):  # a failed request was not served within the SLO: count it at the cap
        failed = pairs[f"failed_{side}"].to_numpy(bool)
        pairs.loc[failed, f"{column}_{side}"] = pairs.loc[failed, f"timeout_ms_{side}"]
    rows = []
    rng = np.random.default_rng(settings.seed)
    bound = 1.0 + settings.p95_delta
    for view in VIEWS:
        view_pairs = pairs if view == "Overall" else pairs[pairs["warm_b"] & pairs["warm_g"]]
        for label, part in _groups(view_pairs, settings):
            n = len(part)
            row = {"stratum": label, "view": view, "n_pairs": n, "latency": column}
            if n < settings.min_stratum_n:
                rows.append({**row, "p95_baseline": math.nan, "p95_gateway": math.nan, "ratio": math.nan,
                             "bound": bound, "ratio_ci_high": math.nan, "p_value": math.nan,
                             "note": f"n = {n} < {settings.min_stratum_n}: not tested"})
                continue
            g = part[f"{column}_g"].to_numpy(float)
            b = part[f"{column}_b"].to_numpy(float)
            k = max(1, math.ceil(0.95 * n))
            p95_g, p95_b = np.partition(g, k - 1)[k - 1], np.partition(b, k - 1)[k - 1]
            theta, ratios = [], []
            chunk = max(1, min(settings.n_resamples, 4_000_000 // max(n, 1)))
            for start in range(0, settings.n_resamples, chunk):
                size = min(chunk, settings.n_resamples - start)
                index = _resample_indices(n, settings.n_resamples, rng, block_length, size)
                draws_g, draws_b = _p95_draws(g, index, k), _p95_draws(b, index, k)
                theta.append(draws_g - bound * draws_b)
                ratios.append(draws_g / np.where(draws_b > 0, draws_b, np.nan))
            theta_all, ratio_all = np.concatenate(theta), np.concatenate(ratios)
            p_value = (1 + np.count_nonzero(theta_all >= 0)) / (len(theta_all) + 1)
            note = "" if n >= 20 else f"n = {n}: the P95 is near the sample maximum; the test has little power"
            rows.append({**row, "p95_baseline": p95_b, "p95_gateway": p95_g, "ratio": p95_g / p95_b if p95_b else
                         math.nan, "bound": bound,
                         "ratio_ci_high": float(np.nanquantile(ratio_all, 1 - settings.alpha)),
                         "p_value": p_value, "note": note})
    return _with_fdr(pd.DataFrame(rows), settings, group="view")


def family_c(frames: dict[str, pd.DataFrame], settings: ProtocolSettings) -> pd.DataFrame:
    """JSON-compliance gate per arm and stratum over the json-task requests."""
    from tsglab.stats.hypothesis_tests import binomial_gate

    rows = []
    for arm, frame in frames.items():
        json_rows = frame[frame["task"] == "json"]
        parts = [(OVERALL, json_rows)]
        if len(json_rows):
            parts += list(json_rows.groupby(_strata(json_rows, settings.strata).to_numpy(), sort=True))
        for label, part in parts:
            failures = int((~part["json_ok"].eq(True)).sum())  # None (no answer) counts as a failure
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DegenerateStatisticWarning)
                gate = binomial_gate(failures, len(part), max_rate=settings.json_max_rate, alpha=settings.alpha)
            rows.append({"arm": arm, "stratum": str(label), "n": gate.n, "failures": gate.failures,
                         "rate": gate.rate, "upper_bound": gate.upper_bound, "max_rate": gate.max_rate,
                         "p_value": gate.p_value, "passed_point": gate.passed_point,
                         "passed_test": gate.passed_test, "underpowered": gate.underpowered, "note": gate.note})
    return pd.DataFrame(rows)


def routing_cost(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Where requests started and ended, and what the whole cascade cost (paper §6.4)."""
    rows = []
    for arm, frame in frames.items():
        row = {"arm": arm, "n": len(frame)}
        for tier in ("light", "std", "enh"):
            row[f"r_{tier}"] = float((frame["initial_tier"] == tier).mean())
        row.update({
            "r_costly": float(frame["touched_enh"].mean()),
            "retry_rate": float((frame["n_attempts"] > 1).mean()),
            "upgrade_rate": float((frame["upgrades"] > 0).mean()),
            "refusal_rate": float(frame["refusal"].mean()),
            "attempts_per_req": float(frame["n_attempts"].mean()),
            "avg_eval_ms": float(frame["cost_ms"].mean()),
            "tokens_per_req": float(frame["completion_tokens"].mean()),
        })
        rows.append(row)
    return pd.DataFrame(rows)


def verdict(table_a: pd.DataFrame, table_b: pd.DataFrame, table_c: pd.DataFrame, gateway: str) -> dict:
    """Overall pass/fail: every stratum of A and B passes; the gateway's JSON gate passes."""
    a_ok = bool(table_a.loc[table_a["stratum"] != OVERALL, "passed"].all())
    b_ok = bool(table_b.loc[table_b["stratum"] != OVERALL, "passed"].all())
    gate_c = table_c[(table_c["arm"] == gateway) & (table_c["stratum"] == OVERALL)]
    c_ok = bool(gate_c["passed_test"].all()) if len(gate_c) else True
    underpowered = bool(table_a["underpowered"].any() or (len(gate_c) and gate_c["underpowered"].any()))
    return {"family_A": a_ok, "family_B": b_ok, "family_C": c_ok, "overall": a_ok and b_ok and c_ok,
            "underpowered": underpowered}
