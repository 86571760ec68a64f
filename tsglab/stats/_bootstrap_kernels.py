"""numba kernels of the block bootstraps, each beside its plain-Python twin.

A resample is described by a pool of block starts and block lengths drawn by the wrapper from a
seeded ``numpy.random.Generator``; the kernels only gather and evaluate. iid resampling is the
special case of blocks of length one, the moving- and circular-block bootstraps use a fixed length
(moving-block starts never exceed ``n - L`` so never wrap), the stationary bootstrap geometric ones.

The statistic is a weighted sum of a window of order statistics of the resample,
``sum_t w[t] * x*_(lo + t)`` (0-based): one weight of 1 is the type-1 quantile, the Harrell–Davis
weights give that estimator. The kernel never sorts a resample: it counts how often each rank of the
original sample was drawn (``ranks`` = position of ``x[i]`` in ``sorted_x``) and walks the counts
from the nearer end to the window, which is O(n) per resample with a small constant.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tsglab.stats._config import NJIT

__all__ = [
    "resample_window_stats",
    "resample_window_stats_python",
]


@njit(**NJIT)
def resample_window_stats(
    ranks: np.ndarray,
    sorted_x: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    lo: int,
    weight_cumsum: np.ndarray,
    out: np.ndarray,
) -> int:
    """Evaluate the window statistic on consecutive resamples built from a pool of blocks.

    Parameters
    ----------
    ranks : int64 array (n,)
        ``ranks[i]`` is the position of ``x[i]`` in ``sorted_x`` (a permutation of ``0..n-1``).
    sorted_x : float64 array (n,)
        The sample in increasing order.
    starts, lengths : int64 arrays (m,)
        Block pool consumed in order; block ``p`` contributes ``x[(starts[p] + t) % n]`` for
        ``t < lengths[p]``; the block that fills a resample is cut at ``n`` values.
    lo : int
        0-based index of the first order statistic with a weight.
    weight_cumsum : float64 array (w + 1,)
        Cumulative weights, starting at 0.
    out : float64 array (B,)
        Receives one statistic per resample.

    Returns
    -------
    int
        Number of resamples completed; less than ``B`` when the pool ran out (the wrapper draws a
        new pool for the rest).
    """
    n = sorted_x.shape[0]
    n_weights = weight_cumsum.shape[0] - 1
    hi = lo + n_weights  # window is positions [lo, hi)
    from_top = lo + hi > n
    counts = np.zeros(n, dtype=np.int64)
    pool = starts.shape[0]
    p = 0
    for b in range(out.shape[0]):
        counts[:] = 0
        filled = 0
        while filled < n:
            if p == pool:
                return b
            start = starts[p]
            take = min(lengths[p], n - filled)
            p += 1
            idx = start
            for _ in range(take):
                if idx >= n:
                    idx -= n
                counts[ranks[idx]] += 1
                idx += 1
            filled += take
        total = 0.0
        if from_top:
            # positions of rank r are [n - above - c, n - above) in the sorted resample
            above = 0
            r = n - 1
            while r >= 0 and n - above > lo:
                c = counts[r]
                if c:
                    first = max(n - above - c, lo)
                    last = min(n - above, hi)
                    if last > first:
                        total += sorted_x[r] * (weight_cumsum[last - lo] - weight_cumsum[first - lo])
                    above += c
                r -= 1
        else:
            below = 0
            r = 0
            while r < n and below < hi:
                c = counts[r]
                if c:
                    first = max(below, lo)
                    last = min(below + c, hi)
                    if last > first:
                        total += sorted_x[r] * (weight_cumsum[last - lo] - weight_cumsum[first - lo])
                    below += c
                r += 1
        out[b] = total
    return out.shape[0]


def resample_window_stats_python(
    ranks: np.ndarray,
    sorted_x: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    lo: int,
    weight_cumsum: np.ndarray,
    out: np.ndarray,
) -> int:
    """Plain twin of :func:`resample_window_stats`: gather the resample, sort it, weight a window."""
    n = sorted_x.shape[0]
    x = sorted_x[ranks]  # the original order
    weights = np.diff(weight_cumsum)
    p = 0
    for b in range(out.shape[0]):
        pieces = []
        filled = 0
        while filled < n:
            if p == starts.shape[0]:
                return b
            take = min(int(lengths[p]), n - filled)
            pieces.append((int(starts[p]) + np.arange(take)) % n)
            filled += take
            p += 1
        resample = np.sort(x[np.concatenate(pieces)])
        out[b] = float(weights @ resample[lo : lo + weights.size])
    return out.shape[0]
