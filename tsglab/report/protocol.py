"""The statistics protocol of DESIGN.md §3 over two arms: families A, B, C, routing and cost.

This module only groups, calls, concatenates and adjusts: every test and interval is a public
function of :mod:`tsglab.stats`, and a library result is never overridden (a NaN stays a NaN, with
its reason in ``note``).

* Family A — quality non-inferiority paired by (prompt id, occurrence), per pre-treatment stratum,
  by :func:`tsglab.stats.quality_noninferiority`.
* Family B — P95 guardrail P95_gateway ≤ (1+δ)·P95_baseline on the Overall and Warm-only views, by
  :func:`tsglab.stats.quantile_ratio_test`.
* Family C — JSON compliance, exact one-sided binomial gate per arm and stratum.

Multiplicity (README, "The verdict"): every row is a test at α; the verdict is the intersection–union
of the overall rows; strata are screened with BH at q on their p-values for *failing*, and a flagged
stratum blocks the verdict. Strata are pre-treatment properties of the prompt (``bucket`` of the
events), never the route taken.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tsglab.errors import DegenerateStatisticWarning, SpecError
from tsglab.report import metrics
from tsglab.report.pairing import pair_arms

OVERALL = "overall"
VIEWS = ("Overall", "Warm-only")
RESAMPLING_CHOICES = ("auto", "iid", "stationary", "moving-block")


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
    quality_method: Literal["auto", "exact-binary", "betting"] = "auto"
    # how the latency bootstraps resample (Family B, the four views, the headline CIs): "auto" chooses iid or
    # the stationary bootstrap by a Ljung–Box test; a forced scheme uses the same kernels of tsglab.stats
    resampling: Literal["auto", "iid", "stationary", "moving-block"] = "auto"

    def __post_init__(self) -> None:
        if self.resampling not in RESAMPLING_CHOICES:
            raise SpecError(f"resampling must be one of {RESAMPLING_CHOICES}; got {self.resampling!r}. Use 'auto'.")
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
    if frame.empty:
        # DataFrame.agg(axis=1) of zero rows returns a zero-row *DataFrame*, not a Series, and a groupby
        # on its 2-D array fails ("Buffer has wrong number of dimensions"): a view with no rows (every
        # request in warm-up) has no strata.
        return pd.Series([], index=frame.index, dtype=object)
    return frame[list(keys)].astype(str).agg("/".join, axis=1)


def _groups(pairs: pd.DataFrame, settings: ProtocolSettings):
    """(stratum label, rows) for the overall sample and each stratum."""
    yield OVERALL, pairs
    labels = _strata(pairs.rename(columns=lambda c: c.removesuffix("_b")), settings.strata)
    for label, rows in pairs.groupby(labels.to_numpy(), sort=True):
        yield str(label), rows


def _screen(table: pd.DataFrame, settings: ProtocolSettings, group: str | None = None) -> pd.DataFrame:
    """BH (or BY) at q over the strata rows' p-values *for failing* (``p_fail``): a stratum whose
    adjusted value is below q is flagged ``failed`` — evidence that it is worse than its margin, with
    the false-discovery rate of such flags controlled at q. The overall row is not adjusted: it is
    ``failed`` when its own ``p_fail`` is below alpha."""
    from tsglab.stats import benjamini_hochberg, benjamini_yekutieli

    adjust = benjamini_hochberg if settings.fdr_method == "bh" else benjamini_yekutieli
    table = table.copy()
    table["q_fail"] = np.nan
    groups = [table.index] if group is None else list(table.groupby(group).groups.values())
    for idx in groups:
        strata = [i for i in idx if table.at[i, "stratum"] != OVERALL and np.isfinite(table.at[i, "p_fail"])]
        if strata:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DegenerateStatisticWarning)
                result = adjust(table.loc[strata, "p_fail"].to_numpy(float), q=settings.fdr_q)
            table.loc[strata, "q_fail"] = result.adjusted
    flagged = (table["stratum"] != OVERALL) & (table["q_fail"] < settings.fdr_q)
    # the overall row is a single test: 'failed' when its own p-value for failing is below alpha
    flagged |= (table["stratum"] == OVERALL) & (table["p_fail"] < settings.alpha)
    table.loc[flagged & ~table["passed"], "decision"] = "failed"
    table["fdr"] = settings.fdr_method
    return table


def _row_decision(passed: bool, underpowered: bool, identifiable: bool = True) -> str:
    if not identifiable:
        return "not identifiable"
    if passed:
        return "passed"
    return "underpowered" if underpowered else "inconclusive"


def family_a(base: pd.DataFrame, gate: pd.DataFrame, settings: ProtocolSettings) -> pd.DataFrame:
    """Quality per stratum, d = q_gateway − q_baseline, by :func:`tsglab.stats.quality_noninferiority`
    (exact test for pass/fail scores, betting e-value for other bounded scores): H0 mean d ≤ −margin,
    or with ``settings.equivalence`` TOST. Each row is a test at α; strata are screened for failure."""
    from tsglab.stats import quality_noninferiority

    rows = []
    for label, part in _groups(pair_arms(base, gate), settings):
        g, b = part["quality_g"].to_numpy(float), part["quality_b"].to_numpy(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateStatisticWarning)
            result = quality_noninferiority(g, b, margin=settings.quality_margin, alpha=settings.alpha,
                                            equivalence=settings.equivalence, method=settings.quality_method,
                                            seed=settings.seed)
        rows.append({"stratum": label, "n_pairs": result.n, "quality_baseline": float(np.mean(b)) if len(b) else np.nan,
                     "quality_gateway": float(np.mean(g)) if len(g) else np.nan, "margin": result.margin,
                     "test": result.test, "method": result.method, "mean_diff": result.estimate,
                     "ci_low": result.ci_low, "ci_high": result.ci_high, "p_value": result.p_value,
                     "p_fail": result.p_fail, "passed": result.passed, "underpowered": result.underpowered,
                     "n_needed": result.n_needed, "decision": _row_decision(result.passed, result.underpowered),
                     "note": result.note})
    return _screen(pd.DataFrame(rows), settings)


def _latency_arrays(part: pd.DataFrame, column: str, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Latencies of one arm with the censored flags the guardrail uses: a timeout is right-censored at
    its elapsed time; a failed request (no answer) is counted as censored at the SLO cap."""
    values = part[f"{column}_{side}"].to_numpy(float).copy()
    failed = part[f"failed_{side}"].to_numpy(bool)
    timeout = part[f"timeout_{side}"].to_numpy(bool) if f"timeout_{side}" in part else np.zeros(len(part), bool)
    cap = part[f"timeout_ms_{side}"].to_numpy(float)
    values[failed] = cap[failed]
    return values, failed | timeout


