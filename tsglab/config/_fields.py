"""Strict field types for the config dataclasses: one check, used by every spec section.

YAML and papermill hand over whatever was written; a dataclass would store ``"no"`` in a ``bool`` field
(truthy: the feature turns on) and ``2.5`` in an ``int`` field. :func:`check_fields` refuses every value
whose type is not the field's, naming the key and the fix. Integers are accepted where a float is
expected (and kept as they are, so spec hashes do not change); booleans are never numbers; floats
must be finite.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import typing
from collections.abc import Mapping
from typing import Any

from tsglab.errors import SpecError

MAX_OPTION_DEPTH = 16


def describe(value: Any) -> str:
    """A value as the user wrote it, with its YAML type: ``the string 'no'``, ``the number 2.5``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, numbers.Number):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_fields(cls: type, values: Mapping[str, Any], prefix: str, *, choices: tuple[str, ...] = ()) -> None:
    """Raise :class:`SpecError` naming ``prefix.key`` for the first value whose type is not its field's.

    ``choices`` names string fields that the class checks against its list of values (its message names
    them, which says more than "must be a string").
    """
    hints = _hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in values and field.name not in choices:
            check_value(values[field.name], hints[field.name], f"{prefix}.{field.name}" if prefix else field.name)


def check_value(value: Any, expected: Any, key: str) -> None:
    """Check one value against a type annotation (the subset the config dataclasses use)."""
    leaf = key.rsplit(".", 1)[-1]
    origin = typing.get_origin(expected)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        options = typing.get_args(expected)
        if value is None and type(None) in options:
            return
        expected = next(t for t in options if t is not type(None))
        origin = typing.get_origin(expected)
    if expected is bool:
        if not isinstance(value, bool):
            raise SpecError(f"{key} must be true or false; got {describe(value)}. Write {leaf}: true or "
                            f"{leaf}: false, unquoted.")
    elif expected is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise SpecError(f"{key} must be a whole number; got {describe(value)}. Write an integer such as "
                            f"{leaf}: 3, unquoted.")
    elif expected is float:
        check_number(value, key)
    elif origin is typing.Literal:
        allowed = typing.get_args(expected)
        if not isinstance(value, str) or value not in allowed:
            raise SpecError(f"{key} must be one of {list(allowed)}; got {describe(value)}.")
    elif expected is str:
        if not isinstance(value, str):
            raise SpecError(f"{key} must be a string; got {describe(value)}. To keep it as text, quote it: "
                            f"{leaf}: \"...\".")
    elif origin is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
            raise SpecError(f"{key} must be a list of strings; got {describe(value)}. Write {leaf}: [a, b] "
                            "(one name is still a list: [a]).")
    elif origin is dict:
        check_options(value, key)


def check_number(value: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpecError(f"{key} must be a number; got {describe(value)}. Write it unquoted, e.g. "
                        f"{key.rsplit('.', 1)[-1]}: 1.5.")
    if not math.isfinite(value):
        raise SpecError(f"{key} must be a finite number; got {value!r}. .inf and .nan are not allowed: write a "
                        "finite value.")


def check_options(value: Any, key: str, depth: int = 0) -> None:
    """A free-form mapping (backend options): string keys, JSON values, finite numbers, bounded depth."""
    if not isinstance(value, Mapping):
        raise SpecError(f"{key} must be a mapping; got {describe(value)}. Write {key.rsplit('.', 1)[-1]}: "
                        "{name: value, ...}.")
    for name, item in value.items():
        if not isinstance(name, str):
            raise SpecError(f"{key}: keys must be strings; got {describe(name)}. Quote it.")
        _check_json(item, f"{key}.{name}", depth + 1)


def _check_json(value: Any, key: str, depth: int) -> None:
    if depth > MAX_OPTION_DEPTH:
        raise SpecError(f"{key}: the value is nested deeper than {MAX_OPTION_DEPTH} levels; flatten it.")
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise SpecError(f"{key} must be a finite number; got {value!r}. .inf and .nan are not allowed: "
                            "write a finite value.")
        return
    if isinstance(value, Mapping):
        check_options(value, key, depth)
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json(item, f"{key}[{index}]", depth + 1)
        return
    raise SpecError(f"{key} must be a string, number, boolean, null, list or mapping; got {describe(value)}.")
