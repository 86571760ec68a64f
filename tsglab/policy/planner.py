"""The TSG request planner: a complexity score, the task kind and risk factors.

Paper scorer (DESIGN.md §1)::

    score = chars / chars_per_unit + marks / marks_per_unit + heavy_weight * heavy,  clipped to [0, score_cap]

``chars`` is the length of the original prompt, ``marks`` counts ``? ？ : ： \\n`` in the original
prompt, ``heavy`` is true when a heavy keyword occurs: English keywords as whole words in any case or
width ("RAG" but not "storage", "sorting" but not "resort"; the words of "multi-step", "explain why"
may be separated by any non-word characters), Chinese keywords as substrings. The length scorer
(ablation E) keeps ``chars / chars_per_unit`` only; marks and heavy keywords are still reported.

Planner and router together cost ~20 µs for a short request and 50–100 µs for a 4 000-character one
(``benchmarks/bench_policy.py``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

from tsglab.config import PolicyConfig
from tsglab.errors import SpecError
from tsglab.policy.detect import (
    DETECT_VOCABULARY,
    Analysis,
    analyse,
    detect_analysed,
    keyword_scan,
    require_str,
)

__all__ = ["PlanReport", "heavy_keywords", "plan"]

_NOT_MARKS = bytes(byte for byte in range(256) if byte not in b"?:\n")  # bytes.translate's delete set
LONG_CONTEXT_CHARS = 800  # risk factor "long_context" above this many characters
MULTI_QUESTION_MARKS = 2  # risk factor "multi_question" at this many question marks or more


# Heavy keywords, by canonical name (the order of ``heavy_keywords``). English keywords are whole ASCII
# words (so "rag" is not found in "storage", nor "sort" in "resort"); each entry lists the word forms
# that count, and two-word keywords name a first word and a pattern matched where it occurs. Chinese
# keywords are substrings (Chinese has no spaces); _HEAVY_ZH is their only table: the analysis scans
# for them through keyword_scan(_HEAVY_ZH).
_HEAVY_WORDS: tuple[tuple[str, frozenset[bytes]], ...] = tuple(
    (name, frozenset(form.encode() for form in forms.split()))
    for name, forms in (
        ("legal", "legal legally legality illegal illegally paralegal paralegals"),
        ("compliance", "compliance compliant noncompliance"),
        ("finance", "finance finances financial financially financing"),
        ("medical", "medical medically"),
        ("diagnosis", "diagnosis diagnoses diagnose diagnosed diagnosing diagnostic diagnostics"),
        ("complex_algorithm", ""),
        ("pseudocode", "pseudocode"),
        ("regex", "regex regexes regexp regexps"),
        ("multi_step", "multistep multisteps"),
        ("rag", "rag"),
        ("retrieval", "retrieval"),
        ("compare", "compare compares compared comparing comparison comparisons"),
        ("sort", "sort sorts sorted sorting sorter sorters sortable"),
        ("explain_why", ""),
    )
)
# Two-word keywords: (first word, pattern over the request's word bytes, where case is lowered and
# every non-word character is a space). The patterns start with the literal first word, so CPython
# finds candidates with a fast substring search; the word start is checked after.
_HEAVY_PHRASES: dict[str, tuple[bytes, re.Pattern[bytes]]] = {
    "complex_algorithm": (b"complex", re.compile(rb"complex +algorithms?(?![a-z0-9_])")),
    "pseudocode": (b"pseudo", re.compile(rb"pseudo *code(?![a-z0-9_])")),
    "regex": (b"regular", re.compile(rb"regular +expressions?(?![a-z0-9_])")),
    "multi_step": (b"multi", re.compile(rb"multi *steps?(?![a-z0-9_])")),
    # "explain why", "explain to me why", "explain briefly why"
    "explain_why": (b"explain", re.compile(rb"explain +(?:[a-z]+ +){0,3}?why(?![a-z0-9_])")),
}
_HEAVY_ZH: dict[str, str] = {
    "法律": "legal",
    "合规": "compliance",
    "金融": "finance",
    "财务": "finance",
    "医疗": "medical",
    "医学": "medical",
    "诊断": "diagnosis",
    "复杂算法": "complex_algorithm",
    "伪代码": "pseudocode",
    "正则": "regex",
    "多步": "multi_step",
    "检索": "retrieval",
    "比较": "compare",
    "对比": "compare",
    "排序": "sort",
    "解释为什么": "explain_why",
    "解释一下为什么": "explain_why",
    "解释下为什么": "explain_why",
}
_HEAVY_ORDER = tuple(name for name, _forms in _HEAVY_WORDS)
_HEAVY_FORM_NAMES: dict[bytes, str] = {form: name for name, forms in _HEAVY_WORDS for form in forms}
_HEAVY_FORMS = frozenset(_HEAVY_FORM_NAMES)
_HEAVY_PHRASE_FIRSTS: dict[bytes, tuple[str, re.Pattern[bytes]]] = {
    first: (name, pattern) for name, (first, pattern) in _HEAVY_PHRASES.items()
}
_PLANNER_VOCABULARY = DETECT_VOCABULARY.union(
    *(forms for _name, forms in _HEAVY_WORDS), (first for first, _phrase in _HEAVY_PHRASES.values())
)
_PLANNER_ZH_SCAN = keyword_scan(_HEAVY_ZH)

# Ordinary words that look like heavy keywords (issue 11): "what sort of", "sort out", a rag (cloth),
# 比较 meaning "rather" (今天比较冷吗), 对比度 (contrast), 多步行 (walk more), 正则化 (regularisation).
_SORT_NOT_HEAVY_AFTER = re.compile(rb" +(?:of|out)(?![a-z0-9_])")
# A rag (cloth) is "a rag", "an old rag", "a damp rag"; RAG in capitals or before "pipeline" is retrieval.
_RAG_CLOTH_BEFORE = re.compile(
    rb"(?:^|(?<![a-z0-9_]))(?:a|an|the|my|this|that|old|clean|dirty|damp|wet|dry|oily|greasy|cotton|"
    rb"microfiber|microfibre|soft|cleaning|dust|dusting|kitchen|paint|red|white) +$"
)
_RAG_CONTEXT_AFTER = re.compile(
    rb" +(?:pipelines?|systems?|models?|apps?|applications?|chatbots?|setups?|architectures?|stacks?|"
    rb"approach|approaches|retrieval|evaluation|evals?|frameworks?|agents?)(?![a-z0-9_])"
)
# After adverbial 比较 comes an adjective or a verb of feeling ("比较冷", "比较适合", "比较喜欢"); after the
# verb comes what is compared ("比较一下", "比较两种…", "比较北京和上海") or the end of the clause.
_BIJIAO_ADVERB_NEXT = frozenset(
    "冷热暖凉好坏多少大小难易容简复快慢贵便宜高低长短远近重轻合适常喜忙累安稳方麻严流清明满直怕淡辣咸甜酸苦香"
    "新旧老年早晚特奇靠划实熟担关在倾偏接困理舒正普成完均准可弱强差深浅宽窄胖瘦乱干温厚薄亮暗硬软稀少顺紧松"
    "友热懒勤乖内外害敏随保激积消活"
)
_BIJIAO_COMPARED_PAIRS = re.compile(
    r"大小|长短|高低|好坏|优劣|异同|新旧|快慢|多少|轻重|远近|强弱|真假|利弊|得失|贵贱|冷热"
)
_ZH_NOT_HEAVY_AFTER: dict[str, str] = {"对比": "度色", "多步": "行", "正则": "化"}


@dataclass(frozen=True)
class PlanReport:
    """What the planner learned about one request.

    ``score`` is the clipped complexity score the router uses; ``raw_score`` is the value before
    clipping. ``risk_factors`` holds ``"json_contract"``, ``"code"``, ``"heavy:<keyword>"``,
    ``"long_context"`` (more than 800 characters) and ``"multi_question"`` (two or more question marks).
    """

    score: float
    raw_score: float
    task: str
    chars: int
    marks: int
    heavy: bool
    heavy_keywords: tuple[str, ...]
    risk_factors: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (tuples become lists)."""
        values = dataclasses.asdict(self)
        values["heavy_keywords"] = list(self.heavy_keywords)
        values["risk_factors"] = list(self.risk_factors)
        return values


