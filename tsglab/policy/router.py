"""The TSG quality-aware router: complexity score → initial tier, raised to the task's floor.

Tiers are rungs of a ladder, lowest first (the spec's ``tiers:``; :data:`DEFAULT_TIERS` =
``light, std, enh`` by default). The thresholds pick the score tier: rung 0 if score < ``thr_std``;
rung 1 if score < ``thr_enh``; else rung 2 — clamped to the top rung on a shorter ladder (on a
two-rung ladder a score ≥ ``thr_enh`` gets rung 1; on a one-rung ladder everything gets rung 0). On a
longer ladder, rungs above 2 are reached only by floors and by the executor's upgrades. (We keep the
paper's two thresholds rather than a threshold per rung so a policy's parameters, and its config hash,
stay those of the paper; a ladder with more rungs uses floors to start higher.)

The floor of the task (``json_floor``, ``code_floor``, ``def_floor``) is a quality guarantee: the tier
is never below it. The fast lane sends a short, simple general request (chars ≤ ``force_light_len``,
score ≤ ``force_light_score``) to the lowest rung without looking at the thresholds;
``force_light_len=0`` turns it off. Floors still apply to the fast lane, so a ``def_floor`` above the
lowest rung wins over it. The baseline arm (``kind="baseline"``) sends everything to ``baseline_tier``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tsglab.config import DEFAULT_TIERS, PolicyConfig, tier_index
from tsglab.errors import SpecError
from tsglab.policy.planner import PlanReport

__all__ = ["RouteDecision", "route", "score_tier"]

_FLOOR_FIELD = {"json": "json_floor", "code": "code_floor", "general": "def_floor"}
# by the rung the thresholds give (before clamping to a shorter ladder)
_SCORE_REASON = ("score<thr_std", "thr_std<=score<thr_enh", "score>=thr_enh")


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


def score_tier(score: float, config: PolicyConfig, ladder: Sequence[str] = DEFAULT_TIERS) -> str:
    """The tier the thresholds alone give ``score`` on ``ladder`` (module docstring: rung 0/1/2, clamped)."""
    ladder = tuple(ladder)
    return ladder[min(_score_rung(score, config), len(ladder) - 1)]


def _score_rung(score: float, config: PolicyConfig) -> int:
    if score < config.thr_std:
        return 0
    if score < config.thr_enh:
        return 1
    return 2


def route(plan: PlanReport, config: PolicyConfig, ladder: Sequence[str] = DEFAULT_TIERS) -> RouteDecision:
    """Pick the initial tier of a planned request on ``ladder`` (tier names, lowest rung first)."""
    ladder = tuple(ladder)
    _validate_route_inputs(plan, config, ladder)
    if config.kind == "baseline":
        tier = config.baseline_tier
        return RouteDecision(tier, tier, tier, fast_lane=False, reason="baseline", score=plan.score)

    floor_field = _FLOOR_FIELD[plan.task]
    floor = getattr(config, floor_field)
    rung = _score_rung(plan.score, config)
    by_score = ladder[min(rung, len(ladder) - 1)]
    fast_lane = (
        plan.task == "general"
        and config.force_light_len > 0
        and plan.chars <= config.force_light_len
        and plan.score <= config.force_light_score
    )
    if fast_lane:
        proposed, reason = ladder[0], "fast_lane"
    else:
        proposed, reason = by_score, _SCORE_REASON[rung]
    if tier_index(floor, ladder) > tier_index(proposed, ladder):
        proposed, reason = floor, floor_field
    return RouteDecision(
        tier=proposed, score_tier=by_score, floor=floor, fast_lane=fast_lane, reason=reason, score=plan.score
    )


def _validate_route_inputs(plan: object, config: object, ladder: tuple[str, ...]) -> None:
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
    if not ladder or not all(isinstance(t, str) and t for t in ladder):
        raise SpecError(f"`ladder` must be a non-empty sequence of tier names, lowest rung first; got {ladder!r}. "
                        "Pass the spec's ladder (ExperimentSpec.ladder).")
    config.check_ladder(ladder)
