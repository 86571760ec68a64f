"""Report v0 tables: headline (paper §6.1 layout), four-view P95, routing by tier, quality by task.

Every non-latency figure (JSON failure rate, quality, cost, r_costly, rates) comes from
:mod:`tsglab.report.metrics`, which states the rules (a timed-out or failed json request is a JSON
failure; a failed attempt costs its elapsed time)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pandas as pd

from tsglab.errors import DegenerateStatisticWarning
from tsglab.report import metrics
from tsglab.stats import choose_resampling, harrell_davis, quantile_ci

VIEWS = (("Raw", "Overall"), ("Raw", "Warm-only"), ("CO", "Overall"), ("CO", "Warm-only"))


def _quietly(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateStatisticWarning)
        return fn(*args, **kwargs)


#: the fewest observations a bootstrap interval of a quantile needs (tsglab.stats.quantile_ci returns NaN below)
MIN_CI_N = 2


def p95_view(frame: pd.DataFrame, column: str, *, n_resamples: int = 2000, seed: int = 0,
             resampling: str = "auto") -> dict:
    """P50 and P95 of one latency column with bootstrap CIs (:func:`tsglab.stats.quantile_ci`).

    One estimator family whatever the censoring: Harrell–Davis weights on the Kaplan–Meier
    distribution, timeouts right-censored at their elapsed time, so one timeout moves the P95 a
    little instead of switching estimators. With more than 5 % censored the P95 is not identifiable:
    NaN, and ``p95_lower_bound_ms`` gives the bound it would have been. ``resampling`` ("auto": iid or
    stationary by a Ljung–Box test) can force a scheme of :func:`tsglab.stats.choose_resampling`.
    """
    ordered = frame.sort_values("seq", kind="stable") if "seq" in frame else frame
    values = ordered[column].to_numpy(float)
    censored = ordered["timeout"].to_numpy(bool)
    n = len(values)
    if n == 0:
        return {"n": 0, "timeouts_rate": math.nan, **{f"{name}{part}": math.nan for name in ("p50", "p95")
                                                       for part in ("_ms", "_ci_low", "_ci_high")},
                "p95_lower_bound_ms": math.nan, "identifiable": False, "interval": "none",
                "note": "n = 0: no answered request in this view (all in warm-up, failed, or not yet run)"}
    plan, _ = _quietly(choose_resampling, values, n_resamples=n_resamples, seed=seed,
                       method=resampling)  # one choice for both
    out: dict[str, Any] = {"n": n, "timeouts_rate": float(censored.mean())}
    for name, q in (("p50", 0.5), ("p95", 0.95)):
        result = _quietly(quantile_ci, values, q, censored=censored, resampling=plan.method,
                          block_length=plan.block_length, n_resamples=n_resamples, seed=seed)
        out.update({f"{name}_ms": result.estimate, f"{name}_ci_low": result.ci_low, f"{name}_ci_high": result.ci_high})
    out.update({"p95_lower_bound_ms": result.lower_bound, "identifiable": result.identifiable,
                "interval": result.resampling if n >= 2 else "none",
                "note": f"n = {n} < {MIN_CI_N} needed for a CI" if n < MIN_CI_N else ""})
    return out


def arm_metrics(frame: pd.DataFrame, *, n_resamples: int = 2000, seed: int = 0, resampling: str = "auto") -> dict:
    """The headline figures of one arm."""
    warm = p95_view(frame[frame["warm"] & ~frame["failed"]], "raw_ms", n_resamples=n_resamples, seed=seed,
                    resampling=resampling)
    overall = p95_view(frame[~frame["failed"]], "co_ms", n_resamples=n_resamples, seed=seed, resampling=resampling)
    return {
        "n": len(frame),
        "p50_e2e_warm_ms": warm["p50_ms"],
        "p50_e2e_warm_ms_ci_low": warm["p50_ci_low"],
        "p50_e2e_warm_ms_ci_high": warm["p50_ci_high"],
        "avg_eval_ms": metrics.avg_cost_ms(frame),
        "r_costly": metrics.r_costly(frame),
        "p95_co_overall_ms": overall["p95_ms"],
        "p95_co_overall_ms_ci_low": overall["p95_ci_low"],
        "p95_co_overall_ms_ci_high": overall["p95_ci_high"],
        "json_fail_rate": metrics.json_fail_rate(frame),
        "mean_quality": metrics.mean_quality(frame),
        "retry_rate": metrics.retry_rate(frame),
        "timeouts_rate": metrics.timeout_rate(frame),
        "error_rate": metrics.error_rate(frame),
    }


HEADLINE_ROWS = (
    ("p50_e2e_warm_ms", "P50 E2E warm (ms)"),
    ("avg_eval_ms", "Avg eval ms/req (all attempts)"),
    ("r_costly", "r_costly (share touching {top})"),
    ("p95_co_overall_ms", "P95 CO overall (ms)"),
    ("json_fail_rate", "JSON failure rate"),
    ("mean_quality", "Mean quality [0,1]"),
)


def headline_table(figures: dict[str, dict], *, top_tier: str) -> pd.DataFrame:
    """Baseline vs gateway (the two arms of ``figures``, each :func:`arm_metrics`' dict, baseline first)
    with the relative change, one metric per row; latency quantiles carry their 95 % bootstrap CIs
    (``<arm> CI low`` / ``<arm> CI high``, NaN for the other rows). ``top_tier`` names the ladder's top
    rung in the r_costly label."""
    (base_name, base), (gate_name, gate) = figures.items()
    rows = []
    for key, label in HEADLINE_ROWS:
        b, g = base[key], gate[key]
        change = (g - b) / abs(b) * 100.0 if b and not math.isnan(b) and not math.isnan(g) else math.nan
        rows.append({"metric": label.format(top=top_tier), base_name: b,
                     f"{base_name} CI low": base.get(f"{key}_ci_low", math.nan),
                     f"{base_name} CI high": base.get(f"{key}_ci_high", math.nan), gate_name: g,
                     f"{gate_name} CI low": gate.get(f"{key}_ci_low", math.nan),
                     f"{gate_name} CI high": gate.get(f"{key}_ci_high", math.nan), "change_%": change})
    return pd.DataFrame(rows)


def four_view_table(frames: dict[str, pd.DataFrame], *, n_resamples: int = 2000, seed: int = 0,
                    resampling: str = "auto") -> pd.DataFrame:
    """P50 and P95 with CIs per arm in the four views; failed requests (errors, not timeouts) are left
    out here and counted in ``errors`` (the Family B guardrail counts them at the SLO cap)."""
    rows = []
    for arm, frame in frames.items():
        answered = frame[~frame["failed"]]
        for kind, scope in VIEWS:
            subset = answered if scope == "Overall" else answered[answered["warm"]]
            view = p95_view(subset, "raw_ms" if kind == "Raw" else "co_ms", n_resamples=n_resamples, seed=seed,
                            resampling=resampling)
            errors = int(frame["failed"].sum() if scope == "Overall" else frame.loc[frame["warm"], "failed"].sum())
            rows.append({"arm": arm, "view": f"{kind} / {scope}", **view, "errors": errors})
    return pd.DataFrame(rows)


def tier_table(frames: dict[str, pd.DataFrame], ladder: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Routing and cost by final tier: how many requests ended where, at what quality and cost; one row
    per rung of ``ladder`` (default: the frames' own ladder, :func:`tsglab.report.metrics.frame_ladder`)."""
    rows = []
    for arm, frame in frames.items():
        for tier in ladder or metrics.frame_ladder(frame):
            part = frame[frame["final_tier"] == tier]
            rows.append({"arm": arm, "final_tier": tier, "n": len(part), "share": len(part) / len(frame),
                         "mean_quality": metrics.mean_quality(part),
                         "avg_eval_ms": metrics.avg_cost_ms(part),
                         "upgraded": int((part["upgrades"] > 0).sum()),
                         "repaired": int(part["repaired"].sum())})
    return pd.DataFrame(rows)


def task_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Quality, JSON compliance and cost per suite task (pre-treatment stratum) and arm."""
    rows = []
    for arm, frame in frames.items():
        for task, part in frame.groupby("task", sort=True):
            rows.append({"arm": arm, "task": task, "n": len(part), "mean_quality": metrics.mean_quality(part),
                         "json_fail_rate": metrics.json_fail_rate(part),
                         "avg_eval_ms": metrics.avg_cost_ms(part),
                         "p50_raw_ms": float(_quietly(harrell_davis, part["raw_ms"].to_numpy(float), 0.5))})
    return pd.DataFrame(rows)


def ablation_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Appendix E: one row per arm or run — cost ms/req, r_costly, retry rate, P50 (warm, raw), P95 CO."""
    rows = []
    for name, frame in frames.items():
        metrics = arm_metrics(frame)
        rows.append({"arm": name, "n": metrics["n"], "cost_ms_per_req": metrics["avg_eval_ms"],
                     "r_costly": metrics["r_costly"], "retry_rate": metrics["retry_rate"],
                     "p50_ms": metrics["p50_e2e_warm_ms"], "p95_co_ms": metrics["p95_co_overall_ms"],
                     "mean_quality": metrics["mean_quality"]})
    return pd.DataFrame(rows)


def _quantile(values, q: float) -> float:
    values = pd.Series(values, dtype=float).dropna()
    return float(values.quantile(q)) if len(values) else math.nan


def load_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The load generator's own accuracy per arm: dispatch lag (dispatched − intended start) as a
    distribution, and how every request ended (answered, timed out, failed by kind)."""
    rows = []
    for arm, frame in frames.items():
        lag = frame["dispatch_lag_ms"]
        kinds = frame.loc[frame["failed"], "error_kind"].value_counts()
        rows.append({"arm": arm, "n": len(frame), "lag_p50_ms": _quantile(lag, 0.5), "lag_p99_ms": _quantile(lag, 0.99),
                     "lag_max_ms": float(lag.max()), "late_gt_1ms": int((lag > 1.0).sum()),
                     "timeouts": int(frame["timeout"].sum()), "errors": int(frame["failed"].sum()),
                     "error_kinds": ", ".join(f"{k}: {v}" for k, v in kinds.items()) or "-"})
    return pd.DataFrame(rows)


def energy_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Energy per arm (:func:`tsglab.energy.summarize_energy` over the events' energy fields): ratios of
    sums where a meter measured it, otherwise the reason the events give — never zeros."""
    from tsglab.energy import summarize_energy

    rows = []
    for arm, frame in frames.items():
        summary = summarize_energy([{"arm": arm, "energy": energy} for energy in frame["energy"]])[arm]
        if not summary["available"]:
            rows.append({"arm": arm, "n_measured": 0, "j_per_request": math.nan, "mwh_per_1k_tokens": math.nan,
                         "tokens_per_s_per_w": math.nan, "note": summary["reason"]})
            continue
        rows.append({"arm": arm, "n_measured": summary["n_measured"], "j_per_request": summary["j_per_request_mean"],
                     "mwh_per_1k_tokens": summary["mwh_per_1k_tokens"] or math.nan,
                     "tokens_per_s_per_w": summary["tokens_per_s_per_w"] or math.nan, "note": ""})
    return pd.DataFrame(rows)
