"""Sweeps: one base spec run over a grid, a zip or a list of parameter values, cached and resumable.

:func:`load_sweep` reads and validates a sweep file; :func:`run_sweep` runs the points that are not done yet
(sequentially, in a process pool or on Dask) into one sweep directory; the combined table and the comparison
across points come from :mod:`tsglab.sweep.results` (``SweepResult``, ``sweep_table``, ``compare_points``,
loaded when first used: they pull in the report and pandas).
"""

from __future__ import annotations

import importlib
from typing import Any

from tsglab.sweep.driver import run_sweep, set_sweep_progress
from tsglab.sweep.plan import Sweep, SweepPoint, load_sweep

__all__ = ["Sweep", "SweepPoint", "SweepResult", "compare_points", "load_sweep", "run_sweep",
           "set_sweep_progress", "sweep_table"]

_FROM_RESULTS = ("SweepResult", "compare_points", "sweep_table")


def __getattr__(name: str) -> Any:
    if name in _FROM_RESULTS:
        return getattr(importlib.import_module("tsglab.sweep.results"), name)
    raise AttributeError(f"module 'tsglab.sweep' has no attribute {name!r}")
