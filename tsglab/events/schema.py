"""One event per request: what the gateway decided, every attempt, the schedule stamps and the outcome.

``latency.cost_ms`` is the sum of the attempts' ``cost_ms``: an attempt that answered costs its
prompt-eval + eval ms as its backend measured them (``cost_source: "backend"``), a timed-out or failed
attempt its elapsed time (``cost_source: "elapsed"``). A request with no attempt record (abandoned by
the runner's watchdog, or a runner exception) costs its elapsed time since dispatch, and
``latency.cost_source`` says ``"elapsed"`` instead of ``"attempts"``. ``latency.eval_ms`` and
``latency.prompt_eval_ms`` stay the backends' measured durations (a failed attempt has none).
"""

from __future__ import annotations

import math
from typing import Any

from tsglab._version import __version__
from tsglab.events.log import SCHEMA_VERSION


def _finite(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def build_event(
    *,
    run_id: str,
    arm: str,
    seq: int,
    segment: int,
    item,
    handled,
    quality,
    intended_ns: int,
    dispatched_ns: int,
    completed_ns: int,
    in_warmup: bool,
    timeout_s: float,
    fingerprint: dict[str, Any],
    energy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the event dict (schema version :data:`SCHEMA_VERSION`) for one handled request."""
    ex = handled.execution
    attempts = [a.to_dict() for a in ex.attempts]
    for attempt in attempts:
        attempt["ttft_ms"] = _finite(attempt["ttft_ms"])
    cold_start = any(a.load_ms > 0 for a in ex.attempts)
    eval_ms = sum(a.eval_ms for a in ex.attempts)
    prompt_eval_ms = sum(a.prompt_eval_ms for a in ex.attempts)
    first_ttft = ex.attempts[0].ttft_ms if ex.attempts else math.nan
    tiers_touched = sorted({a.tier for a in ex.attempts})
    raw_ms = (completed_ns - dispatched_ns) / 1e6
    if ex.attempts:
        cost_ms, cost_source = sum(a.cost_ms for a in ex.attempts), "attempts"
    else:  # no attempt record survived (watchdog, runner exception): the request ran for raw_ms
        cost_ms, cost_source = raw_ms, "elapsed"
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "arm": arm,
        "request_id": f"{run_id}/{arm}/{item.id}",
        "prompt_id": item.id,
        "seq": seq,
        "segment": segment,
        "bucket": dict(item.strata),
        "plan": {
            "score": handled.plan.score,
            "raw_score": handled.plan.raw_score,
            "task": handled.plan.task,
            "chars": handled.plan.chars,
            "marks": handled.plan.marks,
            "heavy": handled.plan.heavy,
            "risk_factors": list(handled.plan.risk_factors),
        },
        "route": {
            "initial": handled.decision.tier,
            "score_tier": handled.decision.score_tier,
            "floor": handled.decision.floor,
            "final": ex.final_tier,
            "upgrades": ex.upgrades,
            "repaired": ex.repaired,
            "fast_lane": handled.decision.fast_lane,
            "reason": handled.decision.reason,
            "score": handled.decision.score,
            "tiers_touched": tiers_touched,
        },
        "attempts": attempts,
        "schedule": {"intended_start_ns": intended_ns, "dispatched_ns": dispatched_ns, "completed_ns": completed_ns},
        "latency": {
            "raw_ms": raw_ms,
            "co_ms": (completed_ns - intended_ns) / 1e6,
            "dispatch_lag_ms": (dispatched_ns - intended_ns) / 1e6,
            "ttft_ms": _finite(first_ttft),
            "eval_ms": eval_ms,
            "prompt_eval_ms": prompt_eval_ms,
            "cost_ms": cost_ms,
            "cost_source": cost_source,
            "overhead_ms": handled.overhead_ms,
        },
        "in_warmup": in_warmup,
        "cold_start": cold_start,
        "censoring": {"timeout": ex.timed_out, "right_censored": ex.timed_out, "timeout_s": timeout_s},
        "quality": {
            "score": quality.score,
            "json_ok": quality.json_ok,
            "refusal": ex.refusal,
            "detail": quality.detail,
            "check_ok": ex.ok,
        },
        "answer": ex.text,
        "error": {"kind": ex.error_kind, "message": ex.error} if ex.error_kind else None,
        "energy": energy or {"available": False, "reason": "no energy meter configured for this run"},
        "fingerprint": fingerprint,
        "tsglab_version": __version__,
    }
