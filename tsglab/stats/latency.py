"""Latency from schedule stamps, and coordinated-omission back-fill.

Events carry monotonic nanosecond stamps (``intended_start``, ``dispatched``, ``completed``).
Raw latency is ``completed - dispatched``; CO latency is ``completed - intended_start``, anchored to
the schedule as wrk2 and MLPerf define it, so a stalled client cannot hide the requests it failed to
send on time (DESIGN.md §3).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tsglab.errors import InvalidArgument

__all__ = ["backfill_co", "co_latency_ms", "raw_latency_ms"]

_NS_PER_MS = 1_000_000.0
#: Guard against a period given in the wrong unit (seconds for ms) exhausting memory.
_MAX_BACKFILL = 50_000_000


def _as_stamps(stamps: ArrayLike, *, name: str) -> np.ndarray:
    arr = np.asarray(stamps)
    if arr.ndim != 1:
        raise InvalidArgument(
            f"`{name}` must be a 1-D array of nanosecond stamps; got shape {arr.shape}. Pass one stamp per request."
        )
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidArgument(
            f"`{name}` must hold integer monotonic nanoseconds (int64); got dtype {arr.dtype}. "
            "Record stamps with `time.monotonic_ns()`; a float column usually means missing values "
            "were read as NaN — drop those rows, then `.astype('int64')`."
        )
    return arr.astype(np.int64, copy=False)


def _elapsed_ms(start: ArrayLike, completed: ArrayLike, *, start_name: str) -> np.ndarray:
    start_ns = _as_stamps(start, name=start_name)
    completed_ns = _as_stamps(completed, name="completed_ns")
    if start_ns.shape != completed_ns.shape:
        raise InvalidArgument(
            f"`{start_name}` and `completed_ns` must have the same length; got {start_ns.size} and "
            f"{completed_ns.size}. Pass one stamp of each kind per request."
        )
    elapsed_ns = completed_ns - start_ns  # exact in int64, converted once
    bad = np.flatnonzero(elapsed_ns < 0)
    if bad.size:
        i = int(bad[0])
        raise InvalidArgument(
            f"`completed_ns` must be >= `{start_name}`; first violation at index {i} "
            f"(completed_ns={int(completed_ns[i])}, {start_name}={int(start_ns[i])}; {bad.size} in all). "
            "Check that both come from the same monotonic clock and are not swapped."
        )
    return elapsed_ns.astype(np.float64) / _NS_PER_MS


def co_latency_ms(intended_ns: ArrayLike, completed_ns: ArrayLike) -> np.ndarray:
    r"""Coordinated-omission-corrected latency, anchored to the intended start.

    Parameters
    ----------
    intended_ns : array_like of int
        Intended (scheduled) start of each request, monotonic nanoseconds.
    completed_ns : array_like of int
        Completion of each request, same clock.

    Returns
    -------
    numpy.ndarray
        float64 latency in milliseconds, :math:`(c_i - s_i) / 10^6`.

    Raises
    ------
    ValueError
        If the arrays are not 1-D integer arrays of equal length, or a completion precedes its
        intended start (the message names the first bad index).

    Notes
    -----
    When a request is dispatched late (the client or a queue stalled), the time it waited counts:
    :math:`L^{CO}_i = c_i - s^{intended}_i \ge c_i - s^{dispatched}_i = L^{raw}_i` whenever
    :math:`s^{intended}_i \le s^{dispatched}_i`.

    References
    ----------
    .. [1] G. Tene, "How NOT to measure latency", 2015; wrk2 README (constant throughput, CO).
    .. [2] MLPerf Inference rules, server scenario (latency from the scheduled issue time).
    """
    return _elapsed_ms(intended_ns, completed_ns, start_name="intended_ns")


def raw_latency_ms(dispatched_ns: ArrayLike, completed_ns: ArrayLike) -> np.ndarray:
    r"""Raw latency: completion minus actual dispatch.

    Parameters
    ----------
    dispatched_ns : array_like of int
        Actual dispatch of each request, monotonic nanoseconds.
    completed_ns : array_like of int
        Completion of each request, same clock.

    Returns
    -------
    numpy.ndarray
        float64 latency in milliseconds, :math:`(c_i - d_i) / 10^6`.

    Raises
    ------
    ValueError
        If the arrays are not 1-D integer arrays of equal length, or a completion precedes its
        dispatch (the message names the first bad index).

    Notes
    -----
    Raw latency hides coordinated omission: prefer :func:`co_latency_ms` for guardrails and show
    both (DESIGN.md §3).
    """
    return _elapsed_ms(dispatched_ns, completed_ns, start_name="dispatched_ns")


def backfill_co(latency_ms: ArrayLike, period_ms: float) -> np.ndarray:
    r"""HdrHistogram-style coordinated-omission back-fill for paced closed-loop runs.

    Parameters
    ----------
    latency_ms : array_like
        1-D non-negative latencies in ms, measured by a client that sends one request every
        ``period_ms`` but waits for each reply (closed loop).
    period_ms : float
        The pacing period (expected interval between requests) in ms, > 0.

    Returns
    -------
    numpy.ndarray
        float64: the original latencies, unchanged and in order, followed by the back-filled ones.

    Raises
    ------
    ValueError
        If ``latency_ms`` holds NaN, infinite or negative values, or ``period_ms`` is not a finite
        positive number.

    Notes
    -----
    A closed-loop client stalled by a reply of latency :math:`L > P` did not send the requests due
    during the stall; had it sent them, they would have waited :math:`L - P, L - 2P, \dots`. The
    back-fill adds, for each :math:`L > P`,

    .. math:: L - kP \quad \text{for } k = 1, 2, \dots \text{ while } L - kP \ge P,

    i.e. :math:`\lfloor L/P \rfloor - 1` values, exactly HdrHistogram's
    ``recordValueWithExpectedInterval``. The originals are always kept.

    Values below :math:`P` are never added. A request that would have waited less than one period
    is indistinguishable from the normal traffic already measured; adding the tail of the ramp
    (:math:`L - kP < P`, down to 0) pours many small values into the sample, which *lowers* the P95
    instead of exposing the stall — a trap of the TSG paper's released code (DESIGN.md §5). With
    schedule stamps, :func:`co_latency_ms` is the better correction; back-fill is for runs that
    only recorded raw latencies.

    The output grows by about :math:`\sum_i L_i / P`: a 60 s stall at a 1 ms period adds 60 000
    values.

    References
    ----------
    .. [1] G. Tene, HdrHistogram, ``AbstractHistogram.recordValueWithExpectedInterval``.
    .. [2] G. Tene, "How NOT to measure latency", 2015.

    Examples
    --------
    >>> backfill_co([10.0, 35.0], 10.0).tolist()
    [10.0, 35.0, 25.0, 15.0]
    """
    try:
        latencies = np.asarray(latency_ms, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"`latency_ms` must be a 1-D array of numbers; got {type(latency_ms).__name__}. Pass a list or array "
            "of milliseconds."
        ) from exc
    if latencies.ndim != 1:
        raise InvalidArgument(
            f"`latency_ms` must be 1-D; got an array of shape {latencies.shape}. Use `np.ravel(latency_ms)`."
        )
    not_finite = np.flatnonzero(~np.isfinite(latencies))
    if not_finite.size:
        i = int(not_finite[0])
        raise InvalidArgument(
            f"`latency_ms` must be finite; got {float(latencies[i])!r} at index {i} "
            f"({not_finite.size} in all). "
            "Timeouts are right-censored: handle them with `censoring_summary`, not back-fill."
        )
    negative = np.flatnonzero(latencies < 0)
    if negative.size:
        i = int(negative[0])
        raise InvalidArgument(
            f"`latency_ms` must be non-negative; got {float(latencies[i])!r} at index {i}. Check the stamps."
        )
    try:
        period = float(period_ms)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"`period_ms` must be a positive number of ms; got {period_ms!r}. Use the pacing interval of the run, "
            "e.g. 1000 / requests_per_second."
        ) from exc
    if not (np.isfinite(period) and period > 0):
        raise InvalidArgument(
            f"`period_ms` must be a finite number > 0; got {period_ms!r}. Use the pacing interval of "
            "the run, e.g. 1000 / requests_per_second."
        )

    # Candidates k = 1..floor(L/P) (one more than needed, which guards float rounding in L/P);
    # the filter below applies the exact rule L - kP >= P.
    ratios = np.where(latencies > period, np.floor(latencies / period), 0.0)
    total = float(ratios.sum())
    if total > _MAX_BACKFILL:
        raise InvalidArgument(
            f"`period_ms`={period_ms!r} would back-fill about {total:.3g} values (limit "
            f"{_MAX_BACKFILL:.0e}); the period is far below the latencies. Check its unit (ms)."
        )
    counts = ratios.astype(np.int64)
    owner = np.repeat(np.arange(latencies.size), counts)
    starts = np.cumsum(counts) - counts
    k = np.arange(owner.size) - np.repeat(starts, counts) + 1
    added = latencies[owner] - k * period
    added = added[added >= period]
    return np.concatenate([latencies, added])
