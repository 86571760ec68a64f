"""The bad-input corpus: every bad spec, ``--set`` override and suite line gives ONE clear error.

Each case is fed through the public entry points (``load_spec``, ``parse_overrides`` + ``load_spec``,
``load_suite``) and must raise a :class:`~tsglab.errors.TsglabError` whose one-line message names the file,
the line or key (``where``) and the fix (``hint``). Anything else is classified as

* ``traceback`` - an exception that is not a TsglabError (the user would see a Python traceback),
* ``accepted``  - no error at all (the bad value would silently run),
* ``unclear``   - a TsglabError without the file, the key/line or the hint.

``python tests/test_bad_input.py`` prints that census (run it with ``PYTHONPATH`` pointing at another
checkout to measure older code).
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tsglab.cli import parse_overrides
from tsglab.config import load_spec
from tsglab.errors import TsglabError
from tsglab.suite import load_suite

GOOD = """name: t
tiers:
  light: {backend: scripted, max_tokens: 8}
  std: {backend: scripted, max_tokens: 8}
  enh: {backend: scripted, max_tokens: 8}
"""

GOOD_LINE = '{"id": "a1", "prompt": "What is 2+2?", "task": "arith", "check": {"kind": "numeric", "value": 4}}'


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # "spec" (YAML text), "set" (--set strings on GOOD), "api" (override dict on GOOD), "suite"
    payload: object
    where: str  # regex: the line or key the message must name
    hint: str  # regex: the fix the message must give


def spec(case_id: str, text: str, where: str, hint: str) -> Case:
    return Case(case_id, "spec", text, where, hint)


def sets(case_id: str, pairs: list[str], where: str, hint: str) -> Case:
    return Case(case_id, "set", pairs, where, hint)


def api(case_id: str, overrides: dict, where: str, hint: str) -> Case:
    return Case(case_id, "api", overrides, where, hint)


def suite(case_id: str, line: str, where: str = r"suite\.jsonl:2", hint: str = "") -> Case:
    return Case(case_id, "suite", GOOD_LINE + "\n" + line + "\n", where, hint)


def tier(setting: str) -> str:
    """GOOD with one more setting on the light tier."""
    return GOOD.replace("light: {backend: scripted, max_tokens: 8}", f"light: {{backend: scripted, {setting}}}")


def deep(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


BOOL = r"must be true or false.*unquoted"
WHOLE = r"must be a whole number"
NUMBER = r"must be a number"
FINITE = r"must be a finite number"
STRING = r"must be (a string|text).*quote"
STRINGS = r"must be a list of strings"
MAPPING = r"must be a mapping"
DUPLICATE = r"duplicate key .*remove one"
NESTED = r"nested deeper than \d+ levels"
DATE = r"YAML date.*quote it"
KEY_TYPE = r"keys must be strings.*[Qq]uote"
SCHEMA_REF = r"\$ref .*only local references"

SPEC_CASES = [
    # strict booleans: "no" must never turn a flag on
    spec("bool-quoted-no", tier('constrained_json: "no"'), r"tiers\.light\.constrained_json", BOOL),
    spec("bool-quoted-false", tier('constrained_json: "false"'), r"tiers\.light\.constrained_json", BOOL),
    spec("bool-int", tier("constrained_json: 1"), r"tiers\.light\.constrained_json", BOOL),
    spec("bool-yaml11-yes", tier("constrained_json: yes"), r"tiers\.light\.constrained_json", BOOL),
    spec("bool-yaml11-off", tier("constrained_json: off"), r"tiers\.light\.constrained_json", BOOL),
    spec("bool-arm-repair", GOOD + 'arms: {tsg: {same_tier_repair: "false"}}\n', r"arms\.tsg.*same_tier_repair", BOOL),
    spec("bool-arm-refusal", GOOD + "arms: {tsg: {check_refusal: 0}}\n", r"arms\.tsg.*check_refusal", BOOL),
    spec("bool-arm-null", GOOD + "arms: {tsg: {check_refusal: null}}\n", r"arms\.tsg.*check_refusal", BOOL),
    # strict integers: 2.5 must not become 3
    spec("int-limit-float", GOOD + "prompts: {limit: 2.5}\n", r"prompts\.limit", WHOLE),
    spec("int-limit-string", GOOD + 'prompts: {limit: "3"}\n', r"prompts\.limit", WHOLE),
    spec("int-limit-bool", GOOD + "prompts: {limit: true}\n", r"prompts\.limit", WHOLE),
    spec("int-limit-zero", GOOD + "prompts: {limit: 0}\n", r"prompts\.limit", r">= 1"),
    spec("int-limit-negative", GOOD + "prompts: {limit: -2}\n", r"prompts\.limit", r">= 1"),
    spec("int-limit-inf", GOOD + "prompts: {limit: .inf}\n", r"prompts\.limit", WHOLE),
    spec("int-prompts-seed", GOOD + "prompts: {seed: 1.5}\n", r"prompts\.seed", WHOLE),
    spec("int-concurrency-float", GOOD + "load: {concurrency: 2.5}\n", r"load\.concurrency", WHOLE),
    spec("int-concurrency-string", GOOD + 'load: {concurrency: "4"}\n', r"load\.concurrency", WHOLE),
    spec("int-switchback", GOOD + "load: {switchback_block: 1.5}\n", r"load\.switchback_block", WHOLE),
    spec("int-warmup-count", GOOD + "load: {warmup_count: 2.5}\n", r"load\.warmup_count", WHOLE),
    spec("int-load-seed", GOOD + "load: {seed: x}\n", r"load\.seed", WHOLE),
    spec("int-max-retries", GOOD + "retry: {max_retries: 1.5}\n", r"retry\.max_retries", WHOLE),
    spec("int-gpu-index", GOOD + "energy: {gpu_index: 0.5}\n", r"energy\.gpu_index", WHOLE),
    spec("int-gpu-negative", GOOD + "energy: {gpu_index: -1}\n", r"energy\.gpu_index", r">= 0"),
    spec("int-max-tokens-string", tier('max_tokens: "64"'), r"tiers\.light\.max_tokens", WHOLE),
    spec("int-max-tokens-float", tier("max_tokens: 2.5"), r"tiers\.light\.max_tokens", WHOLE),
    spec("int-max-tokens-inf", tier("max_tokens: .inf"), r"tiers\.light\.max_tokens", WHOLE),
    spec("int-max-upgrades", GOOD + "arms: {tsg: {max_upgrades: 1.5}}\n", r"arms\.tsg.*max_upgrades", WHOLE),
    spec("int-fast-lane-string", GOOD + 'arms: {tsg: {force_light_len: "120"}}\n', r"arms\.tsg.*force_light_len",
         WHOLE),
    spec("int-min-answer-negative", GOOD + "arms: {tsg: {min_answer_chars: -1}}\n", r"arms\.tsg.*min_answer_chars",
         r">= 0"),
    spec("int-seed-string", GOOD + "seed: abc\n", r"seed", WHOLE),
    spec("int-seed-float", GOOD + "seed: 2.7\n", r"seed", WHOLE),
    spec("int-sexagesimal", GOOD + "load: {concurrency: 1:30}\n", r"load\.concurrency", WHOLE),
    # no .inf / .nan, no absurd magnitudes
    spec("float-timeout-inf", GOOD + "load: {timeout_s: .inf}\n", r"load\.timeout_s", FINITE),
    spec("float-timeout-nan", GOOD + "load: {timeout_s: .nan}\n", r"load\.timeout_s", FINITE),
    spec("float-timeout-string", GOOD + 'load: {timeout_s: "30"}\n', r"load\.timeout_s", NUMBER),
    spec("float-timeout-huge", GOOD + "load: {timeout_s: 1.0e+12}\n", r"load\.timeout_s", r"<= 86400"),
    spec("float-rate-inf", GOOD + "load: {rate_per_s: .inf}\n", r"load\.rate_per_s", FINITE),
    spec("float-rate-nan", GOOD + "load: {rate_per_s: .nan}\n", r"load\.rate_per_s", FINITE),
    spec("float-period-minus-inf", GOOD + "load: {period_ms: -.inf}\n", r"load\.period_ms", FINITE),
    spec("float-period-nan", GOOD + "load: {period_ms: .nan}\n", r"load\.period_ms", FINITE),
    spec("float-period-sexagesimal", GOOD + "load: {period_ms: 1:30}\n", r"load\.period_ms", NUMBER),
    spec("float-burstiness-nan", GOOD + "load: {burstiness: .nan}\n", r"load\.burstiness", FINITE),
    spec("float-ramp-nan", GOOD + "load: {ramp_seconds: .nan}\n", r"load\.ramp_seconds", FINITE),
    spec("float-ramp-fraction-nan", GOOD + "load: {ramp_start_fraction: .nan}\n", r"load\.ramp_start_fraction",
         FINITE),
    spec("float-warmup-seconds-nan", GOOD + "load: {warmup_seconds: .nan}\n", r"load\.warmup_seconds", FINITE),
    spec("float-backoff-inf", GOOD + "retry: {backoff_ms: .inf}\n", r"retry\.backoff_ms", FINITE),
    spec("float-sample-hz-nan", GOOD + "energy: {sample_hz: .nan}\n", r"energy\.sample_hz", FINITE),
    spec("float-idle-w-nan", GOOD + "energy: {idle_w: .nan}\n", r"energy\.idle_w", FINITE),
    spec("float-window-string", GOOD + 'energy: {window_s: "2"}\n', r"energy\.window_s", NUMBER),
    spec("float-idle-seconds-negative", GOOD + "energy: {idle_seconds: -1}\n", r"energy\.idle_seconds", r">= 0"),
    spec("float-thr-nan", GOOD + "arms: {tsg: {thr_std: .nan}}\n", r"arms\.tsg.*thr_std", FINITE),
    spec("float-thr-inf", GOOD + "arms: {tsg: {thr_enh: .inf}}\n", r"arms\.tsg.*thr_enh", FINITE),
    spec("float-heavy-inf", GOOD + "arms: {tsg: {heavy_weight: .inf}}\n", r"arms\.tsg.*heavy_weight", FINITE),
    spec("float-chars-string", GOOD + 'arms: {tsg: {chars_per_unit: "200"}}\n', r"arms\.tsg.*chars_per_unit", NUMBER),
    spec("float-option-nan", tier("options: {temperature: .nan}"), r"tiers\.light\.options\.temperature", FINITE),
    spec("float-huge-literal", GOOD + "prompts: {limit: 1e400}\n", r"prompts\.limit", WHOLE),
    # strict strings: no date, number, boolean or null where a string is expected
    spec("str-name-date", "name: 2024-01-01\n" + GOOD.split("\n", 1)[1], r"spec\.yaml:1", DATE),
    spec("str-name-datetime", "name: 2024-01-01 10:00:00\n" + GOOD.split("\n", 1)[1], r"spec\.yaml:1", DATE),
    spec("str-description-date", GOOD + "description: 2024-05-06\n", r"spec\.yaml:6", DATE),
    spec("str-name-int", "name: 123\n" + GOOD.split("\n", 1)[1], r"'name'|name ", STRING),
    spec("str-name-list", "name: [a]\n" + GOOD.split("\n", 1)[1], r"'name'|name ", STRING),
    spec("str-name-null", "name:\n" + GOOD.split("\n", 1)[1], r"'name'|name ", STRING),
    spec("str-name-bool", "name: true\n" + GOOD.split("\n", 1)[1], r"'name'|name ", STRING),
    spec("str-description-int", GOOD + "description: 5\n", r"description", STRING),
    spec("str-suite-int", GOOD + "suite: 5\n", r"suite", STRING),
    spec("str-suite-empty", GOOD + 'suite: ""\n', r"suite", r"bundled"),
    spec("str-on-error-int", GOOD + "on_error: 1\n", r"on_error", r"'record'"),
    spec("str-endpoint-int", tier("endpoint: 5"), r"tiers\.light\.endpoint", STRING),
    spec("str-model-null", tier("model: null"), r"tiers\.light\.model", STRING),
    spec("str-system-prompt-list", tier("system_prompt: [a]"), r"tiers\.light\.system_prompt", STRING),
    spec("str-api-key-int", tier("api_key: 12345"), r"tiers\.light\.api_key", STRING),
    spec("str-backend-empty", GOOD.replace("light: {backend: scripted", 'light: {backend: ""'),
         r"tiers\.light\.backend", r"name a backend"),
    spec("str-json-floor-int", GOOD + "arms: {tsg: {json_floor: 1}}\n", r"arms\.tsg.*json_floor", STRING),
    spec("str-kind-list", GOOD + "arms: {tsg: {kind: [tsg]}}\n", r"arms\.tsg.*kind", r"one of \['tsg', 'baseline'\]"),
    spec("str-mode-int", GOOD + "load: {mode: 5}\n", r"load\.mode", r"'paced' or 'open_loop'"),
    # lists
    spec("list-tasks-string", GOOD + "prompts: {tasks: json}\n", r"prompts\.tasks", STRINGS),
    spec("list-tasks-mapping", GOOD + "prompts: {tasks: {a: 1}}\n", r"prompts\.tasks", STRINGS),
    spec("list-ids-ints", GOOD + "prompts: {ids: [1, 2]}\n", r"prompts\.ids", STRINGS),
    spec("list-ids-string", GOOD + "prompts: {ids: a1}\n", r"prompts\.ids", STRINGS),
    spec("list-retry-on-string", GOOD + "retry: {on: http_5xx}\n", r"retry\.on", STRINGS),
    spec("list-retry-on-ints", GOOD + "retry: {on: [5]}\n", r"retry\.on", STRINGS),
    # sections and arms
    spec("arms-empty", GOOD + "arms: {}\n", r"arms", r"at least one arm"),
    spec("arms-null", GOOD + "arms:\n", r"arms", r"at least one arm"),
    spec("arms-list", GOOD + "arms: [baseline, tsg]\n", r"arms", MAPPING),
    spec("arms-arm-int", GOOD + "arms: {tsg: 5}\n", r"arms\.tsg", MAPPING),
    spec("arms-arm-list", GOOD + "arms: {tsg: [1]}\n", r"arms\.tsg", MAPPING),
    spec("section-load-list", GOOD + "load: [1, 2]\n", r"'load'", MAPPING),
    spec("section-load-zero", GOOD + "load: 0\n", r"'load'", MAPPING),
    spec("section-load-false", GOOD + "load: false\n", r"'load'", MAPPING),
    spec("section-prompts-string", GOOD + "prompts: all\n", r"'prompts'", MAPPING),
    spec("section-tiers-list", "name: t\ntiers: [light, std]\n", r"'tiers'", MAPPING),
    spec("tier-values-int", "name: t\ntiers: {light: 8}\n", r"tiers\.light", MAPPING),
    spec("tier-options-list", tier("options: [1]"), r"tiers\.light\.options", MAPPING),
    spec("tier-unknown-key", tier("colour: red"), r"tiers\.light", r"unknown key.*known"),
    spec("top-unknown-key", GOOD + "colour: red\n", r"colour", r"known"),
    spec("load-unknown-key", GOOD + "load: {speed: 3}\n", r"load\.speed", r"known"),
    # YAML itself: duplicates, dates, nesting, odd keys and types
    spec("dup-top", GOOD + "name: u\n", r"spec\.yaml:6", DUPLICATE),
    spec("dup-tier-setting", GOOD.replace("max_tokens: 8}", "max_tokens: 8, max_tokens: 9}", 1), r"spec\.yaml:3",
         DUPLICATE),
    spec("dup-tier-name", GOOD + "  light: {backend: scripted}\n", r"spec\.yaml:6", DUPLICATE),
    spec("dup-block-mapping", GOOD + "load:\n  period_ms: 5\n  period_ms: 6\n", r"spec\.yaml:8", DUPLICATE),
    spec("dup-arm-param", GOOD + "arms: {tsg: {thr_std: 0.1, thr_std: 0.2}}\n", r"spec\.yaml:6", DUPLICATE),
    spec("nest-deep-flow", GOOD + "description: " + deep(5000) + "\n", r"spec\.yaml:6", NESTED),
    spec("nest-deep-options", tier("options: {a: " + deep(100) + "}"), r"spec\.yaml:3", NESTED),
    spec("nest-recursive-alias", GOOD + "description: &loop [*loop]\n", r"spec\.yaml:6", r"refers to itself"),
    spec("alias-bomb", GOOD + "description: " + "&a0 [1,1,1,1,1,1,1,1,1,1]\nx1: &a1 [" + ",".join(["*a0"] * 10)
         + "]\nx2: &a2 [" + ",".join(["*a1"] * 10) + "]\nx3: &a3 [" + ",".join(["*a2"] * 10) + "]\nx4: &a4 ["
         + ",".join(["*a3"] * 10) + "]\nx5: [" + ",".join(["*a4"] * 10) + "]\n", r"spec\.yaml:\d+", r"too large"),
    spec("key-int-tier", "name: t\ntiers: {1: {backend: scripted}}\n", r"spec\.yaml:2", KEY_TYPE),
    spec("key-bool-top", GOOD + "true: 1\n", r"spec\.yaml:6", KEY_TYPE),
    spec("key-mixed-types", GOOD + "1: x\nfoo: y\n", r"spec\.yaml:6", KEY_TYPE),
    spec("key-null-arm", GOOD + "arms: {~: {}}\n", r"spec\.yaml:6", KEY_TYPE),
    spec("type-binary", GOOD + "description: !!binary aGVsbG8=\n", r"spec\.yaml:6", r"!!binary.*not allowed"),
    spec("type-set", GOOD + "description: !!set {a, b}\n", r"spec\.yaml:6", r"!!set.*not allowed"),
    spec("type-python-object", GOOD + "description: !!python/object:os.system {}\n", r"spec\.yaml:6",
         r"not allowed|constructor"),
    spec("type-explicit-timestamp", GOOD + "description: !!timestamp 2024-01-01\n", r"spec\.yaml:6", DATE),
    spec("yaml-unclosed", "name: [\n", r"spec\.yaml:\d", r"not valid YAML"),
    spec("yaml-tab-indent", "name: t\ntiers:\n\tlight: {}\n", r"spec\.yaml:\d", r"not valid YAML"),
    spec("yaml-two-documents", GOOD + "---\nname: u\n", r"spec\.yaml:\d", r"one YAML document"),
    spec("doc-list", "- a\n- b\n", r"spec\.yaml", r"mapping"),
    spec("doc-scalar", "hello\n", r"spec\.yaml", r"mapping"),
    spec("doc-empty", "", r"spec\.yaml", r"missing key 'name'"),
    spec("doc-not-utf8", b"name: \xff\xfe\n", r"spec\.yaml", r"UTF-8"),
]

SET_CASES = [
    sets("set-limit-float", ["prompts.limit=2.5"], r"prompts\.limit", WHOLE + r".*override prompts\.limit=2\.5"),
    sets("set-timeout-inf", ["load.timeout_s=.inf"], r"load\.timeout_s", FINITE),
    sets("set-rate-nan", ["load.rate_per_s=.nan"], r"load\.rate_per_s", FINITE),
    sets("set-bool-no", ["tiers.light.constrained_json=no"], r"tiers\.light\.constrained_json", BOOL),
    sets("set-bool-quoted-no", ['tiers.light.constrained_json="no"'], r"tiers\.light\.constrained_json", BOOL),
    sets("set-bool-word", ["arms.tsg.same_tier_repair=maybe"], r"arms\.tsg.*same_tier_repair", BOOL),
    sets("set-name-date", ["name=2024-01-01"], r"--set name=2024-01-01", DATE),
    sets("set-no-equals", ["prompts.limit"], r"--set", r"KEY=VALUE"),
    sets("set-empty-key", ["=5"], r"--set =5", r"key is empty"),
    sets("set-empty-segment", ["prompts..limit=3"], r"--set prompts\.\.limit=3", r"empty part"),
    sets("set-empty-value", ["prompts.limit="], r"--set prompts\.limit=", r"value is empty.*null"),
    sets("set-blank-value", ["name= "], r"--set name= ", r"value is empty"),
    sets("set-bad-yaml", ["name=["], r"--set name=\[", r"not valid YAML"),
    sets("set-bad-yaml-flow", ["load.mode=[paced"], r"--set load\.mode=\[paced", r"not valid YAML"),
    sets("set-sexagesimal", ["load.period_ms=1:30"], r"load\.period_ms", NUMBER),
    sets("set-twice", ["prompts.limit=3", "prompts.limit=5"], r"--set prompts\.limit", r"given twice.*keep one"),
    sets("set-section-scalar", ["load=5"], r"'load'", MAPPING),
    sets("set-through-scalar", ["name.x=1"], r"name\.x", r"'name' is not a mapping"),
    sets("set-new-section-scalar", ["load.period_ms.x=1"], r"load\.period_ms", NUMBER),
    sets("set-unknown-top", ["colour=red"], r"colour", r"known"),
    sets("set-max-tokens-word", ["tiers.light.max_tokens=abc"], r"tiers\.light\.max_tokens", WHOLE),
    sets("set-arms-empty", ["arms={}"], r"arms", r"at least one arm"),
    sets("set-seed-huge", ["seed=1e400"], r"seed", WHOLE),
    sets("set-concurrency-exp", ["load.concurrency=1e3"], r"load\.concurrency", WHOLE),
    sets("set-name-mapping", ["name=a: b"], r"name", STRING),
    sets("set-binary", ["description=!!binary aGk="], r"--set description", r"!!binary.*not allowed"),
    sets("set-tasks-string", ["prompts.tasks=json"], r"prompts\.tasks", STRINGS),
    sets("set-deep", ["description=" + deep(5000)], r"--set description", NESTED),
    sets("set-recursive-alias", ["description=&a [*a]"], r"--set description", r"refers to itself"),
    sets("set-two-documents", ["name=a\n---\nb"], r"--set name", r"one YAML document"),
    sets("set-dup-key", ["tiers.light.options={a: 1, a: 2}"], r"--set tiers\.light\.options", DUPLICATE),
    api("api-limit-float", {"prompts.limit": 2.5}, r"prompts\.limit", WHOLE),
    api("api-timeout-inf", {"load.timeout_s": float("inf")}, r"load\.timeout_s", FINITE),
    api("api-key-int", {5: 1}, r"override", r"dotted string"),
    api("api-key-empty-part", {"load.": 1}, r"load\.", r"empty part"),
    api("api-bool-string", {"tiers.light.constrained_json": "no"}, r"tiers\.light\.constrained_json", BOOL),
]


def _schema_line(schema: str, **extra: str) -> str:
    fields = "".join(f', "{k}": {v}' for k, v in extra.items())
    return ('{"id": "j1", "prompt": "Give JSON", "task": "json", "json_schema": ' + schema
            + ', "check": {"kind": "json_fields", "fields": {"a": 1}}' + fields + "}")


def _line(**fields: str) -> str:
    base = {"id": '"b1"', "prompt": '"Say hi"', "task": '"open"', "check": '{"kind": "must_include", "terms": ["hi"]}'}
    base.update(fields)
    return "{" + ", ".join(f'"{k}": {v}' for k, v in base.items()) + "}"


SUITE_CASES = [
    # remote or unresolvable schema references (never fetched)
    suite("ref-http", _schema_line('{"$ref": "http://127.0.0.1:9/s.json"}'), hint=SCHEMA_REF),
    suite("ref-https", _schema_line('{"$ref": "https://example.com/s.json"}'), hint=SCHEMA_REF),
    suite("ref-file", _schema_line('{"$ref": "file:///etc/passwd"}'), hint=SCHEMA_REF),
    suite("ref-relative", _schema_line('{"$ref": "other.json"}'), hint=SCHEMA_REF),
    suite("ref-urn", _schema_line('{"$ref": "urn:example:thing"}'), hint=SCHEMA_REF),
    suite("ref-network-path", _schema_line('{"$ref": "//example.com/s.json"}'), hint=SCHEMA_REF),
    suite("ref-nested", _schema_line('{"type": "object", "properties": {"a": {"$ref": "http://x.test/a"}}}'),
          hint=SCHEMA_REF + r".*properties/a"),
    suite("ref-in-defs", _schema_line('{"$defs": {"x": {"items": {"$ref": "https://x.test/i"}}}}'), hint=SCHEMA_REF),
    suite("ref-dynamic", _schema_line('{"$dynamicRef": "http://x.test/d"}'), hint=r"\$dynamicRef .*only local"),
    suite("ref-id-relative", _schema_line('{"$id": "http://x.test/root.json", "$ref": "item.json"}'), hint=SCHEMA_REF),
    suite("ref-local-missing", _schema_line('{"$ref": "#/$defs/missing"}'), hint=r"does not resolve"),
    suite("ref-anchor-missing", _schema_line('{"$ref": "#nowhere"}'), hint=r"does not resolve"),
    suite("ref-loop", _schema_line('{"$ref": "#"}'), hint=r"loops"),
    suite("ref-not-string", _schema_line('{"$ref": 5}'), hint=r"not a valid JSON Schema"),
    # JSON itself
    suite("json-deep-notes", _line(notes=deep(100000, '"x"')), hint=NESTED),
    suite("json-deep-schema", _schema_line(deep(3000, "{}").replace("[", '{"items": ').replace("]", "}")),
          hint=NESTED),
    suite("json-deep-strata", _line(strata='{"a": ' + deep(200) + "}"), hint=NESTED),
    suite("json-dup-id", _line(id='"b1", "id": "b2"'), hint=DUPLICATE),
    suite("json-dup-check", _line(check='{"kind": "exact", "answer": "x", "answer": "y"}'), hint=DUPLICATE),
    suite("json-dup-schema", _schema_line('{"type": "object", "type": "array"}'), hint=DUPLICATE),
    suite("json-nan", _line(check='{"kind": "numeric", "value": NaN}'), hint=r"NaN.*not JSON"),
    suite("json-infinity", _schema_line('{"type": "object", "maxProperties": Infinity}'), hint=r"Infinity.*not JSON"),
    suite("json-minus-infinity", _line(check='{"kind": "numeric", "value": -Infinity}'), hint=r"Infinity.*not JSON"),
    suite("json-huge-int", _line(check='{"kind": "numeric", "value": ' + "9" * 5000 + "}"), hint=r"too many digits"),
    suite("json-huge-float", _line(check='{"kind": "numeric", "value": 1e400}'), hint=r"finite"),
    suite("json-lone-surrogate", _line(prompt='"hi \\ud800"'), hint=r"surrogate.*UTF-8"),
    suite("json-invalid", '{"id": "x", ', hint=r"invalid JSON"),
    suite("json-array-line", "[1, 2]", hint=r"expected a JSON object"),
    suite("json-trailing", GOOD_LINE + " x", hint=r"invalid JSON"),
    # fields (these were clear before; kept so they stay clear)
    suite("field-unknown", _line(colour='"red"'), hint=r"unknown field 'colour'.*allowed"),
    suite("field-missing-check", '{"id": "b1", "prompt": "p", "task": "open"}', hint=r"missing required field 'check'"),
    suite("field-id-space", _line(id='"a b"'), hint=r"must match"),
    suite("field-id-bool", _line(id="true"), hint=r"field 'id' must be a string"),
    suite("field-id-duplicate", _line(id='"a1"'), hint=r"already used on line 1"),
    suite("field-prompt-empty", _line(prompt='"  "'), hint=r"'prompt' is empty"),
    suite("field-prompt-int", _line(prompt="5"), hint=r"'prompt' must be a string"),
    suite("field-task-unknown", _line(task='"poetry"'), hint=r"'task' must be one of"),
    suite("field-task-list", _line(task='["open"]'), hint=r"'task' must be one of"),
    suite("field-lang", _line(lang='"fr"'), hint=r"'lang' must be one of"),
    suite("field-notes-int", _line(notes="5"), hint=r"'notes' must be a string"),
    suite("field-json-no-schema", _line(task='"json"'), hint=r"'json_schema' is required"),
    suite("field-schema-string", _schema_line('"object"'), hint=r"must be an object"),
    suite("field-schema-bad-type", _schema_line('{"type": "thing"}'), hint=r"not a valid JSON Schema"),
    suite("field-schema-bad-regex", _schema_line('{"type": "string", "pattern": "("}'),
          hint=r"not a valid JSON Schema"),
    suite("check-not-object", _line(check='"exact"'), hint=r"'check' must be an object"),
    suite("check-kind-missing", _line(check='{"terms": ["a"]}'), hint=r"'check\.kind' is missing"),
    suite("check-kind-unknown", _line(check='{"kind": "fuzzy"}'), hint=r"'check\.kind' must be one of"),
    suite("check-kind-list", _line(check='{"kind": ["exact"]}'), hint=r"'check\.kind' must be one of"),
    suite("check-extra-param", _line(check='{"kind": "exact", "answer": "x", "tol": 1}'), hint=r"not a parameter"),
    suite("check-numeric-string", _line(check='{"kind": "numeric", "value": "4"}'), hint=r"check\.value"),
    suite("check-numeric-negative-tol", _line(check='{"kind": "numeric", "value": 4, "abs_tol": -1}'),
          hint=r"check\.abs_tol' must be >= 0"),
    suite("check-regex-invalid", _line(check='{"kind": "regex_any", "patterns": ["("]}'),
          hint=r"not a valid regular expression"),
    suite("check-regex-example", _line(check='{"kind": "regex_any", "patterns": ["^a$"], "example": "b"}'),
          hint=r"matches none"),
    suite("check-terms-empty", _line(check='{"kind": "must_include", "terms": [" "]}'), hint=r"is empty"),
    suite("check-fields-nested", _line(check='{"kind": "json_fields", "fields": {"a": {"b": 1}}}'),
          hint=r"dotted key"),
    suite("check-fields-empty", _line(check='{"kind": "json_fields", "fields": {}}'), hint=r"non-empty object"),
    suite("strata-float", _line(strata='{"x": 1.5}'), hint=r"strata\.x"),
    suite("strata-list", _line(strata="[1]"), hint=r"'strata' must be an object"),
    Case("file-not-utf8", "suite", b'{"id": "a\xff"}\n', r"suite\.jsonl", r"UTF-8"),
    Case("file-empty", "suite", "\n# only a comment\n", r"suite\.jsonl", r"holds no items"),
]

CASES = SPEC_CASES + SET_CASES + SUITE_CASES


def run_case(case: Case, directory: Path) -> None:
    """Feed one case through the public entry point; raises whatever it raises."""
    if case.kind == "suite":
        path = directory / "suite.jsonl"
        _write(path, case.payload)
        load_suite(path)
        return
    path = directory / "spec.yaml"
    if case.kind == "spec":
        _write(path, case.payload)
        load_spec(path)
        return
    _write(path, GOOD)
    overrides = parse_overrides(list(case.payload)) if case.kind == "set" else dict(case.payload)
    load_spec(path, overrides)


def _write(path: Path, payload: object) -> None:
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        path.write_text(str(payload), encoding="utf-8")


def classify(case: Case, directory: Path) -> tuple[str, str]:
    """(outcome, message): outcome is clear / unclear / traceback / accepted."""
    try:
        run_case(case, directory)
    except TsglabError as exc:
        message = str(exc)
        file_name = "suite.jsonl" if case.kind == "suite" else "spec.yaml"
        names_file = file_name in message or (case.kind == "set" and "--set" in message)
        clear = (names_file and "\n" not in message and re.search(case.where, message) is not None
                 and re.search(case.hint, message, re.DOTALL) is not None)
        return ("clear" if clear else "unclear"), message
    except RecursionError as exc:
        return "traceback", f"RecursionError: {str(exc)[:80]}"
    except Exception as exc:  # noqa: BLE001 - the census counts every kind of escape
        return "traceback", f"{type(exc).__name__}: {str(exc)[:200]}"
    return "accepted", ""


def test_the_corpus_is_large_enough_and_ids_are_unique():
    assert len(CASES) >= 120
    assert len({case.id for case in CASES}) == len(CASES)
    counts = Counter(case.kind for case in CASES)
    assert counts["spec"] >= 50
    assert counts["set"] + counts["api"] >= 25
    assert counts["suite"] >= 40


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gives_one_clear_error(case, tmp_path):
    outcome, message = classify(case, tmp_path)
    assert outcome == "clear", f"{outcome}: {message}"


def census() -> Counter:
    counts: Counter = Counter()
    for case in CASES:
        with tempfile.TemporaryDirectory() as directory:
            outcome, message = classify(case, Path(directory))
        counts[outcome] += 1
        counts[f"{case.kind}:{outcome}"] += 1
        if outcome != "clear":
            print(f"{outcome:9} {case.kind:5} {case.id:28} {message[:150]!r}")
    return counts


if __name__ == "__main__":
    sys.setrecursionlimit(3000)
    totals = census()
    print(len(CASES), "cases:", dict(sorted(totals.items())))


# ------------------------------------------------------------------------------------- remote $ref


@pytest.fixture
def counting_server():
    """A schema server on 127.0.0.1 that counts every request it gets (it should get none)."""
    import http.server
    import threading

    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = b'{"type": "object", "required": ["a"]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_remote_ref_is_a_suite_error_and_is_never_fetched(tmp_path, counting_server):
    base, hits = counting_server
    path = tmp_path / "suite.jsonl"
    path.write_text(GOOD_LINE + "\n" + _schema_line(f'{{"properties": {{"a": {{"$ref": "{base}/a.json"}}}}}}') + "\n")
    with pytest.raises(TsglabError, match=r"suite\.jsonl:2: field 'json_schema': \$ref '" + re.escape(base)
                       + r"/a\.json' is not a local reference.*\(at properties/a/\$ref\)"):
        load_suite(path)
    assert hits == []


def test_the_json_contract_never_fetches_a_remote_ref(counting_server):
    # a schema that did not come through load_suite (e.g. built in a notebook) is not fetched either
    from tsglab.jsoncontract import check_json_contract

    base, hits = counting_server
    for ref in (f"{base}/s.json", f"{base}/other#/x"):
        result = check_json_contract('{"a": 1}', {"$ref": ref})
        assert not result.ok
        assert "not fetched" in result.error
    assert hits == []


def test_local_refs_anchors_and_loops_through_data_still_load(tmp_path):
    schema = ('{"$defs": {"name": {"$anchor": "nm", "type": "string"}, "node": {"type": "object", "properties": '
              '{"next": {"$ref": "#/$defs/node"}}}}, "type": "object", "properties": {"a": {"$ref": "#/$defs/name"}, '
              '"b": {"$ref": "#nm"}, "c": {"$ref": "#/$defs/node"}}, "examples": [{"$ref": "http://x.test/"}]}')
    path = tmp_path / "suite.jsonl"
    path.write_text(_schema_line(schema) + "\n")
    (item,) = load_suite(path)
    from tsglab.jsoncontract import check_json_contract

    assert check_json_contract('{"a": "x", "b": "y", "c": {"next": {}}}', item.json_schema).ok
    assert not check_json_contract('{"a": 1}', item.json_schema).ok


def test_strict_yaml_keeps_what_valid_specs_mean(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(GOOD + "retry: {on: [http_5xx], max_retries: 2}\n"
                    "load: {period_ms: 0x10, timeout_s: 1e1, concurrency: 010}\n"
                    "arms:\n  base: &b {kind: baseline}\n  other: {<<: *b, baseline_tier: std}\n")
    spec = load_spec(path, parse_overrides(["prompts.limit=3", "tiers.light.constrained_json=false",
                                            "description='2024-01-01'"]))
    assert spec.retry.on == ("http_5xx",)  # `on:` is a key, not the boolean true (YAML 1.1)
    assert (spec.load.period_ms, spec.load.timeout_s, spec.load.concurrency) == (16, 10.0, 10)
    assert spec.arms["other"].kind == "baseline"
    assert spec.arms["other"].baseline_tier == "std"
    assert spec.prompts.limit == 3
    assert spec.tiers["light"].constrained_json is False
    assert spec.description == "2024-01-01"


def test_bundled_specs_keep_their_hashes_under_the_strict_reader():
    import yaml

    from tsglab.config import spec_from_dict

    for name in ("quickstart", "tiers", "ablations"):
        path = Path("experiments") / f"{name}.yaml"
        lenient = spec_from_dict(yaml.safe_load(path.read_text()), where=str(path), base_dir=path.parent)
        assert load_spec(path).spec_hash() == lenient.spec_hash()
