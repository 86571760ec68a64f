"""The suite file format: read a JSONL request suite and validate every line into a :class:`SuiteItem`.

One JSON object per line; blank lines and lines starting with ``#`` are skipped. Every problem raises
:class:`~tsglab.errors.SuiteError` naming the file, the 1-based line, the field and the fix.
The format is documented in ``docs/suite-format.md``.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import math
import os
import pathlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from tsglab.errors import SuiteError
from tsglab.suite._schema_refs import reference_problem

TASKS: tuple[str, ...] = ("json", "classify", "arith", "factual", "code", "open", "multipart")
LANGS: tuple[str, ...] = ("en", "zh")
CHECK_KINDS: tuple[str, ...] = (
    "exact", "regex_any", "must_include", "json_fields", "numeric", "python_tests", "regex_tests", "sql_result",
)
# Check kinds scored by running the answer in the sandbox (tsglab.suite.sandbox).
RUN_CHECK_KINDS: tuple[str, ...] = ("python_tests", "regex_tests", "sql_result")
ALLOWED_FIELDS: tuple[str, ...] = ("id", "prompt", "task", "lang", "json_schema", "check", "strata", "notes")
REQUIRED_FIELDS: tuple[str, ...] = ("id", "prompt", "task", "check")

# Prompt length (characters) below which a prompt is "short" / "medium"; anything longer is "long".
CTX_SHORT_MAX_CHARS = 300
CTX_MEDIUM_MAX_CHARS = 1000

DEFAULT_ABS_TOL = 1e-6
DEFAULT_REL_TOL = 0.0

# check kind -> (required parameters, optional parameters)
_CHECK_PARAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "exact": (("answer",), ()),
    "regex_any": (("patterns",), ("example", "distractors")),
    "must_include": (("terms",), ("distractors",)),
    "json_fields": (("fields",), ()),
    "numeric": (("value",), ("abs_tol", "rel_tol", "distractors")),
    "python_tests": (("tests", "example"), ("entry", "setup", "files")),
    "regex_tests": (("positives", "negatives", "example"), ()),
    "sql_result": (("setup", "gold"), ("probe", "ordered", "example")),
}

_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]+")
# Deepest nesting of objects and arrays accepted on a line (a schema needs a handful of levels); bounded
# before parsing because json.loads and the schema checks recurse once per level.
MAX_DEPTH = 32
_BRACKETS_OUTSIDE_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|([\[\]{}])')
_MAX_INT_DIGITS = 100
_DOCS = "docs/suite-format.md"
_BUNDLED_RESOURCE = "data/bundled.jsonl"


@dataclass(frozen=True)
class SuiteItem:
    """One request of a suite, validated.

    ``check`` holds the check parameters with defaults filled in (``numeric`` gets ``abs_tol`` and
    ``rel_tol``). ``strata`` holds the pre-treatment strata with the defaults ``task``, ``lang``,
    ``ctx_bucket`` and ``tool_use`` filled in. Treat both dictionaries as read-only.
    """

    id: str
    prompt: str
    task: str
    lang: str
    json_schema: dict[str, Any] | None
    check: dict[str, Any]
    strata: dict[str, str | bool | int]
    notes: str = field(default="")


def bundled_suite_path() -> pathlib.Path:
    """Path of the request suite shipped with tsglab (``tsglab/suite/data/bundled.jsonl``)."""
    resource = importlib.resources.files("tsglab.suite").joinpath(_BUNDLED_RESOURCE)
    if not isinstance(resource, pathlib.Path):
        raise SuiteError(
            f"the bundled suite is not a plain file ({resource!r}); install tsglab from a directory "
            "or wheel, not a zip archive, or pass a suite path to load_suite()."
        )
    return resource


def ctx_bucket(prompt: str) -> str:
    """Context-length bucket of a prompt: ``short`` (< 300 chars), ``medium`` (< 1000) or ``long``."""
    if len(prompt) < CTX_SHORT_MAX_CHARS:
        return "short"
    if len(prompt) < CTX_MEDIUM_MAX_CHARS:
        return "medium"
    return "long"


def load_suite(path: str | os.PathLike[str] | None = None) -> list[SuiteItem]:
    """Read and validate a JSONL suite file; ``None`` loads the bundled suite.

    Raises :class:`~tsglab.errors.SuiteError` naming the file, line, field and fix on any problem.
    """
    source = bundled_suite_path() if path is None else pathlib.Path(path)
    text = _read_text(source)
    items: list[SuiteItem] = []
    first_line_of_id: dict[str, int] = {}
    for lineno, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{source}:{lineno}"
        item = _build_item(_parse_line(stripped, where), where)
        if item.id in first_line_of_id:
            _fail(
                where,
                f"field 'id' value {item.id!r} is already used on line {first_line_of_id[item.id]}; ids must "
                f"be unique in a file. Rename one of the two items (lines {first_line_of_id[item.id]} "
                f"and {lineno}).",
            )
        first_line_of_id[item.id] = lineno
        items.append(item)
    if not items:
        raise SuiteError(
            f"{source}: the file holds no items (it is empty or has only blank and '#' comment lines). "
            f"Add one JSON object per line; see {_DOCS}."
        )
    return items


# --------------------------------------------------------------------------------------------- reading


def _read_text(source: pathlib.Path) -> str:
    try:
        return source.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SuiteError(
            f"suite file not found: '{source}'. Check the path, or call load_suite() with no argument "
            "for the bundled suite."
        ) from None
    except IsADirectoryError:
        raise SuiteError(f"suite path '{source}' is a directory; pass the path of a .jsonl file.") from None
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{source}: the file is not valid UTF-8 (byte {exc.start}); save it as UTF-8.") from None
    except OSError as exc:
        raise SuiteError(f"{source}: cannot read the suite ({exc.strerror or exc}); check the path and its "
                         "permissions.") from None


def _parse_line(line: str, where: str) -> dict[str, Any]:
    depth = _max_depth(line)
    if depth > MAX_DEPTH:
        _fail(where, f"the JSON is nested deeper than {MAX_DEPTH} levels ({depth}); flatten it.")

    def refuse_constant(name: str) -> NoReturn:
        _fail(where, f"{name} is not JSON (JSON numbers are finite); write a finite number or a string.")

    def finite_float(text: str) -> float:
        number = float(text)
        if not math.isfinite(number):
            _fail(where, f"the number {text[:20]} is too large to be finite; write a smaller number.")
        return number

    def whole_number(text: str) -> int:
        if len(text.lstrip("-")) > _MAX_INT_DIGITS:
            _fail(where, f"an integer has too many digits ({len(text)}); no suite value is that large.")
        return int(text)

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, item in pairs:
            if key in result:
                _fail(where, f"duplicate key {key!r} in one object; JSON readers would silently keep one of "
                             "them: remove one.")
            result[key] = item
        return result

    try:
        value = json.loads(line, object_pairs_hook=unique_keys, parse_constant=refuse_constant,
                           parse_float=finite_float, parse_int=whole_number)
    except json.JSONDecodeError as exc:
        _fail(
            where,
            f"invalid JSON: {exc.msg} (column {exc.colno}). Each non-blank line must hold exactly one "
            "JSON object; start comment lines with '#'.",
        )
    except RecursionError:  # the depth scan above makes this unreachable; kept so no line can escape as one
        _fail(where, f"the JSON is nested too deeply; flatten it to at most {MAX_DEPTH} levels.")
    if not isinstance(value, dict):
        _fail(where, f"expected a JSON object {{...}} on the line; got {_json_type(value)}.")
    _check_strings(value, where)
    return value


def _max_depth(line: str) -> int:
    depth = deepest = 0
    for match in _BRACKETS_OUTSIDE_STRINGS.finditer(line):
        bracket = match.group(1)
        if bracket is None:
            continue
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _check_strings(value: Any, where: str, path: str = "") -> None:
    """Every string must be encodable as UTF-8: a lone surrogate (``\\ud800``) fails when it is sent."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            _fail(where, f"{'field ' + repr(path) if path else 'a key'} holds a lone surrogate escape (\\ud800-"
                         "\\udfff) that is not valid Unicode and cannot be sent as UTF-8; write the character "
                         "itself or a surrogate pair.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, where, path)
            _check_strings(item, where, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_strings(item, where, f"{path}[{index}]")


# ------------------------------------------------------------------------------------------ validation


def _build_item(raw: dict[str, Any], where: str) -> SuiteItem:
    unknown = [key for key in raw if key not in ALLOWED_FIELDS]
    if unknown:
        _fail(
            where,
            f"unknown field {unknown[0]!r}; allowed fields are {list(ALLOWED_FIELDS)}. "
            "Fix the spelling or move the information into 'notes' or 'strata'.",
        )
    for name in REQUIRED_FIELDS:
        if name not in raw:
            _fail(where, f"missing required field {name!r}; every item needs {list(REQUIRED_FIELDS)}.")

    item_id = _require_str(raw["id"], "id", where)
    if not _ID_PATTERN.fullmatch(item_id):
        _fail(
            where,
            f"field 'id' must match [A-Za-z0-9_.:-]+; got {item_id!r}. Use letters, digits and _ . : - only.",
        )
    prompt = _require_str(raw["prompt"], "prompt", where)
    if not prompt.strip():
        _fail(where, "field 'prompt' is empty; write the request text sent to the model.")
    task = _require_choice(raw["task"], "task", TASKS, where)
    lang = _require_choice(raw.get("lang", "en"), "lang", LANGS, where)
    notes = _require_str(raw.get("notes", ""), "notes", where)

    json_schema = raw.get("json_schema")
    if json_schema is not None:
        json_schema = _validate_schema(json_schema, where)
    elif task == "json":
        _fail(
            where,
            "field 'json_schema' is required when task is 'json'; add the JSON Schema of the expected "
            'answer, e.g. {"type": "object", "required": ["name"]}.',
        )

    check = _validate_check(raw["check"], where)
    strata = _validate_strata(raw.get("strata", {}), where)
    defaults: dict[str, str | bool | int] = {
        "task": task,
        "lang": lang,
        "ctx_bucket": ctx_bucket(prompt),
        "tool_use": False,
    }
    return SuiteItem(
        id=item_id,
        prompt=prompt,
        task=task,
        lang=lang,
        json_schema=json_schema,
        check=check,
        strata={**defaults, **strata},
        notes=notes,
    )


def _validate_schema(schema: Any, where: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        _fail(where, f"field 'json_schema' must be an object (a JSON Schema); got {_json_type(schema)}.")
    problem = _meta_schema_problem(json.dumps(schema, sort_keys=True))
    if problem:
        _fail(where, f"field 'json_schema' is not a valid JSON Schema (draft 2020-12): {problem}. Fix the schema.")
    problem = reference_problem(schema)
    if problem:
        _fail(where, f"field 'json_schema': {problem}.")
    return schema


@functools.lru_cache(maxsize=4096)
def _meta_schema_problem(canonical: str) -> str:
    """The meta-schema check of one JSON Schema (its canonical JSON), "" when valid. Cached: checking a
    schema against draft 2020-12 costs tens of milliseconds, and a suite repeats a few schemas many times
    (the bundled one: 108 json items, 27 distinct schemas)."""
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(json.loads(canonical))
    except jsonschema.SchemaError as exc:
        at = "/".join(str(part) for part in exc.path) or "<root>"
        return f"{exc.message} (at {at})"
    return ""


def _validate_check(check: Any, where: str) -> dict[str, Any]:
    if not isinstance(check, dict):
        _fail(
            where,
            f'field \'check\' must be an object like {{"kind": "exact", ...}}; got {_json_type(check)}.',
        )
    if "kind" not in check:
        _fail(where, f"field 'check.kind' is missing; set it to one of {list(CHECK_KINDS)}.")
    kind = check["kind"]
    if kind not in CHECK_KINDS:
        _fail(where, f"field 'check.kind' must be one of {list(CHECK_KINDS)}; got {kind!r}. Fix the value.")
    required, optional = _CHECK_PARAMS[kind]
    for name in check:
        if name != "kind" and name not in required and name not in optional:
            _fail(
                where,
                f"field 'check.{name}' is not a parameter of check kind {kind!r}; "
                f"allowed: {list(required + optional)}.",
            )
    for name in required:
        if name not in check:
            _fail(where, f"field 'check.{name}' is required for check kind {kind!r}.")
    validator = _CHECK_VALIDATORS[kind]
    return {"kind": kind, **validator(check, where)}


def _check_exact(check: Mapping[str, Any], where: str) -> dict[str, Any]:
    answer = _require_str(check["answer"], "check.answer", where)
    if not answer.strip():
        _fail(where, "field 'check.answer' is empty; write the expected answer.")
    return {"answer": answer}


def _distractors(check: Mapping[str, Any], where: str, params: dict[str, Any], *, numbers: bool = False) -> None:
    """Validate the optional ``distractors`` (wrong candidates an answer must not name) into ``params``."""
    if "distractors" not in check:
        return
    values = check["distractors"]
    if numbers:
        if not isinstance(values, list) or not values:
            _fail(where, f"field 'check.distractors' must be a non-empty list of numbers; got {_describe(values)}.")
        params["distractors"] = [_require_number(value, "check.distractors", where) for value in values]
        if any(math.isclose(value, params["value"], abs_tol=params["abs_tol"], rel_tol=params["rel_tol"])
               for value in params["distractors"]):
            _fail(where, "field 'check.distractors' holds the gold value itself; remove it.")
        return
    params["distractors"] = _require_str_list(values, "check.distractors", where)
    for index, value in enumerate(params["distractors"]):
        if not value.strip():
            _fail(where, f"field 'check.distractors[{index}]' is empty; remove it or write the wrong candidate.")


def _check_regex_any(check: Mapping[str, Any], where: str) -> dict[str, Any]:
    patterns = _require_str_list(check["patterns"], "check.patterns", where)
    compiled = []
    for index, pattern in enumerate(patterns):
        try:
            compiled.append(re.compile(pattern, re.IGNORECASE))
        except re.error as exc:
            _fail(
                where,
                f"field 'check.patterns[{index}]' is not a valid regular expression ({exc}): {pattern!r}. "
                "Fix the pattern (remember to escape backslashes in JSON).",
            )
    params: dict[str, Any] = {"patterns": patterns}
    if "example" in check:
        example = _require_str(check["example"], "check.example", where)
        if not any(regex.search(example) for regex in compiled):
            _fail(
                where,
                f"field 'check.example' {example!r} matches none of check.patterns; fix the patterns or the example.",
            )
        params["example"] = example
    _distractors(check, where, params)
    if "example" in params and "distractors" in params:
        named = [value for value in params["distractors"] if mentions(example, value)]
        if named:
            _fail(where, f"field 'check.example' {example!r} names the distractor {named[0]!r}; fix one of them.")
    return params


def _check_must_include(check: Mapping[str, Any], where: str) -> dict[str, Any]:
    terms = _require_str_list(check["terms"], "check.terms", where)
    for index, term in enumerate(terms):
        if not term.strip():
            _fail(where, f"field 'check.terms[{index}]' is empty; remove it or write the term.")
    params: dict[str, Any] = {"terms": terms}
    _distractors(check, where, params)
    return params


def _check_json_fields(check: Mapping[str, Any], where: str) -> dict[str, Any]:
    fields = check["fields"]
    if not isinstance(fields, dict) or not fields:
        _fail(
            where,
            'field \'check.fields\' must be a non-empty object like {"name": "Ada", "address.city": "Oslo"}; '
            f"got {_describe(fields)}.",
        )
    for key, expected in fields.items():
        if not key or any(not part for part in key.split(".")):
            _fail(where, f"field 'check.fields' has an invalid key {key!r}; use names or dotted paths (a.b).")
        if not _is_gold_value(expected):
            _fail(
                where,
                f"field 'check.fields.{key}' must be a string, number, boolean, null or a list of those; "
                f"got {_describe(expected)}. Use a dotted key ('{key}.child') for nested objects.",
            )
    return {"fields": fields}


def _check_numeric(check: Mapping[str, Any], where: str) -> dict[str, Any]:
    value = _require_number(check["value"], "check.value", where)
    abs_tol = _require_number(check.get("abs_tol", DEFAULT_ABS_TOL), "check.abs_tol", where)
    rel_tol = _require_number(check.get("rel_tol", DEFAULT_REL_TOL), "check.rel_tol", where)
    for name, tol in (("abs_tol", abs_tol), ("rel_tol", rel_tol)):
        if tol < 0:
            _fail(where, f"field 'check.{name}' must be >= 0; got {tol!r}.")
    params: dict[str, Any] = {"value": value, "abs_tol": abs_tol, "rel_tol": rel_tol}
    _distractors(check, where, params, numbers=True)
    return params


def _check_python_tests(check: Mapping[str, Any], where: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if "entry" in check:
        entry = _require_str(check["entry"], "check.entry", where)
        if not entry.isidentifier():
            _fail(where, f"field 'check.entry' must be a Python name (the function or class the answer "
                         f"defines); got {entry!r}.")
        params["entry"] = entry
    params["tests"] = _require_code(check["tests"], "check.tests", where)
    params["example"] = _require_code(check["example"], "check.example", where)
    if "setup" in check:
        params["setup"] = _require_code(check["setup"], "check.setup", where)
    if "files" in check:
        files = check["files"]
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            _fail(where, f"field 'check.files' must be an object of file name -> text; got {_describe(files)}.")
        for name in files:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*", name) or ".." in name.split("/"):
                _fail(where, f"field 'check.files' has the file name {name!r}; use a relative path of letters, "
                             "digits and _ . - (no '..').")
        params["files"] = dict(files)
    return params


def _check_regex_tests(check: Mapping[str, Any], where: str) -> dict[str, Any]:
    positives = _require_str_list(check["positives"], "check.positives", where)
    negatives = _require_str_list(check["negatives"], "check.negatives", where)
    example = _require_str(check["example"], "check.example", where)
    try:
        compiled = re.compile(example)
    except re.error as exc:
        _fail(where, f"field 'check.example' is not a valid regular expression ({exc}): {example!r}.")
    wrong = [text for text in positives if not compiled.fullmatch(text)]
    wrong += [text for text in negatives if compiled.fullmatch(text)]
    if wrong:
        _fail(where, f"field 'check.example' {example!r} gets {wrong[0]!r} wrong; fix the example or the "
                     "positives/negatives.")
    return {"positives": positives, "negatives": negatives, "example": example}


def _check_sql_result(check: Mapping[str, Any], where: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "setup": _require_code(check["setup"], "check.setup", where),
        "gold": _require_code(check["gold"], "check.gold", where),
    }
    if "probe" in check:
        params["probe"] = _require_code(check["probe"], "check.probe", where)
    ordered = check.get("ordered", False)
    if not isinstance(ordered, bool):
        _fail(where, f"field 'check.ordered' must be true or false; got {_describe(ordered)}.")
    params["ordered"] = ordered
    params["example"] = _require_code(check.get("example", params["gold"]), "check.example", where)
    return params


def _require_code(value: Any, name: str, where: str) -> str:
    text = _require_str(value, name, where)
    if not text.strip():
        _fail(where, f"field {name!r} is empty; write the code.")
    return text


_CHECK_VALIDATORS = {
    "exact": _check_exact,
    "regex_any": _check_regex_any,
    "must_include": _check_must_include,
    "json_fields": _check_json_fields,
    "numeric": _check_numeric,
    "python_tests": _check_python_tests,
    "regex_tests": _check_regex_tests,
    "sql_result": _check_sql_result,
}


def mentions(text: str, token: str) -> bool:
    """Whether ``token`` occurs in ``text`` (NFKC, casefold) and is not glued to other ASCII letters/digits."""
    folded_text = unicodedata.normalize("NFKC", text).casefold()
    folded = unicodedata.normalize("NFKC", token).casefold().strip()
    pattern = rf"(?<![a-z0-9]){re.escape(folded)}(?![a-z0-9])"
    return re.search(pattern, folded_text) is not None


def _validate_strata(strata: Any, where: str) -> dict[str, str | bool | int]:
    if not isinstance(strata, dict):
        _fail(where, f'field \'strata\' must be an object like {{"domain": "legal"}}; got {_json_type(strata)}.')
    for key, value in strata.items():
        if not isinstance(value, (str, bool, int)):
            _fail(
                where,
                f"field 'strata.{key}' must be a string, boolean or integer; got {_describe(value)}. "
                "Bucket continuous values into labels.",
            )
    return dict(strata)


# ----------------------------------------------------------------------------------------------- helpers


def _fail(where: str, message: str) -> NoReturn:
    raise SuiteError(f"{where}: {message} See {_DOCS}.")


def _require_str(value: Any, name: str, where: str) -> str:
    if not isinstance(value, str):
        _fail(where, f"field {name!r} must be a string; got {_describe(value)}.")
    return value


def _require_choice(value: Any, name: str, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        _fail(where, f"field {name!r} must be one of {list(choices)}; got {value!r}. Fix the value.")
    return value


def _require_number(value: Any, name: str, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(where, f"field {name!r} must be a finite number; got {_describe(value)}.")
    return value


def _require_str_list(value: Any, name: str, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(entry, str) for entry in value):
        _fail(where, f"field {name!r} must be a non-empty list of strings; got {_describe(value)}.")
    return list(value)


def _is_gold_value(value: Any, *, nested: bool = False) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list) and not nested:
        return all(_is_gold_value(entry, nested=True) for entry in value)
    return False


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _describe(value: Any) -> str:
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{_json_type(value)} {shown}"
