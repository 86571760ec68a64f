"""Benchmark: windowed Harrell–Davis vs scipy's hdquantiles; t-digest vs fastdigest and tdigest.

Run: ``python benchmarks/bench_quantiles.py``. Timings are medians of >= 5 runs on this machine; the
numba compile (first call in a fresh process, cache=True) is reported separately as "cold".
``--quick`` runs the same comparisons on 20 000 values with 3 repeats (a few seconds; CI runs it).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats.mstats import hdquantiles

N_FULL, N_QUICK = 1_000_000, 20_000
PROBS = np.array([0.5, 0.95])
TAIL = np.array([0.95, 0.99])


def median_ms(func, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def window_edges(n: int) -> list[int]:
    """Order statistics around the Harrell–Davis windows: P50 ± 0.5 % of n, P95 ± 0.2 % of n."""
    p50, p95 = n // 200, n // 500
    return [n // 2 - p50, n // 2 + p50 - 1, 19 * n // 20 - p95, 19 * n // 20 + p95 - 1]


def bench_harrell_davis(x: np.ndarray, repeats: int = 7) -> None:
    start = time.perf_counter()
    from tsglab.stats import harrell_davis

    first = harrell_davis(x, PROBS)
    cold_ms = 1e3 * (time.perf_counter() - start)
    warm_ms = median_ms(lambda: harrell_davis(x, PROBS), repeats=repeats)
    scipy_repeats = min(repeats, 5)
    scipy_ms = median_ms(lambda: hdquantiles(x, prob=PROBS), repeats=scipy_repeats)
    reference = np.asarray(hdquantiles(x, prob=PROBS))
    rel = float(np.max(np.abs(first / reference - 1)))
    print(f"Harrell-Davis P50+P95, n={x.size:,} lognormal")
    print(f"  tsglab cold (import + compile/cache load + run): {cold_ms:8.1f} ms")
    print(f"  tsglab warm (median of {repeats}):                       {warm_ms:8.1f} ms")
    print(f"  scipy hdquantiles (median of {scipy_repeats}):                 {scipy_ms:8.1f} ms")
    print(f"  ratio tsglab/scipy: {warm_ms / scipy_ms:.3f}   max relative difference: {rel:.2e}")
    sort_ms = median_ms(lambda: np.sort(x), repeats=repeats)
    part_ms = median_ms(lambda: np.partition(x, window_edges(x.size)), repeats=repeats)
    print(f"  (np.sort {sort_ms:.1f} ms vs np.partition at 4 window edges {part_ms:.1f} ms)")


def rel_errors(quantiles: np.ndarray, exact: np.ndarray) -> str:
    errors = np.abs(np.asarray(quantiles) / exact - 1)
    return "  ".join(f"P{100 * q:g} {100 * e:.4f}%" for q, e in zip(TAIL, errors, strict=True))


def bench_tdigest(x: np.ndarray, repeats: int = 5) -> None:
    from tsglab.stats.tdigest import TDigest

    n = x.size
    exact = np.quantile(x, TAIL)
    print(f"\nt-digest ingest of {n:,} lognormal values (one batch update), error vs numpy.quantile")
    start = time.perf_counter()
    TDigest(100).update(x[:20_000])
    print(f"  tsglab cold first update (compile/cache load): {1e3 * (time.perf_counter() - start):.1f} ms")
    for compression in (100, 500, 1000, 2000):

        def build(compression=compression):
            digest = TDigest(compression)
            digest.update(x)
            digest.quantile(0.5)  # includes the final buffer merge
            return digest

        ms = median_ms(build, repeats=repeats)
        digest = build()
        print(
            f"  tsglab δ={compression:<5} {n / ms / 1e3:7.1f} M values/s  centroids={digest.n_centroids:<5} "
            f"{rel_errors(digest.quantile(TAIL), exact)}"
        )
    try:
        import fastdigest
    except ImportError:
        print("  fastdigest: not installed")
    else:
        for max_centroids in (100, 500, 1000):

            def build_fast(max_centroids=max_centroids):
                return fastdigest.TDigest.from_values(x, max_centroids=max_centroids)

            ms = median_ms(build_fast, repeats=repeats)
            digest = build_fast()
            print(
                f"  fastdigest {fastdigest.__version__ if hasattr(fastdigest, '__version__') else ''} "
                f"max_centroids={max_centroids:<5} {n / ms / 1e3:7.1f} M values/s  "
                f"{rel_errors([digest.quantile(q) for q in TAIL], exact)}"
            )
    try:
        import tdigest
    except ImportError:
        print("  tdigest (pure Python): not installed")
    else:
        small = x[: n // 10]
        start = time.perf_counter()
        digest = tdigest.TDigest()
        digest.batch_update(small)
        seconds = time.perf_counter() - start
        exact_small = np.quantile(small, TAIL)
        print(
            f"  tdigest (pure Python, default delta) on {small.size:,} values: "
            f"{small.size / seconds / 1e3:.1f} k values/s "
            f"({n:,} would take ~{10 * seconds:.1f} s, scaled, not run)  error on those {small.size:,}: "
            f"{rel_errors([digest.percentile(100 * q) for q in TAIL], exact_small)}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"n = {N_QUICK:,} instead of {N_FULL:,}, 3 repeats (seconds; for CI)")
    args = parser.parse_args(argv)
    n, repeats = (N_QUICK, 3) if args.quick else (N_FULL, 7)
    x = np.random.default_rng(20240611).lognormal(mean=0.0, sigma=1.0, size=n)
    bench_harrell_davis(x, repeats=repeats)
    bench_tdigest(x, repeats=min(repeats, 5))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
