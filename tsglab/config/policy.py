"""Policy configuration: a frozen value, so an ablation is just another parameter set.

Defaults are the Three-Stage Sentry paper's (DESIGN.md §1). Tier-valued fields name rungs of the
experiment's ladder (``tiers:`` in the spec, lowest first); :data:`DEFAULT_TIERS` is only the default
ladder. A config alone cannot know the ladder it will run on, so it only checks that its tier fields are
names; :meth:`PolicyConfig.check_ladder` checks them against a ladder (the spec does so when it is built,
the router when it routes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tsglab.config._fields import check_fields
from tsglab.config.guard import GuardConfig
from tsglab.errors import SpecError

__all__ = [
    "ABLATIONS",
    "BASELINE",
    "DEFAULT_TIERS",
    "PAPER_TSG",
    "TIER_FIELDS",
    "PolicyConfig",
    "TaskKind",
    "tier_index",
]

DEFAULT_TIERS: tuple[str, ...] = ("light", "std", "enh")
"""The paper's ladder, lowest rung first: the default, not a limit (a spec may name any rungs)."""

TIER_FIELDS: tuple[str, ...] = ("json_floor", "code_floor", "def_floor", "baseline_tier")
"""The fields of :class:`PolicyConfig` whose values are tier names."""

TaskKind = Literal["json", "code", "general"]


def tier_index(tier: str, ladder: Sequence[str] = DEFAULT_TIERS) -> int:
    """Position of ``tier`` on ``ladder`` (0 = the lowest rung; on the default ladder light=0 < std=1 < enh=2)."""
    try:
        return tuple(ladder).index(tier)
    except ValueError:
        raise SpecError(f"tier must be one of {tuple(ladder)} (the ladder, lowest rung first); got {tier!r}. "
                        "Name a rung of the spec's `tiers:`.") from None


@dataclass(frozen=True)
class PolicyConfig:
    """Every number of the TSG policy.

    ``kind="baseline"`` sends every request to ``baseline_tier`` once (no checks, repairs or upgrades).
    ``scorer="paper"`` is the paper's complexity score; ``scorer="length"`` (ablation E) uses
    ``chars/200`` only. ``thr_std`` / ``thr_enh`` pick rung 0 / 1 / 2 of the ladder (see
    :func:`tsglab.policy.router.score_tier`); ``json_floor``, ``code_floor``, ``def_floor`` and
    ``baseline_tier`` name rungs of the ladder (the defaults name the default ladder's). ``guard`` is the
    arm's runtime enforcement (:class:`~tsglab.config.guard.GuardConfig`); it applies to baseline arms too
    (one tier + guardians is the enforcement-only arm).
    """

    kind: Literal["tsg", "baseline"] = "tsg"
    # planner
    scorer: Literal["paper", "length"] = "paper"
    chars_per_unit: float = 200.0
    marks_per_unit: float = 6.0
    heavy_weight: float = 0.8
    score_cap: float = 1.6
    # router
    thr_std: float = 0.40
    thr_enh: float = 0.85
    json_floor: str = "std"
    code_floor: str = "std"
    def_floor: str = "light"
    force_light_len: int = 120
    force_light_score: float = 0.30
    # executor
    same_tier_repair: bool = True
    max_upgrades: int = 2
    min_answer_chars: int = 1
    check_refusal: bool = True
    baseline_tier: str = "enh"
    # runtime enforcement (guardians and their actions); the default enforces nothing
    guard: GuardConfig = field(default_factory=GuardConfig)
    # free-form label for tables
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("tsg", "baseline"):
            raise SpecError(f"policy.kind must be 'tsg' or 'baseline'; got {self.kind!r}.")
        if self.scorer not in ("paper", "length"):
            raise SpecError(f"policy.scorer must be 'paper' or 'length'; got {self.scorer!r}.")
        for name in TIER_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise SpecError(f"policy.{name} must be the name of a tier (a rung of the spec's `tiers:`); "
                                f"got {value!r}.")
        if not 0.0 <= self.thr_std <= self.thr_enh:
            raise SpecError(
                f"policy thresholds must satisfy 0 <= thr_std <= thr_enh; got thr_std={self.thr_std}, "
                f"thr_enh={self.thr_enh}. For a two-stage ablation set both to 1.0."
            )
        if self.max_upgrades < 0:
            raise SpecError(f"policy.max_upgrades must be >= 0; got {self.max_upgrades}.")
        if self.force_light_len < 0:
            raise SpecError(
                f"policy.force_light_len must be >= 0; got {self.force_light_len}. Use 0 to disable the fast lane."
            )
        if self.min_answer_chars < 0:
            raise SpecError(f"policy.min_answer_chars must be >= 0; got {self.min_answer_chars}. Use 0 to accept "
                            "empty answers.")
        if self.chars_per_unit <= 0 or self.marks_per_unit <= 0:
            raise SpecError("policy.chars_per_unit and policy.marks_per_unit must be > 0.")
        if not isinstance(self.guard, GuardConfig):
            raise SpecError(f"policy.guard must be a GuardConfig (build it with GuardConfig.from_dict); got "
                            f"{type(self.guard).__name__}.")

    def check_ladder(self, ladder: Sequence[str], *, arm: str = "") -> None:
        """Raise :class:`SpecError` unless every tier-valued field names a rung of ``ladder``.

        The message names the arm (when given), the field, the value and the ladder.
        """
        ladder = tuple(ladder)
        where = f"arms.{arm}" if arm else "policy"
        for name in TIER_FIELDS:
            value = getattr(self, name)
            if value not in ladder:
                raise SpecError(f"{where}.{name} is {value!r}, which is not a rung of the ladder {list(ladder)}; "
                                f"set {where}.{name} to one of them (the tiers are named in the spec's `tiers:`).")
        judge = self.guard.judge_tier
        if judge and judge not in ladder:
            raise SpecError(f"{where}.guard.judge_tier is {judge!r}, which is not a rung of the ladder {list(ladder)}; "
                            "name one of them, or leave it empty for the lowest rung.")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> PolicyConfig:
        """Build from a spec mapping, naming any unknown key."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SpecError(f"unknown policy parameter(s) {unknown}; known: {sorted(known)}.")
        guard = GuardConfig.from_dict(values.pop("guard", None), where="guard")
        # Strict types (no "no" -> True, no 2.5 for a count, finite numbers) where a spec is read; the
        # constructor stays lenient so the planner's own guards can be tested on odd values.
        check_fields(cls, values, "policy")
        return cls(**values, guard=guard)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        """Stable short hash of the decision-relevant parameters (label excluded)."""
        payload = {k: v for k, v in self.to_dict().items() if k != "label"}
        if not self.guard.enabled and self.guard == GuardConfig():
            del payload["guard"]  # an arm without enforcement keeps the hash it had before guardians existed
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


BASELINE = PolicyConfig(kind="baseline", label="baseline")
PAPER_TSG = PolicyConfig(label="tsg")

# Ablations of DESIGN.md §1 (C and D change the statistics, not the policy).
ABLATIONS: dict[str, dict[str, Any]] = {
    "A_two_stage": {"thr_std": 1.0, "thr_enh": 1.0},
    "B_no_fast_lane": {"force_light_len": 0},
    "E_no_planner": {"scorer": "length"},
    "F_no_repair": {"same_tier_repair": False},
}
