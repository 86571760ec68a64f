"""Calibration of what the report decides: size, power and CI coverage of the report's own functions.

Every cell builds synthetic event frames from data with a known truth (benchmarks/_panel.py) and calls
the functions ``tsglab report`` calls — ``family_a``, ``family_b``, ``verdict`` of
``tsglab.report.protocol`` and ``p95_view`` of ``tsglab.report.tables`` — so what is calibrated is
what is printed. Rates carry their Monte-Carlo standard error sqrt(p(1-p)/reps).

* Family A at the margin (true mean d = -0.05: size) and at d = 0 (power), pass/fail, rare one-sided
  losses, graded and continuous scores, n = 2 .. 500.
* Family B at the true ratio 1 + δ = 1.1 (size) and 1.0 (power), lognormal scale change, three-tier
  routing mixture, heavy tail, AR(1) φ = 0.7; n = 30 .. 2000; both views (Overall, Warm-only).
  ``power_at_equal`` (the report's own power estimate) is shown beside the measured power.
* P50/P95 CI coverage of the four-view table (iid lognormal and AR(1) φ = 0.7, n = 200, 1000).
* The verdict as a whole, four strata: A at its margin with B easy, and B at its margin with A easy.

    python benchmarks/calibrate_protocol.py            # full: writes benchmarks/results/calibration_protocol.md
    python benchmarks/calibrate_protocol.py --quick    # CI: tiny counts, writes nothing

Full run: about 15 minutes on 2 cores (``--workers 2``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _panel import (
    LATENCY_SCENARIOS,
    QUALITY_SCENARIOS,
    _correlated_normals,
    arm_frames,
    latency_pair,
    quality_pair,
)

ALPHA, MARGIN, DELTA = 0.05, 0.05, 0.10
RESULTS = Path(__file__).resolve().parent / "results" / "calibration_protocol.md"


def _quiet():
    warnings.simplefilter("ignore")


def family_a_cell(scenario: str, n: int, mean_diff: float, reps: int, seed: int) -> dict:
    from tsglab.report.protocol import ProtocolSettings, family_a

    _quiet()
    settings = ProtocolSettings(n_resamples=200)
    rng = np.random.default_rng(seed)
    passes = underpowered = 0
    for _ in range(reps):
        gate_q, base_q = quality_pair(scenario, n, mean_diff, rng)
        base, gate = arm_frames(np.ones(n), np.ones(n), gate_q, base_q)
        overall = family_a(base, gate, settings).iloc[0]
        passes += bool(overall["passed"])
        underpowered += bool(overall["underpowered"])
    return {"family": "A", "scenario": scenario, "n": n, "mean_diff": mean_diff, "reps": reps,
            "pass_rate": passes / reps, "underpowered_share": underpowered / reps}


def family_b_cell(scenario: str, n: int, ratio: float, reps: int, seed: int, n_resamples: int) -> list[dict]:
    from tsglab.report.protocol import ProtocolSettings, family_b

    _quiet()
    settings = ProtocolSettings(n_resamples=n_resamples, seed=seed)
    rng = np.random.default_rng(seed)
    stats = {view: {"passes": 0, "power_est": [], "underpowered": 0} for view in ("Overall", "Warm-only")}
    for _ in range(reps):
        gate_lat, base_lat = latency_pair(scenario, n, ratio, rng)
        base, gate = arm_frames(gate_lat, base_lat)
        table = family_b(base, gate, settings)
        for row in table[table["stratum"] == "overall"].itertuples():
            cell = stats[row.view]
            cell["passes"] += bool(row.passed)
            cell["underpowered"] += bool(row.underpowered)
            if np.isfinite(row.power_at_equal):
                cell["power_est"].append(row.power_at_equal)
    return [{"family": "B", "scenario": scenario, "n": n, "ratio": ratio, "view": view, "reps": reps,
             "pass_rate": c["passes"] / reps, "underpowered_share": c["underpowered"] / reps,
             "power_at_equal_mean": float(np.mean(c["power_est"])) if c["power_est"] else math.nan}
            for view, c in stats.items()]


def coverage_cell(scenario: str, n: int, reps: int, seed: int, n_resamples: int) -> list[dict]:
    from scipy import stats

    from tsglab.report.tables import p95_view

    _quiet()
    rng = np.random.default_rng(seed)
    counts = {q: {"cover": 0, "below": 0, "above": 0, "unbounded": 0} for q in (0.5, 0.95)}
    for r in range(reps):
        latent, _ = _correlated_normals(rng, n, 0.6, ar_phi=0.7 if scenario == "ar1" else 0.0)
        frame, _ = arm_frames(np.ones(n), 800.0 * np.exp(0.5 * latent))
        view = p95_view(frame, "co_ms", n_resamples=n_resamples, seed=r)
        for q, name in ((0.5, "p50"), (0.95, "p95")):
            truth = 800.0 * math.exp(0.5 * stats.norm.ppf(q))
            low, high = view[f"{name}_ci_low"], view[f"{name}_ci_high"]
            counts[q]["cover"] += low <= truth <= high
            counts[q]["below"] += high < truth
            counts[q]["above"] += low > truth
            counts[q]["unbounded"] += math.isinf(high)
    return [{"family": "CI", "scenario": scenario, "n": n, "q": q, "reps": reps,
             **{k: v / reps for k, v in c.items()}} for q, c in counts.items()]


def verdict_cell(case: str, reps: int, seed: int, n_resamples: int) -> dict:
    from tsglab.report.protocol import ProtocolSettings, family_a, family_b, family_c, verdict

    _quiet()
    settings = ProtocolSettings(n_resamples=n_resamples, seed=seed)
    rng = np.random.default_rng(seed)
    n = 800  # four strata of 200
    passes = 0
    for _ in range(reps):
        if case == "A at margin":  # quality at the margin everywhere, latency clearly fine
            gate_q, base_q = quality_pair("binary", n, -MARGIN, rng)
            gate_lat, base_lat = latency_pair("lognormal", n, 0.7, rng)
        else:  # latency at the margin, quality identical on every pair
            base_q = (rng.random(n) < 0.7).astype(float)
            gate_q = base_q.copy()
            gate_lat, base_lat = latency_pair("routing-mixture", n, 1.0 + DELTA, rng)
        base, gate = arm_frames(gate_lat, base_lat, gate_q, base_q, tasks=("a", "b", "c", "d"))
        a, b = family_a(base, gate, settings), family_b(base, gate, settings)
        c = family_c({"baseline": base, "tsg": gate}, settings)
        passes += verdict(a, b, c, "tsg")["overall"]
    return {"family": "verdict", "case": case, "n": n, "reps": reps, "pass_rate": passes / reps}


def _se(p: float, reps: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / reps)


def _fmt_rate(p: float, reps: int) -> str:
    return f"{p:.3f} ± {_se(p, reps):.3f}"


def report(rows: list[dict], elapsed: float, args) -> str:
    frame = pd.DataFrame(rows)
    order = {name: i for i, name in enumerate((*QUALITY_SCENARIOS, *LATENCY_SCENARIOS, "iid"))}
    frame["_order"] = frame.get("scenario", pd.Series(dtype=object)).map(order)
    frame = frame.sort_values(["family", "_order", "n"], kind="stable")
    command = "benchmarks/calibrate_protocol.py " + " ".join(sys.argv[1:])
    out = [f"# Calibration of the report's decisions (`{command}`)",
           "",
           (f"α = {ALPHA}, Family A margin ε = {MARGIN}, Family B δ = {DELTA}. Rates ± one Monte-Carlo s.e. "
            f"Elapsed {elapsed:.0f} s with {args.workers} worker(s). Family B cells use B = {args.b_resamples} "
            "bootstrap resamples (the report's default is 2000; the p-value resolution does not matter at α = 0.05)."),
           ""]
    a = frame[frame["family"] == "A"]
    if len(a):
        out += ["## Family A — pass rate of the overall row (size at d = −ε must be ≤ α + 2 s.e.)", "",
                "| scores | n | size at d = −0.05 | power at d = 0 | underpowered share (d = 0) |",
                "|---|---|---|---|---|"]
        for (scenario, n), part in a.groupby(["scenario", "n"], sort=False):
            size = part[part["mean_diff"] < 0].iloc[0]
            power = part[part["mean_diff"] == 0]
            pw = _fmt_rate(power.iloc[0]["pass_rate"], power.iloc[0]["reps"]) if len(power) else "—"
            up = f"{power.iloc[0]['underpowered_share']:.2f}" if len(power) else "—"
            flag = " **over**" if size["pass_rate"] > ALPHA + 2 * _se(ALPHA, size["reps"]) else ""
            out.append(f"| {scenario} | {n} | {_fmt_rate(size['pass_rate'], size['reps'])}{flag} | {pw} | {up} |")
        out.append("")
    b = frame[frame["family"] == "B"]
    if len(b):
        out += ["## Family B — pass rate of the overall row per view (size at ratio 1.1 must be ≤ α + 2 s.e.)", "",
                ("| latencies | n | view | size at ratio 1.1 | power at ratio 1.0 | report's power estimate | "
                 "underpowered share (ratio 1.0) |"),
                "|---|---|---|---|---|---|---|"]
        for (scenario, n, view), part in b.groupby(["scenario", "n", "view"], sort=False):
            size = part[part["ratio"] > 1].iloc[0]
            power = part[part["ratio"] == 1].iloc[0]
            flag = " **over**" if size["pass_rate"] > ALPHA + 2 * _se(ALPHA, size["reps"]) else ""
            out.append(f"| {scenario} | {n} | {view} | {_fmt_rate(size['pass_rate'], size['reps'])}{flag} | "
                       f"{_fmt_rate(power['pass_rate'], power['reps'])} | {power['power_at_equal_mean']:.2f} | "
                       f"{power['underpowered_share']:.2f} |")
        out.append("")
    ci = frame[frame["family"] == "CI"]
    if len(ci):
        out += [("## CI coverage of the four-view table's P50 and P95 (95 % intervals; target 94–96 % iid, ≥ 92 % "
                 "AR(1))"),
                "",
                ("| latencies | n | quantile | coverage | wholly below truth | wholly above | "
                 "upper end unbounded |"),
                "|---|---|---|---|---|---|---|"]
        for row in ci.itertuples():
            out.append(f"| {row.scenario} | {row.n} | P{row.q * 100:g} | {_fmt_rate(row.cover, row.reps)} | "
                       f"{row.below:.3f} | {row.above:.3f} | {row.unbounded:.3f} |")
        out.append("")
    v = frame[frame["family"] == "verdict"]
    if len(v):
        out += ["## The verdict as a whole (4 strata × 200 pairs; pass rate must be ≤ α + 2 s.e.)", "",
                "| null case | verdict pass rate |", "|---|---|"]
        for row in v.itertuples():
            out.append(f"| {row.case} | {_fmt_rate(row.pass_rate, row.reps)} |")
        out.append("")
    return "\n".join(out)


def tasks(args) -> list[tuple]:
    scale = args.reps_scale
    jobs: list[tuple] = []
    a_sizes = (2, 5, 10, 30, 60, 200) if args.quick else (2, 5, 10, 20, 30, 60, 120, 200, 500)
    for scenario in QUALITY_SCENARIOS if "A" in args.only else ():
        for n in a_sizes:
            for mean_diff in (-MARGIN, 0.0):
                if scenario == "binary-rare" and mean_diff == 0.0:
                    continue
                reps = max(4, int(2000 * scale)) if n <= 200 else max(4, int(1000 * scale))
                jobs.append((family_a_cell, scenario, n, mean_diff, reps, hash((scenario, n, mean_diff)) % 2**31))
    b_sizes = args.b_sizes or ((30, 120, 300) if args.quick else (30, 100, 300, 1000, 2000))
    for scenario in LATENCY_SCENARIOS if "B" in args.only else ():
        for n in b_sizes:
            for ratio in (1.0 + DELTA, 1.0):
                reps = max(4, int((1000 if n <= 300 else 400) * scale))
                jobs.append((family_b_cell, scenario, n, ratio, reps, hash((scenario, n, ratio)) % 2**31,
                             args.b_resamples))
    for scenario in ("iid", "ar1") if "CI" in args.only else ():
        jobs.extend((coverage_cell, scenario, n, max(4, int(1000 * scale)), hash((scenario, n)) % 2**31,
                     args.b_resamples) for n in ((200,) if args.quick else (200, 1000)))
    verdict_cases = ("A at margin", "B at margin") if "verdict" in args.only else ()
    jobs.extend((verdict_cell, case, max(4, int(400 * scale)), hash(case) % 2**31, args.b_resamples)
                for case in verdict_cases)
    return jobs


def _cost(job) -> float:
    """Rough relative cost of a job: pairs × repetitions (the verdict cells run 800 pairs)."""
    fn, *rest = job
    if fn is verdict_cell:
        return 800.0 * 8 * rest[1]
    n, reps = rest[1], rest[3] if fn is not coverage_cell else rest[2]
    return float(n) * reps * (8 if fn is family_b_cell else 1)


def _run(job):
    fn, *rest = job
    result = fn(*rest)
    return result if isinstance(result, list) else [result]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI): checks the code paths, writes nothing")
    parser.add_argument("--reps-scale", type=float, default=None, help="multiply every cell's repetitions")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--b-resamples", type=int, default=None, help="bootstrap resamples in Family B and CI cells")
    parser.add_argument("--only", type=lambda v: set(v.split(",")), default={"A", "B", "CI", "verdict"},
                        help="comma-separated parts to run: A,B,CI,verdict (default all)")
    parser.add_argument("--b-sizes", type=lambda v: tuple(int(x) for x in v.split(",")), default=None,
                        help="Family B sample sizes, e.g. 100,200")
    parser.add_argument("--out", type=Path, default=None, help=f"markdown output (full run default: {RESULTS})")
    args = parser.parse_args(argv)
    if args.reps_scale is None:
        args.reps_scale = 0.004 if args.quick else 1.0
    if args.b_resamples is None:
        args.b_resamples = 200 if args.quick else 1000
    started = time.perf_counter()
    jobs = tasks(args)
    jobs.sort(key=_cost, reverse=True)  # longest first, so the workers finish together
    rows: list[dict] = []
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            for i, result in enumerate(pool.map(_run, jobs), 1):
                rows += result
                print(f"  [{i}/{len(jobs)}] {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    else:
        for job in jobs:
            rows += _run(job)
    text = report(rows, time.perf_counter() - started, args)
    print(text)
    out = args.out if args.out is not None else (None if args.quick else RESULTS)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
