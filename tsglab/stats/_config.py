"""Flags and tolerances of the statistics kernels, in one place.

Kernels are compiled with ``@njit(**NJIT)``; setting ``NUMBA_DISABLE_JIT=1`` runs their plain-Python
bodies (coverage, debugging). Each helper module adds its constants in its own section below.
"""

from __future__ import annotations

NJIT: dict = {"cache": True, "nogil": True}

# Kaplan–Meier: 1 - S(t) >= q - KM_TOLERANCE counts as reaching q. A product of factors like 1 - 1/k
# misses an exact 0.05 by ~1e-17, which would otherwise move the P95 to the next event time.
KM_TOLERANCE = 1e-12

# Hypothesis tests (tsglab.stats.hypothesis_tests).
# Paired bootstrap: index matrices are drawn in chunks of at most this many elements (rows × n), so
# B = 5000 resamples of n = 10 000 pairs never allocate 400 MB at once.
BOOTSTRAP_CHUNK_ELEMENTS = 1 << 22
# The sd of the paired differences counts as zero when sd <= ZERO_SD_RTOL · max(1, max|d|): the
# t statistic is then undefined (0/0 or ±inf) and the test returns NaN with a warning.
ZERO_SD_RTOL = 1e-12
# Prospective sample sizes larger than this are reported as unreachable (the inputs are almost
# certainly a mistake, e.g. an expected rate equal to the gate).
SAMPLE_SIZE_MAX_N = 10**8

# Bootstrap (tsglab.stats.bootstrap) ----------------------------------------------------------------
# Fast iid order-statistic bootstrap: the CDF P(Bin(n, j/n) >= k) over j is kept only where it lies
# in [BOOTSTRAP_CDF_TOLERANCE, 1 - BOOTSTRAP_CDF_TOLERANCE]; a uniform from `Generator.random`
# (multiples of 2**-53) lands outside that window with probability below 1e-16 per draw.
BOOTSTRAP_CDF_TOLERANCE = 1e-17
# Harrell–Davis inside a bootstrap: leading and trailing weights whose summed mass is below this are
# dropped (each tail), so a resample needs only a window of order statistics around q·n.
BOOTSTRAP_HD_WEIGHT_TAIL = 1e-15
# Resamples are drawn and evaluated in chunks of at most this many random block starts, which bounds
# memory; the chunking is fixed, so a seed always gives the same draws.
BOOTSTRAP_CHUNK_DRAWS = 2_000_000

# --------------------------------------------------------------------------------------------------
# Harrell–Davis window and t-digest (tsglab.stats.quantiles, tsglab.stats.tdigest)

# Harrell–Davis: the Beta(q(n+1), (1-q)(n+1)) mass left outside the window of order statistics, per
# tail. It is folded onto the window's end points, so the estimate moves by at most
# 2 * HD_TAIL_MASS * (max(x) - min(x)): below the rounding of the weights themselves (each a
# difference of two CDF values in [0, 1], good to ~1e-16 absolute).
HD_TAIL_MASS = 1e-17

# t-digest: values wait in a buffer of TDIGEST_BUFFER_FACTOR * compression (at least
# TDIGEST_MIN_BUFFER) and are merged into the centroids a sorted batch at a time.
TDIGEST_DEFAULT_COMPRESSION = 100.0
TDIGEST_MIN_COMPRESSION = 10.0
TDIGEST_BUFFER_FACTOR = 50
TDIGEST_MIN_BUFFER = 8192
