"""Cost and quality gradient of a tier ladder, from a run of experiments/tiers.yaml.

    tsglab run experiments/tiers.yaml --quiet --no-report
    python benchmarks/tier_profile.py runs/tiers-<timestamp>

Each arm sends every suite item once to one tier (no checks, repairs or upgrades); the tables give
mean quality and mean eval ms (prompt + generation) per tier, overall and per task.
"""

from __future__ import annotations

import sys

import pandas as pd

from tsglab.events import read_events
from tsglab.report.frame import events_frame
from tsglab.report.render import to_markdown
from tsglab.report.tables import arm_metrics, task_table


def tier_profile(run_dir: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = events_frame(read_events(run_dir))
    frames = {arm: part for arm, part in frame.groupby("arm", sort=False)}
    overall = pd.DataFrame([{"tier": arm, **{k: arm_metrics(part)[k] for k in
                                            ("n", "mean_quality", "avg_eval_ms", "json_fail_rate", "p50_e2e_warm_ms")}}
                            for arm, part in frames.items()])
    per_task = task_table(frames).pivot(index="task", columns="arm", values=["mean_quality", "avg_eval_ms"])
    per_task.columns = [f"{metric}:{arm}" for metric, arm in per_task.columns]
    return overall, per_task.reset_index()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    overall, per_task = tier_profile(argv[0])
    print(to_markdown(overall, title="Tier ladder: overall"))
    print(to_markdown(per_task, title="Tier ladder: per task"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
