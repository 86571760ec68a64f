"""Flags and tolerances of the statistics kernels, in one place.

Kernels are compiled with ``@njit(**NJIT)``; setting ``NUMBA_DISABLE_JIT=1`` runs their plain-Python
bodies (coverage, debugging). Each helper module adds its constants in its own section below.
"""

from __future__ import annotations

NJIT: dict = {"cache": True, "nogil": True}

# Kaplan–Meier: 1 - S(t) >= q - KM_TOLERANCE counts as reaching q. A product of factors like 1 - 1/k
# misses an exact 0.05 by ~1e-17, which would otherwise move the P95 to the next event time.
KM_TOLERANCE = 1e-12
