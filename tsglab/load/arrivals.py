"""Open-loop arrival times: when each request of a run is meant to start.

``build_arrivals(n, load)`` draws ``n`` intended start offsets (nanoseconds after the segment's t0)
from a :class:`~tsglab.config.LoadSpec`. The gaps of a *unit-rate* process (mean gap 1) are drawn
first — constant (every gap 1), Poisson (exponential gaps) or gamma (shape k = 1/cv², scale cv², so
the mean stays 1 and the coefficient of variation is ``burstiness``) — and their running sums are
then mapped through the inverse of the cumulative target rate Λ(t). With a ramp this time-warp
gives exactly the non-homogeneous process whose expected count by time t is Λ(t); without one it is
a plain scaling by 1/rate.

The first arrival is at offset 0 (the run starts with a request, as the paced mode does); arrival
i > 0 follows i gaps later. Draws come from a seeded :class:`numpy.random.Generator`, so a spec and
a seed always give the same schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tsglab.config import ARRIVALS, LoadSpec
from tsglab.errors import SpecError

# int64 nanoseconds hold ~292 years; refuse schedules anywhere near that instead of wrapping around.
_MAX_SCHEDULE_S = 1e8


@dataclass(frozen=True)
class Arrivals:
    """A drawn arrival schedule.

    ``offsets_ns`` are the intended start times in nanoseconds after t0 (int64, non-decreasing).
    ``expected_count(t_s)`` is the cumulative target rate Λ(t): how many arrivals the process
    expects by ``t_s`` seconds.
    """

    offsets_ns: np.ndarray
    kind: str
    rate_per_s: float
    burstiness: float
    ramp_seconds: float
    ramp_start_fraction: float
    seed: int | tuple[int, ...]

    @property
    def n(self) -> int:
        return int(self.offsets_ns.size)

    @property
    def duration_s(self) -> float:
        """Offset of the last arrival in seconds (0 for fewer than two arrivals)."""
        return float(self.offsets_ns[-1]) / 1e9 if self.n else 0.0

    @property
    def planned_rate_per_s(self) -> float:
        """Mean rate of this draw: (n − 1) gaps over the span of the schedule (NaN below two arrivals)."""
        return (self.n - 1) / self.duration_s if self.n > 1 and self.duration_s > 0 else float("nan")

    def expected_count(self, t_s: float | np.ndarray) -> float | np.ndarray:
        """Λ(t) = ∫₀ᵗ λ(s) ds with λ rising linearly from ``ramp_start_fraction`` × rate to rate."""
        return _cumulative_rate(np.asarray(t_s, dtype=float), self.rate_per_s, self.ramp_seconds,
                                self.ramp_start_fraction)

    def to_frame(self):
        import pandas as pd

        offsets = self.offsets_ns
        gaps = np.diff(offsets, prepend=offsets[:1]) if self.n else offsets
        return pd.DataFrame({"arrival": np.arange(self.n), "offset_ms": offsets / 1e6, "gap_ms": gaps / 1e6})

    def __repr__(self) -> str:
        ramp = f", ramp {self.ramp_seconds:g} s from {self.ramp_start_fraction:g}×" if self.ramp_seconds else ""
        return (f"Arrivals({self.kind}, n={self.n}, rate={self.rate_per_s:g}/s{ramp}, "
                f"span={self.duration_s:.3f} s, seed={self.seed})")


def _validate_arrivals(n: int, load: LoadSpec) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise SpecError(f"the number of arrivals `n` must be an integer >= 0; got {n!r}.")
    if not isinstance(load, LoadSpec):
        raise SpecError(f"`load` must be a tsglab.config.LoadSpec; got {type(load).__name__}. "
                        "Build one with LoadSpec(mode='open_loop', rate_per_s=...).")
    if load.arrival not in ARRIVALS:  # LoadSpec checks this too; kept for objects built by replace()
        raise SpecError(f"load.arrival must be one of {list(ARRIVALS)}; got {load.arrival!r}.")
    expected_span = n / load.rate_per_s + load.ramp_seconds
    if expected_span > _MAX_SCHEDULE_S:
        raise SpecError(f"{n} arrivals at load.rate_per_s={load.rate_per_s:g} span about {expected_span:.3g} s, "
                        f"beyond the {_MAX_SCHEDULE_S:.0e} s a schedule may last; raise the rate or lower n.")


def _unit_gaps(kind: str, count: int, cv: float, rng: np.random.Generator) -> np.ndarray:
    """``count`` gaps of a unit-rate renewal process (mean 1)."""
    if kind == "constant":
        return np.ones(count)
    if kind == "poisson":
        return rng.exponential(1.0, size=count)
    shape = 1.0 / cv**2
    return rng.gamma(shape, 1.0 / shape, size=count)


def _cumulative_rate(t: np.ndarray, rate: float, ramp_s: float, start_fraction: float) -> np.ndarray:
    if ramp_s <= 0:
        return rate * t
    f = start_fraction
    inside = rate * (f * t + (1 - f) * t**2 / (2 * ramp_s))
    at_ramp_end = rate * ramp_s * (1 + f) / 2
    return np.where(t < ramp_s, inside, at_ramp_end + rate * (t - ramp_s))


def _inverse_cumulative_rate(u: np.ndarray, rate: float, ramp_s: float, start_fraction: float) -> np.ndarray:
    """Λ⁻¹(u): the time by which the process expects ``u`` arrivals."""
    if ramp_s <= 0:
        return u / rate
    f = start_fraction
    at_ramp_end = rate * ramp_s * (1 + f) / 2
    # the root of rate·(1−f)/(2R)·t² + rate·f·t − u = 0, written so that f = 1 (no slope) is exact
    inside = 2 * u / (rate * f + np.sqrt((rate * f) ** 2 + 2 * (1 - f) * rate * u / ramp_s))
    return np.where(u < at_ramp_end, inside, ramp_s + (u - at_ramp_end) / rate)


def build_arrivals(n: int, load: LoadSpec, *, seed: int | Sequence[int] | None = None) -> Arrivals:
    """Draw the intended start offsets of ``n`` open-loop requests.

    Parameters
    ----------
    n : int
        Number of arrivals.
    load : LoadSpec
        ``rate_per_s``, ``arrival`` (constant | poisson | gamma), ``burstiness`` (cv of the gamma
        gaps), ``ramp_seconds`` and ``ramp_start_fraction`` shape the schedule.
    seed : int or sequence of int, optional
        Seed of the generator; default ``load.seed``. The runner passes ``(load.seed, segment)``
        for resumed segments so each segment has its own, reproducible draw.

    Returns
    -------
    Arrivals
        ``offsets_ns`` (int64, from 0) plus the parameters that made them.

    Notes
    -----
    With unit-rate arrival times U_i (U_0 = 0, U_i = g_1 + … + g_i, E[g] = 1), the arrivals are
    T_i = Λ⁻¹(U_i) where Λ(t) = ∫₀ᵗ λ(s) ds and λ(s) = r·(f + (1 − f)·s/R) for s < R, r after.
    For a Poisson U this is the standard time-change construction of a non-homogeneous Poisson
    process; for constant gaps the instantaneous rate follows λ exactly.
    """
    _validate_arrivals(n, load)
    seed_used: int | tuple[int, ...] = load.seed if seed is None else (
        int(seed) if isinstance(seed, (int, np.integer)) else tuple(int(s) for s in seed))
    rng = np.random.default_rng(seed_used if isinstance(seed_used, int) else list(seed_used))
    unit_times = np.zeros(n)
    if n > 1:
        np.cumsum(_unit_gaps(load.arrival, n - 1, load.burstiness, rng), out=unit_times[1:])
    times_s = _inverse_cumulative_rate(unit_times, load.rate_per_s, load.ramp_seconds, load.ramp_start_fraction)
    offsets = np.round(times_s * 1e9).astype(np.int64)
    offsets.setflags(write=False)
    return Arrivals(offsets, load.arrival, load.rate_per_s, load.burstiness, load.ramp_seconds,
                    load.ramp_start_fraction, seed_used)
