"""Events → one flat DataFrame row per request (the input of every report table).

The columns are defined once, in :data:`FRAME_COLUMNS` (name → dtype); tests and benchmarks that need
a frame build :class:`~tsglab.events.Event` records (e.g. :func:`tsglab.events.synthetic_event`) and
call :func:`events_frame`, so a column cannot drift between them and the report.

``failed`` marks requests that ended with a backend error other than a timeout (connection refused,
HTTP error, malformed answer): they have no latency of an answer. Latency views leave them out and
count them; the P95 guardrail counts them at the SLO cap, so failing fast never makes an arm look
faster. Timeouts are right-censored observations, not failures. ``touched_top`` says a request touched
the top rung of its own ladder (``fingerprint.ladder[-1]``) in any attempt: ``r_costly`` reads it.

Every event is checked first: a NaN, infinite, negative or missing latency is refused with an error
naming the event and the field (:func:`tsglab.events.validate.check_latencies`). The metrics over
this frame are defined in :mod:`tsglab.report.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from tsglab.errors import RunError
from tsglab.events.record import Attempt, Event
from tsglab.events.validate import check_latencies

# One row per request; "object" columns hold str / tuple / None / record values. ``warm`` and ``failed``
# are derived after the rows: warm = not in warm-up and not a cold start; failed = an error other than a
# timeout.
FRAME_COLUMNS: dict[str, str] = {
    "run_id": "object",
    "arm": "object",
    "prompt_id": "object",
    "prompt_sha": "object",  # "" when unknown (version-1 events)
    "seq": "int64",
    "segment": "int64",
    "task": "object",
    "ctx_bucket": "object",
    "lang": "object",
    "detected_task": "object",
    "score": "float64",
    "in_warmup": "bool",
    "cold_start": "bool",
    "raw_ms": "float64",
    "co_ms": "float64",
    "dispatch_lag_ms": "float64",
    "intended_ns": "int64",
    "ttft_ms": "float64",
    "cost_ms": "float64",
    "cost_source": "object",
    "eval_ms": "float64",
    "overhead_ms": "float64",
    "timeout": "bool",
    "timeout_ms": "float64",
    "initial_tier": "object",
    "final_tier": "object",
    "ladder": "object",  # the event's fingerprint.ladder (tuple of tier names, lowest rung first)
    "touched_top": "bool",  # the column r_costly reads
    "upgrades": "int64",
    "repaired": "bool",
    "fast_lane": "bool",
    "n_attempts": "int64",
    "completion_tokens": "int64",
    # decode speed inputs: tokens after the first, and the generation time after the first token
    "decode_tokens": "int64",
    "decode_ms": "float64",
    "quality": "float64",
    "json_ok": "object",  # True / False / None (no JSON contract)
    "refusal": "bool",
    "error_kind": "object",
    "error_message": "object",  # "" when the request did not fail
    "energy": "object",  # the event's Energy record, summarised by tsglab.energy.summarize_energy
    "warm": "bool",
    "failed": "bool",
}
_DERIVED = ("warm", "failed")


def _decoded(attempts: Sequence[Attempt]) -> list[Attempt]:
    """Attempts that decoded more than one token in a measured time (failed attempts decode none)."""
    return [a for a in attempts if a.completion_tokens > 1 and a.eval_ms > 0]


def _row(e: Event) -> tuple:
    lat, route, quality, bucket, attempts = e.latency, e.route, e.quality, e.bucket, e.attempts
    decoded = _decoded(attempts)
    ladder = e.fingerprint.ladder
    return (
        e.run_id, e.arm, e.prompt_id, e.prompt_sha, e.seq, e.segment,
        bucket.get("task", ""), bucket.get("ctx_bucket", ""), bucket.get("lang", ""),
        e.plan.task, e.plan.score, e.in_warmup, e.cold_start,
        lat.raw_ms, lat.co_ms, lat.dispatch_lag_ms, e.schedule.intended_start_ns, lat.ttft_ms, lat.cost_ms,
        lat.cost_source, lat.eval_ms, lat.overhead_ms,
        e.censoring.timeout, e.censoring.timeout_s * 1e3,
        route.initial, route.final, ladder, bool(ladder) and ladder[-1] in route.tiers_touched,
        route.upgrades, route.repaired, route.fast_lane,
        len(attempts), sum(a.completion_tokens for a in attempts),
        sum(a.completion_tokens - 1 for a in decoded), sum(a.eval_ms for a in decoded),
        quality.score, quality.json_ok, quality.refusal,
        e.error.kind if e.error is not None else "", e.error.message if e.error is not None else "", e.energy,
    )


def events_frame(events: Sequence[Event]) -> pd.DataFrame:
    """One row per event with the columns of :data:`FRAME_COLUMNS`, in that order."""
    if not events:
        raise RunError("the run has no events yet; nothing to report.")
    for i, e in enumerate(events):
        if not isinstance(e, Event):
            raise RunError(f"events[{i}]: expected a tsglab.events.Event; got {type(e).__name__}. Read events with "
                           "tsglab.events.read_events or build them with Event.answered / synthetic_event.")
        check_latencies(e, where=f"events[{i}]")
    names = [name for name in FRAME_COLUMNS if name not in _DERIVED]
    frame = pd.DataFrame.from_records([_row(e) for e in events], columns=names)
    frame = frame.astype({name: dtype for name, dtype in FRAME_COLUMNS.items() if name not in _DERIVED})
    frame["warm"] = ~frame["in_warmup"] & ~frame["cold_start"]
    frame["failed"] = (frame["error_kind"] != "") & ~frame["timeout"]
    return frame
