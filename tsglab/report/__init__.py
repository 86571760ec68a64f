"""Reports: tables, tests and figures from the event logs of runs.

``build_report`` pairs two arms (:mod:`~tsglab.report.pairing`), computes every table and test
(:func:`compute_report`, no I/O) and writes them (:mod:`~tsglab.report.writing`).
"""

from tsglab.report.pairing import ArmPair, load_arm_pair
from tsglab.report.protocol import ProtocolSettings
from tsglab.report.results import RunResult
from tsglab.report.run_report import RunReport, build_report, compute_report, metrics_summary
from tsglab.report.writing import build_ablation, seed_manifest, write_report

__all__ = [
    "ArmPair",
    "ProtocolSettings",
    "RunReport",
    "RunResult",
    "build_ablation",
    "build_report",
    "compute_report",
    "load_arm_pair",
    "metrics_summary",
    "seed_manifest",
    "write_report",
]
