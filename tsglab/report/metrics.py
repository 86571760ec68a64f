"""Every non-latency metric of a report, defined once over the events frame.

The input is the frame of :func:`tsglab.report.frame.events_frame` (one row per request), or any
subset of it: one arm, one task, one final tier. The headline, the per-task and per-tier tables, the
routing and cost table, Family C and the framework comparison all call these functions; none of
them computes a metric of its own. Latency quantiles (P50, P95, their intervals) are not here: they
are statistics of :mod:`tsglab.stats`.

Rules
-----
JSON failure
    A request of the json task (the suite's pre-treatment stratum ``task`` is ``"json"``) fails the
    JSON contract **unless it delivered valid JSON** (``json_ok`` is True). A timed-out request, a
    failed request (backend error, runner exception) and a request without a JSON verdict all count
    as failures; the denominator is every json-task request, answered or not. A timeout is a
    censored observation for latency, but for compliance it is a request that did not deliver.
Cost
    ``cost_ms`` of a request is summed over every attempt (repairs, upgrades and retries included).
    An attempt that answered costs its prompt-eval + eval ms as its backend measured them
    (``cost_source: "backend"`` in the attempt record); a timed-out or failed attempt costs its
    elapsed time until it ended (``cost_source: "elapsed"``), never 0. A request that has no attempt
    record (abandoned by the watchdog, or a runner exception) costs its elapsed time since dispatch
    (``latency.cost_source: "elapsed"``).
Rates
    Every rate is over all requests of the frame — answered, timed out and failed alike; over zero
    requests it is NaN. A NaN in a column propagates (nothing is silently dropped).

References: DESIGN.md §3 ("Cost", "Family C").
"""

from __future__ import annotations

import math
from typing import NamedTuple

import pandas as pd

from tsglab.config import DEFAULT_TIERS
from tsglab.errors import SpecError

JSON_TASK = "json"

__all__ = [
    "JSON_TASK",
    "JsonFailures",
    "attempts_per_request",
    "avg_cost_ms",
    "decode_tokens_per_s",
    "error_rate",
    "frame_ladder",
    "initial_tier_share",
    "is_json_request",
    "json_fail_rate",
    "json_failed",
    "json_failures",
    "mean_quality",
    "r_costly",
    "refusal_rate",
    "retry_rate",
    "routing_metrics",
    "timeout_rate",
    "tokens_per_request",
    "upgrade_rate",
]


def _mean(values: pd.Series) -> float:
    """Mean over every row; NaN over zero rows, and a NaN value makes the mean NaN (never skipped)."""
    return float(values.astype(float).mean(skipna=False)) if len(values) else math.nan


# ---- JSON compliance ---------------------------------------------------------------------------


class JsonFailures(NamedTuple):
    """JSON-contract failures among the json-task requests; unpacks as ``failures, n = ...``."""

    failures: int
    n: int

    @property
    def rate(self) -> float:
        """``failures / n``; NaN when there is no json-task request."""
        return self.failures / self.n if self.n else math.nan


def is_json_request(frame: pd.DataFrame) -> pd.Series:
    """Per request: True when its suite task (pre-treatment stratum ``task``) is ``"json"``."""
    return frame["task"] == JSON_TASK


def json_failed(frame: pd.DataFrame) -> pd.Series:
    """Per request: True when a json-task request did not deliver valid JSON (``json_ok`` is not True).

    Timed-out, failed and unanswered json requests are failures; requests of other tasks are never
    failures (False).
    """
    return is_json_request(frame) & ~frame["json_ok"].eq(True)


def json_failures(frame: pd.DataFrame) -> JsonFailures:
    """Count of JSON-contract failures and of json-task requests in ``frame`` (the Family C input)."""
    return JsonFailures(failures=int(json_failed(frame).sum()), n=int(is_json_request(frame).sum()))


def json_fail_rate(frame: pd.DataFrame) -> float:
    """Share of json-task requests that failed the JSON contract; NaN when there are none."""
    return json_failures(frame).rate


# ---- quality and cost --------------------------------------------------------------------------


def mean_quality(frame: pd.DataFrame) -> float:
    """Mean quality score in [0, 1] over every request (a request without an answer scores 0)."""
    return _mean(frame["quality"])


