"""Cost and quality gradient of a tier ladder, from a run of experiments/tiers.yaml.

    tsglab run experiments/tiers.yaml --quiet --no-report
    python benchmarks/tier_profile.py runs/tiers-<timestamp>

Each arm sends every suite item once to one tier (no checks, repairs or upgrades); the tables give
mean quality and mean eval ms (prompt + generation) per tier, overall and per task, and the **paired**
quality difference of each step up the ladder (light -> std, std -> enh, light -> enh), overall and per
task: d = q_upper - q_lower per prompt, its mean with a two-sided 95 % interval and the one-sided
p-value of H0 "mean d <= 0", from ``tsglab.stats.quality_noninferiority`` (the function the report's
Family A uses: exact for pass/fail scores, a betting e-value otherwise, valid at every n), plus the share
of byte-identical answers.

Several run directories may be given (runs over parts of a suite, e.g. the items added since an
earlier run): their items are pooled by prompt id; an id in two runs must carry the same prompt text
(``prompt_sha``) and is taken from the later run. At temperature 0 the embedded models answer
byte-identically across runs, so a pooled profile is the profile of one run of the pooled items.

``--arms A,B`` compares two arms of any run the same way (e.g. a quickstart's baseline,tsg).

``python benchmarks/tier_profile.py --quick`` (CI) runs experiments/tiers.yaml on 21 suite items with
scripted tiers instead of models (light answers about a third of the items right, std two thirds, enh all;
8, 24 and 60 completion tokens at 2 ms each) into a temporary directory, and prints the same tables.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from tsglab.events import read_events
from tsglab.report.frame import events_frame
from tsglab.report.render import to_markdown
from tsglab.report.tables import arm_metrics, task_table
from tsglab.stats import quality_noninferiority
from tsglab.suite import gold_answer

REPO = Path(__file__).resolve().parents[1]
QUICK_ITEMS = 21
# scripted tiers: share of the items answered right, and completion tokens per answer
QUICK_TIERS = {"light": (1 / 3, 8), "std": (2 / 3, 24), "enh": (1.0, 60)}
QUICK_MS_PER_TOKEN = 2.0


CI_LEVEL = 0.95  # two-sided; each end is a one-sided bound at 1 - (1 - CI_LEVEL) / 2
STAT_SEED = 0
BOUND_MARGIN = 0.999  # see paired_difference


def load_runs(run_dirs: list[str | Path] | str | Path) -> tuple[pd.DataFrame, dict[tuple[str, str], str]]:
    """Events of one or more runs as a frame, and each (arm, prompt id)'s answer text.

    A prompt id found in several runs is taken from the last run that has it; its ``prompt_sha`` must
    agree (the same prompt), else ``ValueError`` names the id and both runs.
    """
    dirs = [run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs)
    frames, answers, origin = [], {}, {}
    for run_dir in reversed(dirs):  # later runs win
        events = list(read_events(run_dir))
        frame = events_frame(events)
        for event in events:
            answers.setdefault((event.arm, event.prompt_id), event.answer or "")
        shas = frame.groupby("prompt_id")["prompt_sha"].first()
        known = [pid for pid in shas.index if pid in origin]
        for pid in known:
            if origin[pid][1] != shas[pid]:
                raise ValueError(f"prompt id {pid!r} has different prompt texts in {run_dir} and {origin[pid][0]}; "
                                 "profile runs of one suite version.")
        frames.append(frame[~frame["prompt_id"].isin(known)])
        origin.update({pid: (str(run_dir), sha) for pid, sha in shas.items() if pid not in origin})
    return pd.concat(frames, ignore_index=True), answers


def tier_profile(run_dirs) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = run_dirs if isinstance(run_dirs, pd.DataFrame) else load_runs(run_dirs)[0]
    frames = dict(iter(frame.groupby("arm", sort=False)))  # iter(): dict() would call GroupBy.keys, a str
    overall = pd.DataFrame([{"tier": arm, **{k: arm_metrics(part)[k] for k in
                                            ("n", "mean_quality", "avg_eval_ms", "json_fail_rate", "p50_e2e_warm_ms")}}
                            for arm, part in frames.items()])
    per_task = task_table(frames).pivot(index="task", columns="arm", values=["mean_quality", "avg_eval_ms"])
    per_task.columns = [f"{metric}:{arm}" for metric, arm in per_task.columns]
    return overall, per_task.reset_index()


def ladder_arms(frame: pd.DataFrame) -> list[str]:
    """The arms of a tiers run, lowest rung first (each arm's tier is the one it sent every request to)."""
    ladder = list(frame["ladder"].iloc[0])
    tier_of = frame.groupby("arm")["final_tier"].agg(lambda tiers: tiers.mode().iloc[0])
    return sorted(tier_of.index, key=lambda arm: ladder.index(tier_of[arm]))


def paired_difference(lower: np.ndarray, upper: np.ndarray, *, seed: int = STAT_SEED) -> dict[str, float]:
    """Mean of d = upper - lower with a two-sided ``CI_LEVEL`` interval and the one-sided p of H0 mean d <= 0,
    all by ``tsglab.stats.quality_noninferiority``: each end of the interval is its one-sided lower bound
    at 1 - (1 - CI_LEVEL)/2, of d for the low end and of -d for the high end.

    The bounds are asked for with a margin just inside the score range (``BOUND_MARGIN``): the function's
    bisection starts from -margin and, where the test there does not reject, returns the edge of the range
    (-1) instead of searching below (the betting p-value at the edge itself is 1), so a bound asked for at
    margin 0 is -1 whenever d is not significantly positive.
    """
    half = (1.0 - CI_LEVEL) / 2
    low_end = quality_noninferiority(upper, lower, margin=BOUND_MARGIN, alpha=half, seed=seed)
    high_end = quality_noninferiority(lower, upper, margin=BOUND_MARGIN, alpha=half, seed=seed)
    superiority = quality_noninferiority(upper, lower, margin=0.0, alpha=0.05, seed=seed)
    return {"n": low_end.n, "mean_lower": float(np.mean(lower)), "mean_upper": float(np.mean(upper)),
            "diff": low_end.estimate, "ci_low": low_end.ci_low, "ci_high": -high_end.ci_low,
            "p_gt_0": superiority.p_value, "method": low_end.method}


def paired_table(frame: pd.DataFrame, answers: dict[tuple[str, str], str], steps: list[tuple[str, str]],
                 *, by: str = "task") -> pd.DataFrame:
    """One row per (step, group) and per step overall: the paired quality difference of the two arms on the
    prompts both answered, and the share of prompts they answered byte-identically."""
    quality = frame.pivot_table(index="prompt_id", columns="arm", values="quality", aggfunc="first")
    groups = frame.groupby("prompt_id")[by].first()
    rows = []
    for lower_arm, upper_arm in steps:
        both = quality[[lower_arm, upper_arm]].dropna()
        for label, ids in [("all", both.index)] + [(g, both.index[groups[both.index] == g])
                                                   for g in sorted(groups[both.index].unique())]:
            part = both.loc[ids]
            same = np.mean([answers.get((lower_arm, pid)) == answers.get((upper_arm, pid)) for pid in ids])
            rows.append({"step": f"{lower_arm} -> {upper_arm}", by: label,
                         **paired_difference(part[lower_arm].to_numpy(float), part[upper_arm].to_numpy(float)),
                         "identical_answers": float(same)})
    return pd.DataFrame(rows)


def ladder_steps(arms: list[str]) -> list[tuple[str, str]]:
    """Each step up the ladder, then lowest -> highest when there are more than two rungs."""
    steps = list(itertools.pairwise(arms))
    return steps + ([(arms[0], arms[-1])] if len(arms) > 2 else [])


def scripted_ladder(items):
    """Tiers that answer from the suite's checks: tier t is right on a fixed share of the items."""
    from tsglab.backends.base import Completion
    from tsglab.backends.scripted import ScriptedBackend
    from tsglab.config import TierSpec
    from tsglab.policy import TierLadder

    def reply_for(tier: str, share: float, tokens: int):
        def reply(request) -> Completion:
            text = "\n".join(m.content for m in request.messages)
            item = next((it for it in items if it.prompt in text), None)
            right = item is not None and zlib.crc32(item.id.encode()) % 3 < round(3 * share)
            answer = gold_answer(item) if right else "I am not sure."
            eval_ms = QUICK_MS_PER_TOKEN * tokens
            return Completion(text=answer, prompt_tokens=len(text.split()), completion_tokens=tokens,
                              prompt_eval_ms=1.0, eval_ms=eval_ms, total_ms=1.0 + eval_ms, ttft_ms=1.0,
                              model=f"scripted-{tier}")

        return reply

    specs = {t: TierSpec(name=t, backend="scripted", model=f"scripted-{t}", max_tokens=64) for t in QUICK_TIERS}
    backends = {t: ScriptedBackend(reply_for(t, share, tokens), name=f"scripted-{t}")
                for t, (share, tokens) in QUICK_TIERS.items()}
    return TierLadder(specs, backends)


def quick_run(runs_dir: Path) -> Path:
    """experiments/tiers.yaml on ``QUICK_ITEMS`` items with scripted tiers; returns the run directory."""
    from tsglab.config import load_spec
    from tsglab.load.runner import run_experiment
    from tsglab.load.schedule import select_prompts
    from tsglab.suite import load_suite

    spec = load_spec(REPO / "experiments" / "tiers.yaml", {"prompts.limit": QUICK_ITEMS})
    items = select_prompts(load_suite(), spec.prompts)
    result = run_experiment(spec, runs_dir=runs_dir, run_id="tiers-quick", ladder=scripted_ladder(items),
                            progress=False)
    return Path(result.run_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="*", metavar="run_dir",
                        help="runs of experiments/tiers.yaml (several are pooled by prompt id)")
    parser.add_argument("--quick", action="store_true",
                        help=f"profile a scripted run of {QUICK_ITEMS} items made in a temporary directory (CI)")
    parser.add_argument("--arms", help="compare two arms, lower first (e.g. baseline,tsg) instead of the ladder")
    args = parser.parse_args(argv)
    if bool(args.run_dirs) == args.quick:
        parser.error("give run directories, or --quick (not both)")
    arms = args.arms.split(",") if args.arms else None
    if arms is not None and len(arms) != 2:
        parser.error(f"--arms takes two arm names separated by a comma; got {args.arms!r}")
    with tempfile.TemporaryDirectory(prefix="tsglab-tier-profile-") as tmp:
        run_dirs = [quick_run(Path(tmp))] if args.quick else [Path(d) for d in args.run_dirs]
        if args.quick:
            tiers = "; ".join(f"{t} right on ~{share:.0%} of the items, {tokens} tokens"
                              for t, (share, tokens) in QUICK_TIERS.items())
            print(f"quick: {QUICK_ITEMS} items, scripted tiers ({tiers}, {QUICK_MS_PER_TOKEN:g} ms/token)")
        frame, answers = load_runs(run_dirs)
    missing = sorted(set(arms or ()) - set(frame["arm"]))
    if missing:
        parser.error(f"arm(s) {missing} not in the run; its arms are {sorted(set(frame['arm']))}")
    if arms is None:
        overall, per_task = tier_profile(frame)
        print(to_markdown(overall, title="Tier ladder: overall"))
        print(to_markdown(per_task, title="Tier ladder: per task"))
    steps = [(arms[0], arms[1])] if arms else ladder_steps(ladder_arms(frame))
    title = (f"Paired quality difference (d = upper - lower per prompt; {CI_LEVEL:.0%} interval and p of H0 "
             "mean d <= 0 by tsglab.stats.quality_noninferiority)")
    print(to_markdown(paired_table(frame, answers, steps), title=title))
    if arms is None:
        print(detection_summary())
    return 0


def detection_summary() -> str:
    """Task detection on the bundled suite from the prompt text alone: a json item's schema forces its task
    in a run, so a prompt whose text is not recognised would go unnoticed (benchmarks/bench_detection.py)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _detection_corpus import evaluate, suite_items

    evaluation = evaluate(suite_items())
    parts = [f"{s.label} {s.true_positives}/{s.n_true} (precision {s.precision:.3f})" for s in evaluation.tasks]
    misses = "".join(f"\n  missed: {item.id} {item.task} -> {predicted}" for item, predicted in evaluation.task_errors)
    return (f"Task detection on the suite, text only (schema ignored): accuracy {evaluation.task_accuracy:.3f}; "
            + "; ".join(parts) + misses)


if __name__ == "__main__":
    raise SystemExit(main())
