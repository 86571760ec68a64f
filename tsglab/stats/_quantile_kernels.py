"""numba kernels of the quantile estimators: the Harrell–Davis window sum and the t-digest merge.

Pure functions of arrays and scalars (STYLE.md, "Kernels and wrappers"). Each dispatcher's
``.py_func`` is its plain-Python twin; the tests run both on the same inputs and compare, and
``NUMBA_DISABLE_JIT=1`` runs the twins everywhere. Sorting and the Beta CDF (``scipy.special``) stay
in the wrappers: numpy's sort beats numba's, and numba has no incomplete beta function.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tsglab.stats._config import NJIT

__all__ = [
    "hd_window_sum",
    "resampled_top_window",
    "td_ingest_sorted_chunks",
    "td_merge_sorted",
]


@njit(**NJIT)
def hd_window_sum(sorted_window: np.ndarray, cdf: np.ndarray) -> float:
    """Return ``sum_j (cdf[j+1] - cdf[j]) * sorted_window[j]``.

    ``sorted_window`` holds the order statistics ``x_(lo+1) .. x_(hi)`` and ``cdf`` the Beta CDF at
    ``lo/n .. hi/n`` (``hi - lo + 1`` values, the end points set to 0 and 1 by the wrapper so that
    the weights sum to one).
    """
    total = 0.0
    for j in range(sorted_window.size):
        total += (cdf[j + 1] - cdf[j]) * sorted_window[j]
    return total


@njit(**NJIT)
def _k1_limit(q_left: float, norm: float) -> float:
    """Right edge q of a cluster of k1-size 1 starting at ``q_left``; ``norm = compression / (2 pi)``.

    k1(q) = norm * asin(2q - 1) (Dunning & Ertl 2019, eq. for k_1), so the edge is
    (sin(asin(2 q_left - 1) + 1 / norm) + 1) / 2, capped at 1.
    """
    angle = math.asin(min(1.0, max(-1.0, 2.0 * q_left - 1.0))) + 1.0 / norm
    if angle >= 0.5 * math.pi:
        return 1.0
    return 0.5 * (math.sin(angle) + 1.0)


@njit(**NJIT)
def td_merge_sorted(
    a_means: np.ndarray,
    a_weights: np.ndarray,
    b_means: np.ndarray,
    b_weights: np.ndarray,
    b_unit_weights: bool,
    total_weight: float,
    compression: float,
    out_means: np.ndarray,
    out_weights: np.ndarray,
) -> int:
    """Merge two mean-sorted centroid lists into k1-bounded clusters in one pass; return their number.

    ``b_unit_weights`` marks ``b`` as raw values of weight 1 (``b_weights`` is then ignored).
    ``total_weight`` is the sum of all weights; ``out_*`` need room for ``a.size + b.size`` entries.
    A cluster grows while its right edge stays below the q where k1 has risen by 1 from its left
    edge (the "weight limit" merge of Dunning & Ertl 2019, §2.1, Algorithm 1).
    """
    norm = compression / (2.0 * math.pi)
    n_a = a_means.size
    n_b = b_means.size
    i = 0
    j = 0
    n_out = 0
    weight_so_far = 0.0
    weight_limit = total_weight * _k1_limit(0.0, norm)
    cur_mean = 0.0
    cur_weight = 0.0
    while i < n_a or j < n_b:
        if j >= n_b or (i < n_a and a_means[i] <= b_means[j]):
            mean = a_means[i]
            weight = a_weights[i]
            i += 1
        else:
            mean = b_means[j]
            weight = 1.0 if b_unit_weights else b_weights[j]
            j += 1
        if cur_weight == 0.0:
            cur_mean = mean
            cur_weight = weight
        elif weight_so_far + cur_weight + weight <= weight_limit:
            cur_weight += weight
            cur_mean += (mean - cur_mean) * weight / cur_weight
        else:
            out_means[n_out] = cur_mean
            out_weights[n_out] = cur_weight
            n_out += 1
            weight_so_far += cur_weight
            weight_limit = total_weight * _k1_limit(weight_so_far / total_weight, norm)
            cur_mean = mean
            cur_weight = weight
    if cur_weight > 0.0:
        out_means[n_out] = cur_mean
        out_weights[n_out] = cur_weight
        n_out += 1
    return n_out


@njit(**NJIT)
def td_ingest_sorted_chunks(
    sorted_chunks: np.ndarray,
    means: np.ndarray,
    weights: np.ndarray,
    total_weight: float,
    compression: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge each row of ``sorted_chunks`` (rows sorted ascending) into the centroids, in turn.

    ``total_weight`` is the weight already in ``means``/``weights``. Returns the new centroids.
    """
    n_rows, row_len = sorted_chunks.shape
    empty = np.empty(0, dtype=np.float64)
    cur_means = means
    cur_weights = weights
    n_cur = means.size
    for row in range(n_rows):
        total_weight += row_len
        out_means = np.empty(n_cur + row_len, dtype=np.float64)
        out_weights = np.empty(n_cur + row_len, dtype=np.float64)
        n_cur = td_merge_sorted(
            cur_means[:n_cur],
            cur_weights[:n_cur],
            sorted_chunks[row],
            empty,
            True,
            total_weight,
            compression,
            out_means,
            out_weights,
        )
        cur_means = out_means
        cur_weights = out_weights
    return cur_means[:n_cur].copy(), cur_weights[:n_cur].copy()


@njit(**NJIT)
def resampled_top_window(ranks: np.ndarray, sorted_values: np.ndarray, index: np.ndarray, lo: int,
                         weights: np.ndarray, out: np.ndarray) -> None:
    """``out[r] = sum_t weights[t] * x*_(lo + t)`` for each resample row ``index[r]`` (0-based order
    statistics of ``sorted_values[ranks[index[r]]]``), without sorting: count how often each rank was
    drawn, then walk the counts down from the largest rank, filling order statistics n-1, n-2, ... lo.
    O(n) per row; the caller's tests compare it with sorting and with its ``.py_func`` twin."""
    n = ranks.size
    counts = np.zeros(n, dtype=np.int64)
    for r in range(index.shape[0]):
        counts[:] = 0
        for j in range(n):
            counts[ranks[index[r, j]]] += 1
        total = 0.0
        position = n - 1
        rank = n - 1
        while position >= lo and rank >= 0:
            c = counts[rank]
            while c > 0 and position >= lo:
                total += weights[position - lo] * sorted_values[rank]
                position -= 1
                c -= 1
            rank -= 1
        out[r] = total
