"""Calibrate the LLM-judge guardian's threshold on the labelled enforcement suite, and say how good it is.

The judge (:func:`tsglab.policy.judge.judge`, the function the gateway calls) rates a balanced sample of
the suite's pii / secrets / code / sql cases (violations and benign cases, hard negatives included) on
one tier. The sample is split in two halves (seeded): the threshold is chosen on the calibration half as
the lowest score step whose false-positive rate there is at most ``--target-fpr`` (the most sensitive
threshold that keeps false positives in bounds); detection and false-positive rate of that threshold
are then measured on the held-out half, with exact Clopper–Pearson 95 % intervals
(:func:`tsglab.stats.clopper_pearson`). The ROC AUC over the whole sample comes with a bootstrap
percentile interval (cases resampled within each label). A threshold that flags nothing is reported as
such: a judge that cannot separate the labels is a finding, not a failure of this script.

    python benchmarks/calibrate_judge.py --cases 160 --out benchmarks/results/judge_calibration.md

runs SmolLM2-135M-Instruct on the embedded llama.cpp backend (the light tier of the bundled specs).
``--quick`` (CI) uses a scripted judge whose risk follows the label with noise, 40 cases, and checks that
the procedure recovers a threshold that separates them; it writes nothing.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from tsglab.backends.base import CompletionRequest
from tsglab.backends.scripted import ScriptedBackend
from tsglab.policy.judge import JUDGE_USER, judge
from tsglab.stats import clopper_pearson
from tsglab.suite.enforcement import EnforcementCase, load_enforcement_suite

GUARDED = ("pii", "secrets", "code", "sql")
STEPS = tuple(r / 9 for r in range(10))


def sample_cases(n: int, seed: int) -> list[EnforcementCase]:
    """``n`` cases, half violations and half benign, spread over the four content guardians."""
    rng = random.Random(seed)
    pool = [c for c in load_enforcement_suite() if c.guardian in GUARDED]
    chosen: list[EnforcementCase] = []
    per_cell = max(1, n // (2 * len(GUARDED)))
    for guardian in GUARDED:
        for violation in (True, False):
            cell = [c for c in pool if c.guardian == guardian and c.violation is violation]
            chosen += rng.sample(cell, min(per_cell, len(cell)))
    rng.shuffle(chosen)
    return chosen


def scripted_judge(cases: list[EnforcementCase], seed: int) -> ScriptedBackend:
    """A judge whose risk is 7 ± 2 for violations and 2 ± 2 for benign cases (for --quick)."""
    rng = random.Random(seed)
    risk = {c.text[:2000]: min(9, max(0, (7 if c.violation else 2) + rng.randint(-2, 2))) for c in cases}

    def reply(request: CompletionRequest) -> str:
        text = request.messages[-1].content
        for key, value in risk.items():
            if JUDGE_USER.format(text=key) == text:
                return f'{{"risk": {value}}}'
        return "?"

    return ScriptedBackend(reply, name="scripted-judge")


def embedded_judge():
    from tsglab.backends import build_backends
    from tsglab.config import TierSpec

    backend = build_backends({"light": TierSpec(name="light", model="smollm2-135m", options={"n_threads": 2})})["light"]
    backend.warm_up()
    return backend


def score_cases(backend, cases: list[EnforcementCase]) -> tuple[np.ndarray, np.ndarray, list[float], int]:
    """Scores (NaN when unreadable: the gateway flags those), labels, latencies, unreadable count."""
    scores, labels, latencies, unreadable = [], [], [], 0
    for case in cases:
        result = judge(backend, case.text, threshold=1.0, max_tokens=12, timeout_s=60)
        scores.append(np.nan if result.score is None else result.score)
        unreadable += result.score is None
        labels.append(case.violation)
        latencies.append(result.latency_ms)
    return np.asarray(scores, float), np.asarray(labels, bool), latencies, unreadable


def flagged(scores: np.ndarray, threshold: float) -> np.ndarray:
    return np.isnan(scores) | (scores >= threshold - 1e-12)  # unreadable answers fail closed, as in the gateway


def choose_threshold(scores: np.ndarray, labels: np.ndarray, target_fpr: float) -> float:
    """The lowest score step whose false-positive rate on these cases is at most ``target_fpr`` (1.0 + 1
    flags nothing readable when none is)."""
    benign = ~labels
    for threshold in STEPS:
        if flagged(scores[benign], threshold).mean() <= target_fpr:
            return threshold
    return 2.0  # nothing readable is flagged (unreadable answers still are)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a violation scores above a benign case (ties count half; unreadable = 1.0)."""
    s = np.where(np.isnan(scores), 1.0, scores)
    pos, neg = s[labels], s[~labels]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def auc_interval(scores: np.ndarray, labels: np.ndarray, seed: int, resamples: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)
    values = []
    for _ in range(resamples):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        values.append(auc(scores[idx], labels[idx]))
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def calibrate(scores: np.ndarray, labels: np.ndarray, *, target_fpr: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(scores))
    cal, held = order[: len(order) // 2], order[len(order) // 2:]
    threshold = choose_threshold(scores[cal], labels[cal], target_fpr)
    hits = flagged(scores[held], threshold)
    det = clopper_pearson(int(hits[labels[held]].sum()), int(labels[held].sum()))
    fpr = clopper_pearson(int(hits[~labels[held]].sum()), int((~labels[held]).sum()))
    return {"threshold": threshold, "detection": det, "fpr": fpr, "n_cal": len(cal), "n_held": len(held),
            "auc": auc(scores, labels), "auc_ci": auc_interval(scores, labels, seed)}


def report(result: dict, *, cases: int, latencies: list[float], unreadable: int, judge_name: str,
           target_fpr: float, histogram: dict) -> str:
    det, fpr = result["detection"], result["fpr"]
    lat = np.percentile(latencies, [50, 95])
    threshold = result["threshold"]
    shown = "flags no readable score" if threshold > 1 else f"{threshold:.3f} (risk ≥ {round(threshold * 9)})"
    lines = [
        "# LLM-judge guardian: threshold calibration",
        "",
        (f"- judge: {judge_name}; prompt and schema: `tsglab/policy/judge.py`; {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}"),
        (f"- cases: {cases} from the labelled enforcement suite (pii/secrets/code/sql, half violations), split "
        f"{result['n_cal']} calibration / {result['n_held']} held out (seeded)"),
        f"- unreadable judge answers: {unreadable} (flagged, as the gateway does)",
        f"- judge latency per check: P50 {lat[0]:.0f} ms, P95 {lat[1]:.0f} ms",
        f"- risk histogram (violations / benign): {histogram}",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| threshold chosen on the calibration half (FPR ≤ {target_fpr:.0%}) | {shown} |",
        f"| held-out detection | {det.estimate:.1%} [{det.ci_low:.1%}, {det.ci_high:.1%}] ({det.successes}/{det.n}) |",
        (f"| held-out false-positive rate | {fpr.estimate:.1%} [{fpr.ci_low:.1%}, {fpr.ci_high:.1%}] "
        f"({fpr.successes}/{fpr.n}) |"),
        (f"| ROC AUC (all cases, bootstrap 95 %) | {result['auc']:.3f} [{result['auc_ci'][0]:.3f}, "
        f"{result['auc_ci'][1]:.3f}] |"),
        "",
        "Intervals: exact Clopper–Pearson 95 % for rates; percentile bootstrap (resampling within labels) for AUC.",
    ]
    return "\n".join(lines) + "\n"


def histogram_of(scores: np.ndarray, labels: np.ndarray) -> dict:
    def counts(mask: np.ndarray) -> dict:
        risk = np.where(np.isnan(scores[mask]), -1, np.round(scores[mask] * 9)).astype(int)
        return {("?" if r < 0 else int(r)): int((risk == r).sum()) for r in sorted(set(risk))}
    return {"violations": counts(labels), "benign": counts(~labels)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=160)
    parser.add_argument("--target-fpr", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    cases = sample_cases(40 if args.quick else args.cases, args.seed)
    backend = scripted_judge(cases, args.seed) if args.quick else embedded_judge()
    name = "scripted (risk 7±2 for violations, 2±2 benign)" if args.quick else "SmolLM2-135M-Instruct Q4_1, embedded"
    scores, labels, latencies, unreadable = score_cases(backend, cases)
    result = calibrate(scores, labels, target_fpr=args.target_fpr, seed=args.seed)
    text = report(result, cases=len(cases), latencies=latencies, unreadable=unreadable, judge_name=name,
                  target_fpr=args.target_fpr, histogram=histogram_of(scores, labels))
    print(text)
    if args.out and not args.quick:
        args.out.write_text(text, encoding="utf-8")
    if args.quick:  # the scripted judge separates the labels: the procedure must find that
        ok = result["auc"] > 0.9 and result["detection"].estimate > 0.7 and result["threshold"] <= 1
        print("quick check:", "passed" if ok else "FAILED")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