def heavy_keywords(text: str) -> tuple[str, ...]:
    """Canonical names of the heavy keywords in ``text`` (any case or width), in table order, no repeats."""
    require_str(text, "text")
    return _heavy_keywords(analyse(text, _PLANNER_VOCABULARY, _PLANNER_ZH_SCAN))


def _word_positions(word_bytes: bytes, word: bytes) -> list[int]:
    """Start of every occurrence of ``word`` as a whole word of ``word_bytes`` (non-word bytes are spaces)."""
    positions = []
    size = len(word)
    position = word_bytes.find(word)
    while position != -1:
        end = position + size
        if (position == 0 or word_bytes[position - 1] == 32) and (end == len(word_bytes) or word_bytes[end] == 32):
            positions.append(position)
        position = word_bytes.find(word, end)
    return positions


def _heavy_sense(request: Analysis, form: bytes) -> bool:
    """Whether a heavy word form is used in its heavy sense somewhere in the request."""
    if form not in (b"sort", b"sorts", b"sorted", b"rag"):
        return True
    word_bytes = request.word_bytes
    for position in _word_positions(word_bytes, form):
        end = position + len(form)
        if form == b"rag":
            if (
                request.text[position:end] == "RAG"
                or _RAG_CONTEXT_AFTER.match(word_bytes, end)
                or not _RAG_CLOTH_BEFORE.search(word_bytes, max(0, position - 16), position)
            ):
                return True
        elif not _SORT_NOT_HEAVY_AFTER.match(word_bytes, end):
            return True
    return False


