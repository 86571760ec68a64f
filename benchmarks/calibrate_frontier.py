"""Calibration of the replay frontier and of threshold calibration, through the functions `tsglab frontier` calls.

Replay data are drawn from a known model (:func:`tsglab.replay.simulate_replay`: iid prompts, per prompt × tier
outcome distributions), so every configuration's true expected quality, cost and top-tier share are known: they
are its means over a population draw of ``--population`` prompts (s.e. of a true quality ≈ 0.5/√N). Each
replication draws 273 prompts (the bundled suite's size) with a new seed and runs

- :func:`tsglab.replay.frontier`: coverage of the per-configuration intervals (quality and cost, averaged over the
  configurations; the worst configuration too), of the frontier band at four fixed cost levels (the true frontier
  at a level = best true quality among configurations whose true cost is ≤ the level), and of the APGR and AIQ
  intervals;
- :func:`tsglab.replay.calibrate` (split 0.5, select within 0.02 of the top tier): coverage of the held-out
  intervals of the chosen configuration's true quality and cost, and the type-I error of the held-out
  non-inferiority test at the boundary — the test is run again with the margin set to the chosen configuration's
  true gap to the top tier (the choice does not depend on the margin, only on ``select_margin``), so H0 holds with
  equality and the rejection rate must be ≤ α = 0.05.

Every rate is printed with its Monte-Carlo standard error. Last, the speed of a frontier of the default grid
(11,016 configurations) × 273 prompts × 1000 resamples (median of 3 after a warm-up that compiles).

    python benchmarks/calibrate_frontier.py            # 200 replications, B = 1000 (~3 min on 2 cores)
    python benchmarks/calibrate_frontier.py --quick    # CI: 12 replications, B = 100 (~15 s)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from tsglab.config import PolicyConfig
from tsglab.replay import ConfigGrid, calibrate, default_grid, frontier, replay_summary, simulate_replay
from tsglab.replay.frontier import curve_statistics, outcomes

LADDER = ("light", "std", "enh")
N_PROMPTS = 273


def grid_of(quick: bool) -> ConfigGrid:
    step = 0.4 if quick else 0.2
    thresholds = np.round(np.arange(0.0, 1.6001, step), 2)
    return ConfigGrid.product(PolicyConfig(), {"thr_std": thresholds, "thr_enh": thresholds,
                                               "json_floor": list(LADDER), "max_upgrades": [0, 2],
                                               "same_tier_repair": [False, True]}, LADDER)


def rate(hits: list[bool] | np.ndarray) -> str:
    values = np.asarray(hits, dtype=float)
    p = values.mean()
    return f"{p:.3f} ± {np.sqrt(p * (1 - p) / values.size):.3f} (n = {values.size})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--resamples", type=int, default=None)
    parser.add_argument("--population", type=int, default=None)
    args = parser.parse_args(argv)
    reps = args.reps or (12 if args.quick else 200)
    n_resamples = args.resamples or (100 if args.quick else 1000)
    population = args.population or (20_000 if args.quick else 400_000)
    grid = grid_of(args.quick)

    started = time.perf_counter()
    truth_data = simulate_replay(population, seed=10**6)
    combined = outcomes(simulate_replay(20, seed=1), grid).grid  # the grid with its references, as frontier builds it
    truth = replay_summary(truth_data, combined)
    true_q, true_c, true_share = truth[:, 0], truth[:, 1], truth[:, 3]
    n_user = len(grid)
    weak, strong, default = n_user, n_user + 1, n_user + 2
    levels = np.quantile(true_c, [0.2, 0.4, 0.6, 0.8])
    true_band, true_metrics = curve_statistics(true_c, true_q, true_share, levels, weak=weak, strong=strong,
                                               default=default)
    print(f"grid: {n_user} configurations + 3 references; truth from {population:,} prompts "
          f"({time.perf_counter() - started:.1f} s); {reps} replications of {N_PROMPTS} prompts, B = {n_resamples}")
    print(f"true APGR {true_metrics[0, 0]:.4f}, AIQ {true_metrics[0, 3]:.4f}; true frontier at cost levels "
          f"{np.round(levels, 1).tolist()} ms: {np.round(true_band[0], 4).tolist()}")

    cover_q, cover_c, cover_band, cover_apgr, cover_aiq = [], [], [], [], []
    held_q, held_c, boundary_reject, passed_at_002 = [], [], [], []
    for r in range(reps):
        data = simulate_replay(N_PROMPTS, seed=r)
        result = frontier(data, grid, n_resamples=n_resamples, seed=r, band_levels=levels)
        points = result.points
        cover_q.append(((points["quality_ci_low"] <= true_q) & (true_q <= points["quality_ci_high"])).to_numpy())
        cover_c.append(((points["cost_ci_low"] <= true_c) & (true_c <= points["cost_ci_high"])).to_numpy())
        band = result.band
        cover_band.append(((band["low"] <= true_band[0]) & (true_band[0] <= band["high"])).to_numpy())
        metrics = result.metrics.set_index("metric")
        for name, column, sink in (("APGR", 0, cover_apgr), ("AIQ", 3, cover_aiq)):
            sink.append(metrics.loc[name, "ci_low"] <= true_metrics[0, column] <= metrics.loc[name, "ci_high"])
        chosen = calibrate(data, grid, margin=0.02, select_margin=0.02, seed=r, n_resamples=n_resamples)
        i = chosen.config_index
        held_q.append(chosen.quality_ci_low <= true_q[i] <= chosen.quality_ci_high)
        held_c.append(chosen.cost_ci_low <= true_c[i] <= chosen.cost_ci_high)
        passed_at_002.append(chosen.test.passed)
        gap = true_q[strong] - true_q[i]
        if 0 < gap < 1:
            at_boundary = calibrate(data, grid, margin=float(gap), select_margin=0.02, seed=r, n_resamples=10)
            assert at_boundary.config_index == i
            boundary_reject.append(at_boundary.test.passed)
    cover_q_all, cover_c_all = np.vstack(cover_q), np.vstack(cover_c)
    band_all = np.vstack(cover_band)
    print("\nfrontier (95 % percentile intervals, paired iid resamples of prompts):")
    print(f"  per-configuration quality CI coverage: {rate(cover_q_all.ravel())}; worst configuration "
          f"{cover_q_all.mean(axis=0).min():.3f}")
    print(f"  per-configuration cost CI coverage:    {rate(cover_c_all.ravel())}; worst configuration "
          f"{cover_c_all.mean(axis=0).min():.3f}")
    for j, level in enumerate(levels):
        print(f"  band coverage at {level:7.1f} ms (true frontier {true_band[0, j]:.4f}): {rate(band_all[:, j])}")
    print(f"  APGR CI coverage: {rate(cover_apgr)}")
    print(f"  AIQ CI coverage:  {rate(cover_aiq)}")
    print("\ncalibration (split 0.5, cheapest within 0.02 of the top tier on the calibration half):")
    print(f"  held-out quality CI coverage of the chosen configuration: {rate(held_q)}")
    print(f"  held-out cost CI coverage of the chosen configuration:    {rate(held_c)}")
    print(f"  non-inferiority at the true gap (H0 boundary), rejection rate (alpha 0.05): {rate(boundary_reject)}")
    print(f"  passed at margin 0.02 (power under the real selection): {rate(passed_at_002)}")

    data = simulate_replay(N_PROMPTS, seed=0)
    big = default_grid(LADDER)
    frontier(data, big, n_resamples=20)  # compile / load the numba cache
    times = []
    for _ in range(1 if args.quick else 3):
        t0 = time.perf_counter()
        result = frontier(data, big, n_resamples=1000)
        times.append(time.perf_counter() - t0)
    distinct = result.points["outcome"].nunique()
    print(f"\nspeed: frontier of {len(big):,} configurations ({distinct:,} distinct outcome vectors) x {N_PROMPTS} "
          f"prompts x 1000 resamples: {statistics.median(times):.2f} s (median of {len(times)})")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
