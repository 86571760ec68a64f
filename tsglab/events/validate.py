"""Checks an event must pass before any statistic reads it: every latency is a finite number ≥ 0 ms.

A NaN latency drops out of a quantile silently, an infinite one sits above every cap, and a negative
one lowers a P95: each can make a slower arm pass the guardrail. So an event whose latency is NaN,
infinite, negative, missing or not a number is refused — by :func:`tsglab.events.read_events` with
the events file, the 1-based line and the field, and by :func:`tsglab.report.frame.events_frame` for
events built in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tsglab.errors import RunError

# Every duration of the event's ``latency`` block; ``ttft_ms`` and ``overhead_ms`` may be null
# (no first token; not measured, e.g. in legacy imports).
LATENCY_FIELDS = ("raw_ms", "co_ms", "dispatch_lag_ms", "eval_ms", "prompt_eval_ms", "cost_ms")
NULLABLE_LATENCY_FIELDS = ("ttft_ms", "overhead_ms")
# Durations of each attempt; ``cost_ms`` is absent from events written before it existed.
ATTEMPT_FIELDS = ("prompt_eval_ms", "eval_ms", "total_ms")
OPTIONAL_ATTEMPT_FIELDS = ("cost_ms", "load_ms", "ttft_ms")


@dataclass(frozen=True)
class LatencyProblem:
    """The first invalid latency of an event: its dotted ``field``, the ``value`` read and what is wrong."""

    field: str
    value: Any
    reason: str  # "is NaN", "is infinite", "is negative", "is missing", "is not a number"


def _problem(field: str, value: Any, *, nullable: bool) -> LatencyProblem | None:
    if value is None:
        return None if nullable else LatencyProblem(field, value, "is missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return LatencyProblem(field, value, "is not a number")
    if math.isnan(value):
        return LatencyProblem(field, value, "is NaN")
    if math.isinf(value):
        return LatencyProblem(field, value, "is infinite")
    if value < 0:
        return LatencyProblem(field, value, "is negative")
    return None


def latency_problem(event: dict[str, Any], *, require_latency: bool = True) -> LatencyProblem | None:
    """The first latency of ``event`` that is not a finite number ≥ 0 ms, or None when all are.

    ``require_latency=False`` accepts an event without a ``latency`` block (the log reader stores any
    record; :func:`tsglab.report.frame.events_frame` requires the block). Present blocks are checked
    in full either way."""
    latency = event.get("latency")
    if latency is None and not require_latency:
        return None
    if not isinstance(latency, dict):
        return LatencyProblem("latency", latency, "is missing" if latency is None else "is not an object")
    for name in LATENCY_FIELDS + NULLABLE_LATENCY_FIELDS:
        problem = _problem(f"latency.{name}", latency.get(name), nullable=name in NULLABLE_LATENCY_FIELDS)
        if problem:
            return problem
    for i, attempt in enumerate(event.get("attempts") or ()):
        for name in ATTEMPT_FIELDS + OPTIONAL_ATTEMPT_FIELDS:
            problem = _problem(f"attempts[{i}].{name}", attempt.get(name), nullable=name in OPTIONAL_ATTEMPT_FIELDS)
            if problem:
                return problem
    return None


def check_latencies(event: dict[str, Any], *, where: str, require_latency: bool = True) -> None:
    """Raise :class:`~tsglab.errors.RunError` naming ``where`` (e.g. ``path:line``), the field and the
    value when a latency of ``event`` is NaN, infinite, negative, missing or not a number."""
    problem = latency_problem(event, require_latency=require_latency)
    if problem is None:
        return
    raise RunError(
        f"{where}: field '{problem.field}' {problem.reason} (got {problem.value!r}); every latency must be a "
        f"finite number of milliseconds ≥ 0. The event (request_id {event.get('request_id')!r}) was not written "
        "by tsglab's recorder or was edited: correct or delete that event, or re-run the arm."
    )
