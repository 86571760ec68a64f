"""Benchmark: bootstrap CIs of the P95 against scipy.stats.bootstrap and arch.

Run: ``.venv/bin/python benchmarks/bench_bootstrap.py``. Prints measured times (median of repeats)
and ratios:

(a) iid percentile CI of the P95, n = 100 000, B = 10 000, against ``scipy.stats.bootstrap`` at its
    best ``batch``. scipy at the full B would take minutes, so each batch size is timed at a small B
    and the best time per resample is scaled to B = 10 000 (scipy's cost is linear in B).
(b) moving-block CI of the P95, n = 10 000, B = 2 000, block 20, against arch's
    ``MovingBlockBootstrap``; a two-sample KS test compares the two sets of draws.

numba's cold compile (first call in a fresh interpreter with an empty numba cache directory) is
reported apart from warm calls. ``--quick`` runs the same comparisons at (a) n = 5 000, B = 500 and
(b) n = 2 000, B = 200 (a few seconds; CI runs it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
from scipy import stats


def timed(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def p95(sample, axis=-1):
    return np.quantile(sample, 0.95, method="inverted_cdf", axis=axis)


@dataclass(frozen=True)
class Sizes:
    n_iid: int
    b_iid: int
    scipy_batches: tuple[int, ...]
    n_block: int
    b_block: int
    block: int
    repeats: int


FULL = Sizes(n_iid=100_000, b_iid=10_000, scipy_batches=(1, 5, 10, 20, 40), n_block=10_000, b_block=2_000,
             block=20, repeats=3)
QUICK = Sizes(n_iid=5_000, b_iid=500, scipy_batches=(1, 5, 10), n_block=2_000, b_block=200, block=20, repeats=2)


def cold_compile_seconds() -> float:
    """Time of a first block-bootstrap call in a fresh interpreter whose numba cache directory is empty
    (a temporary one: the checkout's cache stays as it is)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        "import time, numpy as np\n"
        "from tsglab.stats.bootstrap import bootstrap_quantile_ci\n"
        "x = np.random.default_rng(0).lognormal(size=1000)\n"
        "t = time.perf_counter()\n"
        "bootstrap_quantile_ci(x, method='moving-block', block_length=20, n_resamples=100)\n"
        "print(time.perf_counter() - t)\n"
    )
    with tempfile.TemporaryDirectory(prefix="tsglab-numba-") as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                             env=env)
    return float(out.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small n and B (seconds; for CI)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL

    from arch.bootstrap import MovingBlockBootstrap

    from tsglab.stats.bootstrap import bootstrap_quantile_ci

    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs visible")
    cold = cold_compile_seconds()
    print(f"numba cold compile + first call (block kernel, n=1000, B=100): {cold:.2f} s")

    # (a) iid, order statistic -----------------------------------------------------------------
    n_a, b_a = sizes.n_iid, sizes.b_iid
    x_a = np.random.default_rng(1).lognormal(size=n_a)
    ours_a = timed(lambda: bootstrap_quantile_ci(x_a, 0.95, n_resamples=b_a, seed=2), repeats=2 * sizes.repeats - 1)
    print(f"\n(a) iid percentile CI of P95, n={n_a}, B={b_a}")
    print(f"    tsglab (binomial inverse-CDF, no resampling), median of {2 * sizes.repeats - 1}: {ours_a * 1e3:.2f} ms")
    b_small = max(sizes.scipy_batches)
    per_resample = {}
    for batch in sizes.scipy_batches:
        t = timed(
            lambda batch=batch: stats.bootstrap(
                (x_a,), p95, n_resamples=b_small, batch=batch, method="percentile", rng=3
            ),
            repeats=sizes.repeats,
        )
        per_resample[batch] = t / b_small
        print(
            f"    scipy.stats.bootstrap batch={batch:>3}, B={b_small}: {t:.3f} s ({t / b_small * 1e3:.1f} ms/resample)"
        )
    best_batch = min(per_resample, key=per_resample.get)
    scipy_a = per_resample[best_batch] * b_a
    print(f"    scipy best batch={best_batch}, scaled linearly to B={b_a}: {scipy_a:.1f} s")
    print(f"    speed-up: {scipy_a / ours_a:,.0f}x (target >= 1000x at n=100000, B=10000)")
    res_a = bootstrap_quantile_ci(x_a, 0.95, n_resamples=b_a, seed=2)
    print(f"    CI: [{res_a.ci_low:.4f}, {res_a.ci_high:.4f}] around {res_a.estimate:.4f}")

    # (b) moving block ---------------------------------------------------------------------------
    n_b, b_b, block = sizes.n_block, sizes.b_block, sizes.block
    rng = np.random.default_rng(4)
    noise = rng.lognormal(size=n_b)
    x_b = np.empty(n_b)
    x_b[0] = noise[0]
    for t in range(1, n_b):  # AR(1)-like dependent latencies
        x_b[t] = 0.6 * x_b[t - 1] + noise[t]
    bootstrap_quantile_ci(x_b, 0.95, method="moving-block", block_length=block, n_resamples=100)  # warm
    ours_b = timed(
        lambda: bootstrap_quantile_ci(x_b, 0.95, method="moving-block", block_length=block, n_resamples=b_b, seed=5),
        repeats=sizes.repeats,
    )

    def arch_run(seed=6):
        boot = MovingBlockBootstrap(block, x_b, seed=seed)
        return boot.apply(lambda y: np.array([p95(y)]), b_b)[:, 0]

    arch_b = timed(arch_run, repeats=sizes.repeats)
    print(f"\n(b) moving-block percentile CI of P95, n={n_b}, B={b_b}, block={block}")
    print(f"    tsglab warm (numba), median of {sizes.repeats}: {ours_b * 1e3:.1f} ms")
    print(f"    arch MovingBlockBootstrap.apply, median of {sizes.repeats}: {arch_b * 1e3:.1f} ms")
    print(f"    speed-up: {arch_b / ours_b:.1f}x (target >= 5x at n=10000, B=2000)")
    ours_draws = bootstrap_quantile_ci(
        x_b, 0.95, method="moving-block", block_length=block, n_resamples=b_b, seed=5
    ).draws
    ks = stats.ks_2samp(ours_draws, arch_run())
    print(
        f"    two-sample KS on the draws: D={ks.statistic:.4f}, p={ks.pvalue:.3f} (reject at 1 %: {ks.pvalue < 0.01})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
