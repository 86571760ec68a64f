"""Running experiments: the schedule, the run directory, the session, the dispatchers and the recorder.

:func:`run_experiment` is the entry point (:func:`tsglab.api.run` wraps it for YAML specs).
"""

from tsglab.load.arrivals import build_arrivals
from tsglab.load.rundir import RunDirectory
from tsglab.load.runner import RunRecord, fingerprints, run_experiment
from tsglab.load.schedule import WarmupWindow, WorkItem, build_schedule, select_prompts

__all__ = [
    "RunDirectory",
    "RunRecord",
    "WarmupWindow",
    "WorkItem",
    "build_arrivals",
    "build_schedule",
    "fingerprints",
    "run_experiment",
    "select_prompts",
]
