"""One resampling layer: row indices that resample several aligned arrays with the same draws.

Every bootstrap of the protocol goes through :func:`resample_indices`. A resample is a row of indices
into the original sample; gathering two arms with the same row (``gateway[idx]``, ``baseline[idx]``)
keeps their pairing, which a paired comparison needs (DESIGN.md §5: an unpaired bootstrap of paired
data makes tests pass that should fail). Four schemes, as in arch's bootstrap classes:

* ``"iid"`` — rows drawn uniformly with replacement;
* ``"moving-block"`` — blocks of fixed length L, starts uniform in [0, n − L] (Künsch 1989);
* ``"circular-block"`` — blocks of length L on the series wrapped into a circle (Politis & Romano 1992);
* ``"stationary"`` — blocks of Geometric(1/L) length on the circle (Politis & Romano 1994).

Random numbers come from one seeded ``numpy.random.Generator``; the chunk sizes are fixed by ``n``
and ``chunk_elements`` only, so a seed always gives the same resamples.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tsglab.errors import InvalidArgument

__all__ = ["RESAMPLE_METHODS", "ResamplePlan", "resample_indices"]

ResampleMethod = Literal["iid", "moving-block", "circular-block", "stationary"]
RESAMPLE_METHODS: tuple[str, ...] = ("iid", "moving-block", "circular-block", "stationary")

# index matrices are produced in chunks of at most this many elements (rows × n): 2000 resamples of
# 10 000 pairs never allocate 160 MB at once
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class ResamplePlan:
    """How a sample of ``n`` rows is resampled: scheme, (mean) block length, count and seed."""

    n: int
    method: str = "iid"
    block_length: int | None = None
    n_resamples: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in RESAMPLE_METHODS:
            raise InvalidArgument(
                f"`method` must be one of {RESAMPLE_METHODS}; got {self.method!r}. Use 'iid' or 'stationary'."
            )
        if isinstance(self.n, bool) or int(self.n) < 1:
            raise InvalidArgument(f"`n` must be a positive number of rows; got {self.n!r}. Pass len(sample).")
        if int(self.n_resamples) < 1:
            raise InvalidArgument(f"`n_resamples` must be >= 1; got {self.n_resamples!r}. Use e.g. 2000.")
        if self.method == "iid":
            if self.block_length not in (None, 1):
                raise InvalidArgument(
                    f"`block_length` must be None for iid resampling; got {self.block_length!r}. Drop it or choose "
                    "method='stationary'."
                )
        elif self.block_length is None or not 1 <= int(self.block_length) <= self.n:
            raise InvalidArgument(
                f"`block_length` must be in [1, {self.n}] for {self.method} resampling; got {self.block_length!r}. "
                "Use `optimal_block_length(x)`."
            )

    def describe(self) -> str:
        """Plain words for table notes: ``"stationary bootstrap, mean block 7, B = 2000, seed 0"``."""
        block = "" if self.method == "iid" else (
            f", {'mean ' if self.method == 'stationary' else ''}block {self.block_length}"
        )
        return f"{self.method} bootstrap{block}, B = {self.n_resamples}, seed {self.seed}"


def resample_indices(plan: ResamplePlan, *, chunk_elements: int = _CHUNK_ELEMENTS) -> Iterator[np.ndarray]:
    """Yield ``(rows, n)`` int64 index matrices, ``plan.n_resamples`` rows in all.

    Use the same matrix for every array that must stay aligned:

    >>> plan = ResamplePlan(n=5, method="circular-block", block_length=2, n_resamples=3, seed=1)
    >>> a, b = np.arange(5.0), 10 * np.arange(5.0)
    >>> all(np.array_equal(b[idx], 10 * a[idx]) for idx in resample_indices(plan))
    True
    """
    n, method = int(plan.n), plan.method
    # ResamplePlan guarantees a block length for every block method
    length = 1 if method == "iid" or plan.block_length is None else int(plan.block_length)
    rng = np.random.default_rng(plan.seed)
    rows_per_chunk = max(1, chunk_elements // n)
    done = 0
    while done < plan.n_resamples:
        rows = min(rows_per_chunk, plan.n_resamples - done)
        done += rows
        if method == "iid" or (length == 1 and method != "stationary"):
            yield rng.integers(0, n, size=(rows, n))
        elif method == "stationary":
            yield _stationary(n, length, rows, rng)
        else:
            yield _fixed_blocks(n, length, rows, rng, circular=method == "circular-block")


def _fixed_blocks(n: int, length: int, rows: int, rng: np.random.Generator, *, circular: bool) -> np.ndarray:
    blocks = math.ceil(n / length)
    high = n if circular else n - length + 1
    starts = rng.integers(0, high, size=(rows, blocks, 1))
    index = (starts + np.arange(length)).reshape(rows, blocks * length)[:, :n]
    return index % n if circular else index


def _stationary(n: int, mean_length: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Each position starts a new block with probability 1/L (position 0 always); a block continues
    from its random start around the circle. Vectorised: the start of the current block is carried
    forward with a running maximum of block-start positions."""
    new_block = rng.random((rows, n)) < 1.0 / mean_length
    new_block[:, 0] = True
    starts = rng.integers(0, n, size=(rows, n))
    position = np.arange(n)
    block_begin = np.maximum.accumulate(np.where(new_block, position, 0), axis=1)
    first = np.take_along_axis(starts, block_begin, axis=1)
    return (first + position - block_begin) % n
