"""Statistics of the tsglab protocol: quantiles, censoring, latency views.

Pure functions over float64 arrays that validate their input and return floats, arrays or frozen
result objects with ``.to_frame()`` (DESIGN.md §3).
"""

from __future__ import annotations

from tsglab.stats.censoring import (
    CensoringSummary,
    KaplanMeierCurve,
    KMQuantile,
    SLOCapQuantile,
    censoring_summary,
    kaplan_meier,
    km_quantile,
    slo_cap_quantile,
)
from tsglab.stats.latency import backfill_co, co_latency_ms, raw_latency_ms
from tsglab.stats.quantiles import harrell_davis, sample_quantile

__all__ = [
    "CensoringSummary",
    "KMQuantile",
    "KaplanMeierCurve",
    "SLOCapQuantile",
    "backfill_co",
    "censoring_summary",
    "co_latency_ms",
    "harrell_davis",
    "kaplan_meier",
    "km_quantile",
    "raw_latency_ms",
    "sample_quantile",
    "slo_cap_quantile",
]
