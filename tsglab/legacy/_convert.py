"""Legacy events → tsglab event records (:class:`tsglab.events.Event`), and the legacy-vs-tsglab estimator table."""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from tsglab._version import __version__
from tsglab.errors import DegenerateStatisticWarning, TsglabWarning
from tsglab.events.record import (
    SCHEMA_VERSION,
    Attempt,
    Censoring,
    Energy,
    ErrorInfo,
    Event,
    Fingerprint,
    Latency,
    Plan,
    Quality,
    Route,
    Schedule,
    prompt_sha,
)
from tsglab.legacy._estimators import legacy_binomial_hd, legacy_co_fill, legacy_km_quantile
from tsglab.legacy._reader import SUMMARY_METRICS, LegacyArm, LegacyMismatchError
from tsglab.stats import backfill_co, censoring_summary, harrell_davis

#: |stored − recomputed| allowed between a legacy summary value and our legacy estimator (ms or %).
SUMMARY_TOLERANCE = 1e-6
_STAMP_FORMAT = "%Y%m%d_%H%M%S"
# The legacy bench's fixed tier ladder, lowest first (a fact of the legacy format, not a tsglab default):
# its ``final_path`` names these tiers and its ``r_costly_pct`` counts the top one.
LEGACY_LADDER = ("light", "std", "enh")


def stamp_datetime(stamp: str) -> datetime:
    # The stamps name no zone, and only differences between the stamps of one session are used: read as
    # UTC, each difference is the plain wall-clock difference (no daylight-saving shift in between).
    return datetime.strptime(stamp, _STAMP_FORMAT).replace(tzinfo=timezone.utc)


def legacy_run_id(session: list[LegacyArm]) -> str:
    """``legacy-<YYYYmmdd-HHMMSS>`` of the session's first file."""
    return "legacy-" + session[0].stamp.replace("_", "-")


# --------------------------------------------------------------------------------------------------
# per-event fields


def legacy_event_eval_ms(event: dict[str, Any]) -> float:
    """What the legacy summary averaged as eval ms: ``eval_ms`` when the event has it, else ``e2e_ms``."""
    return float(event["eval_ms"]) if "eval_ms" in event else float(event["e2e_ms"])


def _upgrades(event: dict[str, Any]) -> int:
    value = event.get("upgrades", 0)
    return len(value) if isinstance(value, list) else int(value or 0)


def _reconstructed_tiers(event: dict[str, Any], count: int) -> list[str]:
    """Tiers of ``count`` attempts known only by number: repairs at the initial tier, then one per upgrade."""
    final = str(event["final_path"])
    if final not in LEGACY_LADDER:
        return [final] * count
    top = LEGACY_LADDER.index(final)
    ladder = [LEGACY_LADDER[i] for i in range(max(top - _upgrades(event), 0), top + 1)]
    return [ladder[0]] * max(count - len(ladder), 0) + ladder


def _attempt(tier: str, *, tokens: int, eval_ms: float) -> Attempt:
    # the legacy eval ms is a backend measurement: the attempt costs it (cost_source "backend")
    return Attempt(tier, "initial", f"legacy-{tier}", 0, tokens, 0.0, eval_ms, eval_ms, None, 0.0, "", None, "legacy",
                   cost_ms=eval_ms, cost_source="backend")


