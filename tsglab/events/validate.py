"""Checks an event must pass before any statistic reads it: every latency is a finite number ≥ 0 ms.

A NaN latency drops out of a quantile silently, an infinite one sits above every cap, and a negative
one lowers a P95: each can make a slower arm pass the guardrail. So an event whose latency is NaN,
infinite, negative, missing or not a number is refused — by :func:`tsglab.events.read_events` with
the events file, the 1-based line and the field, by :class:`tsglab.events.EventWriter` before it
writes, and by :func:`tsglab.report.frame.events_frame` for events built in memory.

The record's decoder (msgspec) refuses such values too, but it cannot say *which* of them it saw: NaN
and infinity are not JSON, and a file written by Python's ``json`` holds them as ``NaN`` / ``Infinity``
literals, which msgspec rejects as malformed JSON. These checks read the parsed object (a dict from
the file, or an :class:`~tsglab.events.record.Event`) and name the field and the problem.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

from tsglab.errors import RunError

# Every duration of the event's ``latency`` block; ``ttft_ms`` and ``overhead_ms`` may be null
# (no first token; not measured, e.g. in legacy imports or for a request without a gateway result).
LATENCY_FIELDS = ("raw_ms", "co_ms", "dispatch_lag_ms", "eval_ms", "prompt_eval_ms", "cost_ms")
NULLABLE_LATENCY_FIELDS = ("ttft_ms", "overhead_ms")
# Durations of each attempt; ``ttft_ms`` is null when no first token was measured.
ATTEMPT_FIELDS = ("prompt_eval_ms", "eval_ms", "total_ms", "load_ms", "cost_ms")
NULLABLE_ATTEMPT_FIELDS = ("ttft_ms",)


@dataclass(frozen=True)
class LatencyProblem:
    """The first invalid latency of an event: its dotted ``field``, the ``value`` read and what is wrong."""

    field: str
    value: Any
    reason: str  # "is NaN", "is infinite", "is negative", "is missing", "is not a number"


def _get(obj: Any, name: str) -> Any:
    # the same walk reads a parsed JSON dict and a typed record
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


_MAX = sys.float_info.max


def _reason(value: Any, nullable: bool) -> str | None:
    """What is wrong with one duration, or None."""
    if type(value) is float and 0.0 <= value <= _MAX:  # the common case first: NaN and inf fail the comparison
        return None
    if value is None:
        return None if nullable else "is missing"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "is not a number"
    if math.isnan(value):
        return "is NaN"
    if math.isinf(value):
        return "is infinite"
    if value < 0:
        return "is negative"
    return None


_LATENCY_CHECKS = tuple((name, name in NULLABLE_LATENCY_FIELDS) for name in LATENCY_FIELDS + NULLABLE_LATENCY_FIELDS)
_ATTEMPT_CHECKS = tuple((name, name in NULLABLE_ATTEMPT_FIELDS) for name in ATTEMPT_FIELDS + NULLABLE_ATTEMPT_FIELDS)


def latency_problem(event: Any) -> LatencyProblem | None:
    """The first latency of ``event`` (an :class:`~tsglab.events.record.Event` or its JSON dict) that is
    not a finite number ≥ 0 ms, or None when all are."""
    latency = _get(event, "latency")
    if latency is None or isinstance(latency, bool | int | float | str | list):
        return LatencyProblem("latency", latency, "is missing" if latency is None else "is not an object")
    for name, nullable in _LATENCY_CHECKS:
        value = _get(latency, name)
        reason = _reason(value, nullable)
        if reason:
            return LatencyProblem(f"latency.{name}", value, reason)
    attempts = _get(event, "attempts") or ()
    if not isinstance(attempts, list | tuple):
        return None  # not a list: the record's decoder names it
    for i, attempt in enumerate(attempts):
        if isinstance(attempt, bool | int | float | str | list | None):
            continue  # not an object: the record's decoder names it
        for name, nullable in _ATTEMPT_CHECKS:
            value = _get(attempt, name)
            reason = _reason(value, nullable)
            if reason:
                return LatencyProblem(f"attempts[{i}].{name}", value, reason)
    return None


def check_latencies(event: Any, *, where: str) -> None:
    """Raise :class:`~tsglab.errors.RunError` naming ``where`` (e.g. ``path:line``), the field and the
    value when a latency of ``event`` is NaN, infinite, negative, missing or not a number."""
    problem = latency_problem(event)
    if problem is None:
        return
    raise RunError(
        f"{where}: field '{problem.field}' {problem.reason} (got {problem.value!r}); every latency must be a "
        f"finite number of milliseconds ≥ 0. The event (request_id {_get(event, 'request_id')!r}) was not written "
        "by tsglab's recorder or was edited: correct or delete that event, or re-run the arm."
    )
