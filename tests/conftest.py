from __future__ import annotations

import pytest
from hypothesis import settings

from tsglab.backends.scripted import ScriptedBackend
from tsglab.config import DEFAULT_TIERS as TIERS
from tsglab.config import TierSpec
from tsglab.policy import TierLadder

# Shared 2-core CI machines are noisy: timing is measured in benchmarks/, never by test deadlines.
settings.register_profile("tsglab", deadline=None, derandomize=True)
settings.load_profile("tsglab")


def scripted_ladder(replies: dict[str, object] | object, **backend_options) -> TierLadder:
    """A ladder whose tiers answer from scripts: one reply for all tiers or a dict per tier."""
    per_tier = replies if isinstance(replies, dict) else dict.fromkeys(TIERS, replies)
    specs = {t: TierSpec(name=t, backend="scripted", model=f"scripted-{t}", max_tokens=64) for t in TIERS}
    backends = {t: ScriptedBackend(per_tier[t], name=f"scripted-{t}", **backend_options) for t in TIERS}
    return TierLadder(specs, backends)


@pytest.fixture
def make_ladder():
    return scripted_ladder
