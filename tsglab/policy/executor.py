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

import dataclasses
import threading
import time
from dataclasses import dataclass, field

from tsglab.backends.base import Completion
from tsglab.config import PolicyConfig, RetryPolicy, tier_index
from tsglab.config.guard import GuardConfig
from tsglab.errors import BackendCancelled, BackendError, BackendTimeout
from tsglab.events.record import Attempt, Enforcement  # the one attempt type: the event record's
from tsglab.policy.checks import check_answer
from tsglab.policy.enforce import GuardStage, StageResult, cancelled_attempt, repair_detail
from tsglab.policy.guardians import redact
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
    enforcement: Enforcement | None = None  # what the arm's guardians did (None: the arm has none)


def _answered(completion: Completion, tier: str, kind: str, backend: str, check_ok: bool | None,
              check_reason: str) -> Attempt:
    c = completion
    return Attempt(tier, kind, c.model, c.prompt_tokens, c.completion_tokens, c.prompt_eval_ms, c.eval_ms, c.total_ms,
                   c.ttft_ms, c.load_ms, c.finish_reason, check_ok, check_reason, "", backend, dict(c.extra),
                   cost_ms=c.prompt_eval_ms + c.eval_ms, cost_source="backend")


def _failed(exc: BackendError, tier: str, kind: str, model: str, backend: str, elapsed_ms: float) -> Attempt:
    tokens = getattr(exc, "completion_tokens", 0)
    return Attempt(tier, kind, model, getattr(exc, "prompt_tokens", 0), tokens, 0.0, 0.0, elapsed_ms, None, 0.0,
                   exc.error_kind, False, exc.error_kind, exc.error_kind, backend, cost_ms=elapsed_ms,
                   cost_source="elapsed")


class _Speculation:
    """An attempt generated in a background thread while the guardians check the previous answer
    (parallel mode): its result is taken when the check fails, or it is cancelled when the check passes."""

    def __init__(self, ladder: TierLadder, tier: str, kind: str, generate_kwargs: dict) -> None:
        self.tier, self.kind = tier, kind
        self.model, self.backend = ladder.specs[tier].model, ladder.backends[tier].name
        self.cancel = threading.Event()
        self.started = time.perf_counter()
        self.completion: Completion | None = None
        self.error: BackendError | None = None
        self.elapsed_ms = 0.0
        self.thread = threading.Thread(target=self._run, args=(ladder, generate_kwargs), daemon=True,
                                       name=f"tsglab-speculative-{tier}")
        self.thread.start()

    def _run(self, ladder: TierLadder, kwargs: dict) -> None:
        try:
            self.completion = ladder.generate(self.tier, cancel=self.cancel, **kwargs)
        except BackendError as exc:
            self.error = exc
        finally:
            self.elapsed_ms = (time.perf_counter() - self.started) * 1e3

    def result(self) -> Completion:
        """Wait for the attempt; its completion, or the backend error it ended with."""
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.completion is not None
        return self.completion

    def cancel_and_wait(self) -> Attempt:
        """Stop the attempt and return its record as a cancelled speculative attempt (tokens wasted)."""
        self.cancel.set()
        self.thread.join()
        if self.completion is not None:  # it finished before the cancellation: every token was wasted
            return cancelled_attempt(_answered(self.completion, self.tier, self.kind, self.backend, None, ""))
        assert self.error is not None
        error = self.error
        elapsed = self.elapsed_ms
        if isinstance(error, BackendCancelled):
            elapsed = error.elapsed_ms
        return cancelled_attempt(_failed(error, self.tier, self.kind, self.model, self.backend, elapsed))


@dataclass
class _GuardLog:
    """What the guard stage did for one request; becomes the event's :class:`Enforcement`."""

    config: GuardConfig
    checks: list = field(default_factory=list)
    calls: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    outcome: str = "pass"
    violated: bool = False
    delivered_violation: bool = False
    check_ms: float = 0.0

    def add(self, result: StageResult) -> None:
        self.checks += result.checks
        self.calls += result.calls
        self.check_ms += result.wall_ms
        self.violated |= result.violated

    def record(self) -> Enforcement:
        wasted = [c for c in self.calls if c.kind == "speculative"]
        return Enforcement(self.config.mode, tuple(self.checks), tuple(self.calls), tuple(self.steps),
                           self.outcome, self.violated, self.delivered_violation, self.check_ms,  # type: ignore[arg-type]
                           sum(c.completion_tokens for c in wasted), len(wasted))


