"""Runtime enforcement settings of one arm: which guardians check what, and what a violation does.

An arm's ``guard:`` mapping in the spec (``arms.<arm>.guard``) becomes a :class:`GuardConfig`; an arm
without one enforces nothing (the gateway is then exactly the TSG policy). The guardians themselves
live in :mod:`tsglab.policy.guardians` (rules) and :mod:`tsglab.policy.judge` (the LLM judge); this
module names them so a spec can be checked without importing the policy layer.

``on_violation`` is an ordered list of steps taken while the answer keeps violating:

- ``repair``: one more attempt on the same tier, told which check failed (one step = one attempt);
- ``upgrade``: one attempt one rung up (skipped at the top rung or once ``max_upgrades`` is spent);
- ``block``: deliver ``block_message`` instead of the answer (terminal);
- ``redact``: deliver the answer with every finding masked (terminal; a finding without character
  spans, such as the judge's, is blocked instead);
- ``deliver``: deliver the answer as it is, flagged in the event (terminal; measures what enforcement
  would have caught).

The list ends with exactly one terminal step. ``mode`` is ``blocking`` (check, then act) or
``parallel`` (while the output guardians check an answer, the next step's attempt is already being
generated; it is cancelled when the answer passes, and the tokens it had generated are recorded as
wasted). ``json_decoding`` picks how a json task's schema is enforced for this arm: ``tier`` (the
tier's ``constrained_json``), ``constrained`` (grammar-constrained decoding on every tier) or
``validate`` (free decoding, then the executor's JSON check and its repair/upgrade).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tsglab.config._fields import check_fields
from tsglab.errors import SpecError

__all__ = ["CLAIM_NAMES", "GUARDIAN_NAMES", "GUARD_ACTIONS", "GuardConfig", "TERMINAL_ACTIONS", "check_claims"]

GUARDIAN_NAMES: tuple[str, ...] = ("pii", "secrets", "code", "sql", "refusal", "length", "format", "judge")
"""Every guardian a spec may name (the rule guardians of :data:`tsglab.policy.GUARDIANS`, and ``judge``)."""

CLAIM_NAMES: tuple[str, ...] = ("guardian_detection", "guardian_fpr", "guardian_latency_ms", "energy_mwh_per_1k_tokens")
"""Claims a spec's ``claims:`` may state; the report checks each against the measured figures
(:mod:`tsglab.report.enforcement`). A value is a number (every guardian, or every arm for energy) or a
mapping from a guardian (arm) name to a number."""

GUARD_ACTIONS: tuple[str, ...] = ("repair", "upgrade", "block", "redact", "deliver")
TERMINAL_ACTIONS: tuple[str, ...] = ("block", "redact", "deliver")


@dataclass(frozen=True)
class GuardConfig:
    """One arm's enforcement (module docstring). The default enforces nothing."""

    output: tuple[str, ...] = ()  # guardians run on every answer that passed the executor's own checks
    input: tuple[str, ...] = ()  # guardians run on the request before (blocking) or while (parallel) it is answered
    on_violation: tuple[str, ...] = ("repair", "block")
    mode: Literal["blocking", "parallel"] = "blocking"
    judge_tier: str = ""  # the rung that serves the LLM judge; "" = the lowest rung
    judge_threshold: float = 0.5  # the judge flags an answer whose risk score is >= this (0..1)
    judge_max_tokens: int = 12  # room for {"risk": n} under the JSON Schema
    block_message: str = "I can't share that answer: it failed a safety check."
    json_decoding: Literal["tier", "constrained", "validate"] = "tier"

    def __post_init__(self) -> None:
        for stage in ("output", "input"):
            names = getattr(self, stage)
            if isinstance(names, str) or not isinstance(names, tuple):
                raise SpecError(f"guard.{stage} must be a list of guardian names; got {names!r}.")
            unknown = [n for n in names if n not in GUARDIAN_NAMES]
            if unknown:
                raise SpecError(f"guard.{stage}: unknown guardian(s) {unknown}; known: {list(GUARDIAN_NAMES)}.")
            if len(set(names)) != len(names):
                raise SpecError(f"guard.{stage} names a guardian twice: {list(names)}.")
        steps = self.on_violation
        if not isinstance(steps, tuple) or not steps or any(s not in GUARD_ACTIONS for s in steps):
            raise SpecError(f"guard.on_violation must be a list of steps from {list(GUARD_ACTIONS)}, ending in one of "
                            f"{list(TERMINAL_ACTIONS)}; got {steps!r}. Example: [repair, upgrade, block].")
        if steps[-1] not in TERMINAL_ACTIONS or any(s in TERMINAL_ACTIONS for s in steps[:-1]):
            raise SpecError(f"guard.on_violation must end in exactly one terminal step ({'/'.join(TERMINAL_ACTIONS)}) "
                            f"and have none before it; got {list(steps)}.")
        if self.mode not in ("blocking", "parallel"):
            raise SpecError(f"guard.mode must be 'blocking' or 'parallel'; got {self.mode!r}.")
        if self.json_decoding not in ("tier", "constrained", "validate"):
            raise SpecError(f"guard.json_decoding must be 'tier', 'constrained' or 'validate'; got "
                            f"{self.json_decoding!r}.")
        if not 0.0 <= self.judge_threshold <= 1.0:
            raise SpecError(f"guard.judge_threshold must be in [0, 1]; got {self.judge_threshold}.")
        if self.judge_max_tokens < 1:
            raise SpecError(f"guard.judge_max_tokens must be >= 1; got {self.judge_max_tokens}.")

    @property
    def enabled(self) -> bool:
        """Whether this arm runs any guardian."""
        return bool(self.output or self.input)

    @property
    def uses_judge(self) -> bool:
        return "judge" in self.output or "judge" in self.input

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, *, where: str = "guard") -> GuardConfig:
        """Build from a spec mapping (lists become tuples), naming any unknown key."""
        if values is None:
            return cls()
        if isinstance(values, GuardConfig):
            return values
        if not isinstance(values, Mapping):
            raise SpecError(f"{where} must be a mapping such as {{output: [pii, secrets], on_violation: [repair, "
                            f"block]}}; got {values!r}.")
        values = dict(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SpecError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}.")
        for key in ("output", "input", "on_violation"):
            if isinstance(values.get(key), str):
                values[key] = [values[key]]
        check_fields(cls, values, where)
        for key in ("output", "input", "on_violation"):
            if key in values:
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except SpecError as exc:
            raise SpecError(str(exc).replace("guard.", f"{where}.", 1)) from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_claims(claims: Any, *, where: str = "claims") -> dict[str, Any]:
    """A spec's ``claims:`` mapping, checked for shape: known claim names, each a finite number > 0 or a
    mapping of names to such numbers. Proportions (detection, FPR) must lie in (0, 1)."""
    if claims is None:
        return {}
    if not isinstance(claims, Mapping):
        raise SpecError(f"{where} must be a mapping such as {{guardian_fpr: 0.001, guardian_latency_ms: 10}}; got "
                        f"{claims!r}.")
    checked: dict[str, Any] = {}
    for name, value in claims.items():
        if name not in CLAIM_NAMES:
            raise SpecError(f"{where}: unknown claim {name!r}; known: {list(CLAIM_NAMES)}.")
        values = value if isinstance(value, Mapping) else {"": value}
        for key, number in values.items():
            label = f"{where}.{name}" + (f".{key}" if key else "")
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not number == number \
                    or number in (float("inf"), float("-inf")) or number <= 0:
                raise SpecError(f"{label} must be a finite number > 0; got {number!r}.")
            if name in ("guardian_detection", "guardian_fpr") and not number < 1:
                raise SpecError(f"{label} is a proportion in (0, 1); got {number!r}. Write 99.8 % as 0.998.")
        checked[str(name)] = dict(value) if isinstance(value, Mapping) else value
    return checked
