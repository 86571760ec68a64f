"""Did the load generator deliver the load the spec asked for? One rule, used by the runner's summary
(``run.json``), the CLI's summary line and the report's verdict.

A segment *under-delivered* when either

- its achieved dispatch rate is below :data:`RATE_FLOOR` (95 %) of the planned rate (the mean rate of
  the drawn schedule: for Poisson or gamma arrivals that is the draw's own rate, not the nominal
  ``rate_per_s``, so a short random schedule is not mistaken for a slow generator), or
- its dispatch-lag p99 (dispatched − intended start) exceeds :data:`LAG_P99_LIMIT_MS` (50 ms).

Why 50 ms: a request that starts 50 ms late has been held back by the generator or by every worker being
busy for longer than an LLM's time to first token on a small model; a tail that late means the arrival
process the latencies were measured under is not the one planned (requests bunch up behind a backlog).
A generator that keeps up sends within a few milliseconds even on a busy 2-core machine
(``benchmarks/results/bench_load.md``), so the limit does not flag healthy runs. The rate rule catches a
sustained shortfall (the concurrency cannot carry the rate); the lag rule also catches a backlog that
later drains, which leaves the mean rate intact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["LAG_P99_LIMIT_MS", "RATE_FLOOR", "check_delivery", "delivery_warnings"]

RATE_FLOOR = 0.95
LAG_P99_LIMIT_MS = 50.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def check_delivery(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The delivery verdict of one load-generator summary (the ``load_generator`` dict of ``run.json``).

    Returns ``{"under_delivered": bool, "reasons": [str, ...], "rate_ratio": float | None,
    "rate_floor": RATE_FLOOR, "lag_p99_limit_ms": LAG_P99_LIMIT_MS}``. A figure that is missing (fewer
    than two requests sent) is not judged."""
    planned = _number(summary.get("planned_rate_per_s"))
    achieved = _number(summary.get("achieved_rate_per_s"))
    lag = summary.get("dispatch_lag_ms")
    lag_p99 = _number(lag.get("p99")) if isinstance(lag, Mapping) else None
    reasons = []
    ratio = achieved / planned if planned and achieved is not None else None
    if ratio is not None and planned is not None and achieved is not None and ratio < RATE_FLOOR:
        reasons.append(f"achieved {achieved:,.1f} req/s of {planned:,.1f} planned ({ratio:.0%} < {RATE_FLOOR:.0%})")
    if lag_p99 is not None and lag_p99 > LAG_P99_LIMIT_MS:
        reasons.append(f"dispatch-lag p99 {_ms(lag_p99)} > {LAG_P99_LIMIT_MS:g} ms")
    return {"under_delivered": bool(reasons), "reasons": reasons,
            "rate_ratio": round(ratio, 4) if ratio is not None else None,
            "rate_floor": RATE_FLOOR, "lag_p99_limit_ms": LAG_P99_LIMIT_MS}


def delivery_warnings(manifest: Mapping[str, Any]) -> list[str]:
    """One line per segment of a run (``run.json``) whose load generator under-delivered; empty when every
    segment kept up (or the run has no load-generator figures). The rule is re-applied to the stored
    figures, so runs written before the verdict was recorded are judged too."""
    segments = [s for s in manifest.get("segments") or [] if isinstance(s, Mapping)]
    summaries = [(s.get("segment"), s.get("load_generator")) for s in segments if s.get("load_generator")]
    if not summaries and manifest.get("load_generator"):
        summaries = [(None, manifest["load_generator"])]
    lines = []
    for segment, summary in summaries:
        if not isinstance(summary, Mapping):
            continue
        verdict = check_delivery(summary)
        if verdict["under_delivered"]:
            where = f"segment {segment}: " if segment is not None and len(summaries) > 1 else ""
            lines.append(f"{where}{'; '.join(verdict['reasons'])}")
    return lines


def _ms(value: float) -> str:
    return f"{value / 1e3:,.2f} s" if value >= 1e3 else f"{value:.1f} ms"
