"""Compatibility alias: policy parameters now live in :mod:`tsglab.config`.

Old notebooks and scripts import ``tsglab.policy.config``; new code imports ``tsglab.config``.
``TIERS`` is the default ladder under its old name: a spec may name any ladder
(:attr:`tsglab.config.ExperimentSpec.ladder`), so code that must work on every ladder takes it from
there instead.
"""

from __future__ import annotations

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

TIERS: tuple[str, ...] = DEFAULT_TIERS
Tier = str  # was Literal["light", "std", "enh"]; tier names now come from the spec's ladder

__all__ = [
    "ABLATIONS",
    "BASELINE",
    "DEFAULT_TIERS",
    "PAPER_TSG",
    "TIERS",
    "TIER_FIELDS",
    "PolicyConfig",
    "TaskKind",
    "Tier",
    "tier_index",
]
