"""The gaming panel: answers that say nothing, which the checks must not credit, and each item's gold answer.

A quality score is only worth testing if it cannot be earned without answering. For every suite item
:func:`non_answers` builds a panel of non-answers:

``echo``
    the prompt sent back verbatim;
``all_labels``
    every label of a classification item listed (``"positive, negative, neutral"``); classify items only;
``all_candidates``
    the gold answer and every distractor named as a hedge (``"Jamal or Zofia"``); items whose check has
    ``distractors``, and numeric items (every number of the prompt);
``empty``
    the empty string;
``refusal``
    ``"I cannot help with that."``;
``random``
    a random answer of the right type that is not the gold answer (a wrong label, a wrong number, a
    JSON object of the right shape with wrong values, a function of the right name returning a
    constant, ...), drawn from a generator seeded by the item id so the panel is deterministic.

:func:`gold_answer` is the item's own reference answer (the check's ``example`` where it has one, else
an answer built from the check). :func:`panel_scores` scores both; the tests require every non-answer
to score 0 and every gold answer 1 on every bundled item (see ``docs/suite-format.md``).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tsglab.errors import InvalidArgumentType
from tsglab.suite._format import SuiteItem

NON_ANSWER_KINDS: tuple[str, ...] = ("echo", "all_labels", "all_candidates", "empty", "refusal", "random")
REFUSAL = "I cannot help with that."
_NEUTRAL_WORDS = (
    "table river window seven quietly orange basket across yesterday under music paper garden slowly "
    "pencil between cloud travel simple yellow morning carry number island"
).split()
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])\d+(?:\.\d+)?")


@dataclass(frozen=True)
class PanelScore:
    """Score of one panel answer on one item: ``kind`` is ``"gold"`` or one of :data:`NON_ANSWER_KINDS`."""

    item_id: str
    task: str
    kind: str
    answer: str
    score: float
    detail: str


def gold_answer(item: SuiteItem) -> str:
    """The item's reference answer: ``check.example`` when present, else built from the check."""
    if not isinstance(item, SuiteItem):
        raise InvalidArgumentType(f"gold_answer() needs a SuiteItem from load_suite(); got {type(item).__name__}.")
    check = item.check
    if "example" in check:
        return str(check["example"])
    kind = check["kind"]
    if kind == "exact":
        return str(check["answer"])
    if kind == "numeric":
        return f"{check['value']:g}" if isinstance(check["value"], float) else str(check["value"])
    if kind == "must_include":
        return "; ".join(check["terms"])
    if kind == "json_fields":
        return json.dumps(_unflatten(check["fields"]), ensure_ascii=False)
    raise InvalidArgumentType(f"check kind {kind!r} of item {item.id} needs an 'example' (its gold answer).")


def non_answers(item: SuiteItem) -> dict[str, str]:
    """The panel's non-answers for ``item``, keyed by kind (kinds that do not apply are left out)."""
    if not isinstance(item, SuiteItem):
        raise InvalidArgumentType(f"non_answers() needs a SuiteItem from load_suite(); got {type(item).__name__}.")
    panel = {"echo": item.prompt}
    labels = item_labels(item)
    if labels:
        panel["all_labels"] = ", ".join(labels)
    candidates = _candidates(item)
    if len(candidates) > 1:
        panel["all_candidates"] = " or ".join(candidates)
    panel["empty"] = ""
    panel["refusal"] = REFUSAL
    panel["random"] = _random_answer(item, random.Random(_seed(item.id)))
    return panel


def item_labels(item: SuiteItem) -> list[str]:
    """The label set of a classification item (its gold label first), else an empty list."""
    if item.task != "classify":
        return []
    return [gold_answer(item), *item.check.get("distractors", [])]


def panel_scores(items: Iterable[SuiteItem]) -> list[PanelScore]:
    """Score the gold answer and every non-answer of every item (code answers run in the sandbox)."""
    from tsglab.suite.checks import score_answers

    jobs: list[tuple[SuiteItem, str, str]] = []
    for item in items:
        jobs.append((item, "gold", gold_answer(item)))
        jobs.extend((item, kind, text) for kind, text in non_answers(item).items())
    results = score_answers([(item, text) for item, _, text in jobs])
    return [
        PanelScore(item.id, item.task, kind, text, result.score, result.detail)
        for (item, kind, text), result in zip(jobs, results, strict=True)
    ]


