"""Statistics of the tsglab protocol: quantiles, censoring, latency views, bootstraps and tests.

Pure functions over float64 arrays that validate their input and return floats, arrays or frozen
result objects with ``.to_frame()`` (DESIGN.md §3). Hot loops are numba kernels with plain twins.
"""

from __future__ import annotations

from tsglab.stats.blocklength import BlockLength, SerialCorrelation, optimal_block_length, serial_correlation_check
from tsglab.stats.bootstrap import BootstrapChoice, BootstrapCI, bootstrap_quantile_ci, choose_bootstrap
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
from tsglab.stats.hypothesis_tests import (
    BinomialGate,
    Equivalence,
    MultipleTestResult,
    NonInferiority,
    benjamini_hochberg,
    benjamini_yekutieli,
    binomial_gate,
    paired_noninferiority,
    paired_tost,
    sample_size_binomial_gate,
    sample_size_paired,
)
from tsglab.stats.latency import backfill_co, co_latency_ms, raw_latency_ms
from tsglab.stats.quantiles import harrell_davis, sample_quantile
from tsglab.stats.tdigest import TDigest

__all__ = [
    "BinomialGate",
    "BlockLength",
    "BootstrapCI",
    "BootstrapChoice",
    "CensoringSummary",
    "Equivalence",
    "KMQuantile",
    "KaplanMeierCurve",
    "MultipleTestResult",
    "NonInferiority",
    "SLOCapQuantile",
    "SerialCorrelation",
    "TDigest",
    "backfill_co",
    "benjamini_hochberg",
    "benjamini_yekutieli",
    "binomial_gate",
    "bootstrap_quantile_ci",
    "censoring_summary",
    "choose_bootstrap",
    "co_latency_ms",
    "harrell_davis",
    "kaplan_meier",
    "km_quantile",
    "optimal_block_length",
    "paired_noninferiority",
    "paired_tost",
    "raw_latency_ms",
    "sample_quantile",
    "sample_size_binomial_gate",
    "sample_size_paired",
    "serial_correlation_check",
    "slo_cap_quantile",
]
