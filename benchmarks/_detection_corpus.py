"""The labelled task-detection corpus and how detection is scored on it (bench_detection.py, tier_profile.py
and tests/test_detection_corpus.py all use this one module, so their figures cannot drift apart).

Corpus files are JSONL (``tests/data/task_detection.jsonl``: the prompts the detector was tuned on;
``tests/data/task_detection_holdout.jsonl``: prompts written after tuning, to check that the figures are not
just fitted). Each line: ``id``, ``lang`` (en | zh), ``task`` (json | code | general), ``heavy`` (bool),
``prompt``; '#' lines are comments (the labelling rules are at the top of the main file).

The detector is scored on the text alone (no schema): per class precision and recall, and the same for
"heavy" (the planner's heavy keywords). The bundled suite is scored the same way: a json item must be
recognised as json from its prompt text, a code item as code, every other item as general.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tsglab.policy.detect import detect_task
from tsglab.policy.planner import heavy_keywords

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "task_detection.jsonl"
HOLDOUT = REPO / "tests" / "data" / "task_detection_holdout.jsonl"

TASKS = ("json", "code", "general")
LANGS = ("en", "zh")
# The targets (issue 11, item 2); a class without a target is reported only.
TARGETS: dict[str, dict[str, float]] = {"json": {"recall": 0.98, "precision": 0.95}, "code": {"recall": 0.95}}
_FIELDS = {"id", "lang", "task", "heavy", "prompt"}


class CorpusError(ValueError):
    """A corpus file that cannot be read: the message names the file, the line and the fix."""


@dataclass(frozen=True)
class LabelledPrompt:
    id: str
    lang: str
    task: str
    heavy: bool
    prompt: str
    where: str  # file:line


@dataclass(frozen=True)
class ClassScore:
    """Precision and recall of one label (``precision`` is NaN when nothing was predicted as it)."""

    label: str
    n_true: int
    n_predicted: int
    true_positives: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.n_predicted if self.n_predicted else float("nan")

    @property
    def recall(self) -> float:
        return self.true_positives / self.n_true if self.n_true else float("nan")


@dataclass(frozen=True)
class Evaluation:
    """Detection scored on a list of labelled prompts."""

    n: int
    tasks: tuple[ClassScore, ...]
    heavy: ClassScore
    task_errors: tuple[tuple[LabelledPrompt, str], ...]  # (item, predicted task)
    heavy_errors: tuple[tuple[LabelledPrompt, tuple[str, ...]], ...]  # (item, keywords found)

    @property
    def task_accuracy(self) -> float:
        return 1.0 - len(self.task_errors) / self.n if self.n else float("nan")

    def score(self, label: str) -> ClassScore:
        return next(score for score in self.tasks if score.label == label)

    def missed_targets(self) -> list[str]:
        """One line per target the evaluation misses (empty when every target holds)."""
        missed = []
        for label, targets in TARGETS.items():
            score = self.score(label)
            for metric, target in targets.items():
                value = getattr(score, metric)
                if not value >= target:  # NaN misses too
                    missed.append(f"{label} {metric} {value:.3f} < {target}")
        return missed


def load_corpus(path: Path = CORPUS) -> list[LabelledPrompt]:
    """Read and check a corpus file; :class:`CorpusError` names the file, line and fix."""
    items: list[LabelledPrompt] = []
    seen: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{lineno}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{where}: not a JSON object ({exc.msg}); write one object per line") from exc
        if not isinstance(raw, dict) or set(raw) != _FIELDS:
            keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
            raise CorpusError(f"{where}: expected exactly the keys {sorted(_FIELDS)}; got {keys}")
        if raw["task"] not in TASKS or raw["lang"] not in LANGS or not isinstance(raw["heavy"], bool):
            raise CorpusError(
                f"{where}: task must be one of {TASKS}, lang one of {LANGS}, heavy true or false; got "
                f"task={raw['task']!r}, lang={raw['lang']!r}, heavy={raw['heavy']!r}"
            )
        if not isinstance(raw["prompt"], str) or not raw["prompt"].strip() or not isinstance(raw["id"], str):
            raise CorpusError(f"{where}: id and prompt must be non-empty strings")
        for key, value in (("id", raw["id"]), ("prompt", raw["prompt"])):
            if (key, value) in seen:
                raise CorpusError(f"{where}: {key} {value!r} is already used at {seen[(key, value)]}; keep one")
            seen[(key, value)] = where  # type: ignore[index]
        items.append(LabelledPrompt(raw["id"], raw["lang"], raw["task"], raw["heavy"], raw["prompt"], where))
    if not items:
        raise CorpusError(f"{path}: no items; add one JSON object per line")
    return items


def class_scores(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> tuple[ClassScore, ...]:
    """Per-label precision and recall of ``predicted`` against ``truth`` (same length, same order)."""
    if len(truth) != len(predicted):
        raise ValueError(f"truth and predicted differ in length: {len(truth)} != {len(predicted)}")
    pairs = list(zip(truth, predicted, strict=True))
    return tuple(
        ClassScore(
            label=label,
            n_true=sum(t == label for t, _ in pairs),
            n_predicted=sum(p == label for _, p in pairs),
            true_positives=sum(t == label == p for t, p in pairs),
        )
        for label in labels
    )


def evaluate(
    items: Sequence[LabelledPrompt],
    detect: Callable[[str], str] = detect_task,
    heavy: Callable[[str], tuple[str, ...]] = heavy_keywords,
) -> Evaluation:
    """Score ``detect`` (text only, no schema) and ``heavy`` on ``items``."""
    predicted = [detect(item.prompt) for item in items]
    found = [heavy(item.prompt) for item in items]
    heavy_truth = ["heavy" if item.heavy else "-" for item in items]
    heavy_predicted = ["heavy" if keywords else "-" for keywords in found]
    return Evaluation(
        n=len(items),
        tasks=class_scores([item.task for item in items], predicted, TASKS),
        heavy=class_scores(heavy_truth, heavy_predicted, ("heavy",))[0],
        task_errors=tuple((item, p) for item, p in zip(items, predicted, strict=True) if p != item.task),
        heavy_errors=tuple((item, k) for item, k in zip(items, found, strict=True) if bool(k) != item.heavy),
    )


def suite_items() -> list[LabelledPrompt]:
    """The bundled suite as labelled prompts: json and code items keep their task, the others are general.

    ``heavy`` is not labelled for the suite (set False; use only the task figures).
    """
    from tsglab.suite import load_suite

    return [
        LabelledPrompt(item.id, item.lang, item.task if item.task in ("json", "code") else "general", False,
                       item.prompt, f"suite:{item.id}")
        for item in load_suite()
    ]


def table_rows(evaluation: Evaluation) -> list[dict[str, object]]:
    """Rows for a printed table: one per task label, then heavy."""
    rows: list[dict[str, object]] = []
    for score in (*evaluation.tasks, evaluation.heavy):
        targets = TARGETS.get(score.label, {})
        rows.append({
            "class": score.label,
            "n": score.n_true,
            "predicted": score.n_predicted,
            "precision": round(score.precision, 3),
            "recall": round(score.recall, 3),
            "target": ", ".join(f"{metric} >= {value}" for metric, value in targets.items()),
        })
    return rows
