"""Reports: tables from the event logs of runs."""

from tsglab.report.run_report import RunReport, build_report, write_report

__all__ = ["RunReport", "build_report", "write_report"]
