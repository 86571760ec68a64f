"""The gaming panel: no non-answer earns credit on any bundled item, every gold answer scores 1, and code
answers are judged by running them (wrong code fails, right code in any usual form passes)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

import tsglab.suite.checks as checks_module
from tsglab.errors import SuiteError
from tsglab.suite import (
    NON_ANSWER_KINDS,
    SuiteItem,
    gold_answer,
    load_suite,
    non_answers,
    panel_scores,
    panel_table,
    score_answer,
    score_answers,
)


@pytest.fixture(scope="module")
def bundled() -> list[SuiteItem]:
    return load_suite()


@pytest.fixture(scope="module")
def panel(bundled: list[SuiteItem]) -> list[Any]:
    return panel_scores(bundled)


def find(bundled: list[SuiteItem], pattern: str) -> SuiteItem:
    matches = [item for item in bundled if re.search(pattern, item.prompt)]
    assert len(matches) == 1, (pattern, [item.id for item in matches])
    return matches[0]


def test_every_non_answer_scores_zero_on_every_bundled_item(panel: list[Any]) -> None:
    credited = [(entry.item_id, entry.kind, entry.score, entry.detail) for entry in panel
                if entry.kind != "gold" and entry.score > 0.0]
    for row in panel_table(panel):
        print(f"{row['kind']:>15} {row['task']:>10} n={row['n']:3d} mean={row['mean']:.2f} full={row['n_full']}")
    assert credited == []


def test_every_gold_answer_scores_one(panel: list[Any]) -> None:
    failing = [(entry.item_id, entry.detail) for entry in panel if entry.kind == "gold" and entry.score != 1.0]
    assert failing == []


def test_the_panel_covers_every_kind_and_task(bundled: list[SuiteItem], panel: list[Any]) -> None:
    kinds = {entry.kind for entry in panel}
    assert kinds == {"gold", *NON_ANSWER_KINDS}
    per_item = {item.id: non_answers(item) for item in bundled}
    assert all({"echo", "empty", "refusal", "random"} <= set(panel) for panel in per_item.values())
    assert all("all_labels" in per_item[item.id] for item in bundled if item.task == "classify")
    factual_with_candidates = [item for item in bundled
                               if item.task == "factual" and "all_candidates" in per_item[item.id]]
    assert len(factual_with_candidates) >= 15
    # the random answer is of the right type and never the gold answer itself
    for item in bundled:
        assert per_item[item.id]["random"] != gold_answer(item), item.id


def test_the_guards_are_what_makes_non_answers_score_zero(bundled: list[SuiteItem],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the echo guard echoes of multipart prompts score; without distractors label lists do."""
    monkeypatch.setattr(checks_module, "ECHO_SHARE", 2.0)
    multipart = [item for item in bundled if item.task == "multipart"]
    assert sum(score_answer(item, item.prompt).score > 0 for item in multipart) >= 10
    monkeypatch.undo()
    classify = next(item for item in bundled if item.task == "classify")
    bare = SuiteItem(classify.id, classify.prompt, classify.task, classify.lang, None,
                     {key: value for key, value in classify.check.items() if key != "distractors"}, classify.strata)
    assert score_answer(bare, non_answers(classify)["all_labels"]).score == 1.0
    assert score_answer(classify, non_answers(classify)["all_labels"]).score == 0.0


def test_gold_answers_of_the_whole_suite_score_in_a_few_seconds(bundled: list[SuiteItem]) -> None:
    checks_module_cache = __import__("tsglab.suite._code", fromlist=["_run"])._run
    checks_module_cache.cache_clear()
    started = time.monotonic()
    results = score_answers([(item, gold_answer(item)) for item in bundled])
    elapsed = time.monotonic() - started
    assert all(result.score == 1.0 for result in results)
    assert elapsed < 15.0, f"scoring the suite's gold answers took {elapsed:.1f} s"
    again = score_answers([(item, gold_answer(item)) for item in bundled])
    assert again == results, "scoring is deterministic"


# ------------------------------------------------------------------------------- code is run, not matched

WRONG_CODE = [
    (r"function (is_even|even|check_even)\(n\)", "def {name}(n):\n    return n % 2 == 1"),
    (r"function (double|twice|times_two)\(x\)", "def {name}(x):\n    return x + 2"),
    (r"function (add|add_numbers|sum_two)\(a, b\) that", "def {name}(a, b):\n    return a - b"),
    (r"function (factorial|fact|factorial_of)\(n\)", "def {name}(n):\n    return n * 2"),
    (r"most expensive", None),
    (r"where country is", None),
    (r"sets status to 'shipped'", "```sql\nUPDATE orders SET status = 'shipped';\n```"),
    (r"5-digit postal code", r"`\d+`"),
]


@pytest.mark.parametrize(("pattern", "template"), WRONG_CODE, ids=[p for p, _ in WRONG_CODE])
def test_wrong_code_scores_zero(bundled: list[SuiteItem], pattern: str, template: str | None) -> None:
    item = find(bundled, pattern)
    if template is None:
        gold = item.check["gold"]
        # LIMIT 70 for LIMIT 7 (any limit times ten), or the query without its filter
        template = re.sub(r"LIMIT (\d+)", r"LIMIT \g<1>0", gold) if "LIMIT" in gold else gold.split(" WHERE")[0]
        assert template != gold
    match = re.search(pattern, item.prompt)
    answer = template.replace("{name}", match.group(1) if match and match.groups() else "")
    result = score_answer(item, answer)
    assert result.score == 0.0, result.detail


