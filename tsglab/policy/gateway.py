"""The Three-Stage Sentry gateway: planner → router → controlled executor, for one request.

The router and the executor both work on the ladder's own tiers (``ladder.tiers``, lowest rung first).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tsglab.config import PolicyConfig, RetryPolicy
from tsglab.policy.executor import NO_RETRY, Execution, execute
from tsglab.policy.ladder import TierLadder
from tsglab.policy.planner import PlanReport, plan
from tsglab.policy.router import RouteDecision, route


@dataclass(frozen=True)
class Handled:
    plan: PlanReport
    decision: RouteDecision
    execution: Execution
    overhead_ms: float  # planner + router time


def handle(
    ladder: TierLadder,
    config: PolicyConfig,
    prompt: str,
    *,
    json_schema: dict | None,
    timeout_s: float | None,
    seed: int = 0,
    retry: RetryPolicy = NO_RETRY,
) -> Handled:
    started = time.perf_counter_ns()
    report = plan(prompt, config, json_schema=json_schema)
    decision = route(report, config, ladder.tiers)
    overhead_ms = (time.perf_counter_ns() - started) / 1e6
    execution = execute(ladder, config, prompt, tier=decision.tier, task=report.task, json_schema=json_schema,
                        timeout_s=timeout_s, seed=seed, retry=retry)
    return Handled(report, decision, execution, overhead_ms)
