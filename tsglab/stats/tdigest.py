"""Online, mergeable quantile sketch: the merging t-digest with the k1 scale function.

Values wait in a buffer; a full buffer is sorted (numpy) and merged with the sorted centroids in
one pass by a numba kernel (:func:`tsglab.stats._quantile_kernels.td_merge_sorted`). Digests from
several processes travel as :meth:`TDigest.to_dict` and combine with :meth:`TDigest.merge`.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from tsglab._version import __version__
from tsglab.errors import DegenerateStatisticWarning, InvalidArgument, InvalidArgumentType
from tsglab.stats._config import (
    TDIGEST_BUFFER_FACTOR,
    TDIGEST_DEFAULT_COMPRESSION,
    TDIGEST_MIN_BUFFER,
    TDIGEST_MIN_COMPRESSION,
)
from tsglab.stats._quantile_kernels import td_ingest_sorted_chunks, td_merge_sorted
from tsglab.stats.quantiles import _as_probabilities, _as_sample

__all__ = ["TDigest"]

_IMPLEMENTATION_NAME = "tsglab-tdigest"
_DICT_KEYS = ("implementation", "compression", "count", "min", "max", "means", "weights")


def _validate_compression(compression: Any) -> float:
    valid = (
        isinstance(compression, numbers.Real)
        and not isinstance(compression, bool)
        and math.isfinite(compression)
        and float(compression) >= TDIGEST_MIN_COMPRESSION
    )
    if not valid:
        raise InvalidArgument(
            f"`compression` must be a finite number >= {TDIGEST_MIN_COMPRESSION:g}; got {compression!r}. "
            f"Use {TDIGEST_DEFAULT_COMPRESSION:g} (default) or 500 for high precision."
        )
    return float(compression)


class TDigest:
    r"""Merging t-digest (Dunning & Ertl 2019) with the :math:`k_1` scale function.

    Parameters
    ----------
    compression : float, default 100
        :math:`\delta`, at least 10. The digest keeps at most about :math:`\delta` centroids; larger
        values are more precise and slower. DESIGN.md §3 uses 500 as its "high precision" ablation.

    Notes
    -----
    A centroid spanning the quantiles :math:`[q_l, q_r]` satisfies
    :math:`k_1(q_r) - k_1(q_l) \le 1` with :math:`k_1(q) = \frac{\delta}{2\pi}\arcsin(2q - 1)`, so
    centroids are small in the tails and the relative error there stays small. ``quantile`` and
    ``cdf`` interpolate linearly between the points :math:`(\min, 0)`, (centroid mean, weight
    before it + half its weight), :math:`(\max, n)`, and are inverses of each other. While every
    centroid holds one value (fewer values than about :math:`\delta`) ``quantile`` equals the
    Hyndman–Fan type-5 sample quantile (``numpy.quantile(..., method="hazen")``).

    References
    ----------
    .. [1] T. Dunning and O. Ertl, "Computing extremely accurate quantiles using t-digests",
       arXiv:1902.04023, 2019.

    Examples
    --------
    >>> digest = TDigest(compression=100)
    >>> digest.update([1.0, 2.0, 3.0, 4.0])
    >>> digest.quantile(0.5)
    2.5
    """

    implementation = f"{_IMPLEMENTATION_NAME} {__version__}"

    def __init__(self, compression: float = TDIGEST_DEFAULT_COMPRESSION) -> None:
        self._compression = _validate_compression(compression)
        self._means = np.empty(0, dtype=np.float64)
        self._weights = np.empty(0, dtype=np.float64)
        self._buffer = np.empty(max(TDIGEST_MIN_BUFFER, int(TDIGEST_BUFFER_FACTOR * self._compression)))
        self._buffer_len = 0
        self._count = 0
        self._min = math.inf
        self._max = -math.inf

    # ---------------------------------------------------------------------------------------------
    # Properties

    @property
    def compression(self) -> float:
        """The compression :math:`\\delta` the digest was built with."""
        return self._compression

    @property
    def count(self) -> int:
        """Number of values ingested (merged digests add up)."""
        return self._count

    @property
    def min(self) -> float:
        """Smallest value seen (NaN when empty)."""
        return self._min if self._count else math.nan

    @property
    def max(self) -> float:
        """Largest value seen (NaN when empty)."""
        return self._max if self._count else math.nan

    @property
    def n_centroids(self) -> int:
        """Number of centroids after merging the buffer."""
        self._flush()
        return int(self._means.size)

    def __repr__(self) -> str:
        return (
            f"TDigest(compression={self._compression:g}, count={self._count}, "
            f"centroids={self._means.size}, buffered={self._buffer_len})"
        )

    # ---------------------------------------------------------------------------------------------
    # Ingest and merge

    def update(self, values: ArrayLike) -> None:
        """Add a 1-D array of finite values (NaN or infinite values raise ``ValueError``)."""
        batch = _as_sample(values, name="values")
        if batch.size == 0:
            return
        self._min = min(self._min, float(batch.min()))
        self._max = max(self._max, float(batch.max()))
        self._count += int(batch.size)
        capacity = self._buffer.size
        if self._buffer_len + batch.size < capacity:
            self._buffer[self._buffer_len : self._buffer_len + batch.size] = batch
            self._buffer_len += batch.size
            return
        pending = np.concatenate([self._buffer[: self._buffer_len], batch])
        n_full = pending.size - pending.size % capacity
        chunks = np.sort(pending[:n_full].reshape(-1, capacity), axis=1)
        self._ingest(chunks)
        rest = pending.size - n_full
        self._buffer[:rest] = pending[n_full:]
        self._buffer_len = rest

    def _ingest(self, sorted_chunks: np.ndarray) -> None:
        merged_weight = float(self._weights.sum())
        self._means, self._weights = td_ingest_sorted_chunks(
            sorted_chunks, self._means, self._weights, merged_weight, self._compression
        )

    def _flush(self) -> None:
        if self._buffer_len:
            self._ingest(np.sort(self._buffer[: self._buffer_len]).reshape(1, -1))
            self._buffer_len = 0

    def merge(self, other: TDigest) -> TDigest:
        """Return a new digest of both inputs' values, with this digest's compression."""
        if not isinstance(other, TDigest):
            raise InvalidArgumentType(
                f"`other` must be a TDigest; got {type(other).__name__}. Rebuild one with "
                "`TDigest.from_dict(d)` if it travelled as a dict."
            )
        self._flush()
        other._flush()
        result = TDigest(self._compression)
        result._count = self._count + other._count
        result._min = min(self._min, other._min)
        result._max = max(self._max, other._max)
        size = self._means.size + other._means.size
        out_means = np.empty(size)
        out_weights = np.empty(size)
        n_out = td_merge_sorted(
            self._means,
            self._weights,
            other._means,
            other._weights,
            False,
            float(self._weights.sum() + other._weights.sum()),
            self._compression,
            out_means,
            out_weights,
        )
        result._means = out_means[:n_out].copy()
        result._weights = out_weights[:n_out].copy()
        return result

    # ---------------------------------------------------------------------------------------------
    # Queries

    def _points(self) -> tuple[np.ndarray, np.ndarray]:
        """Interpolation points (values, cumulative weights); the end points only where they add one."""
        self._flush()
        centres = np.cumsum(self._weights) - 0.5 * self._weights
        values = [self._means]
        ranks = [centres]
        if self._min < self._means[0]:
            values.insert(0, np.array([self._min]))
            ranks.insert(0, np.array([0.0]))
        if self._max > self._means[-1]:
            values.append(np.array([self._max]))
            ranks.append(np.array([float(self._count)]))
        return np.concatenate(values), np.concatenate(ranks)

    def _empty(self, shape: tuple, what: str) -> float | np.ndarray:
        warnings.warn(
            f"The t-digest {what} of an empty digest is undefined; returning NaN. Call `update` first.",
            DegenerateStatisticWarning,
            stacklevel=3,
        )
        return math.nan if shape == () else np.full(shape, np.nan)

    def quantile(self, q: ArrayLike) -> float | np.ndarray:
        """Estimated quantile(s) at probability ``q`` in (0, 1); a float for a scalar ``q``."""
        q_arr = _as_probabilities(q)
        if self._count == 0:
            return self._empty(q_arr.shape, "quantile")
        values, ranks = self._points()
        estimates = np.interp(q_arr * self._count, ranks, values)
        return float(estimates) if q_arr.ndim == 0 else np.asarray(estimates, dtype=np.float64)

    def cdf(self, x: ArrayLike) -> float | np.ndarray:
        """Estimated share of values at or below ``x`` (ties count half); a float for a scalar ``x``."""
        try:
            x_arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"`x` must be a number or an array of numbers; got {x!r}. Pass latencies as floats."
            ) from exc
        if np.isnan(x_arr).any():
            raise InvalidArgument("`x` contains NaN; the CDF is defined for numbers only. Drop the NaN values.")
        if self._count == 0:
            return self._empty(x_arr.shape, "CDF")
        values, ranks = self._points()
        flat = x_arr.reshape(-1)
        left = np.searchsorted(values, flat, side="left")
        right = np.searchsorted(values, flat, side="right")
        hit = left < right
        between = np.interp(flat, values, ranks)
        at_point = 0.5 * (ranks[np.minimum(left, ranks.size - 1)] + ranks[np.maximum(right - 1, 0)])
        result = np.where(hit, at_point, between) / self._count
        result = np.where(flat < self._min, 0.0, np.where(flat > self._max, 1.0, result))
        return float(result[0]) if x_arr.ndim == 0 else result.reshape(x_arr.shape)

    # ---------------------------------------------------------------------------------------------
    # Serialisation

    def to_dict(self) -> dict:
        """JSON-ready state: implementation, compression, count, min, max, centroid means and weights."""
        self._flush()
        return {
            "implementation": self.implementation,
            "compression": self._compression,
            "count": self._count,
            "min": self.min if self._count else None,
            "max": self.max if self._count else None,
            "means": self._means.tolist(),
            "weights": self._weights.tolist(),
        }

    @classmethod
    def from_dict(cls, state: dict) -> TDigest:
        """Rebuild a digest from :meth:`to_dict` output (e.g. sent from another process)."""
        if not isinstance(state, dict):
            raise InvalidArgumentType(f"`state` must be a dict from `TDigest.to_dict()`; got {type(state).__name__}.")
        missing = [key for key in _DICT_KEYS if key not in state]
        if missing:
            raise InvalidArgument(f"`state` lacks key(s) {missing}; pass the dict `TDigest.to_dict()` returned.")
        implementation = str(state["implementation"])
        if not implementation.startswith(_IMPLEMENTATION_NAME + " "):
            raise InvalidArgument(
                f"`state['implementation']` must start with {_IMPLEMENTATION_NAME!r}; got {implementation!r}. "
                "Digests of other libraries do not share this centroid format."
            )
        digest = cls(state["compression"])
        means = np.asarray(state["means"], dtype=np.float64)
        weights = np.asarray(state["weights"], dtype=np.float64)
        count = state["count"]
        if means.ndim != 1 or means.shape != weights.shape:
            raise InvalidArgument(
                f"`state['means']` and `state['weights']` must be 1-D lists of one length; got "
                f"{means.size} and {weights.size}. The dict was altered after `to_dict()`."
            )
        consistent = (
            isinstance(count, numbers.Integral)
            and np.all(np.isfinite(means))
            and np.all(weights > 0)
            and np.all(np.diff(means) >= 0)
            and math.isclose(float(weights.sum()), float(count), rel_tol=1e-9, abs_tol=1e-9)
        )
        if not consistent:
            raise InvalidArgument(
                f"`state` is inconsistent: count={count!r}, sum of weights={float(weights.sum())!r}; means "
                "must be finite and sorted, weights positive. The dict was altered after `to_dict()`."
            )
        digest._means = means
        digest._weights = weights
        digest._count = int(count)
        if count:
            digest._min = float(state["min"])
            digest._max = float(state["max"])
        return digest

    def to_frame(self):
        """Centroids as a ``pandas.DataFrame`` with columns ``mean``, ``weight``, ``cum_weight``."""
        import pandas as pd

        self._flush()
        return pd.DataFrame({"mean": self._means, "weight": self._weights, "cum_weight": np.cumsum(self._weights)})