RIGHT_CODE = [
    (r"hex colour", r"`^#[\da-fA-F]{6}$`"),
    (r"hex colour", '```python\nimport re\nHEX = re.compile(r"^#[0-9a-fA-F]{6}$")\n```'),
    (r"format YYYY-MM-DD", r"/^\d{4}-\d{2}-\d{2}$/"),
    (r"function (double|twice|times_two)\(x\)", "lambda x: 2 * x"),
    (r"function (double|twice|times_two)\(x\)", "Here you go:\n```python\n{name} = lambda x: x * 2\n```\nThat's it."),
    (r"function (add|add_numbers|sum_two)\(a, b\) that",
     ("Sure! Here is the function:\n\n```py\ndef {name}(a, b):\n    \"\"\"Add.\"\"\"\n    return b + a\n```\n"
      "Example: `{name}(2, 3)` gives 5.")),
    (r"function (add|add_numbers|sum_two)\(a, b\) that",
     "def {name}(a, b):\n    return sum([a, b])\n\nThis adds a and b."),
    (r"counts the orders per customer_id",
     "```sql\nSELECT COUNT(*) AS n, customer_id\nFROM orders\nGROUP BY customer_id\nORDER BY n DESC;\n```"),
    (r"pytest test function",
     "```python\nfrom mymodule import {add}\n\ndef test_add():\n    assert {add}(2, 3) == 5\n```"),
    (r"list comprehension", "squares = [x * x for x in nums]"),
    (r"FizzBuzz", "for i in range(1, 31):\n    print('Fizz' * (i % 3 == 0) + 'Buzz' * (i % 5 == 0) or i)"),
]


@pytest.mark.parametrize(("pattern", "template"), RIGHT_CODE)
def test_right_code_in_usual_forms_scores_one(bundled: list[SuiteItem], pattern: str, template: str) -> None:
    item = find(bundled, pattern)
    match = re.search(pattern, item.prompt)
    add = re.search(r"that checks that (\w+)\(", item.prompt)
    answer = template.replace("{name}", match.group(1) if match and match.groups() else "")
    answer = answer.replace("{add}", add.group(1) if add else "")
    result = score_answer(item, answer)
    assert result.score == 1.0, result.detail


def test_a_pytest_answer_that_tests_nothing_scores_zero(bundled: list[SuiteItem]) -> None:
    item = find(bundled, r"pytest test function")
    assert score_answer(item, "def test_nothing():\n    assert True").score == 0.0


def test_an_answer_cannot_pass_by_printing_or_exiting(bundled: list[SuiteItem]) -> None:
    item = find(bundled, r"function (add|add_numbers|sum_two)\(a, b\) that")
    for answer in ("print('PASS')", "import sys\nsys.exit(0)", "import os\nos._exit(0)"):
        assert score_answer(item, answer).score == 0.0, answer


# ------------------------------------------------------------------------------------ format of new kinds


def write(tmp_path: Path, check: dict[str, Any]) -> Path:
    path = tmp_path / "suite.jsonl"
    row = {"id": "c1", "task": "code", "prompt": "Write code.", "check": check}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("check", "message"), [
    ({"kind": "python_tests", "tests": "assert f(1) == 2"}, r"field 'check\.example' is required"),
    ({"kind": "python_tests", "entry": "f-1", "tests": "x", "example": "x"}, r"'check\.entry' must be a Python name"),
    ({"kind": "python_tests", "tests": "x", "example": "x", "files": {"../a": "x"}},
     r"'check\.files' has the file name '\.\./a'"),
    ({"kind": "regex_tests", "positives": ["1"], "negatives": ["a"], "example": "[a-z]"},
     r"'check\.example' '\[a-z\]' gets '1' wrong"),
    ({"kind": "sql_result", "setup": "CREATE TABLE t (a)", "gold": " "}, r"field 'check\.gold' is empty"),
    ({"kind": "sql_result", "setup": "x", "gold": "SELECT 1", "ordered": "yes"},
     r"'check\.ordered' must be true or false"),
    ({"kind": "regex_any", "patterns": ["b"], "example": "b", "distractors": ["b"]},
     r"'check\.example' 'b' names the distractor 'b'"),
    ({"kind": "numeric", "value": 3, "distractors": [3]}, r"'check\.distractors' holds the gold value itself"),
    ({"kind": "numeric", "value": 3, "distractors": "4"}, r"'check\.distractors' must be a non-empty list of numbers"),
])
def test_new_check_parameters_are_validated(tmp_path: Path, check: dict[str, Any], message: str) -> None:
    with pytest.raises(SuiteError, match=message):
        load_suite(write(tmp_path, check))


def test_hedges_and_distractors(tmp_path: Path) -> None:
    item = load_suite(write(tmp_path, {"kind": "regex_any", "patterns": [r"\bZofia\b"], "example": "Zofia",
                                       "distractors": ["Jamal"]}))[0]
    assert score_answer(item, "Zofia").score == 1.0
    assert score_answer(item, "Jamal or Zofia").score == 0.0
    assert "distractor 'Jamal'" in score_answer(item, "Zofia, not Jamal").detail
    numeric = load_suite(write(tmp_path, {"kind": "numeric", "value": 10, "distractors": [57]}))[0]
    assert score_answer(numeric, "10 boxes").score == 1.0
    assert score_answer(numeric, "57 or 10").score == 0.0
