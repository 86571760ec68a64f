"""Reports: tables from the event logs of runs."""

from tsglab.report.protocol import ProtocolSettings
from tsglab.report.run_report import RunReport, build_ablation, build_report, write_report

__all__ = ["ProtocolSettings", "RunReport", "build_ablation", "build_report", "write_report"]