def legacy_attempts(event: dict[str, Any]) -> list[Attempt]:
    """The attempts of a legacy event as tsglab :class:`~tsglab.events.Attempt` records (see the package
    docstring): the first is the initial attempt, then a repeat of a tier is a repair, a change an upgrade."""
    raw = event.get("attempts")
    tokens = int(event.get("eval_tokens") or 0)
    if isinstance(raw, list) and raw:
        items = [a if isinstance(a, dict) else {"tier": str(a)} for a in raw]
        tiers = [str(a.get("tier", event["final_path"])) for a in items]
        has_tokens = any("eval_tokens" in a or "completion_tokens" in a for a in items)
        has_eval = all("eval_ms" in a for a in items)
        attempts = []
        for i, (item, tier) in enumerate(zip(items, tiers, strict=True)):
            last = i == len(items) - 1
            attempt_tokens = int(item.get("eval_tokens", item.get("completion_tokens")) or 0) if has_tokens else (
                tokens if last else 0)
            eval_ms = float(item["eval_ms"]) if has_eval else (legacy_event_eval_ms(event) if last else 0.0)
            attempts.append(_attempt(tier, tokens=attempt_tokens, eval_ms=eval_ms))
    else:
        count = int(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= 1 else (
            1 + _upgrades(event) + int(bool(event.get("repaired"))))
        tiers = _reconstructed_tiers(event, count)
        attempts = [_attempt(t, tokens=tokens if i == len(tiers) - 1 else 0,
                             eval_ms=legacy_event_eval_ms(event) if i == len(tiers) - 1 else 0.0)
                    for i, t in enumerate(tiers)]
    return attempts[:1] + [dataclasses.replace(a, kind="repair" if a.tier == previous.tier else "upgrade")
                           for previous, a in itertools.pairwise(attempts)]


def _task(event: dict[str, Any]) -> str:
    if event.get("task"):
        return str(event["task"])
    return "json" if event.get("need_json") else "general"


def _quality(event: dict[str, Any]) -> float:
    """The legacy bench had no quality grader: 1/0 from the JSON contract, else from error/refusal."""
    for key in ("quality", "quality_score"):
        if isinstance(event.get(key), int | float) and not isinstance(event.get(key), bool):
            return float(event[key])
    if event.get("need_json"):
        return 1.0 if event.get("json_ok") else 0.0
    return 0.0 if (event.get("error") or event.get("refusal") or event["right_censored"]) else 1.0


def arm_timeout_s(arm: LegacyArm) -> float:
    """The request timeout: the summary's ``timeout_s`` if any, else the largest censored (else any) e2e."""
    if isinstance(arm.summary.get("timeout_s"), int | float):
        return float(arm.summary["timeout_s"])
    censored = [e["e2e_ms"] for e in arm.events if e["right_censored"]]
    return max(censored or [e["e2e_ms"] for e in arm.events]) / 1e3


def convert_arm(arm: LegacyArm, *, run_id: str, origin: datetime) -> list[Event]:
    """tsglab event records for one legacy arm, on a fixed-period schedule anchored at its file stamp."""
    period_ns = round(float(arm.summary["period_ms"]) * 1e6)
    base_ns = round((stamp_datetime(arm.stamp) - origin).total_seconds() * 1e9)
    timeout_s = arm_timeout_s(arm)
    energy = Energy.unavailable("legacy bench recorded no energy")
    events = []
    seen: dict[str, int] = {}
    for seq, legacy in enumerate(sorted(arm.events, key=lambda e: e["idx"])):
        prompt_id = str(legacy["prompt_id"])
        # legacy arms repeat prompt ids (warm-up re-sends prompts); the occurrence keeps request ids unique
        occurrence = seen[prompt_id] = seen.get(prompt_id, -1) + 1
        e2e_ms = float(legacy["e2e_ms"])
        intended_ns = base_ns + seq * period_ns
        completed_ns = intended_ns + round(e2e_ms * 1e6)
        attempts = legacy_attempts(legacy)
        eval_ms = sum(a.eval_ms for a in attempts)
        score = legacy.get("planner_complexity")
        task = _task(legacy)
        censored = bool(legacy["right_censored"])
        error = legacy.get("error")
        prompt = legacy.get("prompt")
        events.append(Event(
            schema_version=SCHEMA_VERSION,
            run_id=run_id,
            arm=arm.mode,
            request_id=f"{run_id}/{arm.mode}/{prompt_id}#{occurrence}",
            prompt_id=prompt_id,
            prompt_sha=prompt_sha(prompt) if isinstance(prompt, str) else "",  # "" = unknown: not checked on pairing
            seq=seq,
            segment=0,
            bucket={"task": task},
            plan=Plan(score=score, raw_score=score, task=task, chars=len(prompt or "")),
            route=Route(initial=attempts[0].tier, final=str(legacy["final_path"]), upgrades=_upgrades(legacy),
                        repaired=bool(legacy.get("repaired")), reason="legacy import", score=score,
                        tiers_touched=tuple(sorted({a.tier for a in attempts}))),
            attempts=tuple(attempts),
            schedule=Schedule(intended_ns, intended_ns, completed_ns),
            # raw = CO = e2e exactly (not re-derived from the ns stamps, which round it)
            latency=Latency(raw_ms=e2e_ms, co_ms=e2e_ms, dispatch_lag_ms=0.0, ttft_ms=None, eval_ms=eval_ms,
                            prompt_eval_ms=0.0, cost_ms=eval_ms, cost_source="attempts", overhead_ms=None),
            in_warmup=bool(legacy["in_warmup"]),
            cold_start=False,
            censoring=Censoring(censored, censored, timeout_s),
            quality=Quality(_quality(legacy), legacy.get("json_ok") if legacy.get("need_json") else None,
                            bool(legacy.get("refusal")), "legacy: no grader", None),
            answer=str(legacy.get("output") or ""),
            error=(ErrorInfo("timeout" if censored else "legacy_error", str(error)) if error
                   else (ErrorInfo("timeout", "right-censored") if censored else None)),
            energy=energy,
            fingerprint=Fingerprint(
                tsglab=__version__, ladder=LEGACY_LADDER, source="legacy", estimators="legacy import (no bootstrap)",
                extra={"legacy_mode": arm.mode, "legacy_events_file": arm.events_path.name,
                       "legacy_events_sha256": arm.events_sha256, "legacy_idx": legacy["idx"],
                       "legacy_retry_count": legacy.get("retry_count")}),
            tsglab_version=__version__,
        ))
    return events


# --------------------------------------------------------------------------------------------------
# legacy vs tsglab


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateStatisticWarning)
        return fn(*args, **kwargs)


