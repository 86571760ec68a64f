"""The labelled enforcement suite: violating and benign texts per guardian class, in English and Chinese.

``load_enforcement_suite()`` reads the bundled file (``tsglab/suite/enforcement.jsonl``, written by
``tools/generate_enforcement_suite.py``) or a file of your own in the same format
(``docs/enforcement-suite-format.md``). Every problem raises :class:`~tsglab.errors.SuiteError`
naming the file, the 1-based line, the field and the fix.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import pathlib
from dataclasses import dataclass
from typing import Any, NoReturn

from tsglab.errors import SuiteError

__all__ = ["ENFORCEMENT_GUARDIANS", "EnforcementCase", "enforcement_suite_path", "load_enforcement_suite"]

# The guardian classes a case may be labelled for (tsglab.policy.guardians.GUARDIANS has one of each).
ENFORCEMENT_GUARDIANS: tuple[str, ...] = ("pii", "secrets", "code", "sql", "refusal", "length", "format")
_LANGS = ("en", "zh")
_LABELS = ("violation", "benign")
_FIELDS = ("id", "guardian", "lang", "label", "hard_negative", "category", "text", "note")
_DOCS = "docs/enforcement-suite-format.md"


@dataclass(frozen=True)
class EnforcementCase:
    """One labelled text: ``violation`` is what a careful reader says the guardian should report."""

    id: str
    guardian: str
    lang: str
    violation: bool
    hard_negative: bool
    category: str
    text: str
    note: str


def enforcement_suite_path() -> pathlib.Path:
    """Path of the enforcement suite shipped with tsglab."""
    resource = importlib.resources.files("tsglab.suite").joinpath("enforcement.jsonl")
    if not isinstance(resource, pathlib.Path):
        raise SuiteError(f"the bundled enforcement suite is not a plain file ({resource!r}); install tsglab from a "
                         "directory or wheel, or pass a path to load_enforcement_suite().")
    return resource


def load_enforcement_suite(path: str | os.PathLike[str] | None = None) -> list[EnforcementCase]:
    """Read and validate an enforcement suite (JSONL); ``None`` reads the bundled one."""
    source = enforcement_suite_path() if path is None else pathlib.Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError(f"enforcement suite '{source}' does not exist; check the path.") from None
    except IsADirectoryError:
        raise SuiteError(f"enforcement suite path '{source}' is a directory; pass a .jsonl file.") from None
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{source}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8.") from None
    cases: list[EnforcementCase] = []
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{source}:{lineno}"
        case = _build_case(_parse(stripped, where), where)
        if case.id in first_line:
            _fail(where, f"field 'id' value {case.id!r} is already used on line {first_line[case.id]}; "
                         "ids must be unique. Regenerate the file or rename one case.")
        first_line[case.id] = lineno
        cases.append(case)
    if not cases:
        raise SuiteError(f"{source}: the file holds no cases; add one JSON object per line (see {_DOCS}).")
    return cases


def _parse(line: str, where: str) -> dict[str, Any]:
    try:
        raw = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        _fail(where, f"the line is not valid JSON ({getattr(exc, 'msg', exc)}); write one JSON object per line.")
    if not isinstance(raw, dict):
        _fail(where, f"expected a JSON object, got {type(raw).__name__}; write one object per line.")
    return raw


def _build_case(raw: dict[str, Any], where: str) -> EnforcementCase:
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        _fail(where, f"unknown field {unknown[0]!r}; the fields are {', '.join(_FIELDS)}.")
    missing = [name for name in _FIELDS if name not in raw]
    if missing:
        _fail(where, f"field {missing[0]!r} is missing; every case has {', '.join(_FIELDS)}.")
    for name in ("id", "guardian", "lang", "label", "category", "text", "note"):
        if not isinstance(raw[name], str):
            _fail(where, f"field {name!r} must be a string; got {type(raw[name]).__name__} {raw[name]!r:.40}.")
    if not isinstance(raw["hard_negative"], bool):
        _fail(where, f"field 'hard_negative' must be true or false; got {raw['hard_negative']!r:.40}.")
    if not raw["id"].strip():
        _fail(where, "field 'id' is empty; give each case a unique id.")
    for name, choices in (("guardian", ENFORCEMENT_GUARDIANS), ("lang", _LANGS), ("label", _LABELS)):
        if raw[name] not in choices:
            _fail(where, f"field {name!r} must be one of {', '.join(choices)}; got {raw[name]!r:.40}.")
    if raw["hard_negative"] and raw["label"] != "benign":
        _fail(where, "field 'hard_negative' is true on a violation; only benign cases are hard negatives.")
    return EnforcementCase(id=raw["id"], guardian=raw["guardian"], lang=raw["lang"],
                           violation=raw["label"] == "violation", hard_negative=raw["hard_negative"],
                           category=raw["category"], text=raw["text"], note=raw["note"])


def _fail(where: str, message: str) -> NoReturn:
    raise SuiteError(f"{where}: {message} See {_DOCS}.")
