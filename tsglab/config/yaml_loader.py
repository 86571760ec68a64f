"""The strict YAML reader of specs, comparison files and ``--set`` values.

``yaml.safe_load`` accepts far more than a spec can mean, and says nothing when it guesses:

* YAML 1.1 scalars: ``no``/``off``/``yes``/``on`` become booleans (so ``on:`` is the key ``True``), ``1:30``
  becomes 90, ``010`` becomes 8, ``2024-01-01`` becomes a ``date``. Here scalars follow the YAML 1.2 core
  schema (booleans are ``true``/``false`` only, numbers are decimal, ``0x``/``0o`` prefixed or ``.inf``/
  ``.nan``; anything else is a string), and a date is refused with the line and "quote it".
* A duplicate key silently wins: refused with both lines.
* Deep nesting ends in ``RecursionError``; a self-referencing alias loops; a few aliases expand to
  millions of values ("billion laughs"): all refused with the line.
* Non-string keys, ``!!binary``, ``!!set``, ``!!omap`` and other non-JSON values cannot be stored in
  ``run.json``: refused with the line.

Every error is a :class:`~tsglab.errors.SpecError` naming ``where`` (the file, or ``--set KEY=VALUE``),
the 1-based line and the fix. Non-finite numbers (``.inf``, ``.nan``) are read, and refused by the field
that receives them, which knows its key.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

import yaml

from tsglab.errors import SpecError

__all__ = ["MAX_DEPTH", "MAX_VALUES", "load_yaml"]

MAX_DEPTH = 32
"""Deepest nesting of mappings and lists accepted (a spec needs 4; backend options a few more)."""

MAX_VALUES = 100_000
"""Most values a document may hold once aliases are expanded."""

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_TIMESTAMP = re.compile(
    r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
    r"(?:(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)?)$"
)
_REFUSED_TAGS = {
    "tag:yaml.org,2002:binary": "!!binary",
    "tag:yaml.org,2002:set": "!!set",
    "tag:yaml.org,2002:omap": "!!omap",
    "tag:yaml.org,2002:pairs": "!!pairs",
}


class _Resolver(yaml.resolver.BaseResolver):
    """The YAML 1.2 core schema's implicit scalars, plus timestamps (resolved only to be refused)."""


for _tag, _regexp, _first in (
    ("tag:yaml.org,2002:bool", _BOOL, "tTfF"),
    ("tag:yaml.org,2002:int", _INT, "-+0123456789"),
    ("tag:yaml.org,2002:float", _FLOAT, "-+0123456789."),
    ("tag:yaml.org,2002:null", _NULL, ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:timestamp", _TIMESTAMP, "0123456789"),
    ("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), "<"),
):
    _Resolver.add_implicit_resolver(_tag, _regexp, list(_first))


class _StrictLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    yaml.constructor.SafeConstructor,
    _Resolver,
):
    def __init__(self, stream: str, where: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)
        self.where = where
        self._depth = 0

    def fail(self, node: yaml.Node, message: str) -> NoReturn:
        raise SpecError(f"{self.where}:{node.start_mark.line + 1}: {message}")

    # Depth is bounded while composing: PyYAML recurses once per level and would hit RecursionError.
    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()
                raise SpecError(f"{self.where}:{event.start_mark.line + 1}: the document is nested deeper than "
                                f"{MAX_DEPTH} levels; flatten it (a spec needs a handful of levels).")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                shown = "null" if key is None else str(key).lower() if isinstance(key, bool) else repr(key)
                self.fail(key_node, f"mapping keys must be strings; got {shown}. Quote it: '{shown}': ...")
            if key in seen:
                self.fail(key_node, f"duplicate key '{key}' (first on line {seen[key]}); YAML would silently keep "
                                    "the last one: remove one.")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        sign = -1 if text.startswith("-") else 1
        digits = text.lstrip("+-")
        if digits.startswith(("0x", "0o")):
            return sign * int(digits, 0)
        if len(digits) > 100:
            self.fail(node, f"the integer {digits[:20]}... has {len(digits)} digits; no spec value is that large.")
        return sign * int(digits, 10)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode, values: object = None) -> NoReturn:
        text = str(node.value)
        self.fail(node, f"{text} is read as a YAML date, and no spec value is a date; quote it: '{text}'.")

    def construct_undefined(self, node: yaml.Node) -> NoReturn:
        self.fail(node, f"the tag {node.tag} is not allowed in a spec (values must be plain strings, numbers, "
                        "booleans, null, lists or mappings); remove the tag.")

    def construct_refused(self, node: yaml.Node) -> NoReturn:
        name = _REFUSED_TAGS.get(node.tag, node.tag)
        self.fail(node, f"{name} values are not allowed in a spec (they cannot be stored in run.json); write a "
                        "plain string, number, list or mapping.")


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _StrictLoader.construct_yaml_timestamp)
for _refused in _REFUSED_TAGS:
    _StrictLoader.add_constructor(_refused, _StrictLoader.construct_refused)