def _same(stored: Any, recomputed: float) -> bool:
    if stored is None or (isinstance(stored, float) and math.isnan(stored)):
        return math.isnan(recomputed)
    return not math.isnan(recomputed) and abs(float(stored) - recomputed) <= SUMMARY_TOLERANCE


def _warm_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if not e["in_warmup"]]


def _mean_or_nan(values: list[float]) -> float:
    # an arm that is all warm-up has no warm rows: NaN, as the legacy summary stores for an empty sample
    return float(np.mean(values)) if values else math.nan


def legacy_avg_eval_ms(events: list[dict[str, Any]]) -> float:
    r"""The legacy ``avg_eval_ms``: mean eval ms over the **warm** rows.

    .. math:: \text{avg\_eval\_ms} = \frac{1}{|W|} \sum_{e \in W} \text{eval}(e), \qquad
              W = \{e : \lnot e.\text{in\_warmup}\}

    with eval(e) = ``eval_ms`` when the event has it, else ``e2e_ms`` (:func:`legacy_event_eval_ms`).
    Warm-only like every ``warm_*`` metric of the bench: averaging over all rows (warm-up included)
    does not reproduce the bench's summaries. NaN when no row is warm.
    """
    return _mean_or_nan([legacy_event_eval_ms(e) for e in _warm_events(events)])


def legacy_r_costly_pct(events: list[dict[str, Any]]) -> float:
    r"""The legacy ``r_costly_pct``: percent of **warm** rows whose final tier is ``enh``.

    .. math:: \text{r\_costly\_pct} = 100 \cdot \frac{|\{e \in W : e.\text{final\_path} =
              \text{enh}\}|}{|W|}, \qquad W = \{e : \lnot e.\text{in\_warmup}\}

    Warm-only, as :func:`legacy_avg_eval_ms`. NaN when no row is warm.
    """
    return _mean_or_nan([100.0 * (str(e["final_path"]) == "enh") for e in _warm_events(events)])


