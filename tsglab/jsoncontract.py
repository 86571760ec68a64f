"""The JSON output contract: extract a JSON value from model text, parse it, validate a JSON Schema.

Shared by the executor's runtime check (no gold data) and the suite's quality checks (with gold data),
so "json_ok" means the same thing everywhere. It sits at the bottom of the layers (it imports nothing
from tsglab) because the suite, below the policy, needs it too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["ContractResult", "check_json_contract", "extract_json_text", "no_retrieval_registry"]

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class ContractResult:
    """Outcome of a JSON contract check."""

    ok: bool
    value: Any = None
    error: str = ""


def extract_json_text(text: str) -> str | None:
    """Return the JSON candidate in ``text``: a fenced block, else the outermost ``{…}`` or ``[…]`` span."""
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    stripped = text.strip()
    if not stripped:
        return None
    starts = [i for i in (stripped.find("{"), stripped.find("[")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    closer = "}" if stripped[start] == "{" else "]"
    end = stripped.rfind(closer)
    if end <= start:
        return None
    return stripped[start : end + 1]


def _refuse_retrieval(uri: str) -> Any:
    import referencing.exceptions

    raise referencing.exceptions.NoSuchResource(uri)


def no_retrieval_registry() -> Any:
    """A ``referencing.Registry`` that never retrieves a resource: a reference outside the schema is an
    error, never a download (jsonschema's default fetches ``http(s)://`` references, with no timeout)."""
    import referencing

    return referencing.Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


def check_json_contract(text: str, schema: dict | None = None) -> ContractResult:
    """Parse ``text`` as JSON (fences and surrounding prose tolerated) and validate it against ``schema``."""
    candidate = extract_json_text(text)
    if candidate is None:
        return ContractResult(False, error="no JSON object or array in the answer")
    try:
        value = json.loads(candidate)
    except json.JSONDecodeError as exc:
        return ContractResult(False, error=f"invalid JSON: {exc.msg} at char {exc.pos}")
    if schema is not None:
        import jsonschema
        import referencing.exceptions

        validator = jsonschema.Draft202012Validator(schema, registry=no_retrieval_registry())
        try:
            errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        except referencing.exceptions.Unresolvable as exc:
            return ContractResult(False, value=value, error=f"the schema's reference {exc} does not resolve "
                                                            "(references outside the schema are not fetched)")
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.path) or "<root>"
            return ContractResult(False, value=value, error=f"schema violation at {where}: {first.message}")
    return ContractResult(True, value=value)
