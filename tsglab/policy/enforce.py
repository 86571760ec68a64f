"""The guard stage of the gateway: an arm's guardians run on a text and say what they found.

The executor (:mod:`tsglab.policy.executor`) calls :meth:`GuardStage.check` on the request (input
guardians) and on every answer it is about to deliver (output guardians), and decides what to do with a
violation from the arm's ``guard.on_violation`` steps. This module runs the checks and records them as
the event's :class:`~tsglab.events.record.GuardCheck` entries; an LLM judge's model call is recorded as a
side call (an :class:`~tsglab.events.record.Attempt` of kind ``judge``) so its tokens and cost count.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field

from tsglab.config.guard import GuardConfig
from tsglab.events.record import Attempt, GuardCheck
from tsglab.policy.guardians import GUARDIANS, FormatGuardian, Guardian, GuardVerdict, Span
from tsglab.policy.judge import judge
from tsglab.policy.ladder import TierLadder

__all__ = ["GuardStage", "StageResult", "repair_detail"]

_WHAT = {
    "pii": "personal data (e-mail addresses, phone numbers, id or card numbers)",
    "secrets": "credentials (API keys, tokens, private keys)",
    "code": "code that runs shell commands, evaluates code, uses the network or writes files",
    "sql": "SQL that writes, deletes, drops or grants",
    "refusal": "a refusal",
    "length": "an answer of the wrong length",
    "format": "an answer that breaks its format",
    "judge": "anything a safety reviewer would flag",
}


def repair_detail(config: GuardConfig) -> str:
    """What a guard repair tells the model. It names the arm's guardians, never the finding, so that a
    speculative repair of parallel mode (started before the check has found anything) sends exactly the
    request blocking mode sends."""
    what = "; ".join(_WHAT[name] for name in config.output)
    return f"it failed a safety check; leave out {what}"


@dataclass
class StageResult:
    """The checks of one text: every guardian's :class:`GuardCheck`, the judge's side call (if any), and
    the spans of all findings (``redactable`` is false when some finding has no span to mask)."""

    checks: list[GuardCheck] = field(default_factory=list)
    calls: list[Attempt] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    redactable: bool = True
    wall_ms: float = 0.0

    @property
    def violated(self) -> bool:
        return any(c.violated for c in self.checks)

    def verdict(self) -> GuardVerdict:
        """All findings as one verdict (what :func:`~tsglab.policy.guardians.redact` masks)."""
        return GuardVerdict("guard", self.violated, next((c.category for c in self.checks if c.violated), ""),
                            tuple(self.spans))


class GuardStage:
    """The guardians of one arm for one request (the format guardian needs the request's contract)."""

    def __init__(self, config: GuardConfig, ladder: TierLadder, *, task: str, json_schema: dict | None,
                 seed: int = 0) -> None:
        self.config, self.ladder, self.seed = config, ladder, seed
        self.judge_tier = config.judge_tier or ladder.tiers[0]
        self.rules: dict[str, Guardian] = {name: GUARDIANS[name] for name in GUARDIANS}
        self.rules["format"] = FormatGuardian(task=task, json_schema=json_schema)

    def check(self, text: str, *, stage: str, attempt: int, timeout_s: float | None,
              cancel: threading.Event | None = None) -> StageResult:
        """Run the ``stage``'s guardians (``input`` or ``output``) on ``text``, rules first, the judge last."""
        names = self.config.input if stage == "input" else self.config.output
        result = StageResult()
        started = time.perf_counter()
        for name in names:
            if name == "judge":
                self._judge(text, stage, attempt, timeout_s, cancel, result)
                continue
            check_started = time.perf_counter_ns()
            verdict = self.rules[name].check(text)
            latency_ms = (time.perf_counter_ns() - check_started) / 1e6
            result.checks.append(GuardCheck(name, stage, attempt, verdict.violated, verdict.category,  # type: ignore[arg-type]
                                            latency_ms))
            if verdict.violated:
                result.spans.extend(verdict.spans)
                result.redactable &= bool(verdict.spans)
        result.wall_ms = (time.perf_counter() - started) * 1e3
        return result

    def _judge(self, text: str, stage: str, attempt: int, timeout_s: float | None, cancel: threading.Event | None,
               result: StageResult) -> None:
        backend = self.ladder.backends[self.judge_tier]
        outcome = judge(backend, text, threshold=self.config.judge_threshold,
                        max_tokens=self.config.judge_max_tokens, timeout_s=timeout_s, seed=self.seed, cancel=cancel)
        category = "judge" if outcome.violated else ""
        result.checks.append(GuardCheck("judge", stage, attempt, outcome.violated, category,  # type: ignore[arg-type]
                                        outcome.latency_ms, outcome.score, outcome.error))
        result.redactable &= not outcome.violated
        model = self.ladder.specs[self.judge_tier].model
        c = outcome.completion
        if c is None:
            result.calls.append(Attempt(self.judge_tier, "judge", model, 0, 0, 0.0, 0.0, outcome.elapsed_ms, None, 0.0,
                                        "error", None, "judge_error", "judge_error", backend.name,
                                        cost_ms=outcome.elapsed_ms, cost_source="elapsed"))
            return
        result.calls.append(Attempt(self.judge_tier, "judge", c.model or model, c.prompt_tokens, c.completion_tokens,
                                    c.prompt_eval_ms, c.eval_ms, c.total_ms, c.ttft_ms, c.load_ms, c.finish_reason,
                                    not outcome.violated, category, "", backend.name, dict(c.extra),
                                    cost_ms=c.prompt_eval_ms + c.eval_ms, cost_source="backend"))


def cancelled_attempt(attempt: Attempt) -> Attempt:
    """``attempt`` marked as a cancelled speculative attempt (its tokens were generated for nothing)."""
    return dataclasses.replace(attempt, kind="speculative", check_ok=None, check_reason="cancelled")
