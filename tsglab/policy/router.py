"""The TSG quality-aware router: complexity score → initial tier, raised to the task's floor.

``light`` if score < ``thr_std``; ``std`` if score < ``thr_enh``; else ``enh``. The floor of the task
(``json_floor``, ``code_floor``, ``def_floor``) is a quality guarantee: the tier is never below it. The
fast lane sends a short, simple general request (chars ≤ ``force_light_len``, score ≤
``force_light_score``) to ``light`` without looking at the thresholds; ``force_light_len=0`` turns it
off. Floors still apply to the fast lane, so a ``def_floor`` above ``light`` wins over it.
The baseline arm (``kind="baseline"``) sends everything to ``baseline_tier``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from tsglab.errors import SpecError
from tsglab.policy.config import PolicyConfig, tier_index
from tsglab.policy.planner import PlanReport

__all__ = ["RouteDecision", "route", "score_tier"]

_FLOOR_FIELD = {"json": "json_floor", "code": "code_floor", "general": "def_floor"}
_SCORE_REASON = {"light": "score<thr_std", "std": "thr_std<=score<thr_enh", "enh": "score>=thr_enh"}


@dataclass(frozen=True)
class RouteDecision:
    """The initial tier of one request and why.

    ``tier`` is the tier used (after the floor); ``score_tier`` the tier from the thresholds alone;
    ``floor`` the floor that applied for the task; ``reason`` one of ``"baseline"``, ``"fast_lane"``,
    ``"score<thr_std"``, ``"thr_std<=score<thr_enh"``, ``"score>=thr_enh"``, ``"json_floor"``,
    ``"code_floor"``, ``"def_floor"`` (the last three when the floor raised the tier).
    For the baseline arm ``tier``, ``score_tier`` and ``floor`` are all ``baseline_tier``.
    """

    tier: str
    score_tier: str
    floor: str
    fast_lane: bool
    reason: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def score_tier(score: float, config: PolicyConfig) -> str:
    """The tier the thresholds alone give ``score``."""
    if score < config.thr_std:
        return "light"
    if score < config.thr_enh:
        return "std"
    return "enh"


def route(plan: PlanReport, config: PolicyConfig) -> RouteDecision:
    """Pick the initial tier of a planned request."""
    _validate_route_inputs(plan, config)
    if config.kind == "baseline":
        tier = config.baseline_tier
        return RouteDecision(tier, tier, tier, fast_lane=False, reason="baseline", score=plan.score)

    floor_field = _FLOOR_FIELD[plan.task]
    floor = getattr(config, floor_field)
    by_score = score_tier(plan.score, config)
    fast_lane = (
        plan.task == "general"
        and config.force_light_len > 0
        and plan.chars <= config.force_light_len
        and plan.score <= config.force_light_score
    )
    if fast_lane:
        proposed, reason = "light", "fast_lane"
    else:
        proposed = by_score
        reason = _SCORE_REASON[by_score]
    if tier_index(floor) > tier_index(proposed):
        proposed, reason = floor, floor_field
    return RouteDecision(
        tier=proposed, score_tier=by_score, floor=floor, fast_lane=fast_lane, reason=reason, score=plan.score
    )


def _validate_route_inputs(plan: object, config: object) -> None:
    if not isinstance(plan, PlanReport):
        raise SpecError(f"`plan` must be a PlanReport; got {type(plan).__name__}. Build it with plan(prompt, config).")
    if not isinstance(config, PolicyConfig):
        raise SpecError(
            f"`config` must be a PolicyConfig; got {type(config).__name__}. "
            "Use PolicyConfig.from_dict(...) to build one from a mapping."
        )
    if plan.task not in _FLOOR_FIELD:
        raise SpecError(f"`plan.task` must be one of {tuple(_FLOOR_FIELD)}; got {plan.task!r}.")
    if not math.isfinite(plan.score):
        raise SpecError(f"`plan.score` must be finite; got {plan.score}. Build the plan with plan(prompt, config).")
