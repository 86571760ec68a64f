"""The request suite: file format, loader errors, quality checks, and the bundled suite."""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tsglab.suite as suite_module
from tsglab.errors import SuiteError
from tsglab.suite import (
    TASKS,
    QualityScore,
    SuiteItem,
    bundled_suite_path,
    ctx_bucket,
    extract_numbers,
    gold_answer,
    load_suite,
    normalize_answer,
    score_answer,
)

# The generator is a repository tool, not part of the package: load it by path.
GENERATOR_PATH = Path(__file__).resolve().parent.parent / "tools" / "generate_suite.py"


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate_suite", GENERATOR_PATH)
    assert spec is not None, f"cannot load {GENERATOR_PATH}"
    assert spec.loader is not None, f"cannot load {GENERATOR_PATH}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


generate = _load_generator()

# --------------------------------------------------------------------------------------------- helpers


def write_suite(tmp_path: Path, *rows: dict[str, Any] | str, name: str = "suite.jsonl") -> Path:
    """Write rows (dicts become JSON lines, strings are written as they are) to a suite file."""
    path = tmp_path / name
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def row(**overrides: Any) -> dict[str, Any]:
    """A valid item; keyword arguments replace fields (a value of ``...`` removes the field)."""
    base: dict[str, Any] = {
        "id": "item-1",
        "prompt": "The meeting is in room B12. Which room?",
        "task": "factual",
        "check": {"kind": "exact", "answer": "B12"},
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not ...}


def make_item(tmp_path: Path, check: dict[str, Any], **fields: Any) -> SuiteItem:
    (item,) = load_suite(write_suite(tmp_path, row(check=check, **fields)))
    return item


PERSON_SCHEMA = {
    "type": "object",
    "required": ["name", "age"],
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
}


