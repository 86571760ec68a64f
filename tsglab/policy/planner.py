"""The TSG request planner: a complexity score, the task kind, risk factors and an answer skeleton.

Paper scorer (DESIGN.md §1)::

    score = chars / chars_per_unit + marks / marks_per_unit + heavy_weight * heavy,  clipped to [0, score_cap]

``chars`` is the length of the original prompt, ``marks`` counts ``? ？ : ： \\n`` in the original
prompt, ``heavy`` is true when a heavy keyword (English or Chinese) occurs in the normalised prompt.
The length scorer (ablation E) keeps ``chars / chars_per_unit`` only; marks and heavy keywords are still
reported.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from tsglab.errors import SpecError
from tsglab.policy.config import PolicyConfig
from tsglab.policy.detect import _detect_normalized, _normalize_lines, _require_str

__all__ = ["PlanReport", "plan"]

LONG_CONTEXT_CHARS = 800  # risk factor "long_context" above this many characters
MULTI_QUESTION_MARKS = 2  # risk factor "multi_question" at this many question marks or more

_MARKS = ("?", "？", ":", "：", "\n")
_QUESTION_MARKS = ("?", "？")

# (canonical name, substring that must occur, optional regex that confirms it). The substring test is a
# cheap pre-filter; the regex adds word boundaries where a bare substring would over-match
# ("rag" in "storage", "sort" in "resort", "legal" in "illegal").
_START = r"(?<![a-z0-9_])"
_END = r"(?![a-z0-9_])"
_HEAVY_TABLE: tuple[tuple[str, str, re.Pattern[str] | None], ...] = (
    ("legal", "legal", re.compile(rf"{_START}(?:il|para)?legal")),
    ("compliance", "complian", re.compile(rf"{_START}complian(?:ce|t){_END}")),
    ("finance", "financ", re.compile(rf"{_START}financ(?:e|es|ial|ially){_END}")),
    ("medical", "medical", re.compile(rf"{_START}medical(?:ly)?{_END}")),
    ("diagnosis", "diagnos", re.compile(rf"{_START}diagnos(?:is|es|e|ed|ing|tic|tics){_END}")),
    ("complex_algorithm", "complex", re.compile(rf"{_START}complex\s+algorithms?{_END}")),
    ("pseudocode", "pseudo", re.compile(rf"{_START}pseudo[\s-]?code{_END}")),
    ("regex", "reg", re.compile(rf"{_START}(?:regex(?:es|p|ps)?|regular\s+expressions?){_END}")),
    ("multi_step", "multi", re.compile(rf"{_START}multi[\s-]?steps?{_END}")),
    ("rag", "rag", re.compile(rf"{_START}rag{_END}")),
    ("retrieval", "retriev", re.compile(rf"{_START}retrieval{_END}")),
    ("compare", "compar", re.compile(rf"{_START}compar(?:e|es|ed|ing|ison|isons){_END}")),
    ("sort", "sort", re.compile(rf"{_START}sort")),
    ("explain_why", "explain", re.compile(rf"{_START}explain\s+why{_END}")),
    ("legal", "法律", None),
    ("compliance", "合规", None),
    ("finance", "金融", None),
    ("finance", "财务", None),
    ("medical", "医疗", None),
    ("medical", "医学", None),
    ("diagnosis", "诊断", None),
    ("complex_algorithm", "复杂算法", None),
    ("pseudocode", "伪代码", None),
    ("regex", "正则", None),
    ("multi_step", "多步", None),
    ("retrieval", "检索", None),
    ("compare", "比较", None),
    ("compare", "对比", None),
    ("sort", "排序", None),
    ("explain_why", "解释为什么", None),
)


@dataclass(frozen=True)
class PlanReport:
    """What the planner learned about one request.

    ``score`` is the clipped complexity score the router uses; ``raw_score`` is the value before
    clipping. ``risk_factors`` holds ``"json_contract"``, ``"code"``, ``"heavy:<keyword>"``,
    ``"long_context"`` (more than 800 characters) and ``"multi_question"`` (two or more question marks).
    ``skeleton`` is an empty object template of a JSON Schema's required keys, else ``""``.
    """

    score: float
    raw_score: float
    task: str
    chars: int
    marks: int
    heavy: bool
    heavy_keywords: tuple[str, ...]
    risk_factors: tuple[str, ...]
    skeleton: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (tuples become lists)."""
        values = dataclasses.asdict(self)
        values["heavy_keywords"] = list(self.heavy_keywords)
        values["risk_factors"] = list(self.risk_factors)
        return values


