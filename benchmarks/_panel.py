"""Known-truth data for calibrating the report's tests (used by calibrate_protocol.py and the tests).

Latency panel for Family B: paired arms whose *true* P95 ratio is a chosen value, so the rejection
rate at ratio 1+δ is the type-I error and at ratio 1 the power. Every scenario correlates the arms
through the prompt (a long prompt is slow in both arms), as real paired runs do.

Quality panel for Family A: paired scores whose true mean difference is a chosen value.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy import optimize, stats

from tsglab.events import synthetic_event
from tsglab.report.frame import FRAME_COLUMNS, events_frame

LATENCY_SCENARIOS = ("lognormal", "routing-mixture", "heavy-tail", "ar1")
Q = 0.95


def _correlated_normals(rng: np.random.Generator, n: int, rho: float, ar_phi: float = 0.0):
    """Two N(0,1) series correlated by rho; AR(1) with coefficient phi in time when phi > 0."""
    shocks = rng.standard_normal((3, n))
    if ar_phi > 0:
        from scipy.signal import lfilter

        scale = np.sqrt(1 - ar_phi**2)
        start = rng.standard_normal(3)
        shocks = np.array([lfilter([scale], [1, -ar_phi], series, zi=[ar_phi * z0])[0]
                           for series, z0 in zip(shocks, start, strict=True)])
    common, own_b, own_g = shocks
    return (np.sqrt(rho) * common + np.sqrt(1 - rho) * own_b, np.sqrt(rho) * common + np.sqrt(1 - rho) * own_g)


# routing mixture: the gateway sends a prompt to light / std / enh by its (latent) complexity z;
# each tier is lognormal around its own median; the baseline sends everything to enh
_TIERS = ((0.40, 250.0), (0.85, 600.0), (1.00, 1000.0))  # (cumulative share, median ms)
_TIER_SIGMA = 0.45


def _mixture_p95() -> float:
    shares = np.diff([0.0] + [c for c, _ in _TIERS])
    medians = np.array([m for _, m in _TIERS])

    def cdf(x):
        return float(np.sum(shares * stats.norm.cdf((np.log(x) - np.log(medians)) / _TIER_SIGMA)))

    return optimize.brentq(lambda x: cdf(x) - Q, 1.0, 1e6, xtol=1e-10)


_MIXTURE_P95 = _mixture_p95()
_ENH_P95 = 1000.0 * np.exp(_TIER_SIGMA * stats.norm.ppf(Q))


def latency_pair(scenario: str, n: int, ratio: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(gateway, baseline) latencies in ms, time-ordered, with true P95_g / P95_b == ratio."""
    if scenario == "lognormal":  # the gateway is the baseline scaled: a pure scale change
        zb, zg = _correlated_normals(rng, n, 0.6)
        return ratio * 800.0 * np.exp(0.5 * zg), 800.0 * np.exp(0.5 * zb)
    if scenario == "ar1":  # serially correlated latencies (a drifting server), phi = 0.7
        zb, zg = _correlated_normals(rng, n, 0.6, ar_phi=0.7)
        return ratio * 800.0 * np.exp(0.5 * zg), 800.0 * np.exp(0.5 * zb)
    if scenario == "heavy-tail":  # log-latency Student t with 3 df
        zb, zg = _correlated_normals(rng, n, 0.6)
        chi_b, chi_g = rng.chisquare(3, n), rng.chisquare(3, n)
        tb, tg = zb / np.sqrt(chi_b / 3), zg / np.sqrt(chi_g / 3)
        return ratio * 500.0 * np.exp(0.4 * tg), 500.0 * np.exp(0.4 * tb)
    if scenario == "routing-mixture":
        complexity, own = _correlated_normals(rng, n, 0.5)
        u = stats.norm.cdf(rng.standard_normal(n))  # the tier choice (independent of tier latency)
        tier = np.searchsorted([c for c, _ in _TIERS], u, side="right").clip(0, 2)
        medians = np.array([m for _, m in _TIERS])[tier]
        base = 1000.0 * np.exp(_TIER_SIGMA * complexity)
        gate = medians * np.exp(_TIER_SIGMA * own)
        scale = ratio * _ENH_P95 / _MIXTURE_P95
        return scale * gate, base
    raise ValueError(f"unknown scenario {scenario!r}; one of {LATENCY_SCENARIOS}")


