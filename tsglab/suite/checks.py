"""Quality checks: score a model's answer to a suite item against the item's gold check.

Each check kind returns a score in [0, 1]; ``must_include`` and ``json_fields`` give partial credit.
Two rules hold for every kind, so an answer that says nothing earns nothing (the gaming panel,
:mod:`tsglab.suite.panel`, checks them on every bundled item):

- an answer that repeats at least half of a prompt (``ECHO_SHARE`` of its word 4-grams, for prompts
  of at least ``ECHO_MIN_SHINGLES`` 4-grams) scores 0;
- an answer that names a ``distractor`` of the check (another label, another person, another number
  of the prompt) scores 0, so hedges such as "Jamal or Zofia" or a list of every label earn nothing.

Code kinds (``python_tests``, ``regex_tests``, ``sql_result``) run the answer in the sandbox
(:mod:`tsglab.suite.sandbox`); :func:`score_answers` scores many answers and runs those in parallel.
``json_ok`` is the JSON output contract (:func:`tsglab.jsoncontract.check_json_contract`) for items
that carry a ``json_schema``, so it means the same thing here as in the gateway's runtime check.
"""

from __future__ import annotations

import functools
import math
import os
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tsglab.errors import InvalidArgumentType
from tsglab.jsoncontract import check_json_contract
from tsglab.suite._code import score_run_check
from tsglab.suite._format import RUN_CHECK_KINDS, SuiteItem, mentions

# Numbers in free text (after NFKC): optional sign, thousands commas, decimals. A sign only counts when
# it does not follow a letter or digit, so "17-5" yields 17 and 5, not 17 and -5. The guards are ASCII
# on purpose: CJK characters are word characters, and "答案是42" must still yield 42.
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![A-Za-z0-9_])")
_NUMERIC_STRING = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-"})
_FIELD_NUMBER_TOL = 1e-6
_DETAIL_CHARS = 60
# The echo guard: an answer holding ECHO_SHARE of the prompt's word 4-grams repeats the prompt; it is
# only applied to prompts with at least ECHO_MIN_SHINGLES 4-grams, so restating a short question is fine.
ECHO_SHARE = 0.5
ECHO_MIN_SHINGLES = 8
_SHINGLE = 4
_TOKEN = re.compile(r"[a-z0-9]+|[\u3400-\u9fff]")
_PARALLEL_RUNS = max(1, min(8, os.cpu_count() or 1))


@dataclass(frozen=True)
class QualityScore:
    """Score of one answer: ``score`` in [0, 1]; ``json_ok`` is None when the item has no schema."""

    score: float
    json_ok: bool | None
    detail: str


def score_answer(item: SuiteItem, text: str) -> QualityScore:
    """Score the model output ``text`` against ``item.check``.

    ``json_ok`` is ``check_json_contract(text, item.json_schema).ok`` when the item has a schema, else None.
    """
    if not isinstance(item, SuiteItem):
        raise InvalidArgumentType(f"score_answer() needs a SuiteItem from load_suite(); got {type(item).__name__}.")
    if not isinstance(text, str):
        raise InvalidArgumentType(
            f"score_answer() needs the model output as str; got {type(text).__name__}. "
            "Pass an empty string for a failed completion."
        )
    json_ok = None if item.json_schema is None else check_json_contract(text, item.json_schema).ok
    share = echo_share(item.prompt, text)
    if share >= ECHO_SHARE:
        detail = f"answer repeats {share:.0%} of the prompt's 4-grams (an echo scores 0)"
        return QualityScore(score=0.0, json_ok=json_ok, detail=f"{item.check['kind']}: {detail}")
    scorer = _SCORERS[item.check["kind"]]
    score, detail = scorer(item, text)
    return QualityScore(score=float(score), json_ok=json_ok, detail=f"{item.check['kind']}: {detail}")