def unflatten(fields: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in fields.items():
        parts = key.split(".")
        current = nested
        for part in parts[:-1]:
            current = current.setdefault(part, {})
        current[parts[-1]] = value
    return nested


def perfect_answer(item: SuiteItem) -> str:
    """An answer built from the gold check alone (the check's example where it has one)."""
    return gold_answer(item)


def wrong_answer(item: SuiteItem) -> str:
    check = item.check
    kind = check["kind"]
    if kind == "json_fields":
        fields = dict(check["fields"])
        key, value = next(iter(fields.items()))
        if isinstance(value, bool):
            fields[key] = not value
        elif isinstance(value, (int, float)):
            fields[key] = value + 1
        elif isinstance(value, list):
            fields[key] = value[:-1]
        else:
            fields[key] = f"{value} junior"
        return json.dumps(unflatten(fields), ensure_ascii=False)
    if kind == "numeric":
        return f"{check['value'] + 1000}"
    return "xyzzy"


@pytest.fixture(scope="module")
def bundled() -> list[SuiteItem]:
    return load_suite()


# ------------------------------------------------------------------------------------- bundled suite


def test_bundled_suite_has_every_task_and_unique_ids(bundled: list[SuiteItem]) -> None:
    assert len(bundled) >= 220
    ids = [item.id for item in bundled]
    assert len(set(ids)) == len(ids)
    assert {item.task for item in bundled} == set(TASKS)
    assert len({item.prompt for item in bundled}) == len(bundled), "prompts repeat"


def test_bundled_suite_mix(bundled: list[SuiteItem]) -> None:
    per_task = Counter(item.task for item in bundled)
    assert per_task["json"] >= 50
    assert per_task["classify"] >= 35
    assert per_task["arith"] + per_task["factual"] >= 35
    assert per_task["code"] >= 25
    assert per_task["open"] >= 25
    assert per_task["multipart"] >= 20
    zh_share = sum(item.lang == "zh" for item in bundled) / len(bundled)
    assert 0.12 <= zh_share <= 0.20
    zh_tasks = {item.task for item in bundled if item.lang == "zh"}
    assert zh_tasks == set(TASKS), "Chinese items should cover every task kind"
    assert {item.strata["ctx_bucket"] for item in bundled} == {"short", "medium", "long"}
    assert {item.check["kind"] for item in bundled} == set(suite_module.CHECK_KINDS)


def test_bundled_json_items_have_small_schemas_and_varied_instructions(bundled: list[SuiteItem]) -> None:
    json_items = [item for item in bundled if item.task == "json"]
    for item in json_items:
        assert item.json_schema is not None, item.id
        if "record" not in item.strata:  # the long records (issue 11) need more fields than light's budget holds
            assert 2 <= len(item.json_schema["required"]) <= 4, item.id
        assert item.check["kind"] == "json_fields", item.id
    variants = {item.notes for item in json_items}
    assert len(variants) == 34
    prompts = "\n".join(item.prompt for item in json_items)
    for spelling in [
        "Return JSON",
        "JSON only, no prose",
        "只输出JSON",
        "只输出 json",
        "ＪＳＯＮ",
        "｛",
        "以 JSON 返回",
    ]:
        assert spelling in prompts, spelling
    assert any("json" not in item.prompt.casefold() for item in json_items), "want a shape-only prompt"


def test_bundled_multipart_prompts_are_long(bundled: list[SuiteItem]) -> None:
    multipart = [item for item in bundled if item.task == "multipart"]
    # Chinese packs more per character: its documents are padded only with sentences of their own kind
    assert all(len(item.prompt) >= (generate.ZH_MULTIPART_MIN_CHARS if item.lang == "zh" else 600)
               for item in multipart)
    assert {item.strata["domain"] for item in multipart} >= {"legal", "finance", "medical", "compliance"}
    for item in multipart:
        for term in item.check["terms"]:
            assert term.casefold() in item.prompt.casefold(), (item.id, term)


def test_bundled_strata_defaults(bundled: list[SuiteItem]) -> None:
    for item in bundled:
        assert item.strata["task"] == item.task
        assert item.strata["lang"] == item.lang
        assert item.strata["ctx_bucket"] == ctx_bucket(item.prompt)
        assert item.strata["tool_use"] is False


def test_every_gold_answer_scores_one(bundled: list[SuiteItem]) -> None:
    failures = []
    for item in bundled:
        result = score_answer(item, perfect_answer(item))
        if result.score != 1.0 or (item.json_schema is not None and result.json_ok is not True):
            failures.append((item.id, result))
    assert failures == []


def test_every_wrong_answer_scores_below_one(bundled: list[SuiteItem]) -> None:
    failures = [item.id for item in bundled if score_answer(item, wrong_answer(item)).score >= 1.0]
    assert failures == []


def test_classify_patterns_reject_the_other_labels(bundled: list[SuiteItem]) -> None:
    labels: dict[tuple[str, str], set[str]] = {}
    for item in bundled:
        if item.task == "classify":
            labels.setdefault((item.lang, item.strata["subtask"]), set()).add(item.check["example"])
    assert all(len(group) >= 3 for group in labels.values())
    for item in bundled:
        if item.task != "classify":
            continue
        for other in labels[(item.lang, item.strata["subtask"])] - {item.check["example"]}:
            assert score_answer(item, other).score == 0.0, (item.id, other)


def test_load_suite_none_is_the_bundled_file(bundled: list[SuiteItem]) -> None:
    path = bundled_suite_path()
    assert path.is_file()
    assert path.name == "bundled.jsonl"
    assert load_suite(path) == bundled


# ------------------------------------------------------------------------------------------ generator


def test_generator_reproduces_the_committed_file() -> None:
    assert generate.render_suite() == bundled_suite_path().read_text(encoding="utf-8"), (
        "bundled.jsonl is stale; run python tools/generate_suite.py"
    )


def test_generator_is_not_in_the_package() -> None:
    assert GENERATOR_PATH.is_file()
    assert importlib.util.find_spec("tsglab.suite._generate") is None
    assert "python tools/generate_suite.py" in bundled_suite_path().read_text(encoding="utf-8").splitlines()[1]


def test_bundled_ids_are_task_and_content_hash() -> None:
    # Recomputed from the raw lines (check parameters as written, before the loader fills defaults).
    lines = bundled_suite_path().read_text(encoding="utf-8").splitlines()
    raw_items = [json.loads(line) for line in lines if line and not line.startswith("#")]
    assert len(raw_items) >= 220
    for raw in raw_items:
        assert raw["id"] == generate.content_id(raw), raw["id"]
        task, digest = raw["id"].rsplit("-", 1)
        assert task == raw["task"], raw["id"]
        assert len(digest) == 10, raw["id"]
        assert set(digest) <= set("0123456789abcdef"), raw["id"]
    ids = [raw["id"] for raw in raw_items]
    assert len(set(ids)) == len(ids)


def _by_group(items: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    grouped: dict[str, list[tuple[str, str]]] = {}
    for item in items:
        grouped.setdefault(item["task"], []).append((item["id"], item["prompt"]))
    return grouped


def test_perturbing_one_group_leaves_every_other_group_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _by_group(generate.build_items())
    assert set(before) == set(generate.GROUPS) == set(TASKS)
    build_arith = generate.GROUPS["arith"]

    def perturbed_arith(rng: random.Random) -> list[dict[str, Any]]:
        # Extra draws: with one generator shared by all groups, every later group would shift. (Many of
        # them: a shared stream offset by a word or two can fall back in step after a rejection sample.)
        for _ in range(1000):
            rng.random()
        return build_arith(rng)[1:]

    monkeypatch.setitem(generate.GROUPS, "arith", perturbed_arith)
    after = _by_group(generate.build_items())
    assert after["arith"] != before["arith"], "the perturbation should change the arith group"
    for group in set(before) - {"arith"}:
        assert after[group] == before[group], group


def test_a_group_with_a_new_seed_changes_only_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _by_group(generate.build_items())
    group_rng = generate.group_rng

    def reseed_classify(seed: int, group: str) -> random.Random:
        return group_rng(seed + 1 if group == "classify" else seed, group)

    monkeypatch.setattr(generate, "group_rng", reseed_classify)
    after = _by_group(generate.build_items())
    assert after["classify"] != before["classify"]
    assert {group: ids for group, ids in after.items() if group != "classify"} == {
        group: ids for group, ids in before.items() if group != "classify"
    }


def test_content_id_changes_with_the_content_and_only_with_it() -> None:
    item = {
        "task": "json",
        "lang": "en",
        "prompt": "Return JSON with keys name and age. Ada is 36.",
        "json_schema": PERSON_SCHEMA,
        "check": {"kind": "json_fields", "fields": {"name": "Ada", "age": 36}},
    }
    original = generate.content_id(item)
    assert original.startswith("json-")
    assert len(original) == len("json-") + 10
    changed = [
        {**item, "prompt": item["prompt"] + " "},
        {**item, "task": "classify"},
        {**item, "check": {"kind": "json_fields", "fields": {"name": "Ada", "age": 37}}},
        {**item, "json_schema": {**PERSON_SCHEMA, "required": ["name"]}},
        {key: value for key, value in item.items() if key != "json_schema"},
    ]
    ids = [generate.content_id(variant) for variant in changed]
    assert original not in ids
    assert len(set(ids)) == len(ids)
    # What describes an item rather than defines it leaves the id alone, as does key order.
    described = {**item, "lang": "zh", "notes": "a note", "strata": {"domain": "hr"}}
    reordered = dict(reversed(list(item.items())))
    assert generate.content_id(described) == generate.content_id(reordered) == original


def test_generator_refuses_duplicate_items(monkeypatch: pytest.MonkeyPatch) -> None:
    build_open = generate.GROUPS["open"]
    n_open = len(build_open(generate.group_rng(generate.SEED, "open")))

    def open_with_a_repeat(rng: random.Random) -> list[dict[str, Any]]:
        items = build_open(rng)
        return [*items, dict(items[0])]

    monkeypatch.setitem(generate.GROUPS, "open", open_with_a_repeat)
    with pytest.raises(
        RuntimeError,
        match=rf"group 'open' item {n_open + 1} has id 'open-[0-9a-f]{{10}}', already the id of group 'open' "
        r"item 1: the two items have the same prompt, task, check, json_schema",
    ):
        generate.build_items()


def test_generator_redraws_a_repeated_prompt() -> None:
    draws = iter(["a", "a", "b"])
    seen: set[str] = set()
    assert generate._unique(lambda: next(draws), seen) == "a"
    assert generate._unique(lambda: next(draws), seen) == "b"
    assert seen == {"a", "b"}
    with pytest.raises(RuntimeError, match=r"no new prompt after 3 draws \(last: 'a'\); extend the word lists"):
        generate._unique(lambda: "a", seen, tries=3)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_generator_builds_a_valid_suite_for_other_seeds(seed: int, tmp_path: Path) -> None:
    path = tmp_path / "suite.jsonl"
    path.write_text(generate.render_suite(seed=seed), encoding="utf-8")
    assert len(load_suite(path)) == len(generate.build_items())


def test_generator_main_writes_and_checks(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    assert generate.main(["--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == generate.render_suite()
    assert generate.main(["--output", str(target), "--check"]) == 0
    target.write_text("# stale\n", encoding="utf-8")
    assert generate.main(["--output", str(target), "--check"]) == 1


def test_generator_seed_changes_the_suite() -> None:
    assert generate.render_suite(seed=1) != generate.render_suite(seed=2)


# ------------------------------------------------------------------------------------ loader: success


def test_loader_skips_comments_and_blank_lines_and_fills_defaults(tmp_path: Path) -> None:
    path = write_suite(tmp_path, "# header comment", "", row(), "   ", "  # indented comment")
    (item,) = load_suite(path)
    assert item.lang == "en"
    assert item.json_schema is None
    assert item.notes == ""
    assert item.strata == {"task": "factual", "lang": "en", "ctx_bucket": "short", "tool_use": False}


def test_loader_user_strata_win_and_extend(tmp_path: Path) -> None:
    strata = {"ctx_bucket": "long", "tool_use": True, "domain": "legal", "n_turns": 3}
    (item,) = load_suite(write_suite(tmp_path, row(strata=strata, lang="zh")))
    assert item.strata == {
        "task": "factual",
        "lang": "zh",
        "ctx_bucket": "long",
        "tool_use": True,
        "domain": "legal",
        "n_turns": 3,
    }


@pytest.mark.parametrize(
    ("length", "bucket"), [(1, "short"), (299, "short"), (300, "medium"), (999, "medium"), (1000, "long")]
)
def test_ctx_bucket_thresholds(tmp_path: Path, length: int, bucket: str) -> None:
    (item,) = load_suite(write_suite(tmp_path, row(prompt="x" * length)))
    assert item.strata["ctx_bucket"] == bucket == ctx_bucket("y" * length)


def test_loader_fills_numeric_tolerance_defaults(tmp_path: Path) -> None:
    item = make_item(tmp_path, {"kind": "numeric", "value": 42})
    assert item.check == {"kind": "numeric", "value": 42, "abs_tol": 1e-6, "rel_tol": 0.0}


def test_loader_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_text("\ufeff" + json.dumps(row()) + "\n", encoding="utf-8")
    assert [item.id for item in load_suite(path)] == ["item-1"]


def test_suite_item_is_frozen(tmp_path: Path) -> None:
    item = make_item(tmp_path, {"kind": "exact", "answer": "B12"})
    with pytest.raises(AttributeError):
        item.prompt = "changed"  # type: ignore[misc]


# ------------------------------------------------------------------------------------- loader: errors

LINE_ERRORS: list[tuple[str, list[dict[str, Any] | str], str]] = [
    ("invalid json", [row(), '{"id": "x",}'], r"suite\.jsonl:2: invalid JSON: .*\(column \d+\)"),
    (
        "not an object",
        ['["a", "b"]'],
        r"suite\.jsonl:1: expected a JSON object \{\.\.\.\} on the line; got array",
    ),
    ("missing prompt", [row(prompt=...)], r"suite\.jsonl:1: missing required field 'prompt'"),
    ("missing check", [row(check=...)], r"missing required field 'check'; every item needs"),
    ("prompt type", [row(prompt=3)], r"suite\.jsonl:1: field 'prompt' must be a string; got integer 3"),
    ("empty prompt", [row(prompt="   ")], r"field 'prompt' is empty"),
    ("id type", [row(id=7)], r"field 'id' must be a string; got integer 7"),
    ("id pattern", [row(id="has space")], r"field 'id' must match \[A-Za-z0-9_\.:-\]\+; got 'has space'"),
    ("notes type", [row(notes=["a"])], r"field 'notes' must be a string; got array"),
    (
        "unknown field",
        [row(promt="typo")],
        r"suite\.jsonl:1: unknown field 'promt'; allowed fields are \['id', 'prompt', .*'notes'\]",
    ),
    ("bad task", [row(task="chat")], r"field 'task' must be one of \['json', .*\]; got 'chat'"),
    ("bad lang", [row(lang="fr")], r"field 'lang' must be one of \['en', 'zh'\]; got 'fr'"),
    (
        "duplicate id",
        [row(), "# comment", row()],
        r"suite\.jsonl:3: field 'id' value 'item-1' is already used on line 1.*\(lines 1 and 3\)",
    ),
    ("check not object", [row(check="exact")], r"field 'check' must be an object .*; got string"),
    ("check kind missing", [row(check={"answer": "B12"})], r"field 'check\.kind' is missing"),
    (
        "bad check kind",
        [row(check={"kind": "regexp", "patterns": ["B12"]})],
        (r"suite\.jsonl:1: field 'check\.kind' must be one of \['exact', 'regex_any', 'must_include', "
         r"'json_fields', 'numeric', 'python_tests', 'regex_tests', 'sql_result'\]; got 'regexp'\. Fix the value\. "
         r"See docs/suite-format\.md\."),
    ),
    (
        "unknown check param",
        [row(check={"kind": "regex_any", "pattern": ["B12"]})],
        (r"field 'check\.pattern' is not a parameter of check kind 'regex_any'; "
         r"allowed: \['patterns', 'example', 'distractors'\]"),
    ),
    (
        "missing check param",
        [row(check={"kind": "numeric"})],
        r"field 'check\.value' is required for check kind",
    ),
    (
        "exact answer type",
        [row(check={"kind": "exact", "answer": 12})],
        r"field 'check\.answer' must be a string",
    ),
    ("exact answer empty", [row(check={"kind": "exact", "answer": " "})], r"field 'check\.answer' is empty"),
    (
        "patterns not list",
        [row(check={"kind": "regex_any", "patterns": "B12"})],
        r"field 'check\.patterns' must be a non-empty list of strings; got string",
    ),
    (
        "patterns empty",
        [row(check={"kind": "regex_any", "patterns": []})],
        r"field 'check\.patterns' must be a non-empty list of strings; got array \[\]",
    ),
    (
        "regex does not compile",
        [row(check={"kind": "regex_any", "patterns": ["ok", "(unclosed"]})],
        r"field 'check\.patterns\[1\]' is not a valid regular expression .*'\(unclosed'",
    ),
    (
        "example does not match",
        [row(check={"kind": "regex_any", "patterns": ["B12"], "example": "C7"})],
        r"field 'check\.example' 'C7' matches none of check\.patterns",
    ),
    (
        "terms not strings",
        [row(check={"kind": "must_include", "terms": ["a", 1]})],
        r"field 'check\.terms' must be a non-empty list of strings",
    ),
    (
        "term empty",
        [row(check={"kind": "must_include", "terms": ["a", " "]})],
        r"field 'check\.terms\[1\]' is empty",
    ),
    (
        "fields empty",
        [row(check={"kind": "json_fields", "fields": {}})],
        r"field 'check\.fields' must be a non-empty object",
    ),
    (
        "fields bad key",
        [row(check={"kind": "json_fields", "fields": {"a..b": 1}})],
        r"field 'check\.fields' has an invalid key 'a\.\.b'",
    ),
    (
        "fields nested",
        [row(check={"kind": "json_fields", "fields": {"address": {"city": "Oslo"}}})],
        (r"field 'check\.fields\.address' must be a string, number, boolean, null or a list of those; "
         r"got object"),
    ),
    (
        "numeric value type",
        [row(check={"kind": "numeric", "value": "42"})],
        r"field 'check\.value' must be a finite number; got string \"42\"",
    ),
    (
        "numeric value bool",
        [row(check={"kind": "numeric", "value": True})],
        r"field 'check\.value' must be a finite number; got boolean",
    ),
    (
        "numeric negative tol",
        [row(check={"kind": "numeric", "value": 1, "abs_tol": -1})],
        r"field 'check\.abs_tol' must be >= 0; got -1",
    ),
    (
        "json without schema",
        [row(task="json", check={"kind": "json_fields", "fields": {"a": 1}})],
        r"field 'json_schema' is required when task is 'json'",
    ),
    (
        "schema not object",
        [row(json_schema=["object"])],
        r"field 'json_schema' must be an object .*; got array",
    ),
    (
        "schema invalid",
        [row(json_schema={"type": "objekt"})],
        r"field 'json_schema' is not a valid JSON Schema \(draft 2020-12\): .*\(at type\)\. Fix the schema",
    ),
    ("strata not object", [row(strata="legal")], r"field 'strata' must be an object"),
    (
        "strata value",
        [row(strata={"ratio": 0.5})],
        r"field 'strata\.ratio' must be a string, boolean or integer; got number 0\.5",
    ),
]


@pytest.mark.parametrize(("rows", "pattern"), [case[1:] for case in LINE_ERRORS], ids=[c[0] for c in LINE_ERRORS])
def test_malformed_lines_raise_suite_error(tmp_path: Path, rows: list[Any], pattern: str) -> None:
    path = write_suite(tmp_path, *rows)
    with pytest.raises(SuiteError, match=pattern) as caught:
        load_suite(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:"), "the message names the file and line"
    assert message.endswith("See docs/suite-format.md.")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(SuiteError, match=r"suite file not found: '.*nope\.jsonl'\. Check the path"):
        load_suite(missing)


def test_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"is a directory; pass the path of a \.jsonl file"):
        load_suite(tmp_path)


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n\n# another\n"])
def test_empty_file_is_rejected(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SuiteError, match=r"empty\.jsonl: the file holds no items"):
        load_suite(path)


def test_non_utf8_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(json.dumps(row(prompt="café")).encode("latin-1").replace(b"\\u00e9", b"\xe9"))
    with pytest.raises(SuiteError, match=r"latin\.jsonl: the file is not valid UTF-8 \(byte \d+\); save it as UTF-8"):
        load_suite(path)


def test_bundled_path_outside_a_directory_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    class ZipEntry:
        def joinpath(self, name: str) -> ZipEntry:
            return self

    monkeypatch.setattr(importlib.resources, "files", lambda package: ZipEntry())
    with pytest.raises(SuiteError, match=r"the bundled suite is not a plain file .*pass a suite path to load_suite"):
        load_suite()


def test_score_answer_rejects_non_text(tmp_path: Path) -> None:
    item = make_item(tmp_path, {"kind": "exact", "answer": "B12"})
    with pytest.raises(TypeError, match=r"needs the model output as str; got NoneType"):
        score_answer(item, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"needs a SuiteItem from load_suite\(\); got dict"):
        score_answer(row(), "B12")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- checks: exact


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("B12", 1.0),
        ("  b12.  ", 1.0),
        ("Ｂ１２！", 1.0),  # full-width, NFKC
        ("B12\nThe note says room B12.", 1.0),  # first line
        ("\n\nB12:\nbecause", 1.0),  # first non-blank line
        ("The room is B12.", 0.0),
        ("B13", 0.0),
        ("", 0.0),
    ],
)
def test_exact(tmp_path: Path, output: str, expected: float) -> None:
    item = make_item(tmp_path, {"kind": "exact", "answer": "B12"})
    result = score_answer(item, output)
    assert result.score == expected
    assert result.json_ok is None
    assert result.detail.startswith("exact: ")


def test_normalize_answer() -> None:
    assert normalize_answer("  Ｈｅｌｌｏ World?!。 ") == "hello world"
    assert normalize_answer("B12") == "b12"
    assert normalize_answer("...") == ""


# --------------------------------------------------------------------------------- checks: regex_any


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Negative", 1.0),
        ("The sentiment is negative.", 1.0),
        ("ＮＥＧＡＴＩＶＥ", 1.0),
        ("non-negative", 1.0),  # \b matches at the hyphen: a documented limit of word boundaries
        ("negatively", 0.0),
        ("positive", 0.0),
    ],
)
def test_regex_any(tmp_path: Path, output: str, expected: float) -> None:
    item = make_item(tmp_path, {"kind": "regex_any", "patterns": [r"\bnegative\b", "负面"]})
    assert score_answer(item, output).score == expected


def test_regex_any_second_pattern_and_cjk(tmp_path: Path) -> None:
    item = make_item(tmp_path, {"kind": "regex_any", "patterns": [r"\bnegative\b", "负面"]})
    assert score_answer(item, "这条评论是负面的。").score == 1.0
    assert "pattern '负面' matched" in score_answer(item, "负面").detail


# ------------------------------------------------------------------------------ checks: must_include


def test_must_include_partial_credit(tmp_path: Path) -> None:
    item = make_item(tmp_path, {"kind": "must_include", "terms": ["scatter", "Wavelength", "blue", "ozone"]})
    result = score_answer(item, "Sunlight SCATTERS off molecules; shorter WAVELENGTHS scatter more.")
    assert result.score == pytest.approx(0.5)
    assert "2/4 terms found" in result.detail
    assert "'ozone'" in result.detail
    assert score_answer(item, "").score == 0.0
    assert score_answer(item, "scatter wavelength blue ozone").score == 1.0


def test_must_include_nfkc(tmp_path: Path) -> None:
    item = make_item(tmp_path, {"kind": "must_include", "terms": ["30天", "ＡＥＳ-256"]})
    assert score_answer(item, "需要提前３０天通知，使用 aes-256 加密。").score == 1.0


# ------------------------------------------------------------------------------- checks: json_fields


@pytest.fixture
def person(tmp_path: Path) -> SuiteItem:
    return make_item(
        tmp_path,
        {"kind": "json_fields", "fields": {"name": "Ada Osei", "age": 34, "address.city": "Lisbon"}},
        task="json",
        json_schema=PERSON_SCHEMA,
    )


def test_json_fields_perfect_with_fence_and_prose(person: SuiteItem) -> None:
    text = 'Sure! Here it is:\n```json\n{"name": " ada osei ", "age": 34, "address": {"city": "LISBON"}}\n```'
    result = score_answer(person, text)
    assert result == QualityScore(score=1.0, json_ok=True, detail="json_fields: 3/3 fields match")


def test_json_fields_partial_credit(person: SuiteItem) -> None:
    result = score_answer(person, '{"name": "Ada Osei", "age": 35, "address": {"town": "Lisbon"}}')
    assert result.score == pytest.approx(1 / 3)
    assert result.json_ok is True
    assert "'age' expected 34, got 35" in result.detail
    assert "'address.city' missing" in result.detail


def test_json_fields_contract_failure_scores_zero(person: SuiteItem) -> None:
    invalid = score_answer(person, '{"name": "Ada Osei", "age": 34,')
    assert (invalid.score, invalid.json_ok) == (0.0, False)
    assert "fails the JSON contract" in invalid.detail
    wrong_type = score_answer(person, '{"name": "Ada Osei", "age": "34", "address": {"city": "Lisbon"}}')
    assert (wrong_type.score, wrong_type.json_ok) == (0.0, False)
    assert "schema violation at age" in wrong_type.detail
    assert score_answer(person, "no json here").score == 0.0


def test_json_fields_value_rules(tmp_path: Path) -> None:
    fields = {"total": 1250, "paid": True, "ref": None, "tags": ["Red", "blue"], "rate": 0.1, "code": "007"}
    item = make_item(tmp_path, {"kind": "json_fields", "fields": fields})
    good = '{"total": "1,250", "paid": true, "ref": null, "tags": [" red", "BLUE"], "rate": 0.1000000001, "code": 7}'
    assert score_answer(item, good).score == 1.0
    bad = '{"total": 1251, "paid": 1, "ref": "", "tags": ["red"], "rate": 0.2, "code": "008"}'
    assert score_answer(item, bad).score == 0.0


def test_json_fields_literal_dotted_key(tmp_path: Path) -> None:
    item = make_item(tmp_path, {"kind": "json_fields", "fields": {"a.b": 1}})
    assert score_answer(item, '{"a.b": 1}').score == 1.0
    assert score_answer(item, '{"a": {"b": 1}}').score == 1.0
    assert score_answer(item, '{"a": [1]}').score == 0.0


def test_json_ok_reported_for_any_check_kind_with_a_schema(tmp_path: Path) -> None:
    item = make_item(tmp_path, {"kind": "must_include", "terms": ["Ada"]}, task="open", json_schema=PERSON_SCHEMA)
    assert score_answer(item, '{"name": "Ada", "age": 3}').json_ok is True
    assert score_answer(item, "Ada").json_ok is False


# ----------------------------------------------------------------------------------- checks: numeric


@pytest.mark.parametrize(
    ("value", "output", "expected"),
    [
        (42, "42", 1.0),
        (42, "The answer is 42.", 1.0),
        (42, "17 + 25 = 42", 1.0),  # last number
        (42, "42, because 17 + 25 makes 42 and not 43", 1.0),  # first number
        (42, "17 + 25 = 43", 0.0),
        (42, "forty-two", 0.0),
        (42, "４２", 1.0),  # full-width digits
        (42, "答案是42。", 1.0),
        (6325, "6,325", 1.0),
        (6325, "2,450 + 3,875 = 6,325", 1.0),
        (1234567.5, "1,234,567.50 EUR", 1.0),
        (-7, "x = -7", 1.0),
        (-7, "x = \u22127", 1.0),  # unicode minus
        (12, "17-5=12", 1.0),
        (-5, "17-5", 0.0),  # a hyphen right after a digit is not a sign: the numbers are 17 and 5
        (4.65, "1.2 + 3.45 = 4.65", 1.0),
        (10, "Monday 57, Tuesday 10, total 67", 0.0),  # a middle number does not count
    ],
)
def test_numeric(tmp_path: Path, value: float, output: str, expected: float) -> None:
    item = make_item(tmp_path, {"kind": "numeric", "value": value})
    assert score_answer(item, output).score == expected


def test_numeric_tolerances(tmp_path: Path) -> None:
    relative = make_item(tmp_path, {"kind": "numeric", "value": 1000, "rel_tol": 0.01})
    assert score_answer(relative, "about 1009").score == 1.0
    assert score_answer(relative, "about 1011").score == 0.0
    absolute = make_item(tmp_path, {"kind": "numeric", "value": 3.14, "abs_tol": 0.01})
    assert score_answer(absolute, "pi is 3.1415").score == 1.0
    assert score_answer(absolute, "pi is 3.2").score == 0.0
    missing = score_answer(absolute, "no idea")
    assert missing.score == 0.0
    assert "no number" in missing.detail


def test_extract_numbers() -> None:
    # glued to letters (a1, 3rd, v1.2.3) is not a number; "b-2" reads as a hyphen then 2
    assert extract_numbers("a1 b-2 3rd 4.5, 6,000 and -7.25; v1.2.3") == [2.0, 4.5, 6000.0, -7.25]
    assert extract_numbers("１２，３４５円") == [12345.0]
    assert extract_numbers("12,5 and 1,2345") == [12.0, 5.0, 1.0, 2345.0]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_extract_numbers_reads_formatted_integers(number: int) -> None:
    for text in (f"{number}", f"{number:,}", f"total: {number:,} EUR."):
        assert extract_numbers(text) == [float(number)]


def numeric_item(value: float) -> SuiteItem:
    check = {"kind": "numeric", "value": value, "abs_tol": 1e-6, "rel_tol": 0.0}
    return SuiteItem("n", "?", "arith", "en", None, check, {})


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.sampled_from(["{v}", "The answer is {v}.", "3 + 4 = {v}", "{v} (I restated 3 + 4)"]),
)
def test_numeric_accepts_the_value_first_or_last(value: float, template: str) -> None:
    text = template.replace("{v}", f"{value:,.6f}")
    assert score_answer(numeric_item(value), text).score == 1.0
    wrong = value + 0.5
    assume(all(abs(wrong - other) > 1e-3 for other in (3, 4)))
    assert score_answer(numeric_item(wrong), text).score == 0.0


# -------------------------------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_scores_stay_in_unit_interval(bundled: list[SuiteItem], text: str) -> None:
    one_per_kind = {item.check["kind"]: item for item in bundled}
    for item in one_per_kind.values():
        result = score_answer(item, text)
        assert 0.0 <= result.score <= 1.0
        assert result.detail.startswith(item.check["kind"] + ": ")


def test_public_api_is_sorted() -> None:
    assert suite_module.__all__ == sorted(suite_module.__all__)
    for name in suite_module.__all__:
        assert hasattr(suite_module, name)