def _next_guard_step(steps: tuple[str, ...], index: int, *, rung: int, top: int, upgrades: int,
                     max_upgrades: int) -> tuple[str, int]:
    """The first feasible step of ``on_violation`` from ``index`` on (an upgrade at the top rung, or past
    ``max_upgrades``, is skipped) and its index; the terminal step is always feasible."""
    while steps[index] == "upgrade" and (rung >= top or upgrades >= max_upgrades):
        index += 1
    return steps[index], index


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

    Upgrades climb ``ladder.tiers`` (the spec's order, lowest rung first) one rung at a time. An arm with
    guardians (``config.guard``) checks the request first (input guardians) and every answer it is about to
    deliver (output guardians); a violation takes the next step of ``guard.on_violation`` (see
    :mod:`tsglab.config.guard`): a repair or upgrade attempt, then block, redact or deliver.
    """
    tiers = ladder.tiers
    tier_index(tier, tiers)  # an unknown starting tier is a SpecError naming the ladder, not a KeyError later
    guard = config.guard
    stage = GuardStage(guard, ladder, task=task, json_schema=json_schema, seed=seed) if guard.enabled else None
    log = _GuardLog(guard) if stage is not None else None
    constrain = {"tier": None, "constrained": True, "validate": False}[guard.json_decoding]
    attempts: list[Attempt] = []
    started = time.perf_counter()
    current, kind = tier, "initial"
    upgrades, repaired, retries, guard_step = 0, False, 0, 0
    repair_of: tuple[str, str] | None = None
    pending: _Speculation | None = None
    text = ""

    def remaining() -> float | None:
        return None if timeout_s is None else max(timeout_s - (time.perf_counter() - started), 1e-3)

    def generate_kwargs(repair: tuple[str, str] | None) -> dict:
        return {"prompt": prompt, "task": task, "json_schema": json_schema, "timeout_s": remaining(),
                "repair_of": repair, "seed": seed, "constrain": constrain}

    def finish(execution: Execution) -> Execution:
        if log is None:
            return execution
        if execution.repaired is False and "repair" in log.steps:
            execution = dataclasses.replace(execution, repaired=True)
        return dataclasses.replace(execution, enforcement=log.record())

    if stage is not None and log is not None and guard.input:
        if guard.mode == "parallel":  # answer while the request is checked; cancel the answer if it fails
            pending = _Speculation(ladder, current, kind, generate_kwargs(None))
        checked = stage.check(prompt, stage="input", attempt=-1, timeout_s=remaining())
        log.add(checked)
        if checked.violated:
            if pending is not None:
                log.calls.append(pending.cancel_and_wait())
            log.outcome = "input_block"
            return finish(Execution(guard.block_message, (), current, 0, False, False, None, False, False, "", ""))

    while True:
        backend_name = ladder.backends[current].name
        attempt_started = time.perf_counter()
        try:
            if pending is not None:
                speculation, pending = pending, None
                completion = speculation.result()
            else:
                completion = ladder.generate(current, **generate_kwargs(repair_of))
        except BackendError as exc:
            elapsed_ms = getattr(exc, "elapsed_ms", (time.perf_counter() - attempt_started) * 1e3)
            attempts.append(_failed(exc, current, kind, ladder.specs[current].model, backend_name, elapsed_ms))
            timed_out = isinstance(exc, BackendTimeout)
            if not timed_out and exc.error_kind in retry.on and retries < retry.max_retries:
                backoff_s = retry.backoff_ms * 2**retries / 1e3
                if timeout_s is None or time.perf_counter() - started + backoff_s < timeout_s:
                    time.sleep(backoff_s)
                    retries, kind = retries + 1, "retry"
                    continue
            return finish(Execution(text, tuple(attempts), current, upgrades, repaired, False, None, False,
                                    timed_out, exc.error_kind, str(exc), retries))
        text = completion.text
        verdict = check_answer(text, task=task, json_schema=json_schema, config=config)
        attempts.append(_answered(completion, current, kind, backend_name, verdict.ok, verdict.reason))
        final = Execution(text, tuple(attempts), current, upgrades, repaired, verdict.ok, verdict.json_ok,
                          verdict.refusal, False, "", "", retries)
        rung = tier_index(current, tiers)
        if not (verdict.ok or config.kind == "baseline"):
            if config.same_tier_repair and not repaired:
                repaired, kind = True, "repair"
                repair_of = (text, verdict.detail or verdict.reason)
                continue
            if upgrades < config.max_upgrades and rung < len(tiers) - 1:
                current, kind = tiers[rung + 1], "upgrade"
                upgrades += 1
                repair_of = None
                continue
        if stage is None or log is None or not guard.output:
            return finish(final)
        # the answer is about to be delivered: the output guardians decide
        step, step_index = _next_guard_step(guard.on_violation, guard_step, rung=rung, top=len(tiers) - 1,
                                            upgrades=upgrades, max_upgrades=config.max_upgrades)
        remedy_repair = (text, repair_detail(guard))
        if guard.mode == "parallel" and step in ("repair", "upgrade"):
            target = current if step == "repair" else tiers[rung + 1]
            pending = _Speculation(ladder, target, step, generate_kwargs(remedy_repair if step == "repair" else None))
        checked = stage.check(text, stage="output", attempt=len(attempts) - 1, timeout_s=remaining())
        log.add(checked)
        if not checked.violated:
            if pending is not None:
                log.calls.append(pending.cancel_and_wait())
                pending = None
            return finish(final)
        guard_step = step_index + 1
        if step == "repair":
            log.steps.append("repair")
            kind, repair_of = "repair", remedy_repair
            continue
        if step == "upgrade":
            log.steps.append("upgrade")
            current, kind, repair_of = tiers[rung + 1], "upgrade", None
            upgrades += 1
            continue
        log.outcome = step
        if step == "redact" and checked.redactable:
            return finish(dataclasses.replace(final, text=redact(text, checked.verdict())))
        if step == "deliver":
            log.delivered_violation = True
            return finish(final)
        log.outcome = "block"  # block, or a redaction of a finding without spans
        return finish(dataclasses.replace(final, text=guard.block_message))
