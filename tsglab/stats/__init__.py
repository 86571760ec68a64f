"""Statistics of the tsglab protocol: quantiles, censoring, latency views, bootstraps and tests.

Pure functions over float64 arrays that validate their input and return floats, arrays or frozen
result objects with ``.to_frame()`` (DESIGN.md §3). Hot loops are numba kernels with plain twins.
"""

from __future__ import annotations

from tsglab.stats.binomial_ci import (
    BinomialCI,
    BinomialLimits,
    clopper_pearson,
    clopper_pearson_limits,
    exact_bound_n_needed,
)
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
from tsglab.stats.quality_tests import QualityTest, quality_noninferiority
from tsglab.stats.quantile_inference import (
    QuantileCI,
    QuantileRatioTest,
    censored_harrell_davis,
    choose_resampling,
    quantile_ci,
    quantile_ratio_test,
)
from tsglab.stats.quantiles import harrell_davis, sample_quantile
from tsglab.stats.resample import ResamplePlan, resample_indices
from tsglab.stats.tdigest import TDigest

__all__ = [
    "BinomialCI",
    "BinomialGate",
    "BinomialLimits",
    "BlockLength",
    "BootstrapCI",
    "BootstrapChoice",
    "CensoringSummary",
    "Equivalence",
    "KMQuantile",
    "KaplanMeierCurve",
    "MultipleTestResult",
    "NonInferiority",
    "QualityTest",
    "QuantileCI",
    "QuantileRatioTest",
    "ResamplePlan",
    "SLOCapQuantile",
    "SerialCorrelation",
    "TDigest",
    "backfill_co",
    "benjamini_hochberg",
    "benjamini_yekutieli",
    "binomial_gate",
    "bootstrap_quantile_ci",
    "censored_harrell_davis",
    "censoring_summary",
    "choose_bootstrap",
    "choose_resampling",
    "clopper_pearson",
    "clopper_pearson_limits",
    "co_latency_ms",
    "exact_bound_n_needed",
    "harrell_davis",
    "kaplan_meier",
    "km_quantile",
    "optimal_block_length",
    "paired_noninferiority",
    "paired_tost",
    "quality_noninferiority",
    "quantile_ci",
    "quantile_ratio_test",
    "raw_latency_ms",
    "resample_indices",
    "sample_quantile",
    "sample_size_binomial_gate",
    "sample_size_paired",
    "serial_correlation_check",
    "slo_cap_quantile",
]
