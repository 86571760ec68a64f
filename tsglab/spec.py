"""Compatibility alias: experiment specs now live in :mod:`tsglab.config`.

Old notebooks and scripts import ``tsglab.spec``; new code imports ``tsglab.config`` (nothing inside
the ``tsglab`` package imports this module).
"""

from __future__ import annotations

from tsglab.config.experiment import (
    ARRIVALS,
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

__all__ = [
    "ARRIVALS",
    "REDACTED",
    "RETRYABLE_KINDS",
    "EnergySpec",
    "ExperimentSpec",
    "LoadSpec",
    "PromptSelection",
    "RetryPolicy",
    "TierSpec",
    "apply_overrides",
    "load_spec",
    "spec_from_dict",
]
