"""The controlled executor: generate → check → one same-tier repair → bounded upgrades.

A timeout ends the request as a right-censored observation (no repair: retrying a stalled server
only hides the stall). Other backend failures (connection refused, HTTP errors, malformed answers)
end the request as an error event with its ``error_kind``, unless the spec's retry policy names that
kind: then the same tier is tried again after a backoff, at most ``max_retries`` times. Every attempt
is recorded with its tier, backend, tokens and durations, so cost is summed over the whole cascade.

An attempt's ``cost_ms`` is what it spent: prompt-eval + eval ms as the backend measured them when it
answered (``cost_source="backend"``), or its elapsed time until it timed out or failed
(``cost_source="elapsed"``) — never 0, so a cascade that burns time on stalled attempts is not
flattered. Such an attempt reports no tokens (none were counted) and 0 prompt-eval / eval ms (the
split is unknown); its ``total_ms`` is the same elapsed time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tsglab.config import PolicyConfig, RetryPolicy, tier_index
from tsglab.errors import BackendError, BackendTimeout
from tsglab.events.record import Attempt  # the one attempt type: the event record's
from tsglab.policy.checks import check_answer
from tsglab.policy.ladder import TierLadder

NO_RETRY = RetryPolicy()


@dataclass(frozen=True)
class Execution:
    text: str
    attempts: tuple[Attempt, ...]
    final_tier: str
    upgrades: int
    repaired: bool
    ok: bool  # the final answer passed the executor's checks
    json_ok: bool | None
    refusal: bool
    timed_out: bool
    error_kind: str  # "" or the BackendError kind: timeout, connect_error, http_5xx, malformed_response...
    error: str
    retries: int = 0


def execute(
    ladder: TierLadder,
    config: PolicyConfig,
    prompt: str,
    *,
    tier: str,
    task: str,
    json_schema: dict | None,
    timeout_s: float | None,
    seed: int = 0,
    retry: RetryPolicy = NO_RETRY,
) -> Execution:
    """Run the cascade for one request starting at ``tier``; the baseline policy makes one attempt.

    Upgrades climb ``ladder.tiers`` (the spec's order, lowest rung first) one rung at a time.
    """
    tiers = ladder.tiers
    tier_index(tier, tiers)  # an unknown starting tier is a SpecError naming the ladder, not a KeyError later
    attempts: list[Attempt] = []
    started = time.perf_counter()
    current, kind = tier, "initial"
    upgrades, repaired, retries = 0, False, 0
    repair_of: tuple[str, str] | None = None
    text = ""
    while True:
        remaining = None if timeout_s is None else max(timeout_s - (time.perf_counter() - started), 1e-3)
        backend_name = ladder.backends[current].name
        attempt_started = time.perf_counter()
        try:
            completion = ladder.generate(current, prompt, task=task, json_schema=json_schema,
                                         timeout_s=remaining, repair_of=repair_of, seed=seed)
        except BackendError as exc:
            elapsed_ms = getattr(exc, "elapsed_ms", (time.perf_counter() - attempt_started) * 1e3)
            attempts.append(Attempt(current, kind, ladder.specs[current].model, 0, 0, 0.0, 0.0, elapsed_ms,
                                    float("nan"), 0.0, exc.error_kind, False, exc.error_kind, exc.error_kind,
                                    backend_name, cost_ms=elapsed_ms, cost_source="elapsed"))
            timed_out = isinstance(exc, BackendTimeout)
            if not timed_out and exc.error_kind in retry.on and retries < retry.max_retries:
                backoff_s = retry.backoff_ms * 2**retries / 1e3
                if timeout_s is None or time.perf_counter() - started + backoff_s < timeout_s:
                    time.sleep(backoff_s)
                    retries, kind = retries + 1, "retry"
                    continue
            return Execution(text, tuple(attempts), current, upgrades, repaired, False, None, False,
                             timed_out, exc.error_kind, str(exc), retries)
        text = completion.text
        verdict = check_answer(text, task=task, json_schema=json_schema, config=config)
        attempts.append(Attempt(current, kind, completion.model, completion.prompt_tokens,
                                completion.completion_tokens, completion.prompt_eval_ms, completion.eval_ms,
                                completion.total_ms, completion.ttft_ms, completion.load_ms,
                                completion.finish_reason, verdict.ok, verdict.reason, "", backend_name,
                                dict(completion.extra), cost_ms=completion.prompt_eval_ms + completion.eval_ms,
                                cost_source="backend"))
        final = Execution(text, tuple(attempts), current, upgrades, repaired, verdict.ok, verdict.json_ok,
                          verdict.refusal, False, "", "", retries)
        if verdict.ok or config.kind == "baseline":
            return final
        if config.same_tier_repair and not repaired:
            repaired, kind = True, "repair"
            repair_of = (text, verdict.detail or verdict.reason)
            continue
        rung = tier_index(current, tiers)
        if upgrades < config.max_upgrades and rung < len(tiers) - 1:
            current, kind = tiers[rung + 1], "upgrade"
            upgrades += 1
            repair_of = None
            continue
        return final
