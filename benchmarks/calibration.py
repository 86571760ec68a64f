"""Calibration of the protocol's intervals and tests (issue 3): coverage, type-I error and FDR.

Run: ``.venv/bin/python benchmarks/calibration.py [--reps-scale 1.0] [--seed 20240603]``. Prints a
Markdown report; the recorded run lives in ``benchmarks/results/calibration.md``.

1. Coverage of 95 % bootstrap CIs of the P95 for iid lognormal latencies (percentile and BCa, type-1
   order statistic), n = 500 and 5 000. Target 94–96 %.
2. Coverage for AR(1) latencies, ``exp(mu + sigma z_t)`` with ``z_t`` a unit-variance Gaussian AR(1)
   (phi = 0.7), n = 3 000: stationary and moving-block bootstraps with the Politis–White block
   length (target ≥ 92 %), and the iid bootstrap on the same series (expected to under-cover).
3. Type-I error of :func:`tsglab.stats.paired_noninferiority` at the margin (true mean difference
   exactly -margin), bootstrap and t, alpha = 0.05: target ≤ alpha.
4. FDR of :func:`tsglab.stats.benjamini_hochberg` under independence, m = 20, q = 0.10: target
   ≤ m0/m · q.

Every rate is printed with its Monte-Carlo standard error (s.e.). A verdict is "met" when the
estimate lies inside the target, "met within MC error" when it lies within 2 s.e. of it, and
"MISSED" otherwise. Each function takes its replication counts and seed as arguments and returns a
plain dict, so the smoke test can run it small; ``--reps-scale`` multiplies every replication count.
``--quick`` is ``--reps-scale 0.01`` (a few seconds; CI runs it to catch crashes: its Monte-Carlo
errors are far too wide for the verdicts to mean anything).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
from scipy import signal
from scipy.special import ndtr, ndtri

# Run as a script from a checkout: make `tsglab` importable without installing it.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tsglab.stats import (  # noqa: E402
    benjamini_hochberg,
    bootstrap_quantile_ci,
    choose_bootstrap,
    paired_noninferiority,
)

DEFAULT_SEED = 20240603
CONFIDENCE = 0.95
Q = 0.95
# Latency model: log-latency ~ N(MU, SIGMA^2), i.e. a median of exp(5) ≈ 148 ms.
MU = 5.0
SIGMA = 0.5
AR_PHI = 0.7
MC_SLACK_SE = 2.0  # "within MC error" means within this many standard errors of the target
QUICK_REPS_SCALE = 0.01

# (x, seed) -> (ci_low, ci_high, block_length or None)
IntervalFn = Callable[[np.ndarray, int], tuple[float, float, "int | None"]]
# (gateway, baseline, seed) -> p-value
TestFn = Callable[[np.ndarray, np.ndarray, int], float]
# (p_values) -> rejected mask
RejectFn = Callable[[np.ndarray], np.ndarray]


# -- helpers ---------------------------------------------------------------------------------------


def true_lognormal_quantile(q: float = Q, mu: float = MU, sigma: float = SIGMA) -> float:
    """Closed-form quantile of exp(N(mu, sigma^2)): ``exp(mu + sigma * z_q)``."""
    return float(math.exp(mu + sigma * float(ndtri(q))))


def proportion_se(rate: float, reps: int) -> float:
    """Binomial Monte-Carlo standard error of a proportion estimated from ``reps`` replications."""
    return math.sqrt(max(rate * (1.0 - rate), 0.0) / reps) if reps > 0 else float("nan")


def verdict(rate: float, se: float, *, low: float | None = None, high: float | None = None) -> str:
    """'met' inside [low, high]; 'met within MC error' within 2 s.e. of it; otherwise 'MISSED'."""
    if not np.isfinite(rate):
        return "MISSED (no estimate)"
    inside = (low is None or rate >= low) and (high is None or rate <= high)
    if inside:
        return "met"
    slack = MC_SLACK_SE * se
    near = (low is None or rate >= low - slack) and (high is None or rate <= high + slack)
    return "met within MC error" if near else "MISSED"


def bootstrap_interval(*, method: str, ci: str, n_resamples: int, estimator: str = "order-statistic") -> IntervalFn:
    """A 95 % bootstrap CI of the P95 with :func:`bootstrap_quantile_ci` (block length automatic)."""

    def interval(x: np.ndarray, seed: int) -> tuple[float, float, int | None]:
        res = bootstrap_quantile_ci(
            x, Q, method=method, ci=ci, n_resamples=n_resamples, confidence=CONFIDENCE, estimator=estimator, seed=seed
        )
        return res.ci_low, res.ci_high, res.block_length

    return interval


def _coverage_row(label: str, lows: np.ndarray, highs: np.ndarray, truth: float, lengths: list) -> dict:
    ok = np.isfinite(lows) & np.isfinite(highs)
    covered = ok & (lows <= truth) & (truth <= highs)
    reps = lows.size
    coverage = float(np.mean(covered))
    width = highs[ok] - lows[ok]
    row = {
        "label": label,
        "reps": reps,
        "coverage": coverage,
        "coverage_se": proportion_se(coverage, reps),
        "mean_width": float(np.mean(width)) if width.size else float("nan"),
        "width_se": float(np.std(width, ddof=1) / math.sqrt(width.size)) if width.size > 1 else float("nan"),
        "n_nan": int(reps - ok.sum()),
        # misses split by side: a CI can reach 95 % overall while missing one tail twice as often
        "miss_below": float(np.mean(ok & (highs < truth))),
        "miss_above": float(np.mean(ok & (lows > truth))),
    }
    known = [b for b in lengths if b is not None]
    row["mean_block_length"] = float(np.mean(known)) if known else None
    return row


def _run_coverage(
    simulate: Callable[[np.random.Generator], np.ndarray],
    intervals: dict[str, IntervalFn],
    truth: float,
    reps: int,
    rng: np.random.Generator,
    on_sample: Callable[[np.ndarray], None] | None = None,
) -> list[dict]:
    lows = {k: np.empty(reps) for k in intervals}
    highs = {k: np.empty(reps) for k in intervals}
    lengths: dict[str, list] = {k: [] for k in intervals}
    for r in range(reps):
        x = simulate(rng)
        boot_seed = int(rng.integers(0, 2**31 - 1))
        if on_sample is not None:
            on_sample(x)
        # common random numbers: every interval sees the same sample and the same bootstrap seed
        for label, fn in intervals.items():
            lows[label][r], highs[label][r], length = fn(x, boot_seed)
            lengths[label].append(length)
    return [_coverage_row(k, lows[k], highs[k], truth, lengths[k]) for k in intervals]


# -- 1. iid lognormal ----------------------------------------------------------------------------


def iid_p95_coverage(
    *,
    sizes: Sequence[int] = (500, 5000),
    reps: int = 4000,
    n_resamples: int = 2000,
    seed: int = DEFAULT_SEED,
    intervals: dict[str, IntervalFn] | None = None,
    target: tuple[float, float] = (0.94, 0.96),
) -> dict:
    """Coverage and mean width of 95 % CIs of the P95 for iid lognormal(MU, SIGMA) samples.

    ``intervals`` maps a label to an interval function; the default is the iid bootstrap with the
    percentile and the BCa interval (type-1 order statistic).
    """
    if intervals is None:
        intervals = {
            f"iid {ci}": bootstrap_interval(method="iid", ci=ci, n_resamples=n_resamples)
            for ci in ("percentile", "bca")
        }
    truth = true_lognormal_quantile()
    rows = []
    for i, n in enumerate(sizes):
        rng = np.random.default_rng([seed, 1, i])
        for row in _run_coverage(lambda g, n=n: g.lognormal(MU, SIGMA, size=n), intervals, truth, reps, rng):
            row.update(n=n, verdict=verdict(row["coverage"], row["coverage_se"], low=target[0], high=target[1]))
            rows.append(row)
    return {
        "name": "iid_p95_coverage",
        "truth": truth,
        "target": target,
        "n_resamples": n_resamples,
        "seed": seed,
        "rows": rows,
    }


# -- 2. AR(1) --------------------------------------------------------------------------------------


def simulate_ar1_lognormal(rng: np.random.Generator, n: int, phi: float = AR_PHI) -> np.ndarray:
    """``exp(MU + SIGMA z_t)``, ``z_t = phi z_{t-1} + sqrt(1 - phi^2) e_t``, ``z_0 ~ N(0, 1)``.

    Started in the stationary law, so every ``z_t`` is N(0, 1) and every latency is
    lognormal(MU, SIGMA): the true P95 is ``exp(MU + SIGMA z_0.95)`` whatever phi.
    """
    innovations = rng.standard_normal(n)
    innovations[1:] *= math.sqrt(1.0 - phi * phi)
    z = signal.lfilter([1.0], [1.0, -phi], innovations)
    return np.exp(MU + SIGMA * z)


def ar1_p95_coverage(
    *,
    n: int = 3000,
    phi: float = AR_PHI,
    reps: int = 1000,
    n_resamples: int = 2000,
    seed: int = DEFAULT_SEED,
    intervals: dict[str, IntervalFn] | None = None,
    target_low: float = 0.92,
) -> dict:
    """Coverage of 95 % CIs of the P95 for AR(1) lognormal latencies.

    Default intervals: stationary and moving-block bootstraps (percentile, Politis–White block
    length chosen per sample by :func:`bootstrap_quantile_ci`) and, as the reference that should
    fail, the iid percentile bootstrap on the same series. Also records how often
    :func:`choose_bootstrap` detects the serial correlation.
    """
    if intervals is None:
        intervals = {
            "stationary percentile (P–W)": bootstrap_interval(
                method="stationary", ci="percentile", n_resamples=n_resamples
            ),
            "moving-block percentile (P–W)": bootstrap_interval(
                method="moving-block", ci="percentile", n_resamples=n_resamples
            ),
            "iid percentile (wrong for AR data)": bootstrap_interval(
                method="iid", ci="percentile", n_resamples=n_resamples
            ),
        }
    truth = true_lognormal_quantile()
    detections: list[bool] = []

    def detect(x: np.ndarray) -> None:
        detections.append(choose_bootstrap(x).method == "stationary")

    rng = np.random.default_rng([seed, 2])
    rows = _run_coverage(lambda g: simulate_ar1_lognormal(g, n, phi), intervals, truth, reps, rng, on_sample=detect)
    for row in rows:
        row["n"] = n
        if row["label"].startswith("iid"):
            under = row["coverage"] < target_low - MC_SLACK_SE * row["coverage_se"]
            row["verdict"] = "under-covers, as expected" if under else "does NOT under-cover (unexpected)"
        else:
            row["verdict"] = verdict(row["coverage"], row["coverage_se"], low=target_low)
    detection_rate = float(np.mean(detections)) if detections else float("nan")
    return {
        "name": "ar1_p95_coverage",
        "truth": truth,
        "phi": phi,
        "n": n,
        "target_low": target_low,
        "n_resamples": n_resamples,
        "seed": seed,
        "detection_rate": detection_rate,
        "detection_se": proportion_se(detection_rate, len(detections)),
        "rows": rows,
    }


# -- 3. paired non-inferiority at the margin ------------------------------------------------------


def _paired_gaussian(rng: np.random.Generator, n: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Continuous scores, correlated arms (rho = 0.6), true mean difference exactly -margin."""
    baseline = 0.7 + 0.15 * rng.standard_normal(n)
    gateway = baseline - margin + 0.15 * math.sqrt(2 * (1 - 0.6)) * rng.standard_normal(n)
    return gateway, baseline