def heavy_keywords(folded: str) -> tuple[str, ...]:
    """Canonical names of the heavy keywords in already-normalised text, in table order, no repeats."""
    found: list[str] = []
    for name, needle, confirm in _HEAVY_TABLE:
        if name in found or needle not in folded:
            continue
        if confirm is None or confirm.search(folded):
            found.append(name)
    return tuple(found)


def plan(prompt: str, config: PolicyConfig, *, json_schema: dict | None = None) -> PlanReport:
    """Score a request and detect its task.

    Parameters
    ----------
    prompt
        The request text as the user sent it (marks and length are counted on this original text).
    config
        The policy; ``scorer``, ``chars_per_unit``, ``marks_per_unit``, ``heavy_weight`` and
        ``score_cap`` are used.
    json_schema
        The request's JSON Schema, if any; a schema makes the task ``"json"`` and fills ``skeleton``.
    """
    _validate_plan_inputs(prompt, config, json_schema)
    folded = _normalize_lines(prompt)
    task = _detect_normalized(folded, has_schema=json_schema is not None)
    keywords = heavy_keywords(folded)
    heavy = bool(keywords)
    chars = len(prompt)
    marks = sum(prompt.count(mark) for mark in _MARKS)

    raw_score = chars / config.chars_per_unit
    if config.scorer == "paper":
        raw_score += marks / config.marks_per_unit + (config.heavy_weight if heavy else 0.0)
    score = min(max(raw_score, 0.0), config.score_cap)

    risks: list[str] = []
    if task == "json":
        risks.append("json_contract")
    elif task == "code":
        risks.append("code")
    risks.extend(f"heavy:{name}" for name in keywords)
    if chars > LONG_CONTEXT_CHARS:
        risks.append("long_context")
    if sum(prompt.count(mark) for mark in _QUESTION_MARKS) >= MULTI_QUESTION_MARKS:
        risks.append("multi_question")

    return PlanReport(
        score=score,
        raw_score=raw_score,
        task=task,
        chars=chars,
        marks=marks,
        heavy=heavy,
        heavy_keywords=keywords,
        risk_factors=tuple(risks),
        skeleton=json_skeleton(json_schema) if json_schema is not None else "",
    )


def json_skeleton(schema: dict) -> str:
    """An empty template of the schema's required keys: ``{"name": …, "age": …}``.

    Without ``required`` the declared ``properties`` are used; an array schema gives ``[…]``; a schema
    with neither gives ``""``.
    """
    keys = schema.get("required") or list(schema.get("properties") or {})
    if keys:
        return "{" + ", ".join(f"{json.dumps(str(key), ensure_ascii=False)}: …" for key in keys) + "}"
    if schema.get("type") == "array":
        return "[…]"
    if schema.get("type") == "object":
        return "{}"
    return ""


def _validate_plan_inputs(prompt: object, config: object, json_schema: object) -> None:
    _require_str(prompt, "prompt")
    if not isinstance(config, PolicyConfig):
        raise SpecError(
            f"`config` must be a PolicyConfig; got {type(config).__name__}. "
            "Use PolicyConfig.from_dict(...) to build one from a mapping."
        )
    if json_schema is not None and not isinstance(json_schema, dict):
        raise SpecError(
            f"`json_schema` must be a dict (a JSON Schema) or None; got {type(json_schema).__name__}. "
            "Parse a schema string with json.loads first."
        )
    if json_schema is not None:
        required = json_schema.get("required", [])
        if not isinstance(required, list):
            raise SpecError(
                f"`json_schema['required']` must be a list of key names; got {type(required).__name__}."
            )
    for name in ("chars_per_unit", "marks_per_unit", "heavy_weight", "score_cap"):
        value = getattr(config, name)
        if not math.isfinite(value):
            raise SpecError(f"`config.{name}` must be finite; got {value}.")
    if config.score_cap < 0:
        raise SpecError(f"`config.score_cap` must be >= 0; got {config.score_cap}. The paper uses 1.6.")
