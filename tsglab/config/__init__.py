"""Every configuration value of tsglab in one place: policy parameters and experiment specs.

This package sits at the bottom of the layers (it imports nothing from tsglab but
:mod:`tsglab.errors`), so the policy, the backends, the runner and the report can all read it.
``tsglab.spec`` and ``tsglab.policy.config`` are compatibility aliases of it.
"""

from __future__ import annotations

from tsglab.config.experiment import (
    ARRIVALS,
    ON_ERROR,
    REDACTED,
    RETRYABLE_KINDS,
    EnergySpec,
    ExperimentSpec,
    LoadSpec,
    PromptSelection,
    RetryPolicy,
    TierSpec,
    apply_overrides,
    load_spec,
    spec_from_dict,
)
from tsglab.config.policy import (
    ABLATIONS,
    BASELINE,
    DEFAULT_TIERS,
    PAPER_TSG,
    TIER_FIELDS,
    PolicyConfig,
    TaskKind,
    tier_index,
)
from tsglab.config.yaml_loader import load_yaml

__all__ = [
    "ABLATIONS",
    "ARRIVALS",
    "BASELINE",
    "DEFAULT_TIERS",
    "EnergySpec",
    "ExperimentSpec",
    "LoadSpec",
    "ON_ERROR",
    "PAPER_TSG",
    "PolicyConfig",
    "PromptSelection",
    "REDACTED",
    "RETRYABLE_KINDS",
    "RetryPolicy",
    "TIER_FIELDS",
    "TaskKind",
    "TierSpec",
    "apply_overrides",
    "load_spec",
    "load_yaml",
    "spec_from_dict",
    "tier_index",
]