def _paired_binary(rng: np.random.Generator, n: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Pass/fail scores: d in {-1, 0, +1} with P(+1) = 0.05, P(-1) = 0.05 + margin, so E d = -margin."""
    baseline = (rng.random(n) < 0.8).astype(np.float64)
    u = rng.random(n)
    p_up, p_down = 0.05, 0.05 + margin
    d = np.where(u < p_up, 1.0, np.where(u < p_up + p_down, -1.0, 0.0))
    # keep scores in {0, 1}: a +1 needs a failing baseline, a -1 a passing one; swap the baseline
    baseline = np.where(d > 0, 0.0, np.where(d < 0, 1.0, baseline))
    return baseline + d, baseline


SCENARIOS: dict[str, Callable[[np.random.Generator, int, float], tuple[np.ndarray, np.ndarray]]] = {
    "gaussian scores, rho 0.6": _paired_gaussian,
    "pass/fail scores": _paired_binary,
}


def noninferiority_type1(
    *,
    n: int = 200,
    margin: float = 0.05,
    alpha: float = 0.05,
    reps: int = 4000,
    n_resamples: int = 2000,
    seed: int = DEFAULT_SEED,
    tests: dict[str, TestFn] | None = None,
    scenarios: Sequence[str] = tuple(SCENARIOS),
) -> dict:
    """Rejection rate of H0: mean d ≤ -margin when the true mean difference is exactly -margin."""
    if tests is None:
        tests = {
            f"paired {m}": (
                lambda g, b, s, m=m: (
                    paired_noninferiority(
                        g, b, margin=margin, alpha=alpha, method=m, n_resamples=n_resamples, seed=s
                    ).p_value
                )
            )
            for m in ("bootstrap", "t")
        }
    rows = []
    for i, scenario in enumerate(scenarios):
        make = SCENARIOS[scenario]
        rng = np.random.default_rng([seed, 3, i])
        p_values = {k: np.empty(reps) for k in tests}
        mean_d = np.empty(reps)
        for r in range(reps):
            gateway, baseline = make(rng, n, margin)
            mean_d[r] = float(np.mean(gateway - baseline))
            test_seed = int(rng.integers(0, 2**31 - 1))
            for label, fn in tests.items():
                p_values[label][r] = fn(gateway, baseline, test_seed)
        for label in tests:
            p = p_values[label]
            # NaN (degenerate sample) counts as "not rejected", as the protocol does
            rate = float(np.mean(p < alpha))
            se = proportion_se(rate, reps)
            rows.append(
                {
                    "label": label,
                    "scenario": scenario,
                    "n": n,
                    "reps": reps,
                    "rejection_rate": rate,
                    "rejection_se": se,
                    "n_nan": int(np.isnan(p).sum()),
                    "mean_d": float(np.mean(mean_d)),
                    "verdict": verdict(rate, se, high=alpha),
                }
            )
    return {
        "name": "noninferiority_type1",
        "margin": margin,
        "alpha": alpha,
        "n_resamples": n_resamples,
        "seed": seed,
        "rows": rows,
    }


# -- 4. Benjamini–Hochberg FDR ---------------------------------------------------------------------


def bh_fdr(
    *,
    m: int = 20,
    null_counts: Sequence[int] = (20, 16, 10),
    effect: float = 3.0,
    q: float = 0.10,
    reps: int = 20000,
    seed: int = DEFAULT_SEED,
    reject: RejectFn | None = None,
) -> dict:
    """Realised FDR E[V / max(R, 1)] and power of BH with m0 uniform nulls and m - m0 alternatives.

    Alternatives have one-sided z-test p-values ``1 - Phi(Z)``, ``Z ~ N(effect, 1)``; all p-values
    are independent. ``reject`` replaces BH (for the smoke test of a broken procedure).
    """
    if reject is None:

        def reject(p: np.ndarray) -> np.ndarray:
            return benjamini_hochberg(p, q=q).rejected

    rows = []
    for i, m0 in enumerate(null_counts):
        rng = np.random.default_rng([seed, 4, i])
        fdp = np.empty(reps)
        power = np.empty(reps)
        any_false = np.empty(reps)
        for r in range(reps):
            p = np.empty(m)
            p[:m0] = rng.random(m0)
            p[m0:] = ndtr(-(effect + rng.standard_normal(m - m0)))
            rejected = np.asarray(reject(p), dtype=bool)
            false = int(rejected[:m0].sum())
            fdp[r] = false / max(int(rejected.sum()), 1)
            power[r] = rejected[m0:].mean() if m > m0 else float("nan")
            any_false[r] = false > 0
        fdr = float(fdp.mean())
        se = float(fdp.std(ddof=1) / math.sqrt(reps)) if reps > 1 else float("nan")
        bound = m0 / m * q
        rows.append(
            {
                "m": m,
                "m0": m0,
                "reps": reps,
                "fdr": fdr,
                "fdr_se": se,
                "bound": bound,
                "power": float(np.mean(power)) if m > m0 else float("nan"),
                "fwer": float(any_false.mean()),
                "verdict": verdict(fdr, se, high=bound),
            }
        )
    return {"name": "bh_fdr", "q": q, "effect": effect, "m": m, "seed": seed, "rows": rows}


# -- report ------------------------------------------------------------------------------------------


def _pct(rate: float, se: float) -> str:
    return f"{100 * rate:.2f} ± {100 * se:.2f}"


def _misses(row: dict) -> str:
    return f"{100 * row['miss_below']:.2f} / {100 * row['miss_above']:.2f}"


def _width(row: dict) -> str:
    return f"{row['mean_width']:.2f} ± {row['width_se']:.2f}"


def format_report(results: dict[str, dict], *, seed: int, reps_scale: float, timings: dict[str, float]) -> str:
    iid, ar1, ni, bh = (results[k] for k in ("iid_p95_coverage", "ar1_p95_coverage", "noninferiority_type1", "bh_fdr"))
    lines = [
        "# Calibration of the tsglab statistics protocol",
        "",
        f"- command: `{' '.join([os.path.basename(sys.executable), *sys.argv])}`",
        f"- date (UTC): {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M')}",
        (f"- machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
         f"{os.cpu_count()} logical CPUs; Python {platform.python_version()}, numpy {np.__version__}"),
        f"- seed: {seed}; reps scale: {reps_scale:g}; total time {sum(timings.values()):.0f} s",
        ("- ± is one Monte-Carlo standard error (binomial for rates, sample s.e. for FDR and widths). Verdict:"
         f" *met* inside the target, *met within MC error* within {MC_SLACK_SE:g} s.e. of it, *MISSED* otherwise."),
        "",
        "## 1. 95 % CI of the P95, iid lognormal",
        "",
        (f"Latency ~ lognormal(μ = {MU}, σ = {SIGMA}); true P95 = exp(μ + σ·z₀.₉₅) = {iid['truth']:.3f}. "
         f"Type-1 order statistic, B = {iid['n_resamples']} draws. Target coverage "
         f"{100 * iid['target'][0]:.0f}–{100 * iid['target'][1]:.0f} %. ({timings['iid']:.0f} s)"),
        "",
        "| n | interval | reps | coverage % | miss below / above % | mean width (ms) | width / P95 | verdict |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r['n']} | {r['label']} | {r['reps']} | {_pct(r['coverage'], r['coverage_se'])} | "
        f"{_misses(r)} | {_width(r)} | "
        f"{r['mean_width'] / iid['truth']:.3f} | {r['verdict']} |"
        for r in iid["rows"]
    ]
    lines += [
        "",
        "## 2. 95 % CI of the P95, AR(1) lognormal",
        "",
        (f"Latency = exp(μ + σ·z_t), z_t = φ z_(t−1) + √(1−φ²) e_t, φ = {ar1['phi']}, z₀ ~ N(0, 1) (stationary "
         f"start), so each latency is lognormal(μ = {MU}, σ = {SIGMA}) and the true P95 is {ar1['truth']:.3f}. "
         f"n = {ar1['n']}, B = {ar1['n_resamples']}, percentile intervals; the block length is Politis–White, "
         f"estimated on each sample (stationary: its stationary value; moving-block: its circular value). "
         f"Target ≥ {100 * ar1['target_low']:.0f} % for the block bootstraps. ({timings['ar1']:.0f} s)"),
        "",
        "| interval | reps | coverage % | miss below / above % | mean width (ms) | mean block length | verdict |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in ar1["rows"]:
        block = "—" if r["mean_block_length"] is None else f"{r['mean_block_length']:.1f}"
        lines.append(
            f"| {r['label']} | {r['reps']} | {_pct(r['coverage'], r['coverage_se'])} | "
            f"{_misses(r)} | {_width(r)} | "
            f"{block} | {r['verdict']} |"
        )
    lines += [
        "",
        (f"`choose_bootstrap` (Ljung–Box, 10 lags, α = 0.05) picked the stationary bootstrap on "
         f"{_pct(ar1['detection_rate'], ar1['detection_se'])} % of the series."),
        "",
        "## 3. Type-I error of `paired_noninferiority` at the margin",
        "",
        (f"True mean difference exactly −ε, ε = {ni['margin']}, α = {ni['alpha']} (one-sided), bootstrap "
         f"B = {ni['n_resamples']}. Target: rejection rate ≤ α. ({timings['ni']:.0f} s)"),
        "",
        "| scenario | test | n | reps | mean d̄ | rejection rate % | verdict |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in ni["rows"]:
        lines.append(
            f"| {r['scenario']} | {r['label']} | {r['n']} | {r['reps']} | {r['mean_d']:+.4f} | "
            f"{_pct(r['rejection_rate'], r['rejection_se'])} | {r['verdict']} |"
        )
    lines += [
        "",
        "## 4. Benjamini–Hochberg FDR under independence",
        "",
        (f"m = {bh['m']}; m0 true nulls with uniform p; m − m0 alternatives with one-sided z-test p-values, "
         f"effect {bh['effect']:g}; q = {bh['q']}. Target: FDR ≤ m0/m · q. ({timings['bh']:.0f} s)"),
        "",
        "| m0 | reps | FDR % | bound m0/m·q % | power % | P(V ≥ 1) % | verdict |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in bh["rows"]:
        power = "—" if not np.isfinite(r["power"]) else f"{100 * r['power']:.1f}"
        lines.append(
            f"| {r['m0']} | {r['reps']} | {_pct(r['fdr'], r['fdr_se'])} | {100 * r['bound']:.1f} | {power} | "
            f"{100 * r['fwer']:.2f} | {r['verdict']} |"
        )
    missed = [
        f"{name}: "
        + ", ".join(f"{k} = {r[k]}" for k in ("scenario", "label", "n", "m0") if k in r)
        + f" ({r['verdict']})"
        for name, res in results.items()
        for r in res["rows"]
        if "MISSED" in r["verdict"] or "unexpected" in r["verdict"]
    ]
    lines += ["", "## Summary", ""]
    lines.append(f"Targets missed: {len(missed)}." if missed else "All targets met (within MC error where stated).")
    lines += [f"- {m}" for m in missed]
    return "\n".join(lines) + "\n"


def run_all(*, reps_scale: float = 1.0, seed: int = DEFAULT_SEED) -> tuple[dict[str, dict], dict[str, float]]:
    """Run the four calibrations with every replication count multiplied by ``reps_scale``."""

    def scaled(reps: int) -> int:
        return max(2, round(reps * reps_scale))

    results: dict[str, dict] = {}
    timings: dict[str, float] = {}
    for key, name, fn in (
        ("iid", "iid_p95_coverage", lambda: iid_p95_coverage(reps=scaled(8000), seed=seed)),
        ("ar1", "ar1_p95_coverage", lambda: ar1_p95_coverage(reps=scaled(1500), seed=seed)),
        ("ni", "noninferiority_type1", lambda: noninferiority_type1(reps=scaled(5000), seed=seed)),
        ("bh", "bh_fdr", lambda: bh_fdr(reps=scaled(50000), seed=seed)),
    ):
        start = time.perf_counter()
        results[name] = fn()
        timings[key] = time.perf_counter() - start
    return results, timings


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps-scale", type=float, default=1.0, help="multiply every replication count")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="master seed")
    parser.add_argument("--quick", action="store_true",
                        help=f"--reps-scale {QUICK_REPS_SCALE:g}: seconds, for CI; verdicts are noise")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps_scale = QUICK_REPS_SCALE
    if args.reps_scale <= 0:
        parser.error(f"--reps-scale must be > 0; got {args.reps_scale}.")
    results, timings = run_all(reps_scale=args.reps_scale, seed=args.seed)
    print(format_report(results, seed=args.seed, reps_scale=args.reps_scale, timings=timings), end="")


if __name__ == "__main__":
    main()
