"""The labelled enforcement suite: size, coverage, ids, labels checked against independent oracles (never
against a guardian), the generator reproducing the committed file, and the loader's errors."""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest
from test_guardians import naive_luhn, naive_mod11_2

from tsglab.errors import SuiteError
from tsglab.suite import ENFORCEMENT_GUARDIANS, load_enforcement_suite

REPO = Path(__file__).resolve().parents[1]
CARD_PREFIXES = {  # issuer prefix -> lengths, written out by hand from the networks' published ranges
    ("4",): (13, 16, 19), tuple(str(p) for p in range(51, 56)) + tuple(str(p) for p in range(2221, 2721)): (16,),
    ("34", "37"): (15,), ("6011", "644", "645", "646", "647", "648", "649", "65"): (16, 17, 18, 19),
    tuple(str(p) for p in range(3528, 3590)): (16, 17, 18, 19), ("62",): (16, 17, 18, 19),
}
DIGIT_RUNS = re.compile(r"\d(?:[ -]?\d)+")
ID_TOKENS = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dX](?![0-9A-Za-z])")


@pytest.fixture(scope="module")
def cases():
    return load_enforcement_suite()


def is_card(number: str) -> bool:
    known = any(number.startswith(p) and len(number) in lengths for prefixes, lengths in CARD_PREFIXES.items()
                for p in prefixes)
    return known and naive_luhn(number)


def test_size_languages_labels_and_unique_ids(cases):
    assert len(cases) >= 1000
    groups = collections.Counter((c.guardian, c.lang, c.violation) for c in cases)
    for guardian in ENFORCEMENT_GUARDIANS:
        for lang in ("en", "zh"):
            for violation in (True, False):
                assert groups[(guardian, lang, violation)] >= 10, (guardian, lang, violation)
    assert len({c.id for c in cases}) == len(cases)
    assert len({(c.guardian, c.text) for c in cases}) == len(cases)
    assert any(c.hard_negative for c in cases if c.guardian in ("pii", "secrets", "code", "sql", "refusal"))


def test_ids_are_content_hashes(cases):
    for case in cases:
        digest = hashlib.sha256(json.dumps([case.guardian, case.text]).encode()).hexdigest()[:12]
        assert case.id == f"{case.guardian}-{digest}"


def test_card_labels_agree_with_luhn_and_issuer_prefixes(cases):
    checked = 0
    for case in cases:
        if case.guardian != "pii" or case.category != "card_number":
            continue
        numbers = [re.sub(r"[ -]", "", run) for run in DIGIT_RUNS.findall(case.text)]
        assert any(is_card(n) for n in numbers) == case.violation, case.text
        checked += 1
    assert checked >= 100


def test_resident_id_labels_agree_with_mod11_2_and_birth_dates(cases):
    checked = 0
    for case in cases:
        if case.guardian != "pii" or case.category != "cn_resident_id":
            continue
        assert any(naive_mod11_2(token) for token in ID_TOKENS.findall(case.text)) == case.violation, case.text
        checked += 1
    assert checked >= 100


def test_no_benign_pii_case_hides_a_valid_card_or_id(cases):
    for case in cases:
        if case.guardian == "pii" and not case.violation:
            numbers = [re.sub(r"[ -]", "", run) for run in DIGIT_RUNS.findall(case.text)]
            assert not any(is_card(n) or naive_mod11_2(n) for n in numbers), case.text


def test_length_and_format_labels_follow_their_contracts(cases):
    for case in cases:
        if case.guardian == "length":
            assert (not 1 <= len(case.text.strip()) <= 8000) == case.violation
        if case.guardian == "format" and case.category == "json_contract" and not case.violation:
            assert "{" in case.text


def test_generator_reproduces_the_committed_file():
    spec = importlib.util.spec_from_file_location("gen", REPO / "tools" / "generate_enforcement_suite.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (REPO / "tsglab" / "suite" / "enforcement.jsonl").read_text(encoding="utf-8")
    assert module.render_suite() == committed


GOOD = {"id": "x1", "guardian": "pii", "lang": "en", "label": "benign", "hard_negative": False,
        "category": "", "text": "hello", "note": ""}


@pytest.mark.parametrize(("change", "message"), [
    ({"label": "bad"}, r":1: field 'label' must be one of violation, benign"),
    ({"guardian": "nope"}, r"field 'guardian' must be one of pii"),
    ({"lang": "fr"}, r"field 'lang' must be one of en, zh"),
    ({"hard_negative": "yes"}, r"field 'hard_negative' must be true or false"),
    ({"text": 3}, r"field 'text' must be a string"),
    ({"extra": 1}, r"unknown field 'extra'"),
    ({"label": "violation", "hard_negative": True}, r"only benign cases are hard negatives"),
])
def test_loader_names_file_line_and_field(tmp_path, change, message):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({**GOOD, **change}) + "\n", encoding="utf-8")
    with pytest.raises(SuiteError, match=message):
        load_enforcement_suite(path)


def test_loader_errors_for_missing_field_bad_json_duplicates_and_empty(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({k: v for k, v in GOOD.items() if k != "note"}), encoding="utf-8")
    with pytest.raises(SuiteError, match=r"s\.jsonl:1: field 'note' is missing"):
        load_enforcement_suite(path)
    path.write_text("# comment\n{not json\n", encoding="utf-8")
    with pytest.raises(SuiteError, match=r"s\.jsonl:2: the line is not valid JSON"):
        load_enforcement_suite(path)
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps(GOOD) + "\n", encoding="utf-8")
    with pytest.raises(SuiteError, match=r":3: field 'id' value 'x1' is already used on line 1"):
        load_enforcement_suite(path)
    path.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(SuiteError, match="holds no cases"):
        load_enforcement_suite(path)
    with pytest.raises(SuiteError, match="does not exist"):
        load_enforcement_suite(tmp_path / "missing.jsonl")