def score_answers(pairs: Sequence[tuple[SuiteItem, str]]) -> list[QualityScore]:
    """``score_answer`` over many ``(item, text)`` pairs, in order; code answers run in parallel sandboxes."""
    pairs = list(pairs)
    for item, text in pairs:  # validate everything before running anything
        if not isinstance(item, SuiteItem) or not isinstance(text, str):
            score_answer(item, text)
    run = [index for index, (item, _) in enumerate(pairs) if item.check["kind"] in RUN_CHECK_KINDS]
    results: list[QualityScore | None] = [None] * len(pairs)
    if len(run) > 1:
        with ThreadPoolExecutor(max_workers=_PARALLEL_RUNS) as pool:
            for index, result in zip(run, pool.map(lambda i: score_answer(*pairs[i]), run), strict=True):
                results[index] = result
    for index, (item, text) in enumerate(pairs):
        if results[index] is None:
            results[index] = score_answer(item, text)
    return [result for result in results if result is not None]


def echo_share(prompt: str, text: str) -> float:
    """Share of the prompt's word 4-grams that occur in ``text`` (0 for prompts with fewer than
    ``ECHO_MIN_SHINGLES`` of them). Words are ASCII letter/digit runs and single CJK characters."""
    prompt_shingles = _shingles(prompt)
    if len(prompt_shingles) < ECHO_MIN_SHINGLES or not text:
        return 0.0
    return len(prompt_shingles & _shingles(text)) / len(prompt_shingles)


def _shingles(text: str) -> set[tuple[str, ...]]:
    tokens = _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())
    return {tuple(tokens[i:i + _SHINGLE]) for i in range(len(tokens) - _SHINGLE + 1)}


def _named_distractor(item: SuiteItem, text: str) -> str:
    """The first distractor of the check that ``text`` names, else an empty string."""
    distractors = item.check.get("distractors", ())
    if item.check["kind"] == "numeric":
        numbers = extract_numbers(text)
        for value in distractors:
            if any(math.isclose(number, value, rel_tol=1e-9, abs_tol=1e-9) for number in numbers):
                return f"{value:g}"
        return ""
    return next((value for value in distractors if mentions(text, value)), "")


# ------------------------------------------------------------------------------------------ normalising


def normalize_answer(text: str) -> str:
    """NFKC, casefold, strip, then drop trailing punctuation (``"B12."`` -> ``"b12"``)."""
    normalized = unicodedata.normalize("NFKC", text).casefold().strip()
    end = len(normalized)
    while end > 0 and (unicodedata.category(normalized[end - 1]).startswith("P") or normalized[end - 1].isspace()):
        end -= 1
    return normalized[:end]


def extract_numbers(text: str) -> list[float]:
    """Numbers in ``text`` in order of appearance (full-width digits and thousands commas understood)."""
    normalized = unicodedata.normalize("NFKC", text).translate(_MINUS_SIGNS)
    return [float(match.group(0).replace(",", "")) for match in _NUMBER.finditer(normalized)]


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _clip(text: str) -> str:
    shown = text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."
    return repr(shown)


# ------------------------------------------------------------------------------------------------ kinds


def _score_exact(item: SuiteItem, text: str) -> tuple[float, str]:
    expected = normalize_answer(item.check["answer"])
    whole = normalize_answer(text)
    if whole == expected:
        return 1.0, f"matched {_clip(expected)}"
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    if normalize_answer(first_line) == expected:
        return 1.0, f"first line matched {_clip(expected)}"
    return 0.0, f"expected {_clip(expected)}; got {_clip(whole)}"


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _score_regex_any(item: SuiteItem, text: str) -> tuple[float, str]:
    folded = unicodedata.normalize("NFKC", text)
    for pattern in item.check["patterns"]:
        if _compiled(pattern).search(folded):
            named = _named_distractor(item, text)
            if named:
                return 0.0, f"pattern {pattern!r} matched, but the answer also names the distractor {named!r}"
            return 1.0, f"pattern {pattern!r} matched"
    return 0.0, f"none of {len(item.check['patterns'])} patterns matched {_clip(text.strip())}"