def family_b(base: pd.DataFrame, gate: pd.DataFrame, settings: ProtocolSettings,
             resampling: str | None = None) -> pd.DataFrame:
    """P95 guardrail per stratum and view by :func:`tsglab.stats.quantile_ratio_test`:
    H0 P95_g ≥ (1+δ)·P95_b on censored Harrell–Davis P95s, prompts resampled jointly for both arms in
    time order (iid, or the stationary bootstrap when either arm is serially correlated; ``resampling``,
    default ``settings.resampling``, forces a scheme)."""
    from tsglab.stats import quantile_ratio_test

    resampling = resampling or settings.resampling

    column = "co_ms" if settings.co_correction else "raw_ms"
    pairs = pair_arms(base, gate).sort_values("seq_g", kind="stable")
    rows = []
    for view in VIEWS:
        view_pairs = pairs if view == "Overall" else pairs[pairs["warm_b"] & pairs["warm_g"]]
        for label, part in _groups(view_pairs, settings):
            g, g_cens = _latency_arrays(part, column, "g")
            b, b_cens = _latency_arrays(part, column, "b")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DegenerateStatisticWarning)
                result = quantile_ratio_test(g, b, delta=settings.p95_delta, alpha=settings.alpha,
                                             gateway_censored=g_cens, baseline_censored=b_cens,
                                             resampling=resampling, n_resamples=settings.n_resamples,
                                             seed=settings.seed)
            rows.append({"stratum": label, "view": view, "n_pairs": result.n, "latency": column,
                         "p95_baseline": result.baseline_estimate, "p95_gateway": result.gateway_estimate,
                         "ratio": result.ratio, "ratio_ci_high": result.ratio_ci_high, "bound": result.bound,
                         "p_value": result.p_value, "p_fail": result.p_fail, "power_at_equal": result.power_at_equal,
                         "passed": result.passed, "underpowered": result.underpowered,
                         "identifiable": result.identifiable,
                         "decision": _row_decision(result.passed, result.underpowered, result.identifiable),
                         "resampling": result.resampling, "note": result.note})
    return _screen(pd.DataFrame(rows), settings, group="view")