def avg_cost_ms(frame: pd.DataFrame) -> float:
    """Average eval ms per request (≈ GPU-ms): ``cost_ms`` summed over every attempt, failed ones at
    their elapsed time. Tables label it ``avg_eval_ms``."""
    return _mean(frame["cost_ms"])


def tokens_per_request(frame: pd.DataFrame) -> float:
    """Completion tokens per request, summed over every attempt (a timed-out or failed attempt
    reports none)."""
    return _mean(frame["completion_tokens"])


def attempts_per_request(frame: pd.DataFrame) -> float:
    """Attempts per request (initial, repairs, upgrades, retries)."""
    return _mean(frame["n_attempts"])


def decode_tokens_per_s(frame: pd.DataFrame) -> float:
    """Decode speed: completion tokens after the first over the generation time after the first
    token, summed over every attempt that decoded more than one token (ratio of sums); NaN when none
    did."""
    decode_ms = float(frame["decode_ms"].sum())
    return float(frame["decode_tokens"].sum()) / decode_ms * 1e3 if decode_ms > 0 else math.nan


# ---- routing -----------------------------------------------------------------------------------


def frame_ladder(frame: pd.DataFrame) -> tuple[str, ...]:
    """The tier ladder (lowest rung first) the frame's requests ran on: the events' ``fingerprint.ladder``
    (column ``ladder``); :data:`tsglab.config.DEFAULT_TIERS` for a frame without it."""
    if "ladder" not in frame or not len(frame):
        return DEFAULT_TIERS
    ladders = list(dict.fromkeys(tuple(x) for x in frame["ladder"]))
    merged = tuple(dict.fromkeys(t for ladder in ladders for t in ladder))  # runs on different ladders: union
    return merged or DEFAULT_TIERS


def initial_tier_share(frame: pd.DataFrame, tier: str, ladder: tuple[str, ...] | None = None) -> float:
    """``r_<tier>``: share of requests whose initial (routed) tier is ``tier``, a rung of ``ladder``
    (default: the frame's own ladder)."""
    ladder = ladder or frame_ladder(frame)
    if tier not in ladder:
        raise SpecError(f"tier {tier!r} is not on the ladder {list(ladder)}; name one of its rungs.")
    return _mean(frame["initial_tier"] == tier)


def r_costly(frame: pd.DataFrame) -> float:
    """Share of requests that touched the top rung of their ladder in any attempt (``touched_top``)."""
    return _mean(frame["touched_top"])


def retry_rate(frame: pd.DataFrame) -> float:
    """Share of requests with more than one attempt (a repair, an upgrade or a retry)."""
    return _mean(frame["n_attempts"] > 1)


def upgrade_rate(frame: pd.DataFrame) -> float:
    """Share of requests upgraded at least once."""
    return _mean(frame["upgrades"] > 0)


def refusal_rate(frame: pd.DataFrame) -> float:
    """Share of requests whose final answer was a refusal."""
    return _mean(frame["refusal"])


def timeout_rate(frame: pd.DataFrame) -> float:
    """Share of requests that timed out (right-censored)."""
    return _mean(frame["timeout"])


def error_rate(frame: pd.DataFrame) -> float:
    """Share of requests that failed: ended with an error other than a timeout (``failed``)."""
    return _mean(frame["failed"])


def routing_metrics(frame: pd.DataFrame, ladder: tuple[str, ...] | None = None) -> dict[str, float]:
    """Routing and cost of one arm (paper §6.4): ``n``, ``r_<tier>`` for every rung of ``ladder`` (default:
    the frame's own), ``r_costly``, retry / upgrade / refusal rates, attempts, ``avg_eval_ms`` and tokens
    per request."""
    ladder = ladder or frame_ladder(frame)
    metrics: dict[str, float] = {"n": len(frame)}
    metrics.update({f"r_{tier}": initial_tier_share(frame, tier, ladder) for tier in ladder})
    metrics.update({
        "r_costly": r_costly(frame),
        "retry_rate": retry_rate(frame),
        "upgrade_rate": upgrade_rate(frame),
        "refusal_rate": refusal_rate(frame),
        "attempts_per_req": attempts_per_request(frame),
        "avg_eval_ms": avg_cost_ms(frame),
        "tokens_per_req": tokens_per_request(frame),
    })
    return metrics