def _zh_heavy_sense(text: str, keyword: str, position: int) -> bool:
    end = position + len(keyword)
    following = text[end : end + 1]
    if keyword in _ZH_NOT_HEAVY_AFTER:
        return not following or following not in _ZH_NOT_HEAVY_AFTER[keyword]
    if keyword == "比较":
        if _BIJIAO_COMPARED_PAIRS.match(text, end):
            return True
        return not following or following not in _BIJIAO_ADVERB_NEXT
    return True


def _heavy_keywords(request: Analysis) -> tuple[str, ...]:
    words = request.words
    found = {_HEAVY_FORM_NAMES[form] for form in words & _HEAVY_FORMS if _heavy_sense(request, form)}
    for first in words & _HEAVY_PHRASE_FIRSTS.keys():
        name, pattern = _HEAVY_PHRASE_FIRSTS[first]
        if name not in found and _has_phrase(request.word_bytes, pattern):
            found.add(name)
    for keyword, position in request.zh_hits:
        zh_name = _HEAVY_ZH.get(keyword)  # None for the detector's own keywords
        if zh_name is not None and zh_name not in found and _zh_heavy_sense(request.text, keyword, position):
            found.add(zh_name)
    if not found:
        return ()
    return tuple(name for name in _HEAVY_ORDER if name in found)


def _has_phrase(word_bytes: bytes, pattern: re.Pattern[bytes]) -> bool:
    for match in pattern.finditer(word_bytes):
        start = match.start()
        if start == 0 or word_bytes[start - 1] == 32:  # 32: b" ", the only non-word byte
            return True
    return False


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
        The request's JSON Schema, if any; a schema makes the task ``"json"``.
    """
    _validate_plan_inputs(prompt, config, json_schema)
    request = analyse(prompt, _PLANNER_VOCABULARY, _PLANNER_ZH_SCAN)
    task = detect_analysed(request, has_schema=json_schema is not None)
    keywords = _heavy_keywords(request)
    heavy = bool(keywords)
    chars = len(prompt)
    # request.plain is the prompt with "？" → "?" and "：" → ":" and no other change to these marks; one
    # pass keeps only the marks (three str.count calls cost twice as much on a long prompt).
    mark_bytes = request.plain.encode("ascii", "ignore").translate(None, _NOT_MARKS)
    marks = len(mark_bytes)
    questions = mark_bytes.count(b"?")

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
    if questions >= MULTI_QUESTION_MARKS:
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
    )


def _validate_plan_inputs(prompt: object, config: object, json_schema: object) -> None:
    require_str(prompt, "prompt")
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
            raise SpecError(f"`json_schema['required']` must be a list of key names; got {type(required).__name__}.")
    for name in ("chars_per_unit", "marks_per_unit", "heavy_weight", "score_cap"):
        value = getattr(config, name)
        if not math.isfinite(value):
            raise SpecError(f"`config.{name}` must be finite; got {value}.")
    if config.score_cap < 0:
        raise SpecError(f"`config.score_cap` must be >= 0; got {config.score_cap}. The paper uses 1.6.")
