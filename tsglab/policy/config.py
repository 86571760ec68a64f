"""Policy configuration: a frozen value, so an ablation is just another parameter set.

Defaults are the Three-Stage Sentry paper's (DESIGN.md §1).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from tsglab.errors import SpecError

TIERS: tuple[str, ...] = ("light", "std", "enh")
Tier = Literal["light", "std", "enh"]
TaskKind = Literal["json", "code", "general"]


def tier_index(tier: str) -> int:
    """Position of ``tier`` on the ladder (light=0 < std=1 < enh=2)."""
    try:
        return TIERS.index(tier)
    except ValueError:
        raise SpecError(f"tier must be one of {TIERS}; got {tier!r}.") from None


@dataclass(frozen=True)
class PolicyConfig:
    """Every number of the TSG policy.

    ``kind="baseline"`` sends every request to ``baseline_tier`` once (no checks, repairs or upgrades).
    ``scorer="paper"`` is the paper's complexity score; ``scorer="length"`` (ablation E) uses
    ``chars/200`` only.
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
    json_floor: Tier = "std"
    code_floor: Tier = "std"
    def_floor: Tier = "light"
    force_light_len: int = 120
    force_light_score: float = 0.30
    # executor
    same_tier_repair: bool = True
    max_upgrades: int = 2
    min_answer_chars: int = 1
    check_refusal: bool = True
    baseline_tier: Tier = "enh"
    # free-form label for tables
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("tsg", "baseline"):
            raise SpecError(f"policy.kind must be 'tsg' or 'baseline'; got {self.kind!r}.")
        if self.scorer not in ("paper", "length"):
            raise SpecError(f"policy.scorer must be 'paper' or 'length'; got {self.scorer!r}.")
        for name in ("json_floor", "code_floor", "def_floor", "baseline_tier"):
            tier_index(getattr(self, name))
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
        if self.chars_per_unit <= 0 or self.marks_per_unit <= 0:
            raise SpecError("policy.chars_per_unit and policy.marks_per_unit must be > 0.")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> PolicyConfig:
        """Build from a spec mapping, naming any unknown key."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SpecError(f"unknown policy parameter(s) {unknown}; known: {sorted(known)}.")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        """Stable short hash of the decision-relevant parameters (label excluded)."""
        payload = {k: v for k, v in self.to_dict().items() if k != "label"}
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