_StrictLoader.add_constructor(None, _StrictLoader.construct_undefined)


def load_yaml(text: str, where: str) -> Any:
    """Parse one YAML document strictly (see the module docstring); ``where`` starts every error message.

    Returns plain JSON-like values: dict (string keys), list, str, int, float, bool, None.
    """
    loader = _StrictLoader(text, where)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, where)
        return loader.construct_document(node)
    except yaml.composer.ComposerError as exc:
        if "expected a single document" in str(exc):
            mark = exc.problem_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            raise SpecError(f"{where}{line}: found a second YAML document ('---'); a spec is one YAML document: "
                            "remove the '---' line and what follows, or merge the two.") from None
        raise _syntax_error(exc, where) from None
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, where) from None
    finally:
        loader.dispose()


def _syntax_error(exc: yaml.YAMLError, where: str) -> SpecError:
    mark = getattr(exc, "problem_mark", None)
    line = f":{mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{context}, {problem}" if context else problem
    return SpecError(f"{where}{line}: not valid YAML ({detail}); fix the syntax at that line (indent with "
                     "spaces, close every bracket and quote).")


def _check_size(root: yaml.Node, where: str) -> None:
    """Refuse self-referencing aliases, and aliases that expand the document beyond :data:`MAX_DEPTH`
    levels or :data:`MAX_VALUES` values (composing bounded the depth of what is written, not of what
    the aliases expand to)."""
    known: dict[int, tuple[int, int]] = {}  # id(node) -> (values, height)
    in_progress: set[int] = set()

    def fail(node: yaml.Node, message: str) -> NoReturn:
        raise SpecError(f"{where}:{node.start_mark.line + 1}: {message}")

    def measure(node: yaml.Node, level: int) -> tuple[int, int]:
        key = id(node)
        if key in in_progress:
            fail(node, "an alias refers to itself (a recursive structure cannot be a spec value); replace the "
                       "alias by the value it stands for.")
        if key not in known:
            if level > MAX_DEPTH:
                fail(node, f"the document is nested deeper than {MAX_DEPTH} levels once its aliases are expanded; "
                           "flatten it.")
            in_progress.add(key)
            children: list[yaml.Node] = []
            if isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            elif isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            measured = [measure(child, level + 1) for child in children]
            in_progress.discard(key)
            known[key] = (1 + sum(m[0] for m in measured), 1 + max((m[1] for m in measured), default=0))
        values, height = known[key]
        if level + height - 1 > MAX_DEPTH:
            fail(node, f"the document is nested deeper than {MAX_DEPTH} levels once its aliases are expanded; "
                       "flatten it.")
        if values > MAX_VALUES:
            fail(node, f"the document is too large once its aliases are expanded (more than {MAX_VALUES} values); "
                       "write the values out or use fewer aliases.")
        return values, height

    measure(root, 1)
