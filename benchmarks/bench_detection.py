"""Task detection and heavy keywords measured on labelled prompts (issue 11, item 2).

Prints per-class precision and recall (json / code / general, and heavy) on
``tests/data/task_detection.jsonl`` (the prompts the detector was tuned on), separately on
``tests/data/task_detection_holdout.jsonl`` (written after tuning; its first scoring is in its header), by
language, and
detection on the bundled suite from the prompt text alone (a json item's schema is ignored, so a miss
cannot hide behind it). Targets: json recall >= 0.98 and precision >= 0.95, code recall >= 0.95.
Every misclassified prompt is listed. Exit status 1 when a target is missed on the corpus or the suite.

Run: ``python benchmarks/bench_detection.py`` (about a second); ``--quick`` does the same work (CI runs it:
the corpus is small) and lists at most five errors per table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd
from _detection_corpus import CORPUS, HOLDOUT, LANGS, Evaluation, evaluate, load_corpus, suite_items, table_rows


def show(title: str, evaluation: Evaluation, max_errors: int | None, *, heavy: bool = True) -> None:
    frame = pd.DataFrame(table_rows(evaluation))
    if not heavy:
        frame = frame[frame["class"] != "heavy"]
    print(f"\n{title}: {evaluation.n} prompts, task accuracy {evaluation.task_accuracy:.3f}")
    print(frame.to_string(index=False))
    errors = [f"  task {item.task} -> {predicted}: {item.id} {item.prompt[:90]!r}"
              for item, predicted in evaluation.task_errors]
    if heavy:
        errors += [f"  heavy {item.heavy} -> {bool(found)} {found}: {item.id} {item.prompt[:90]!r}"
                   for item, found in evaluation.heavy_errors]
    for line in errors[:max_errors]:
        print(line)
    if max_errors is not None and len(errors) > max_errors:
        print(f"  ... and {len(errors) - max_errors} more")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the same tables, at most five errors listed each (CI)")
    args = parser.parse_args(argv)
    max_errors = 5 if args.quick else None
    started = time.perf_counter()
    corpus = load_corpus(CORPUS)
    holdout = load_corpus(HOLDOUT)
    tuned = evaluate(corpus)
    held = evaluate(holdout)
    suite = evaluate(suite_items())
    show(f"Corpus ({CORPUS.name}, tuned on)", tuned, max_errors)
    for lang in LANGS:
        show(f"  {lang} only", evaluate([item for item in corpus if item.lang == lang]), 0)
    show(f"Hold-out ({HOLDOUT.name}, written after tuning)", held, max_errors)
    show("Bundled suite, text only (schema ignored)", suite, max_errors, heavy=False)
    missed = [f"corpus: {line}" for line in tuned.missed_targets()]
    missed += [f"suite: {line}" for line in suite.missed_targets()]
    missed_holdout = held.missed_targets()
    print(f"\n{len(corpus) + len(holdout) + suite.n} prompts scored in {time.perf_counter() - started:.2f} s")
    if missed_holdout:
        print("hold-out misses a target (reported, not enforced): " + "; ".join(missed_holdout))
    if missed:
        print("TARGETS MISSED: " + "; ".join(missed))
        return 1
    print("targets met on the corpus and the suite (json recall >= 0.98, precision >= 0.95; code recall >= 0.95)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
