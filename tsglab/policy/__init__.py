"""The TSG gateway policy: planner → router → controlled executor over a tier ladder.

Parameters are data (:class:`~tsglab.config.PolicyConfig`, re-exported here); the ladder's rungs come
from the spec. This package builds no backends: the runner builds them
(:func:`tsglab.backends.build_backends`) and hands them to a :class:`TierLadder`.
"""

from __future__ import annotations

from tsglab.config import ABLATIONS, BASELINE, DEFAULT_TIERS, PAPER_TSG, PolicyConfig, tier_index
from tsglab.policy.checks import CheckResult, check_answer, is_refusal
from tsglab.policy.executor import NO_RETRY, Execution, execute
from tsglab.policy.gateway import Handled, handle
from tsglab.policy.guardians import GUARDIANS, Guardian, GuardVerdict, redact
from tsglab.policy.ladder import TierLadder
from tsglab.policy.planner import PlanReport, plan
from tsglab.policy.router import RouteDecision, route, score_tier

__all__ = [
    "ABLATIONS",
    "BASELINE",
    "CheckResult",
    "DEFAULT_TIERS",
    "Execution",
    "GUARDIANS",
    "GuardVerdict",
    "Guardian",
    "Handled",
    "NO_RETRY",
    "PAPER_TSG",
    "PlanReport",
    "PolicyConfig",
    "RouteDecision",
    "TierLadder",
    "check_answer",
    "execute",
    "handle",
    "is_refusal",
    "plan",
    "redact",
    "route",
    "score_tier",
    "tier_index",
]