def family_c(frames: dict[str, pd.DataFrame], settings: ProtocolSettings) -> pd.DataFrame:
    """JSON-compliance gate per arm and stratum over the json-task requests."""
    from tsglab.stats.hypothesis_tests import binomial_gate

    rows = []
    for arm, frame in frames.items():
        json_rows = frame[metrics.is_json_request(frame)]
        parts = [(OVERALL, json_rows)]
        if len(json_rows):
            parts += list(json_rows.groupby(_strata(json_rows, settings.strata).to_numpy(), sort=True))
        for label, part in parts:
            counts = metrics.json_failures(part)  # the one rule: a timed-out or failed json request failed
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DegenerateStatisticWarning)
                gate = binomial_gate(counts.failures, counts.n, max_rate=settings.json_max_rate, alpha=settings.alpha)
            rows.append({"arm": arm, "stratum": str(label), "n": gate.n, "failures": gate.failures,
                         "rate": gate.rate, "upper_bound": gate.upper_bound, "max_rate": gate.max_rate,
                         "p_value": gate.p_value, "passed_point": gate.passed_point,
                         "passed_test": gate.passed_test, "underpowered": gate.underpowered, "note": gate.note})
    return pd.DataFrame(rows)


def routing_cost(frames: dict[str, pd.DataFrame], ladder: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Where requests started and ended, and what the whole cascade cost (paper §6.4); ``r_<tier>`` for
    every rung of ``ladder`` (default: each frame's own ladder)."""
    return pd.DataFrame([{"arm": arm, **metrics.routing_metrics(frame, ladder)} for arm, frame in frames.items()])


def verdict(table_a: pd.DataFrame, table_b: pd.DataFrame, table_c: pd.DataFrame, gateway: str) -> dict:
    """The verdict, an intersection–union test at α (README, "The verdict"): it passes only when the
    overall row of Family A passes, the overall rows of Family B pass in both views, the gateway's JSON
    gate passes, and no stratum row is flagged ``failed`` by the FDR screen. Each of those rows is a
    test at α, so whichever family's null hypothesis holds, the verdict passes with probability ≤ α.
    A run without json-task requests has no JSON gate to pass (Family C does not apply).
    ``underpowered`` is True when a row the verdict needs could not pass at its n."""
    overall_a = table_a[table_a["stratum"] == OVERALL]
    overall_b = table_b[table_b["stratum"] == OVERALL]
    gate_c = table_c[(table_c["arm"] == gateway) & (table_c["stratum"] == OVERALL) & (table_c["n"] > 0)]
    a_ok = bool(len(overall_a) and overall_a["passed"].all() and not (table_a["decision"] == "failed").any())
    b_ok = bool(len(overall_b) and overall_b["passed"].all() and not (table_b["decision"] == "failed").any())
    c_ok = bool(gate_c["passed_test"].all()) if len(gate_c) else True
    identifiable = bool(overall_b["identifiable"].all()) if len(overall_b) else False
    underpowered = bool(overall_a["underpowered"].any() or overall_b["underpowered"].any()
                        or (len(gate_c) and gate_c["underpowered"].any()))
    failed_strata = sorted(set(table_a.loc[table_a["decision"] == "failed", "stratum"])
                           | set(table_b.loc[table_b["decision"] == "failed", "stratum"]))
    return {"family_A": a_ok, "family_B": b_ok, "family_C": c_ok, "overall": a_ok and b_ok and c_ok,
            "underpowered": underpowered, "identifiable": identifiable, "failed_strata": failed_strata,
            "not_computable": not_computable(table_a, table_b)}


def not_computable(table_a: pd.DataFrame, table_b: pd.DataFrame) -> list[str]:
    """The rows of families A and B whose test could not be computed (no p-value), each with why — a
    tiny run, a view emptied by the warm-up, a report taken mid-run. Such a row cannot pass."""
    rows = []
    for family, table in (("A", table_a), ("B", table_b)):
        for row in table.itertuples(index=False):
            if np.isfinite(row.p_value):
                continue
            where = f"{row.view}/{row.stratum}" if family == "B" else str(row.stratum)
            why = f"n = {row.n_pairs} pairs" + (" (every request in warm-up)" if family == "B" and
                                                row.view != "Overall" and row.n_pairs == 0 else "")
            rows.append(f"Family {family} {where}: {why}" + (f"; {row.note}" if row.note else ""))
    return rows
