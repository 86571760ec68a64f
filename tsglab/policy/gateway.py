"""The Three-Stage Sentry gateway: planner → router → controlled executor, for one request."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tsglab.policy.config import PolicyConfig
from tsglab.policy.executor import NO_RETRY, Execution, execute
from tsglab.policy.ladder import TierLadder
from tsglab.policy.planner import PlanReport, plan
from tsglab.policy.router import RouteDecision, route
from tsglab.spec import RetryPolicy


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
    decision = route(report, config)
    overhead_ms = (time.perf_counter_ns() - started) / 1e6
    execution = execute(ladder, config, prompt, tier=decision.tier, task=report.task, json_schema=json_schema,
                        timeout_s=timeout_s, seed=seed, retry=retry)
    return Handled(report, decision, execution, overhead_ms)
