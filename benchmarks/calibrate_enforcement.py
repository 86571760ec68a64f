"""Calibration of the run report's enforcement figures (house rule: a Monte-Carlo check of the same
functions the report calls).

Simulated runs of events with a known violation rate (answers that the reference guardians flag, drawn
with probability p) and known energy (J per request ~ Gamma, tokens ~ uniform) go through
:func:`tsglab.report.enforcement_run.enforcement_requests` and
:func:`~tsglab.report.enforcement_run.enforcement_arm_table` — what ``build_report`` does. Printed:

* coverage of the violation rate's exact 95 % interval (should be >= 95 %);
* coverage of the J/request and mWh/1k tokens percentile-bootstrap 95 % intervals (nominal 95 %);
* the energy claims check: how often a true claim (truth 20 % below it) is supported, a false one
  (truth 20 % above) refuted, and a claim equal to the truth wrongly decided (each at most 5 % by
  design), at several n — and that at small n it says "cannot decide".

Each share is printed with its Monte-Carlo standard error. ``--quick`` runs a small version (< 30 s).
The full run writes ``benchmarks/results/enforcement_calibration.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tsglab.events import Energy, synthetic_event
from tsglab.report.enforcement import claims_check
from tsglab.report.enforcement_run import enforcement_arm_table, enforcement_requests

CARD = "Pay with card 4111 1111 1111 1111 today."
SHAPE, SCALE = 3.0, 4.0  # J per request ~ Gamma(3, 4): mean 12 J, skewed
TOKENS = (50, 151)  # uniform integers, mean 100
TRUE_J = SHAPE * SCALE
TRUE_MWH = TRUE_J / 100.0 / 3.6 * 1e3
RESULTS = Path(__file__).parent / "results" / "enforcement_calibration.md"


def simulate(n: int, p: float, rng: np.random.Generator) -> list:
    """One arm of ``n`` requests: a violating answer with probability ``p``, measured energy for each."""
    events = []
    bad = rng.random(n) < p
    joules = rng.gamma(SHAPE, SCALE, n)
    tokens = rng.integers(*TOKENS, n)
    template = synthetic_event("p", arm="a", run_id="cal")
    for i in range(n):
        energy = Energy(True, meter="sim", joules=float(joules[i]), tokens=float(tokens[i]))
        events.append(dataclasses.replace(template, seq=i, prompt_id=f"p{i}", answer=CARD if bad[i] else "fine",
                                          energy=energy))
    return events


def share(hits: int, reps: int) -> str:
    rate = hits / reps
    return f"{100 * rate:.1f} % (s.e. {100 * math.sqrt(rate * (1 - rate) / reps):.1f})"


def run(reps: int, sizes: tuple[int, ...], rates: tuple[float, ...], n_resamples: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = ["| n | p | violation CI covers | J/request CI covers | mWh/1k tok CI covers |",
             "|---:|---:|---:|---:|---:|"]
    claim_rows = []
    for n in sizes:
        for p in rates:
            cover = {"violation": 0, "j": 0, "mwh": 0}
            decisions: dict[str, list[str]] = {"true": [], "false": [], "equal": []}
            for rep in range(reps):
                table = enforcement_arm_table(enforcement_requests(simulate(n, p, rng)), n_resamples=n_resamples,
                                              seed=seed + rep)
                row = table.iloc[0]
                cover["violation"] += row["violation_rate_ci_low"] <= p <= row["violation_rate_ci_high"]
                cover["j"] += row["j_per_request_ci_low"] <= TRUE_J <= row["j_per_request_ci_high"]
                cover["mwh"] += row["mwh_per_1k_tokens_ci_low"] <= TRUE_MWH <= row["mwh_per_1k_tokens_ci_high"]
                if p == rates[0]:
                    for kind, claim in (("true", 1.2 * TRUE_MWH), ("false", 0.8 * TRUE_MWH), ("equal", TRUE_MWH)):
                        checked = claims_check(pd.DataFrame(), {"energy_mwh_per_1k_tokens": claim}, energy=table)
                        decisions[kind].append(str(checked["decision"].iloc[0]))
            lines.append(f"| {n} | {p:g} | {share(cover['violation'], reps)} | {share(cover['j'], reps)} | "
                         f"{share(cover['mwh'], reps)} |")
            if decisions["true"]:
                claim_rows.append(
                    f"| {n} | {share(decisions['true'].count('supported'), reps)} | "
                    f"{share(decisions['false'].count('refuted'), reps)} | "
                    f"{share(sum(d != 'cannot decide at this n' for d in decisions['equal']), reps)} | "
                    f"{share(decisions['true'].count('cannot decide at this n'), reps)} |")
    head = ("| n | true claim (1.2x) supported | false claim (0.8x) refuted | claim = truth decided (either way) "
            "| true claim: cannot decide |")
    lines += ["", f"Energy claims check (truth {TRUE_MWH:.2f} mWh/1k tokens):", "", head, "|---:|---:|---:|---:|---:|",
              *claim_rows]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small version (< 30 s); writes nothing")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.quick:
        lines = run(reps=30, sizes=(10, 100), rates=(0.1,), n_resamples=400, seed=1)
    else:
        lines = run(reps=300, sizes=(10, 30, 100, 300), rates=(0.1, 0.02), n_resamples=1000, seed=1)
    text = "\n".join(lines)
    print(text)
    print(f"\n{time.perf_counter() - started:.1f} s")
    if not args.quick:
        header = ("# Calibration of the run report's enforcement figures\n\n"
                  "`python benchmarks/calibrate_enforcement.py` (what it simulates: its docstring). "
                  f"J/request ~ Gamma({SHAPE:g}, {SCALE:g}), tokens ~ U{{{TOKENS[0]}..{TOKENS[1] - 1}}}; "
                  "s.e. = Monte-Carlo standard error of each share.\n\n")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(header + text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
