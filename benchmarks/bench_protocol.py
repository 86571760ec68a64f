"""Full protocol speed and memory: two arms × 10 000 events, 20 strata, B = 2 000.

Target (issue 3): ≤ 3 s warm, peak memory ≤ 1 GiB. Times families A, B, C and the routing/cost table
on synthetic arms (benchmarks/_panel.py: paired lognormal latencies, pass/fail quality in half the
strata and graded quality in the other half), and prints the cold first call (imports, numba cache
load), the median of the warm calls, and the peak traced memory. The reference in the same run is
one iid percentile bootstrap of one P95 (``tsglab.stats.bootstrap_quantile_ci``, B = 2000) at the
same n, the unit of work Family B repeats per stratum and view.

    python benchmarks/bench_protocol.py            # full size
    python benchmarks/bench_protocol.py --quick    # CI: 2 × 1 000 events, B = 200
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _panel import arm_frames, latency_pair

from tsglab.report.protocol import ProtocolSettings, family_a, family_b, family_c, routing_cost, verdict
from tsglab.stats import bootstrap_quantile_ci

N_STRATA = 20


def make_arms(n_events: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    gate_lat, base_lat = latency_pair("routing-mixture", n_events, 0.95, rng)
    base_q = (rng.random(n_events) < 0.7).astype(float)
    gate_q = np.where(rng.random(n_events) < 0.05, 1.0 - base_q, base_q)  # 5 % of answers change
    graded = np.arange(n_events) % N_STRATA >= N_STRATA // 2  # half the strata have partial credit
    base_q[graded] = np.round(base_q[graded] * rng.integers(1, 5, graded.sum()) / 4, 2)
    gate_q[graded] = base_q[graded]
    return arm_frames(gate_lat, base_lat, gate_q, base_q, tasks=tuple(f"s{i:02d}" for i in range(N_STRATA)))


def protocol(base, gate, settings):
    a, b = family_a(base, gate, settings), family_b(base, gate, settings)
    c = family_c({"baseline": base, "tsg": gate}, settings)
    routing_cost({"baseline": base, "tsg": gate})
    return verdict(a, b, c, "tsg")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 × 1 000 events, B = 200, one warm repeat")
    args = parser.parse_args(argv)
    n_events, resamples, repeats = (1_000, 200, 1) if args.quick else (10_000, 2_000, 3)
    warnings.simplefilter("ignore")
    base, gate = make_arms(n_events)
    settings = ProtocolSettings(n_resamples=resamples)
    started = time.perf_counter()
    result = protocol(base, gate, settings)
    cold = time.perf_counter() - started
    warm = []
    for _ in range(repeats):
        started = time.perf_counter()
        protocol(base, gate, settings)
        warm.append(time.perf_counter() - started)
    tracemalloc.start()
    protocol(base, gate, settings)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    started = time.perf_counter()
    bootstrap_quantile_ci(base["co_ms"].to_numpy(), 0.95, n_resamples=resamples, estimator="harrell-davis")
    reference = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    median = statistics.median(warm)
    print(f"protocol, 2 arms x {n_events} events, {N_STRATA} strata, B={resamples} (verdict {result['overall']})")
    print(f"  cold first call: {cold:.2f} s")
    print(f"  warm median of {repeats}: {median:.2f} s  (runs: {', '.join(f'{w:.2f}' for w in warm)})")
    print(f"  reference, one HD P95 bootstrap CI at n={n_events}: {reference:.3f} s; protocol / reference = "
          f"{median / reference:.1f}x")
    if not args.quick:
        print(f"  target <= 3 s warm: {'yes' if median <= 3 else 'NO'}")
    print(f"  peak traced allocation: {peak / 2**20:.0f} MiB; process max RSS: {rss:.0f} MiB (target <= 1024)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