def panel_table(scores: Iterable[PanelScore]) -> list[dict[str, Any]]:
    """Rows ``{kind, task, n, mean, n_full}`` (mean score and the count scoring 1.0), per kind and task."""
    groups: dict[tuple[str, str], list[float]] = {}
    for entry in scores:
        groups.setdefault((entry.kind, entry.task), []).append(entry.score)
    order = {kind: index for index, kind in enumerate(("gold", *NON_ANSWER_KINDS))}
    rows = []
    for (kind, task), values in sorted(groups.items(), key=lambda pair: (order.get(pair[0][0], 99), pair[0][1])):
        rows.append({"kind": kind, "task": task, "n": len(values), "mean": sum(values) / len(values),
                     "n_full": sum(value >= 1.0 for value in values)})
    return rows


# ------------------------------------------------------------------------------------------------ helpers


def _seed(item_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"panel:{item_id}".encode()).digest()[:8], "big")


def _unflatten(fields: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in fields.items():
        parts = key.split(".")
        current = nested
        for part in parts[:-1]:
            current = current.setdefault(part, {})
        current[parts[-1]] = value
    return nested


def _candidates(item: SuiteItem) -> list[str]:
    check = item.check
    if check.get("distractors"):
        return [gold_answer(item), *(str(value) for value in check["distractors"])]
    if check["kind"] == "numeric":
        numbers = list(dict.fromkeys(match.group(0) for match in _NUMBER.finditer(item.prompt)))
        return numbers
    return []


def _shape_like(text: str, rng: random.Random) -> str:
    """A string shaped like ``text`` (letters for letters, digits for digits) but different from it."""
    for _ in range(20):
        drawn = "".join(
            rng.choice(string.digits) if ch.isdigit()
            else rng.choice(string.ascii_uppercase if ch.isupper() else string.ascii_lowercase) if ch.isascii()
            and ch.isalpha() else ch
            for ch in text
        )
        if drawn.casefold() != text.casefold():
            return drawn
    return text + "x"


def _wrong_value(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice([-1, 1]) * rng.randint(1, 97)
    if isinstance(value, float):
        return round(value + rng.choice([-1, 1]) * rng.uniform(1.0, 50.0), 2)
    if isinstance(value, str):
        return " ".join(rng.sample(_NEUTRAL_WORDS, 2))
    if isinstance(value, list):
        return [_wrong_value(entry, rng) for entry in value] or ["x"]
    return "x"


def _random_answer(item: SuiteItem, rng: random.Random) -> str:
    check = item.check
    kind = check["kind"]
    gold = gold_answer(item)
    if check.get("distractors") and kind != "numeric":
        return str(rng.choice(check["distractors"]))
    if kind == "numeric":
        value = check["value"]
        offset = rng.choice([-1, 1]) * rng.randint(1, 97)
        return f"{value + offset:g}" if isinstance(value, float) else str(value + offset)
    if kind == "json_fields":
        return json.dumps(_unflatten({key: _wrong_value(value, rng) for key, value in check["fields"].items()}))
    if kind == "exact" or (kind == "regex_any" and item.task != "code"):
        return _shape_like(gold, rng)
    if kind == "must_include" and item.task != "code":
        return " ".join(rng.choice(_NEUTRAL_WORDS) for _ in range(14)).capitalize() + "."
    return _random_code(item, rng)


def _random_code(item: SuiteItem, rng: random.Random) -> str:
    """Code of the right language and name that computes nothing asked for."""
    check = item.check
    constant = rng.randint(2, 999)
    if check["kind"] == "sql_result":
        return f"```sql\nSELECT {constant} AS value;\n```"
    if check["kind"] == "regex_tests":
        return f"`{rng.choice(['[a-z]+', '.{3}', 'x+y?'])}`"
    entry = check.get("entry") or _defined_name(item.prompt) or "solution"
    if entry[:1].isupper():
        return (f"```python\nclass {entry}:\n    def __init__(self, *args, **kwargs):\n"
                f"        self.value = {constant}\n```")
    return f"```python\ndef {entry}(*args, **kwargs):\n    return {constant}\n```"


def _defined_name(prompt: str) -> str:
    match = re.search(r"\b(?:function|class|函数)\s+([A-Za-z_]\w*)", prompt)
    return match.group(1) if match else ""
