"""Events → one flat DataFrame row per request (the input of every report table).

``failed`` marks requests that ended with a backend error other than a timeout (connection refused,
HTTP error, malformed answer): they have no latency of an answer. Latency views leave them out and
count them; the P95 guardrail counts them at the SLO cap, so failing fast never makes an arm look
faster. Timeouts are right-censored observations, not failures.

Every event is checked first: a NaN, infinite, negative or missing latency is refused with an error
naming the event and the field (:func:`tsglab.events.validate.check_latencies`). The metrics over
this frame are defined in :mod:`tsglab.report.metrics`.
"""

from __future__ import annotations

import pandas as pd

from tsglab.errors import RunError
from tsglab.events.validate import check_latencies
from tsglab.report.metrics import TOP_TIER


def _decoded(attempts: list[dict]) -> list[dict]:
    """Attempts that decoded more than one token in a measured time (failed attempts decode none)."""
    return [a for a in attempts if a["completion_tokens"] > 1 and a["eval_ms"] > 0]


def events_frame(events: list[dict]) -> pd.DataFrame:
    if not events:
        raise RunError("the run has no events yet; nothing to report.")
    rows = []
    for i, e in enumerate(events):
        check_latencies(e, where=f"events[{i}]")
        lat, route, quality, cens = e["latency"], e["route"], e["quality"], e["censoring"]
        attempts = e["attempts"]
        rows.append({
            "run_id": e["run_id"],
            "arm": e["arm"],
            "prompt_id": e["prompt_id"],
            "seq": e["seq"],
            "segment": e["segment"],
            "task": e["bucket"].get("task", ""),
            "ctx_bucket": e["bucket"].get("ctx_bucket", ""),
            "lang": e["bucket"].get("lang", ""),
            "detected_task": e["plan"]["task"],
            "score": e["plan"]["score"],
            "in_warmup": bool(e["in_warmup"]),
            "cold_start": bool(e["cold_start"]),
            "raw_ms": lat["raw_ms"],
            "co_ms": lat["co_ms"],
            "dispatch_lag_ms": lat["dispatch_lag_ms"],
            "intended_ns": e["schedule"]["intended_start_ns"],
            "ttft_ms": lat["ttft_ms"],
            "cost_ms": lat["cost_ms"],
            "cost_source": lat.get("cost_source", "attempts"),
            "eval_ms": lat["eval_ms"],
            "overhead_ms": lat["overhead_ms"],
            "timeout": bool(cens["timeout"]),
            "timeout_ms": float(cens["timeout_s"]) * 1e3,
            "initial_tier": route["initial"],
            "final_tier": route["final"],
            "touched_enh": TOP_TIER in route["tiers_touched"],  # the column r_costly reads
            "upgrades": route["upgrades"],
            "repaired": bool(route["repaired"]),
            "fast_lane": bool(route["fast_lane"]),
            "n_attempts": len(attempts),
            "completion_tokens": sum(a["completion_tokens"] for a in attempts),
            # decode speed inputs: tokens after the first, and the generation time after the first token
            "decode_tokens": sum(a["completion_tokens"] - 1 for a in _decoded(attempts)),
            "decode_ms": sum(a["eval_ms"] for a in _decoded(attempts)),
            "quality": quality["score"],
            "json_ok": quality["json_ok"],
            "refusal": bool(quality["refusal"]),
            "error_kind": (e.get("error") or {}).get("kind", ""),
            "energy": e.get("energy") or {},  # the event's field, summarised by tsglab.energy.summarize_energy
        })
    frame = pd.DataFrame(rows)
    frame["warm"] = ~frame["in_warmup"] & ~frame["cold_start"]
    frame["failed"] = (frame["error_kind"] != "") & ~frame["timeout"]
    return frame

