"""The event's ``energy`` field and the per-arm energy summary for reports.

Unmeasured energy is ``{"available": False, "reason": ...}``, never zeros.

Events are read by field name (:func:`field_of`): :class:`tsglab.events.Event` records and their JSON
dicts alike, since this layer sits below the events layer and cannot import the record.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from tsglab.energy._errors import EnergyError

J_PER_MWH = 3.6


def unavailable(reason: str) -> dict[str, Any]:
    """The ``energy`` field of an event whose energy was not measured."""
    if not isinstance(reason, str) or not reason.strip():
        raise EnergyError(f"`reason` must say why energy is unavailable; got {reason!r}.")
    return {"available": False, "reason": reason}


def field_of(obj: Any, name: str) -> Any:
    """``obj[name]`` for a mapping (an event's JSON), else ``getattr(obj, name)`` (a record); None if absent."""
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def energy_fields(result, request_id: str) -> dict[str, Any]:
    """The ``energy`` field for one request of an :class:`~tsglab.energy.EnergyApportionment`.

    A request outside the sampled span is unavailable (with the reason), not zero. Figures that are
    undefined (no tokens, or zero net energy) are None.
    """
    i = result.index(request_id)
    if not bool(result.measured[i]):
        return unavailable("request lies outside the sampled energy trace")
    return {
        "available": True,
        "meter": result.meter,
        "domain": result.domain,
        "joules": _number(result.joules[i]),
        "tokens": _number(result.tokens[i]),
        "mwh_per_1k_tokens": _number(result.mwh_per_1k_tokens[i]),
        "tokens_per_s_per_w": _number(result.tokens_per_s_per_w[i]),
        "coverage": _number(result.coverage[i]),
        "idle_w": _number(result.idle_w),
        "window_s": _number(result.window_s),
        "sample_hz_achieved": _number(result.sample_hz_achieved),
    }


def _event_tokens(event: Any, energy: Any) -> float:
    if field_of(energy, "tokens") is not None:
        return float(field_of(energy, "tokens"))
    return float(sum(int(field_of(a, "prompt_tokens") or 0) + int(field_of(a, "completion_tokens") or 0)
                     for a in field_of(event, "attempts") or ()))


def summarize_energy(events: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Energy per arm: ``n_measured``, ``total_j``, ``j_per_request_mean``, ``mwh_per_1k_tokens``
    (total J / total tokens) and ``tokens_per_s_per_w`` (total tokens / total J), with the meter.

    ``events`` are :class:`tsglab.events.Event` records or mappings with ``arm``, ``energy`` (a record
    or its dict) and optionally ``attempts``. An arm with no measured event gets ``{"available": False,
    "reason": ..., "n_events": n}``, the most common reason its events give - never zeros.
    """
    by_arm: dict[str, list[Any]] = {}
    for event in events:
        by_arm.setdefault(str(field_of(event, "arm") or ""), []).append(event)
    summary: dict[str, dict[str, Any]] = {}
    for arm, arm_events in by_arm.items():
        measured: list[tuple[float, float]] = []
        reasons: Counter[str] = Counter()
        meters: Counter[str] = Counter()
        for event in arm_events:
            energy = field_of(event, "energy") or {}
            joules = field_of(energy, "joules")
            if field_of(energy, "available") and joules is not None and math.isfinite(float(joules)):
                measured.append((float(joules), _event_tokens(event, energy)))
                meters[str(field_of(energy, "meter") or "unknown")] += 1
            else:
                reasons[str(field_of(energy, "reason") or "no energy field in the event")] += 1
        if not measured:
            summary[arm] = {"available": False, "reason": reasons.most_common(1)[0][0],
                            "n_events": len(arm_events), "n_measured": 0}
            continue
        total_j = sum(j for j, _ in measured)
        total_tokens = sum(t for _, t in measured)
        summary[arm] = {
            "available": True,
            "meter": meters.most_common(1)[0][0],
            "n_events": len(arm_events),
            "n_measured": len(measured),
            "total_j": total_j,
            "j_per_request_mean": total_j / len(measured),
            "total_tokens": total_tokens,
            "mwh_per_1k_tokens": total_j / J_PER_MWH / total_tokens * 1e3 if total_tokens > 0 else None,
            "tokens_per_s_per_w": total_tokens / total_j if total_j > 0 else None,
            "unmeasured_reasons": dict(reasons),
        }
    return summary