def legacy_metrics(arm: LegacyArm) -> dict[str, float]:
    """Every legacy summary metric, recomputed from the events with the legacy estimators."""
    e2e = np.array([e["e2e_ms"] for e in arm.events], dtype=np.float64)
    censored = np.array([e["right_censored"] for e in arm.events], dtype=bool)
    warm = ~np.array([e["in_warmup"] for e in arm.events], dtype=bool)
    period = float(arm.summary["period_ms"])
    return {
        "warm_p50_ms": legacy_binomial_hd(e2e[warm], 0.5),
        "warm_p95_ms_co": legacy_binomial_hd(legacy_co_fill(e2e[warm], period), 0.95),
        "overall_p95_ms_co": legacy_binomial_hd(legacy_co_fill(e2e, period), 0.95),
        "warm_p95_ms_km": legacy_km_quantile(e2e[warm], censored[warm], 0.95),
        "avg_eval_ms": legacy_avg_eval_ms(arm.events),
        "r_costly_pct": legacy_r_costly_pct(arm.events),
    }


def tsglab_metrics(arm: LegacyArm) -> dict[str, tuple[float, str]]:
    """tsglab's corrected estimate of every legacy summary metric, with the estimator's name."""
    e2e = np.array([e["e2e_ms"] for e in arm.events], dtype=np.float64)
    censored = np.array([e["right_censored"] for e in arm.events], dtype=bool)
    warm = ~np.array([e["in_warmup"] for e in arm.events], dtype=bool)
    period = float(arm.summary["period_ms"])
    km = _quiet(censoring_summary, e2e[warm], censored[warm], 0.95, cap_ms=arm_timeout_s(arm) * 1e3)
    # cost over the warm rows, as the legacy summary's: the columns then differ by estimator only
    warm_attempts = [legacy_attempts(e) for e in _warm_events(arm.events)]
    top = LEGACY_LADDER[-1]
    return {
        "warm_p50_ms": (_quiet(harrell_davis, e2e[warm], 0.5), "Harrell–Davis (Beta weights)"),
        "warm_p95_ms_co": (_quiet(harrell_davis, backfill_co(e2e[warm], period), 0.95),
                           "HD on back-fill >= P (HdrHistogram)"),
        "overall_p95_ms_co": (_quiet(harrell_davis, backfill_co(e2e, period), 0.95),
                              "HD on back-fill >= P (HdrHistogram)"),
        "warm_p95_ms_km": (km.p95_km, f"Kaplan–Meier, NaN if censored > 5 % (here {km.timeouts_rate:.1%})"),
        "avg_eval_ms": (_mean_or_nan([sum(a.eval_ms for a in ats) for ats in warm_attempts]),
                        "warm: eval ms summed over all attempts"),
        "r_costly_pct": (_mean_or_nan([100.0 * any(a.tier == top for a in ats) for ats in warm_attempts]),
                         f"warm: share touching {top} (any attempt)"),
    }


def comparison_table(session: list[LegacyArm], *, strict: bool = True) -> pd.DataFrame:
    """One row per (arm, legacy metric): the legacy estimator recomputed by us and tsglab's beside it.

    Raises :class:`LegacyMismatchError` when a recomputed legacy value differs from the stored summary
    by more than :data:`SUMMARY_TOLERANCE`; with ``strict=False`` it warns and flags the row instead.
    """
    rows = []
    for arm in session:
        ours, corrected = legacy_metrics(arm), tsglab_metrics(arm)
        for key in SUMMARY_METRICS:
            stored = arm.summary[key]
            check = "ok"
            if not _same(stored, ours[key]):
                message = (f"{arm.summary_path}: field '{key}' is {stored!r} but the legacy estimator gives "
                           f"{ours[key]!r} from {arm.events_path.name} (tolerance {SUMMARY_TOLERANCE}); the "
                           "assumptions in tsglab.legacy do not match the script that wrote it. Check the "
                           "files belong together, or import anyway with --allow-mismatch (strict=False).")
                if strict:
                    raise LegacyMismatchError(message)
                warnings.warn(message, TsglabWarning, stacklevel=2)
                check = f"MISMATCH (summary {stored!r})"
            value, estimator = corrected[key]
            rows.append({"arm": arm.mode, "metric": key, "legacy": ours[key], "tsglab": float(value),
                         "tsglab_estimator": estimator, "summary_check": check})
        rows.append({"arm": arm.mode, "metric": "period_ms", "legacy": float(arm.summary["period_ms"]),
                     "tsglab": float(arm.summary["period_ms"]), "tsglab_estimator": "parameter",
                     "summary_check": "ok"})
    return pd.DataFrame(rows)
