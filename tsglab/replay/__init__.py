"""Counterfactual replay: routing policies evaluated offline on recorded answers.

:mod:`tsglab.replay.data` holds what every tier answered to every prompt (collected, or read from logged
runs); :mod:`tsglab.replay.kernels` replays batches of policy configurations over it with numba;
:mod:`tsglab.replay.frontier` gives the cost–quality frontier with paired bootstrap intervals and
:mod:`tsglab.replay.calibrate` chooses a configuration on some prompts and judges it on held-out ones.
"""

from __future__ import annotations

from tsglab.replay.calibrate import OBJECTIVES, Calibration, calibrate, simulate_replay
from tsglab.replay.data import KINDS, TASKS, ReplayData, collect, features_of, from_events, from_rows, load_replay
from tsglab.replay.frontier import (
    METRICS,
    RESAMPLING,
    Frontier,
    FrontierRun,
    collect_spec,
    default_grid,
    frontier,
    frontier_report,
    load_grid,
    load_source,
)
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
    "METRICS",
    "OBJECTIVES",
    "PARAMS",
    "RESAMPLING",
    "SUMMARY_COLUMNS",
    "TASKS",
    "Calibration",
    "ConfigGrid",
    "Frontier",
    "FrontierRun",
    "ReplayData",
    "ReplayResult",
    "calibrate",
    "collect",
    "collect_spec",
    "default_grid",
    "features_of",
    "from_events",
    "from_rows",
    "frontier",
    "frontier_report",
    "load_grid",
    "load_replay",
    "load_source",
    "replay",
    "replay_python",
    "replay_summary",
    "simulate_replay",
]
