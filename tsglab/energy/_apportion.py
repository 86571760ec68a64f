"""Share a run's measured energy among its requests.

The timeline of a :class:`Samples` trace is cut into windows of ``window_s``; each window's energy is
the cumulative counter interpolated at its bounds, less the idle baseline ``idle_w * length``
(clipped at zero, the clipping counted). Each request's tokens are spread uniformly over its
[dispatched, completed] interval, and a window's net energy goes to the requests in flight in it in
proportion to the tokens each has inside the window. A window with nothing in flight keeps its
energy as *unattributed*; nothing is dropped, so

    sum(request joules) + unattributed = net energy of the windows       (conservation)

Two kernels compute the shares: ``_shares_numpy`` (vectorised over the (request, window) cells a
request touches, in chunks of at most ``max_cells`` cells - the windows x requests matrix without its
empty cells) and ``_shares_python``, its plain twin that loops over every window x request.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tsglab.energy._errors import EnergyError
from tsglab.energy._source import Samples
from tsglab.energy._summary import field_of

J_PER_MWH = 3.6
MAX_CELLS = 2_000_000  # (request, window) cells per numpy chunk: ~100 MB of temporaries at most


@dataclass(frozen=True)
class RequestSpan:
    """One request on the monotonic timeline: ``tokens`` = prompt + completion over all attempts."""

    request_id: str
    dispatched_ns: int
    completed_ns: int
    tokens: float


def spans_from_events(events: Iterable[Any]) -> list[RequestSpan]:
    """Request spans from tsglab events (``schedule`` stamps, tokens summed over ``attempts``).

    The events are :class:`tsglab.events.Event` records, or their JSON dicts; they are read by field
    name (the events layer sits above this one)."""
    spans = []
    for event in events:
        schedule = field_of(event, "schedule")
        tokens = sum(int(field_of(a, "prompt_tokens") or 0) + int(field_of(a, "completion_tokens") or 0)
                     for a in field_of(event, "attempts") or ())
        spans.append(RequestSpan(str(field_of(event, "request_id")), int(field_of(schedule, "dispatched_ns")),
                                 int(field_of(schedule, "completed_ns")), tokens))
    return spans


@dataclass(frozen=True, eq=False, repr=False)
class EnergyApportionment:
    """Per-request energy and the totals it came from (arrays are aligned with ``request_ids``).

    ``joules`` is NaN for a request that lies outside the sampled span (``measured`` False): not
    measured is never reported as zero. ``tokens`` counts the request's tokens inside the span and
    ``coverage`` the fraction of its duration there. ``tokens_per_s_per_w`` = tokens / duration /
    (joules / duration) = tokens per joule.
    """

    request_ids: tuple[str, ...]
    joules: np.ndarray
    tokens: np.ndarray
    duration_s: np.ndarray
    coverage: np.ndarray
    measured: np.ndarray
    mwh_per_1k_tokens: np.ndarray
    tokens_per_s_per_w: np.ndarray
    window_start_ns: np.ndarray
    window_gross_j: np.ndarray
    window_net_j: np.ndarray
    window_in_flight: np.ndarray
    gross_j: float
    idle_j: float
    net_j: float
    attributed_j: float
    unattributed_j: float
    clipped_j: float
    clipped_windows: int
    unattributed_windows: int
    window_s: float
    idle_w: float
    meter: str
    domain: str
    sample_hz_achieved: float
    engine: str

    @property
    def n_windows(self) -> int:
        return int(self.window_net_j.size)

    @property
    def conservation_error_j(self) -> float:
        """net - (attributed + unattributed): zero up to rounding."""
        return self.net_j - (float(np.nansum(self.joules)) + self.unattributed_j)

    def index(self, request_id: str) -> int:
        try:
            return self._positions[request_id]
        except KeyError:
            raise EnergyError(f"request_id {request_id!r} is not in this apportionment "
                              f"({len(self.request_ids)} requests); pass a span for it to apportion().") from None

    @property
    def _positions(self) -> dict[str, int]:
        cached = self.__dict__.get("_positions_cache")
        if cached is None:
            cached = {rid: i for i, rid in enumerate(self.request_ids)}
            object.__setattr__(self, "_positions_cache", cached)
        return cached

    def totals(self) -> dict[str, Any]:
        return {"gross_j": self.gross_j, "idle_j": self.idle_j, "clipped_j": self.clipped_j, "net_j": self.net_j,
                "attributed_j": self.attributed_j, "unattributed_j": self.unattributed_j,
                "n_windows": self.n_windows, "clipped_windows": self.clipped_windows,
                "unattributed_windows": self.unattributed_windows, "window_s": self.window_s,
                "idle_w": self.idle_w, "meter": self.meter, "domain": self.domain,
                "sample_hz_achieved": self.sample_hz_achieved, "n_requests": len(self.request_ids),
                "n_measured": int(self.measured.sum())}

    def to_frame(self):
        """One row per request (pandas is imported here, not at import time)."""
        import pandas as pd

        return pd.DataFrame({"request_id": list(self.request_ids), "joules": self.joules, "tokens": self.tokens,
                             "duration_s": self.duration_s, "coverage": self.coverage, "measured": self.measured,
                             "mwh_per_1k_tokens": self.mwh_per_1k_tokens,
                             "tokens_per_s_per_w": self.tokens_per_s_per_w})

    def __repr__(self) -> str:
        return (f"EnergyApportionment(meter={self.meter!r}, n_requests={len(self.request_ids)}, "
                f"n_windows={self.n_windows}, window_s={self.window_s}, idle_w={self.idle_w:.3f}, "
                f"gross_j={self.gross_j:.3f}, idle_j={self.idle_j:.3f}, net_j={self.net_j:.3f}, "
                f"attributed_j={self.attributed_j:.3f}, unattributed_j={self.unattributed_j:.3f}, "
                f"clipped_windows={self.clipped_windows})")


# -- kernels: pure functions of arrays ---------------------------------------------------------------

def _shares_python(edges_ns, net_j, dispatched_ns, completed_ns, tokens):
    """Plain twin: loop over every window x request. Returns (joules, tokens_in_span, in_flight_count)."""
    n_windows, n_requests = len(net_j), len(dispatched_ns)
    joules = [0.0] * n_requests
    tokens_in = [0.0] * n_requests
    in_flight = [0] * n_windows
    for k in range(n_windows):
        lo, hi = int(edges_ns[k]), int(edges_ns[k + 1])
        last = k == n_windows - 1
        cells = []  # (request, token weight, time weight)
        for r in range(n_requests):
            d, c, tok = int(dispatched_ns[r]), int(completed_ns[r]), float(tokens[r])
            if c == d:  # a point in time: all its tokens in the window that holds it
                if lo <= d < hi or (last and d == hi):
                    cells.append((r, tok, 0.0))
                continue
            overlap = min(c, hi) - max(d, lo)
            if overlap > 0:
                cells.append((r, tok * overlap / (c - d), float(overlap)))
        in_flight[k] = len(cells)
        token_total = sum(cell[1] for cell in cells)
        time_total = sum(cell[2] for cell in cells)
        for r, tok_w, time_w in cells:
            tokens_in[r] += tok_w
            if token_total > 0:
                share = tok_w / token_total
            elif time_total > 0:  # nobody in flight has tokens (failed requests): split by time
                share = time_w / time_total
            else:
                share = 1.0 / len(cells)
            joules[r] += float(net_j[k]) * share
    return joules, tokens_in, in_flight


def _request_windows(edges_ns, window_ns, dispatched_ns, completed_ns):
    """First window index and number of windows each request touches (0 outside the span)."""
    t0, t_end, n_windows = edges_ns[0], edges_ns[-1], edges_ns.size - 1
    point = dispatched_ns == completed_ns
    lo = np.maximum(dispatched_ns, t0)
    hi = np.minimum(completed_ns, t_end)
    first = np.where(point, (dispatched_ns - t0) // window_ns, (lo - t0) // window_ns)
    last = np.where(point, first, (hi - t0 - 1) // window_ns)
    first = np.clip(first, 0, n_windows - 1)
    last = np.clip(last, 0, n_windows - 1)
    inside = np.where(point, (dispatched_ns >= t0) & (dispatched_ns <= t_end), hi > lo)
    count = np.where(inside, last - first + 1, 0)
    return first, count


def _cells(edges_ns, window_ns, dispatched_ns, completed_ns, tokens, max_cells):
    """Yield chunks of (request, window, token weight, time weight) cells, at most ~max_cells each."""
    first, count = _request_windows(edges_ns, window_ns, dispatched_ns, completed_ns)
    ends = np.cumsum(count)
    start = 0
    n_requests = dispatched_ns.size
    while start < n_requests:
        base = ends[start - 1] if start else 0
        stop = int(np.searchsorted(ends, base + max_cells, side="right"))
        stop = max(stop, start + 1)
        chunk = np.arange(start, stop)
        n = count[chunk]
        req = np.repeat(chunk, n)
        offsets = np.arange(req.size) - np.repeat(np.cumsum(n) - n, n)
        win = first[req] + offsets
        d, c = dispatched_ns[req], completed_ns[req]
        overlap = (np.minimum(c, edges_ns[win + 1]) - np.maximum(d, edges_ns[win])).astype(np.float64)
        duration = (c - d).astype(np.float64)
        point = duration == 0
        tok_w = np.where(point, tokens[req], tokens[req] * overlap / np.where(point, 1.0, duration))
        time_w = np.where(point, 0.0, overlap)
        yield req, win, tok_w, time_w
        start = stop


def _shares_numpy(edges_ns, window_ns, net_j, dispatched_ns, completed_ns, tokens, max_cells=MAX_CELLS):
    """Vectorised kernel over the (request, window) cells in chunks; same returns as the twin."""
    n_windows, n_requests = net_j.size, dispatched_ns.size
    token_total = np.zeros(n_windows)
    time_total = np.zeros(n_windows)
    in_flight = np.zeros(n_windows, dtype=np.int64)
    chunks: list[tuple[np.ndarray, ...]] = []
    cache = True
    for req, win, tok_w, time_w in _cells(edges_ns, window_ns, dispatched_ns, completed_ns, tokens, max_cells):
        token_total += np.bincount(win, tok_w, minlength=n_windows)
        time_total += np.bincount(win, time_w, minlength=n_windows)
        in_flight += np.bincount(win, minlength=n_windows)
        if cache and len(chunks) < 2:
            chunks.append((req, win, tok_w, time_w))
        else:  # many chunks: recompute them in the second pass instead of holding them all
            cache, chunks = False, []
    second_pass: Iterable[tuple[np.ndarray, ...]] = (
        chunks if cache else _cells(edges_ns, window_ns, dispatched_ns, completed_ns, tokens, max_cells))
    joules = np.zeros(n_requests)
    tokens_in = np.zeros(n_requests)
    with np.errstate(divide="ignore", invalid="ignore"):
        for req, win, tok_w, time_w in second_pass:
            by_tokens = token_total[win] > 0
            by_time = ~by_tokens & (time_total[win] > 0)
            share = np.where(by_tokens, tok_w / token_total[win],
                             np.where(by_time, time_w / time_total[win], 1.0 / in_flight[win]))
            joules += np.bincount(req, share * net_j[win], minlength=n_requests)
            tokens_in += np.bincount(req, tok_w, minlength=n_requests)
    return joules, tokens_in, in_flight


# -- the public function ------------------------------------------------------------------------------

def apportion(samples: Samples, requests: Sequence[RequestSpan], *, window_s: float, idle_w: float,
              engine: Literal["numpy", "python"] = "numpy") -> EnergyApportionment:
    """Apportion the energy in ``samples`` to ``requests``.

    Parameters
    ----------
    samples : Samples
        The cumulative-energy trace (from :class:`~tsglab.energy.Sampler` or ``Samples.from_arrays``).
    requests : sequence of RequestSpan
        Monotonic-ns intervals and token counts (``spans_from_events(events)`` builds them).
    window_s : float
        Window length in seconds, >= 1. The last window ends at the last sample and may be shorter.
    idle_w : float
        Idle baseline in watts, subtracted from every window (``idle_w * length``).
    engine : {"numpy", "python"}
        The vectorised kernel or its plain twin (slow; for checking).

    Returns
    -------
    EnergyApportionment

    Notes
    -----
    With :math:`E(t)` the interpolated counter and window :math:`w = [a_w, b_w)`,
    :math:`G_w = E(b_w) - E(a_w)`, :math:`N_w = \\max(G_w - P_{idle}(b_w - a_w), 0)`. Request :math:`r`
    with :math:`n_r` tokens on :math:`[d_r, c_r]` has :math:`n_{rw} = n_r |[d_r, c_r] \\cap w| / (c_r - d_r)`
    tokens in :math:`w` and receives :math:`J_r = \\sum_w N_w n_{rw} / \\sum_s n_{sw}`. If no request in
    flight in :math:`w` has tokens, :math:`N_w` is split by time in flight (then equally).
    """
    window_ns, idle = _validate_options(samples, window_s, idle_w, engine)
    ids, dispatched, completed, tokens = _validate_requests(requests)
    t_ns = samples.t_ns
    t0, t_end = int(t_ns[0]), int(t_ns[-1])
    n_windows = max(1, -(-(t_end - t0) // window_ns))
    edges = t0 + np.arange(n_windows + 1, dtype=np.int64) * window_ns
    edges[-1] = t_end
    energy_at_edges = samples.energy_at(edges)
    gross = np.diff(energy_at_edges)
    idle_j = idle * np.diff(edges) / 1e9
    raw_net = gross - idle_j
    net = np.maximum(raw_net, 0.0)

    if engine == "numpy":
        joules, tokens_in, in_flight = _shares_numpy(edges, window_ns, net, dispatched, completed, tokens)
    else:
        joules, tokens_in, in_flight = (np.asarray(a, dtype=dt) for a, dt in zip(
            _shares_python(edges.tolist(), net.tolist(), dispatched.tolist(), completed.tolist(), tokens.tolist()),
            (np.float64, np.float64, np.int64), strict=True))

    duration_ns = (completed - dispatched).astype(np.float64)
    inside_ns = np.clip(np.minimum(completed, t_end) - np.maximum(dispatched, t0), 0, None).astype(np.float64)
    point_inside = (duration_ns == 0) & (dispatched >= t0) & (dispatched <= t_end)
    measured = (inside_ns > 0) | point_inside
    coverage = np.where(duration_ns > 0, inside_ns / np.where(duration_ns > 0, duration_ns, 1.0),
                        point_inside.astype(np.float64))
    joules = np.where(measured, joules, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        mwh_per_1k = np.where(measured & (tokens_in > 0), joules / J_PER_MWH / tokens_in * 1e3, np.nan)
        tok_per_j = np.where(measured & (joules > 0), tokens_in / joules, np.nan)
    unattributed = float(net[in_flight == 0].sum())
    for array in (joules, tokens_in, duration_ns, coverage, measured, mwh_per_1k, tok_per_j, edges, gross, net,
                  in_flight):
        array.setflags(write=False)
    return EnergyApportionment(
        request_ids=ids, joules=joules, tokens=tokens_in, duration_s=duration_ns / 1e9, coverage=coverage,
        measured=measured, mwh_per_1k_tokens=mwh_per_1k, tokens_per_s_per_w=tok_per_j,
        window_start_ns=edges[:-1], window_gross_j=gross, window_net_j=net, window_in_flight=in_flight,
        gross_j=float(gross.sum()), idle_j=float(idle_j.sum()), net_j=float(net.sum()),
        attributed_j=float(np.nansum(joules)), unattributed_j=unattributed,
        clipped_j=float(-raw_net[raw_net < 0].sum()), clipped_windows=int((raw_net < 0).sum()),
        unattributed_windows=int((in_flight == 0).sum()), window_s=float(window_s), idle_w=idle,
        meter=samples.meter, domain=samples.domain, sample_hz_achieved=samples.sample_hz_achieved, engine=engine)


def _validate_options(samples, window_s, idle_w, engine) -> tuple[int, float]:
    if not isinstance(samples, Samples):
        raise EnergyError(f"`samples` must be a tsglab.energy.Samples; got {type(samples).__name__}. "
                          f"Use Sampler.samples() or Samples.from_arrays(t_ns, energy_j).")
    if len(samples) < 2:
        raise EnergyError(f"`samples` needs at least 2 samples to measure energy; got {len(samples)}.")
    if not (isinstance(window_s, (int, float)) and math.isfinite(window_s) and window_s >= 1):
        raise EnergyError(f"`window_s` must be >= 1 s (NVML's counter is too coarse below); got {window_s!r}.")
    if not (isinstance(idle_w, (int, float)) and math.isfinite(idle_w) and idle_w >= 0):
        raise EnergyError(f"`idle_w` must be a finite number of watts >= 0; got {idle_w!r}. "
                          f"Use Sampler.measure_idle(seconds) to measure it.")
    if engine not in ("numpy", "python"):
        raise EnergyError(f"`engine` must be 'numpy' or 'python'; got {engine!r}.")
    return round(window_s * 1e9), float(idle_w)


def _validate_requests(requests):
    ids = tuple(r.request_id for r in requests)
    if len(set(ids)) != len(ids):
        dup = next(i for i, count in collections.Counter(ids).items() if count > 1)
        raise EnergyError(f"request_id {dup!r} appears more than once; each request needs its own span.")
    dispatched = np.fromiter((r.dispatched_ns for r in requests), dtype=np.int64, count=len(ids))
    completed = np.fromiter((r.completed_ns for r in requests), dtype=np.int64, count=len(ids))
    tokens = np.fromiter((r.tokens for r in requests), dtype=np.float64, count=len(ids))
    bad = np.flatnonzero(completed < dispatched)
    if bad.size:
        i = int(bad[0])
        raise EnergyError(f"request {ids[i]!r}: completed_ns ({int(completed[i])}) is before dispatched_ns "
                          f"({int(dispatched[i])}); both must be time.monotonic_ns() stamps.")
    bad = np.flatnonzero(~np.isfinite(tokens) | (tokens < 0))
    if bad.size:
        i = int(bad[0])
        raise EnergyError(f"request {ids[i]!r}: tokens must be a finite count >= 0; got {requests[i].tokens!r}.")
    return ids, dispatched, completed, tokens
