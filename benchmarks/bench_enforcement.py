"""Calibration of the enforcement table and the claims check, and the table on the bundled suite.

1. Coverage of the exact (Clopper–Pearson) intervals the table prints
   (``tsglab.stats.clopper_pearson_limits``) at several (n, p), with Monte Carlo s.e.: at least 95 %.
2. The claims check's error rate, through the same ``enforcement_table`` + ``claims_check``: when the
   true rate equals the claim, "refuted" (and "supported") at most α of the time; when the truth is
   clearly better, "supported" with the power reported.
3. The bundled labelled suite (``tsglab.suite.enforcement``) through the bundled guardians
   (``tsglab.policy.guardians.GUARDIANS``): the enforcement table and the claims check against the
   published claims (99.8 % detection, < 0.1 % false positives, < 10 ms per check).

Run: ``python benchmarks/bench_enforcement.py`` (about a minute on 2 cores) writes
``benchmarks/results/enforcement.md``; ``--quick`` (CI) runs the same code at tiny sizes (a few hundred
simulated guardians, a sample of the suite, 2 timed repeats) and never writes. Exit status 1 when a
calibration target is missed.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from tsglab.report.enforcement import (
    ALL,
    claims_check,
    claims_note,
    enforcement_note,
    enforcement_table,
    evaluate_guardians,
)
from tsglab.report.publish import to_markdown
from tsglab.stats import clopper_pearson_limits, exact_bound_n_needed

RESULTS = Path(__file__).resolve().parent / "results" / "enforcement.md"
ALPHA = 0.05
PUBLISHED_CLAIMS = {"guardian_detection": 0.998, "guardian_fpr": 0.001, "guardian_latency_ms": 10.0}
COVERAGE_GRID = [(20, 0.05), (20, 0.5), (100, 0.01), (100, 0.3), (500, 0.002), (1000, 0.001), (1000, 0.998),
                 (3000, 0.001)]


def se(share: float, reps: int) -> float:
    return math.sqrt(max(share * (1 - share), 1e-12) / reps)


def coverage_section(reps: int, rng: np.random.Generator) -> tuple[pd.DataFrame, bool]:
    rows = []
    for n, p in COVERAGE_GRID:
        x = rng.binomial(n, p, size=reps)
        limits = clopper_pearson_limits(x, np.full(reps, n), confidence=1 - ALPHA)
        covered = float(((limits.ci_low <= p) & (p <= limits.ci_high)).mean())
        rows.append({"n": n, "p": f"{p:g}", "coverage": covered, "se": se(covered, reps), "reps": reps})
    frame = pd.DataFrame(rows)
    ok = bool((frame["coverage"] >= 1 - ALPHA - 3 * frame["se"]).all())
    return frame, ok


def simulated_outcomes(kind: str, n: int, truth: float, reps: int, rng: np.random.Generator) -> pd.DataFrame:
    """``reps`` guardians, each with ``n`` cases of one kind (violating for detection, benign for FPR)
    flagged with probability ``truth``, plus one case of the other kind so every row has both."""
    flagged = rng.random((reps, n)) < truth
    violation = kind == "guardian_detection"
    names = np.repeat([f"g{i}" for i in range(reps)], n + 1)
    violations = np.tile(np.r_[np.full(n, violation), [not violation]], reps)
    detected = np.concatenate([flagged, np.ones((reps, 1), dtype=bool)], axis=1).ravel()
    return pd.DataFrame({"guardian": names, "lang": "en", "violation": violations, "hard_negative": False,
                         "detected": detected})


def claims_section(reps: int, rng: np.random.Generator, quick: bool) -> tuple[pd.DataFrame, bool]:
    scenarios = [  # (claim, claimed value, n cases, true rate, what is measured)
        ("guardian_fpr", 0.02, 300, 0.02, "at claim"),
        ("guardian_fpr", 0.001, 3000, 0.001, "at claim"),
        ("guardian_detection", 0.998, 1500, 0.998, "at claim"),
        ("guardian_fpr", 0.001, 3000, 0.0, "better: power"),
        ("guardian_fpr", 0.001, 6000, 0.0002, "better: power"),
        ("guardian_detection", 0.998, 3000, 0.9995, "better: power"),
        ("guardian_fpr", 0.001, 6000, 0.003, "worse: power to refute"),
    ]
    if quick:
        scenarios = scenarios[:1] + scenarios[3:4]
    rows = []
    for claim, value, n, truth, what in scenarios:
        outcomes = simulated_outcomes(claim, n, truth, reps, rng)
        table = enforcement_table(outcomes, alpha=ALPHA)
        checks = claims_check(table, {claim: {f"g{i}": value for i in range(reps)}}, alpha=ALPHA)
        shares = checks["decision"].value_counts(normalize=True)
        supported, refuted = float(shares.get("supported", 0.0)), float(shares.get("refuted", 0.0))
        rows.append({"claim": claim, "claimed": f"{value:g}", "n": n, "truth": f"{truth:g}", "scenario": what,
                     "supported": supported, "supported_se": se(supported, reps), "refuted": refuted,
                     "refuted_se": se(refuted, reps), "reps": reps})
    frame = pd.DataFrame(rows)
    at_claim = frame[frame["scenario"] == "at claim"]
    ok = bool((at_claim["refuted"] <= ALPHA + 3 * at_claim["refuted_se"]).all()
              and (at_claim["supported"] <= ALPHA + 3 * at_claim["supported_se"]).all())
    return frame, ok


def needed_section() -> pd.DataFrame:
    return pd.DataFrame([{"claimed_fpr": f"{claim:.2%}",
                          "benign_needed_0_fp": exact_bound_n_needed(0.0, claim, alpha=ALPHA),
                          "benign_needed_half_claim": exact_bound_n_needed(claim / 2, claim, alpha=ALPHA)}
                         for claim in (0.01, 0.005, 0.001, 0.0005)])


def suite_section(quick: bool) -> tuple[pd.DataFrame, pd.DataFrame, int] | None:
    try:
        from tsglab.policy.guardians import GUARDIANS
        from tsglab.suite.enforcement import load_enforcement_suite
    except ImportError as exc:  # the suite or the guardians are not in this checkout
        print(f"bundled suite or guardians not available ({exc}); skipping the suite table")
        return None
    cases = load_enforcement_suite()
    if quick:
        cases = cases[::25]
    outcomes = evaluate_guardians(cases, GUARDIANS, repeats=2 if quick else 20)
    table = enforcement_table(outcomes, alpha=ALPHA)
    checks = claims_check(table, PUBLISHED_CLAIMS, alpha=ALPHA)
    return table, checks, len(cases)


def fmt(frame: pd.DataFrame) -> str:
    """A plain pipe table (no presentation of its own: publish's generic headers and precision)."""
    return to_markdown("enforcement_calibration", frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, never writes the results (CI)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rng = np.random.default_rng(20250614)
    out: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        out.append(text)

    coverage, coverage_ok = coverage_section(2000 if args.quick else 20000, rng)
    say(f"## Coverage of the two-sided {1 - ALPHA:.0%} Clopper–Pearson interval (target >= {1 - ALPHA:.0%})\n")
    say(fmt(coverage))
    claims, claims_ok = claims_section(200 if args.quick else 2000, rng, args.quick)
    say(f"\n## Claims check decisions by Monte Carlo (alpha = {ALPHA}; at the claim each wrong decision <= alpha)\n")
    say(fmt(claims))
    say("\n## Benign cases a claimed FPR needs (one-sided exact bound at 95 %)\n")
    say(fmt(needed_section()))
    suite = suite_section(args.quick)
    if suite is not None:
        table, checks, n_cases = suite
        say(f"\n## Bundled suite ({n_cases} cases{', every 25th' if args.quick else ''}) through the bundled "
            "guardians\n")
        say(to_markdown("enforcement", table, note=enforcement_note(ALPHA)))
        say("\n## Claims check against the published claims (99.8 % detection, < 0.1 % FPR, < 10 ms)\n")
        say(to_markdown("claims", checks[checks["guardian"] == ALL], note=claims_note(ALPHA)))
        say("\nPer guardian:\n")
        say(to_markdown("claims", checks, note=""))
    seconds = time.perf_counter() - started
    verdict = "PASS" if coverage_ok and claims_ok else "FAIL"
    say(f"\n{verdict}: coverage {'ok' if coverage_ok else 'BELOW TARGET'}, claims-check error at the claim "
        f"{'ok' if claims_ok else 'ABOVE ALPHA'}; {seconds:.1f} s on {platform.machine()}, Python "
        f"{platform.python_version()}")
    if not args.quick:
        header = ("# Enforcement table and claims check: calibration and the bundled suite\n\n"
                  "Written by `python benchmarks/bench_enforcement.py` (do not edit by hand).\n")
        RESULTS.write_text(header + "\n".join(out) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