def _score_must_include(item: SuiteItem, text: str) -> tuple[float, str]:
    folded = _fold(text)
    terms = item.check["terms"]
    missing = [term for term in terms if _fold(term).strip() not in folded]
    found = len(terms) - len(missing)
    detail = f"{found}/{len(terms)} terms found"
    if missing:
        detail += f"; missing {missing}"
    named = _named_distractor(item, text)
    if named:
        return 0.0, f"{detail}, but the answer also names the distractor {named!r}"
    return found / len(terms), detail


def _score_json_fields(item: SuiteItem, text: str) -> tuple[float, str]:
    contract = check_json_contract(text, item.json_schema)
    if not contract.ok:
        return 0.0, f"answer fails the JSON contract ({contract.error})"
    fields: Mapping[str, Any] = item.check["fields"]
    mismatches = []
    for key, expected in fields.items():
        found, actual = _lookup(contract.value, key)
        if not found:
            mismatches.append(f"{key!r} missing")
        elif not _values_match(expected, actual):
            mismatches.append(f"{key!r} expected {expected!r}, got {actual!r}")
    matched = len(fields) - len(mismatches)
    detail = f"{matched}/{len(fields)} fields match"
    if mismatches:
        detail += "; " + "; ".join(mismatches)
    return matched / len(fields), detail


def _score_numeric(item: SuiteItem, text: str) -> tuple[float, str]:
    target = item.check["value"]
    numbers = extract_numbers(text)
    if not numbers:
        return 0.0, f"no number in the answer; expected {target!r}"
    # Small models often restate the question before answering, so the first or the last number counts.
    for position, number in (("first", numbers[0]), ("last", numbers[-1])):
        if math.isclose(number, target, rel_tol=item.check["rel_tol"], abs_tol=item.check["abs_tol"]):
            named = _named_distractor(item, text)
            if named:
                return 0.0, f"{position} number {number:g} matches, but the answer also names the distractor {named}"
            return 1.0, f"{position} number {number:g} matches {target!r}"
    return 0.0, f"expected {target!r}; first number {numbers[0]:g}, last number {numbers[-1]:g}"


_SCORERS: dict[str, Callable[[SuiteItem, str], tuple[float, str]]] = {
    "exact": _score_exact,
    "regex_any": _score_regex_any,
    "must_include": _score_must_include,
    "json_fields": _score_json_fields,
    "numeric": _score_numeric,
    "python_tests": score_run_check,
    "regex_tests": score_run_check,
    "sql_result": score_run_check,
}


# ---------------------------------------------------------------------------------------- json fields


def _lookup(value: Any, key: str) -> tuple[bool, Any]:
    """Find ``key`` in a parsed JSON value: a literal key first, else a dotted path into nested objects."""
    if isinstance(value, dict) and key in value:
        return True, value[key]
    current = value
    for part in key.split("."):
        if not isinstance(current, dict) or part not in current:
            return False, None
        current = current[part]
    return True, current


def _normalize_field(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        candidate = unicodedata.normalize("NFKC", value).strip()
        if _NUMERIC_STRING.fullmatch(candidate):
            return float(candidate.replace(",", ""))
    return None


def _values_match(expected: Any, actual: Any) -> bool:
    if expected is None:
        return actual is None
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual == expected
    if isinstance(expected, (int, float)):
        number = _as_number(actual)
        return number is not None and abs(number - expected) <= _FIELD_NUMBER_TOL
    if isinstance(expected, str):
        if isinstance(actual, str):
            return _normalize_field(actual) == _normalize_field(expected)
        expected_number, actual_number = _as_number(expected), _as_number(actual)
        return (
            expected_number is not None
            and actual_number is not None
            and abs(expected_number - actual_number) <= _FIELD_NUMBER_TOL
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_values_match(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return False
