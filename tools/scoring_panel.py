"""Print the gaming panel's table for a suite: mean score and the count of items scoring 1.0, per
non-answer kind and task (``gold`` is each item's own reference answer and must be 1.0 everywhere).

Run ``python tools/scoring_panel.py [suite.jsonl]`` (default: the bundled suite). Exit status 1 when any
non-answer scores above 0 or any gold answer below 1, so the table doubles as a check.
"""

from __future__ import annotations

import argparse
import sys
import time

from tsglab.suite import NON_ANSWER_KINDS, TASKS, load_suite, panel_scores, panel_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/scoring_panel.py", description=__doc__)
    parser.add_argument("suite", nargs="?", default=None, help="suite file (default: the bundled suite)")
    args = parser.parse_args(argv)
    items = load_suite(args.suite)
    started = time.monotonic()
    scores = panel_scores(items)
    elapsed = time.monotonic() - started
    cells = {(row["kind"], row["task"]): row for row in panel_table(scores)}
    print("| answer | " + " | ".join(TASKS) + " |")
    print("|---|" + "---|" * len(TASKS))
    for kind in ("gold", *NON_ANSWER_KINDS):
        row_cells = []
        for task in TASKS:
            row = cells.get((kind, task))
            row_cells.append("—" if row is None else f"{row['mean']:.2f} ({row['n_full']}/{row['n']})")
        print(f"| {kind} | " + " | ".join(row_cells) + " |")
    print(f"\n{len(items)} items, {len(scores)} answers scored in {elapsed:.1f} s")
    bad = [s for s in scores if (s.kind == "gold" and s.score < 1.0) or (s.kind != "gold" and s.score > 0.0)]
    for entry in bad:
        print(f"  {entry.item_id} {entry.kind}: {entry.score:.2f} ({entry.detail})", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
