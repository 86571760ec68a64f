"""Full protocol speed and memory: two arms × 10 000 events, 20 strata, B = 2 000.

Target (issue 3): ≤ 3 s warm, peak memory ≤ 1 GiB. Times families A, B, C and the routing/cost table
on synthetic arms (lognormal latencies, quality in [0, 1], paired by prompt id); prints the cold
first call (imports, numba cache load) and the median of 3 warm calls, and the peak traced memory.

Run: ``python benchmarks/bench_protocol.py``
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsglab.report.protocol import ProtocolSettings, family_a, family_b, family_c, routing_cost  # noqa: E402

N_EVENTS, N_STRATA, B = 10_000, 20, 2_000


def make_arm(seed: int, scale: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    task = np.array([f"s{i:02d}" for i in range(N_STRATA)])[np.arange(N_EVENTS) % N_STRATA]
    latency = scale * rng.lognormal(6.5, 0.5, N_EVENTS)
    return pd.DataFrame({
        "prompt_id": [f"p{i}" for i in range(N_EVENTS)], "task": task, "ctx_bucket": "short", "lang": "en",
        "seq": np.arange(N_EVENTS), "warm": np.arange(N_EVENTS) >= 20,
        "quality": np.clip(rng.normal(0.8, 0.1, N_EVENTS), 0, 1), "raw_ms": latency, "co_ms": latency * 1.05,
        "json_ok": np.where(task == "s00", rng.random(N_EVENTS) > 0.002, None),
        "initial_tier": "std", "touched_enh": rng.random(N_EVENTS) < 0.3, "n_attempts": 1, "upgrades": 0,
        "refusal": False, "cost_ms": latency, "completion_tokens": 50,
    })


def protocol(base: pd.DataFrame, gate: pd.DataFrame, settings: ProtocolSettings) -> None:
    family_a(base, gate, settings)
    family_b(base, gate, settings)
    family_c({"baseline": base, "tsg": gate}, settings)
    routing_cost({"baseline": base, "tsg": gate})


def main() -> int:
    base, gate = make_arm(1, 1.0), make_arm(2, 1.02)
    settings = ProtocolSettings(n_resamples=B)
    started = time.perf_counter()
    protocol(base, gate, settings)
    cold = time.perf_counter() - started
    warm = []
    for _ in range(3):
        started = time.perf_counter()
        protocol(base, gate, settings)
        warm.append(time.perf_counter() - started)
    tracemalloc.start()
    protocol(base, gate, settings)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"protocol, 2 arms x {N_EVENTS} events, {N_STRATA} strata, B={B}")
    print(f"  cold first call: {cold:.2f} s")
    print(f"  warm median of 3: {statistics.median(warm):.2f} s  (runs: {', '.join(f'{w:.2f}' for w in warm)})")
    print(f"  target <= 3 s warm: {'yes' if statistics.median(warm) <= 3 else 'NO'}")
    print(f"  peak traced allocation: {peak / 2**20:.0f} MiB; process max RSS: {rss:.0f} MiB (target <= 1024)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
