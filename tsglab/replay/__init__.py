"""Counterfactual replay: routing policies evaluated offline on recorded answers.

:mod:`tsglab.replay.data` holds what every tier answered to every prompt (collected, or read from logged
runs); :mod:`tsglab.replay.kernels` replays batches of policy configurations over it with numba.
"""

from __future__ import annotations

from tsglab.replay.data import KINDS, TASKS, ReplayData, collect, features_of, from_events, from_rows, load_replay
from tsglab.replay.kernels import (
    PARAMS,
    SUMMARY_COLUMNS,
    ConfigGrid,
    ReplayResult,
    replay,
    replay_python,
    replay_summary,
)

__all__ = [
    "KINDS",
    "PARAMS",
    "SUMMARY_COLUMNS",
    "TASKS",
    "ConfigGrid",
    "ReplayData",
    "ReplayResult",
    "collect",
    "features_of",
    "from_events",
    "from_rows",
    "load_replay",
    "replay",
    "replay_python",
    "replay_summary",
]