QUALITY_SCENARIOS = ("binary", "binary-rare", "graded", "continuous")


def quality_pair(scenario: str, n: int, mean_diff: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(gateway, baseline) quality scores in [0, 1] with true E[q_g − q_b] == mean_diff (≤ 0 allowed).

    binary: pass/fail, 30 % discordant pairs; binary-rare: the gateway only ever loses (discordance
    exactly |mean_diff|, the issue's worst case); graded: scores on {0, .25, .5, .75, 1} with ties;
    continuous: Beta-distributed scores.
    """
    if scenario == "binary-rare":  # the gateway never wins, loses only where the baseline passed
        base = rng.random(n) < 0.6
        lose = rng.random(n) < (-mean_diff / 0.6)
        return (base & ~lose).astype(float), base.astype(float)
    if scenario == "binary":  # 30 % discordant pairs: P(+1) - P(-1) = mean_diff
        p_plus, p_minus = (0.3 + mean_diff) / 2, (0.3 - mean_diff) / 2
        u = rng.random(n)
        d = np.where(u < p_plus, 1, np.where(u < p_plus + p_minus, -1, 0))
        base = np.where(d == 1, 0.0, np.where(d == -1, 1.0, (rng.random(n) < 0.6).astype(float)))
        return base + d, base
    if scenario == "graded":  # interior levels, one step up or down: E[d] = 0.25 (P(up) - P(down))
        base = np.array([0.25, 0.5, 0.75])[rng.integers(0, 3, n)]
        p_up, p_down = 0.2 + 2 * mean_diff, 0.2 - 2 * mean_diff
        u = rng.random(n)
        step = np.where(u < p_up, 1, np.where(u < p_up + p_down, -1, 0))
        return base + 0.25 * step, base
    if scenario == "continuous":  # no clipping needed: base in [0.25, 0.75], |d - mean| <= 0.2
        base = 0.25 + 0.5 * rng.beta(4, 3, n)
        return base + mean_diff + rng.uniform(-0.2, 0.2, n), base
    raise ValueError(f"unknown scenario {scenario!r}; one of {QUALITY_SCENARIOS}")


# The columns a repetition of a calibration varies; everything else comes from events_frame.
MEASURED_COLUMNS = ("co_ms", "raw_ms", "cost_ms", "quality")


@functools.lru_cache(maxsize=16)
def _template(n: int, tasks: tuple[str, ...], timeout_ms: float, arm: str) -> pd.DataFrame:
    """The report frame (``tsglab.report.frame.events_frame``) of ``n`` synthetic events of one arm: one
    attempt on std each, tasks in turn, the first 3 in warm-up."""
    events = [synthetic_event(f"p{i}", arm=arm, seq=i, task=tasks[i % len(tasks)], in_warmup=i < 3,
                              completion_tokens=50, timeout_s=timeout_ms / 1e3) for i in range(n)]
    return events_frame(events)


def arm_frames(gate_lat, base_lat, gate_q=None, base_q=None, *, tasks=("t",), timeout_ms=600_000.0):
    """(baseline, gateway) report frames, one row per request in time order; the first 3 requests of each
    arm are warm-up. The frames are ``tsglab.report.frame.events_frame`` of synthetic events (built once
    per size and cached: a calibration repeats thousands of times), with the latency (raw = CO = cost)
    and quality of this repetition in :data:`MEASURED_COLUMNS`. A frame that lost one of those columns
    fails here, and a benchmark that reads a column the frame no longer has fails its --quick run in CI."""
    n = len(base_lat)
    missing = set(MEASURED_COLUMNS) - set(FRAME_COLUMNS)
    if missing:
        raise KeyError(f"benchmarks/_panel.py: the report frame has no column(s) {sorted(missing)}; update "
                       "MEASURED_COLUMNS to tsglab.report.frame.FRAME_COLUMNS.")
    frames = []
    for arm, lat, q in (("baseline", base_lat, base_q), ("tsg", gate_lat, gate_q)):
        frame = _template(n, tuple(tasks), float(timeout_ms), arm).copy()
        lat = np.asarray(lat, dtype=np.float64)
        frame["co_ms"], frame["raw_ms"], frame["cost_ms"] = lat, lat, lat
        frame["quality"] = np.zeros(n) if q is None else np.asarray(q, dtype=np.float64)
        frames.append(frame)
    return frames[0], frames[1]
