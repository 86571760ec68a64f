"""Cost and quality gradient of a tier ladder, from a run of experiments/tiers.yaml.

    tsglab run experiments/tiers.yaml --quiet --no-report
    python benchmarks/tier_profile.py runs/tiers-<timestamp>

Each arm sends every suite item once to one tier (no checks, repairs or upgrades); the tables give
mean quality and mean eval ms (prompt + generation) per tier, overall and per task.

``python benchmarks/tier_profile.py --quick`` (CI) runs experiments/tiers.yaml on 21 suite items with
scripted tiers instead of models (light answers about a third of the items right, std two thirds, enh all;
8, 24 and 60 completion tokens at 2 ms each) into a temporary directory, and prints the same tables.
"""

from __future__ import annotations

import argparse
import tempfile
import zlib
from pathlib import Path

import pandas as pd

from tsglab.events import read_events
from tsglab.report.frame import events_frame
from tsglab.report.render import to_markdown
from tsglab.report.tables import arm_metrics, task_table
from tsglab.suite import gold_answer

REPO = Path(__file__).resolve().parents[1]
QUICK_ITEMS = 21
# scripted tiers: share of the items answered right, and completion tokens per answer
QUICK_TIERS = {"light": (1 / 3, 8), "std": (2 / 3, 24), "enh": (1.0, 60)}
QUICK_MS_PER_TOKEN = 2.0


def tier_profile(run_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = events_frame(read_events(run_dir))
    frames = dict(iter(frame.groupby("arm", sort=False)))  # iter(): dict() would call GroupBy.keys, a str
    overall = pd.DataFrame([{"tier": arm, **{k: arm_metrics(part)[k] for k in
                                            ("n", "mean_quality", "avg_eval_ms", "json_fail_rate", "p50_e2e_warm_ms")}}
                            for arm, part in frames.items()])
    per_task = task_table(frames).pivot(index="task", columns="arm", values=["mean_quality", "avg_eval_ms"])
    per_task.columns = [f"{metric}:{arm}" for metric, arm in per_task.columns]
    return overall, per_task.reset_index()


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
    parser.add_argument("run_dir", nargs="?", help="a run of experiments/tiers.yaml")
    parser.add_argument("--quick", action="store_true",
                        help=f"profile a scripted run of {QUICK_ITEMS} items made in a temporary directory (CI)")
    args = parser.parse_args(argv)
    if (args.run_dir is None) == (not args.quick):
        parser.error("give a run directory, or --quick (not both)")
    with tempfile.TemporaryDirectory(prefix="tsglab-tier-profile-") as tmp:
        run_dir = quick_run(Path(tmp)) if args.quick else Path(args.run_dir)
        if args.quick:
            tiers = "; ".join(f"{t} right on ~{share:.0%} of the items, {tokens} tokens"
                              for t, (share, tokens) in QUICK_TIERS.items())
            print(f"quick: {QUICK_ITEMS} items, scripted tiers ({tiers}, {QUICK_MS_PER_TOKEN:g} ms/token)")
        overall, per_task = tier_profile(run_dir)
    print(to_markdown(overall, title="Tier ladder: overall"))
    print(to_markdown(per_task, title="Tier ladder: per task"))
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
