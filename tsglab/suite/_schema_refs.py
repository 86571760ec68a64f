"""JSON Schema references in a suite: local only, resolvable, never fetched.

A suite's ``json_schema`` is validated while a run goes; a ``$ref`` to ``http://``, ``https://``,
``file://`` or any other non-local place would make the validator fetch it (no timeout, a request to a
host the suite chose). So a suite may only use references inside its own schema (``#``, ``#/$defs/x``,
``#anchor``); every one of them must resolve when the suite is read; and validators are built on
:func:`tsglab.jsoncontract.no_retrieval_registry`, which refuses to retrieve anything.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from tsglab.jsoncontract import no_retrieval_registry

REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# Keywords whose values are data, not subschemas: a "$ref" string inside them is not a reference.
_DATA_KEYWORDS = ("const", "enum", "examples", "default")
_PROBES: tuple[Any, ...] = (None, {}, [], "", 0, 0.5, True)




def reference_problem(schema: dict[str, Any]) -> str:
    """An empty string when every reference of ``schema`` is local and resolves, else what is wrong and where."""
    anchors: set[str] = set()
    refs: list[tuple[str, str, Any, str]] = []  # keyword, value, enclosing resource, location

    def walk(node: Any, resource: Any, location: str) -> None:
        if isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, resource, f"{location}/{index}")
            return
        if not isinstance(node, dict):
            return
        if isinstance(node.get("$id"), str) and location:
            resource = node
        for keyword in ("$anchor", "$dynamicAnchor"):
            if isinstance(node.get(keyword), str):
                anchors.add(node[keyword])
        for key, value in node.items():
            if key in REF_KEYWORDS and isinstance(value, str):
                refs.append((key, value, resource, f"{location}/{key}".lstrip("/")))
            elif key not in _DATA_KEYWORDS:
                walk(value, resource, f"{location}/{key}")

    walk(schema, schema, "")
    for keyword, value, resource, location in refs:
        if not value.startswith("#"):
            return (f"{keyword} {value!r} is not a local reference; only local references ('#/$defs/name', "
                    f"'#anchor') are allowed and nothing is ever fetched: copy the referenced schema under "
                    f"$defs and point to it (at {location})")
        fragment = urllib.parse.unquote(value[1:])
        if fragment.startswith("/") and not _pointer_resolves(resource, fragment):
            return (f"{keyword} {value!r} does not resolve inside the schema; add the definition it points "
                    f"to or fix the path (at {location})")
        if fragment and not fragment.startswith("/") and fragment not in anchors:
            return (f"{keyword} {value!r} does not resolve: no $anchor {fragment!r} in the schema; add the "
                    f"anchor or fix the name (at {location})")
    return _probe(schema) if refs else ""


def _pointer_resolves(document: Any, pointer: str) -> bool:
    node = document
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True


def _probe(schema: dict[str, Any]) -> str:
    """Validate a few small values: a reference cycle that consumes no input recurses forever."""
    import jsonschema
    import referencing.exceptions  # installed with jsonschema; imported here, where it is needed

    validator = jsonschema.Draft202012Validator(schema, registry=no_retrieval_registry())
    try:
        for value in _PROBES:
            validator.is_valid(value)
    except RecursionError:
        return ("its $ref loops: validating follows references forever without reaching a constraint; point "
                "the reference at a schema that constrains the value")
    except referencing.exceptions.Unresolvable as exc:
        return f"a reference does not resolve ({exc}); fix it or define what it points to"
    return ""
