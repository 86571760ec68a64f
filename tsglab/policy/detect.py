"""Robust task detection: does a request ask for JSON output, for code, or for neither?

The paper's released code missed "只输出JSON" (no space between the directive and the word), which
silently disabled the JSON floor, the repair loop and the JSON gate (DESIGN.md §5). Detection here
works on NFKC-normalised, case-folded text, so full-width letters, digits, punctuation and braces
("ＪＳＯＮ", "｛｝", "：") look like their ASCII forms, and "json" is matched with ASCII-only word
boundaries: "jsonp", "jsonschema" and "jason" are not "json", yet "输出json格式" is.

A request is a JSON task when a schema is given, or when the word "json" stands next to an output
directive (return, respond, reply, output, answer, give, format, only, as, in …, 输出, 返回, 格式,
回答, 只, 仅, 用, 以 …), or when an example object like ``{"name": …}`` follows a directive. "json" as
the topic of a question ("What is JSON?", "Explain JSON vs XML") is not a JSON task.

Speed (the planner's budget is ~100 µs per request, prompts run to thousands of characters): a regex
scan costs 10–20 ns per character in CPython, so no pattern is run over a whole long prompt. The text
is analysed once (:func:`_analyse`): its ASCII words (bytes ``translate`` + ``split``, all in C) are
intersected with the vocabulary the detectors use, Chinese keywords are found by one regex whose first
characters are rare, and every pattern then runs only in a small window around an occurrence of the
word it needs.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from tsglab.errors import SpecError

__all__ = ["detect_task", "normalize"]

TaskLabel = Literal["json", "code", "general"]


def normalize(text: str) -> str:
    """NFKC-normalise, case-fold and collapse every whitespace run to one space (ends stripped).

    Full-width letters, digits, punctuation and braces become ASCII ("ＪＳＯＮ｛：｝" → "json{:}").
    """
    _require_str(text, "text")
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _require_str(value: object, name: str) -> None:
    if not isinstance(value, str):
        raise SpecError(f"`{name}` must be a str; got {type(value).__name__}. Pass the request text.")


# --------------------------------------------------------------------------------------------------
# One analysis per request
# --------------------------------------------------------------------------------------------------

# Bytes that belong to an ASCII word ([a-z0-9_]); everything else, non-ASCII included, separates words.
_WORD_BYTES = bytes(c if (97 <= c <= 122 or 48 <= c <= 57 or c == 95) else 32 for c in range(256))

# Chinese keywords of the detector and the planner, longest first where one contains another.
_ZH_KEYWORDS = (
    "解释为什么", "复杂算法", "伪代码", "法律", "合规", "金融", "财务", "医疗", "医学", "诊断", "正则",
    "多步", "检索", "比较", "对比", "排序", "函数", "代码", "程序", "脚本", "查询", "语句", "算法",
    "接口", "模块", "命令", "实现", "编写", "写", "开发", "完成", "解决",
)  # fmt: skip
_ZH_KEYWORD_SCAN = re.compile("|".join(_ZH_KEYWORDS))


@dataclass(frozen=True)
class _Analysed:
    """A request prepared once for every detector: folded text, its keywords (ASCII and Chinese)."""

    folded: str  # NFKC + casefold; whitespace kept as sent
    words: frozenset[bytes]  # the vocabulary words that occur as whole ASCII words
    zh_hits: tuple[tuple[str, int], ...]  # (keyword, position) of each Chinese keyword, in order


def _analyse(text: str, vocabulary: frozenset[bytes] | None = None) -> _Analysed:
    """Fold ``text`` and find the words of ``vocabulary`` (default: the detector's) and Chinese keywords."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    # Intersecting with the vocabulary, rather than building a set of every word, halves the cost.
    tokens = folded.encode("ascii", "replace").translate(_WORD_BYTES).split()
    words = (_DETECT_VOCABULARY if vocabulary is None else vocabulary).intersection(tokens)
    if folded.isascii():
        zh_hits: tuple[tuple[str, int], ...] = ()
    else:
        zh_hits = tuple((hit.group(), hit.start()) for hit in _ZH_KEYWORD_SCAN.finditer(folded))
    return _Analysed(folded, words, zh_hits)


_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def _occurrences(text: str, needle: str) -> list[int]:
    """Start of every occurrence of ``needle`` that is a whole ASCII word (Chinese neighbours allowed)."""
    size = len(needle)
    length = len(text)
    found = []
    position = text.find(needle)
    while position != -1:
        end = position + size
        if (position == 0 or text[position - 1] not in _WORD_CHARS) and (
            end == length or text[end] not in _WORD_CHARS
        ):
            found.append(position)
        position = text.find(needle, end)
    return found


def _occurrences_prefix(text: str, prefix: str) -> list[int]:
    """Start of every occurrence of ``prefix`` at the start of an ASCII word."""
    found = []
    position = text.find(prefix)
    while position != -1:
        if position == 0 or text[position - 1] not in _WORD_CHARS:
            found.append(position)
        position = text.find(prefix, position + 1)
    return found


# --------------------------------------------------------------------------------------------------
# JSON: the word "json" with an output directive
# --------------------------------------------------------------------------------------------------

# ASCII-only word boundaries: Chinese text has no spaces, so "输出json" must match, while "jsonp" must not.
_JSON = r"(?<![a-z0-9_])json(?![a-z0-9_])"

# Words that may stand between a directive and "json": "respond ONLY with valid JSON",
# "provide your answer in the following JSON", "return the result as JSON".
_FILLER = (
    r"(?:me|us|a|an|the|only|just|strictly|exclusively|in|as|with|using|valid|strict|pure|plain|raw|"
    r"proper|well-formed|minified|compact|pretty-printed|single|one|your|final|whole|entire|answer|"
    r"response|reply|result|results|output|data|everything|it|this|that|back|following|below|same|"
    r"properly|correctly|formatted|machine-readable|parseable|parsable)"
)
_GAP = rf"(?:[\s:,=-]+{_FILLER})*[\s:,=-]*"

# Strong directives name the output; weak ones ("in", "as", "use") only do so outside a topic question.
_EN_STRONG = (
    r"return|respond|reply|output|answer|give|provide|produce|emit|generate|print|format|formatted|"
    r"only|write|serialize|encode|convert|structure|structured|render|dump"
)
_EN_WEAK = r"in|as|use|using|into|to"
_EN_STRONG_BEFORE = re.compile(rf"(?<![a-z0-9_])(?:{_EN_STRONG})(?![a-z0-9_]){_GAP}{_JSON}")
_EN_WEAK_BEFORE = re.compile(rf"(?<![a-z0-9_])(?:{_EN_WEAK}){_GAP}{_JSON}")
# Matched at a "json" occurrence: "JSON only", "JSON, please".
_EN_AFTER = re.compile(r"json[\s-]*(?:only|please|output only|response only|,\s*please)(?![a-z0-9_])")
# A weak directive made explicit: "in JSON:", "as JSON format", "in JSON only".
_EXPLICIT_SUFFIX = re.compile(r"json(?:\s*:|\s+(?:format|formatted|only|object|array)(?![a-z0-9_]))")
# After a lone "json": optional "." "!" ":", then the end of the line or text ("JSON.", a "json" line).
_LONE_AFTER = re.compile(r"json[^\S\n]*[.!:]?[^\S\n]*(?:\n|\Z)")
_LABEL_AFTER = re.compile(r"json\s*:")
# "json" used as an adjective of an artefact: "Write a JSON parser", "the only JSON library".
_JSON_ARTIFACT = re.compile(
    rf"{_JSON}[\s-]*(?:parser|parsers|parsing|library|libraries|lib|serializer|serialiser|"
    r"deserializer|decoder|encoder|validator|tokenizer|lexer|linter|module|package|api|spec|"
    r"specification|standard|rfc|vs\.?|versus)(?![a-z0-9_])"
)
# A question about JSON, not a request for JSON: weak directives do not count in such a segment.
_EN_TOPIC_START = re.compile(
    r"^\s*(?:what|why|how|when|where|who|which|explain|describe|tell me|discuss|compare|define|is|are|"
    r"does|do|can|could|should|would)(?![a-z0-9_])"
)
# "how do I return JSON from Flask": even a strong directive is the topic here.
_EN_HOW_TO = re.compile(
    r"(?<![a-z0-9_])(?:how\s+(?:to|do|does|did|can|could|should|would)|explain\s+how|ways?\s+to)"
    r"(?![a-z0-9_])"
)
_SEGMENT_ENDS = ".!?\n;。！？；"
_HORIZONTAL_WHITESPACE = " \t\r\f\v"

_ZH_STRONG = r"输出|返回|回答|回复|给出|生成|提供|只|仅|仅仅|必须|打印|转换|转成|转为|整理|格式"
_ZH_WEAK = r"用|以|按|按照|采用|使用|为|成|请"
# At most a few characters between a Chinese directive and "json" ("只输出 json", "输出为json").
_ZH_BEFORE_STRONG = re.compile(rf"(?:{_ZH_STRONG})[^。！？!?\n]{{0,6}}?{_JSON}")
_ZH_BEFORE_WEAK = re.compile(rf"(?:{_ZH_WEAK})[^。！？!?\n]{{0,4}}?{_JSON}")
_ZH_AFTER = re.compile(
    r"json\s*(?:格式|对象|数组|形式|结构|字符串|输出|返回|回答|回复|表示|来回答|来输出|来返回)"
)
_ZH_TOPIC = re.compile(
    r"什么是|是什么|有什么|为什么|区别|介绍|解释|优缺点|好处|历史|原理|含义|意思|吗\s*[?？]?\s*$|的定义|如何解析|怎么解析"
)

# An inline example object: {"name": …}, {'age': 3}, {“名字”: …} (after NFKC: ｛ → {, ： → :).
_EXAMPLE_OBJECT = re.compile(r"\{\s*[\"'“‘「]\s*[^\W\d][\w \-]{0,40}?\s*[\"'”’」]\s*:")
# A directive shortly before the example object: "Reply with {…}", "format: {…}", "如下格式：{…}".
_OBJECT_DIRECTIVE = re.compile(
    r"(?:(?<![a-z0-9_])(?:return|respond|reply|output|answer|give|provide|produce|emit|format|only|"
    r"print|like|follows|following|shape|schema|template|exactly|example)(?![a-z0-9_])|"
    r"输出|返回|回答|回复|格式|只|仅|按|给出|如下|模板|示例|例如)"
    r"[^.!?。！？]{0,60}?\{"
)


_SEGMENT_WINDOW = 300


def _segment_before(text: str, position: int) -> str:
    """The sentence (or line) that holds ``position``, from its start up to ``position``.

    Looks back at most 300 characters; a longer sentence is returned with a leading "…" so that
    start-of-sentence patterns do not match in its middle.
    """
    window_start = max(0, position - _SEGMENT_WINDOW)
    start = max(text.rfind(end, window_start, position) for end in _SEGMENT_ENDS) + 1
    if start == 0 and window_start > 0:
        return "…" + text[window_start:position]
    return text[max(start, window_start) : position]


def _json_stands_alone(text: str, position: int) -> bool:
    """ "json" (at ``position``) is a whole sentence or line: "List colors. JSON.", "…\njson", "JSON: …"."""
    before = position
    while before > 0 and text[before - 1] in _HORIZONTAL_WHITESPACE:
        before -= 1
    if before == 0:
        return bool(_LONE_AFTER.match(text, position) or _LABEL_AFTER.match(text, position))
    previous = text[before - 1]
    after_boundary = previous == "\n" or (previous in ".!;:" and before < position)
    return after_boundary and _LONE_AFTER.match(text, position) is not None


_JSON_BEFORE = 200  # characters a directive and its filler words may stand before "json"
_ZH_JSON_BEFORE = 12


def _asks_for_json_word(request: _Analysed) -> bool:
    if b"json" not in request.words:
        return False
    text = request.folded
    for position in _occurrences(text, "json"):
        end = position + 4
        lo = max(0, position - _JSON_BEFORE)
        for match in _EN_STRONG_BEFORE.finditer(text, lo, end):
            if _JSON_ARTIFACT.match(text, match.end() - 4):
                continue
            if _EN_HOW_TO.search(_segment_before(text, match.start())):
                continue
            return True
        if _EN_AFTER.match(text, position) or _json_stands_alone(text, position):
            return True
        weak_matches = list(_EN_WEAK_BEFORE.finditer(text, lo, end))
        if weak_matches and not _JSON_ARTIFACT.match(text, position):
            explicit = _EXPLICIT_SUFFIX.match(text, position) is not None
            for match in weak_matches:
                segment = _segment_before(text, match.start())
                if _EN_HOW_TO.search(segment):
                    continue
                if explicit or not _EN_TOPIC_START.search(segment):
                    return True
        zh_lo = max(0, position - _ZH_JSON_BEFORE)
        if _ZH_BEFORE_STRONG.search(text, zh_lo, end):
            return True
        if _ZH_BEFORE_WEAK.search(text, zh_lo, end) or _ZH_AFTER.match(text, position):
            # "用JSON存储数据有什么好处？" asks about JSON; "请用JSON格式输出" asks for it.
            if _ZH_TOPIC.search(text) is None:
                return True
    return False


def _has_example_object(request: _Analysed) -> bool:
    text = request.folded
    if "{" not in text:
        return False
    for obj in _EXAMPLE_OBJECT.finditer(text):
        brace = obj.start()
        # The directive must lead straight into this object's brace.
        for directive in _OBJECT_DIRECTIVE.finditer(text, max(0, brace - 80), brace + 1):
            if directive.end() == brace + 1:
                return True
    return False


# --------------------------------------------------------------------------------------------------
# Code
# --------------------------------------------------------------------------------------------------

_LANGUAGES = (
    r"python|py|javascript|js|typescript|ts|node|node\.js|sql|postgres|postgresql|mysql|sqlite|bash|"
    r"shell|sh|zsh|powershell|c\+\+|cpp|c#|c|java|kotlin|scala|go|golang|rust|ruby|php|swift|r|perl|"
    r"haskell|lua|matlab|julia|dart|elixir|html|css|react|vue|numpy|pandas"
)
_ARTIFACT_WORDS = frozenset(
    word.encode()
    for word in (
        "function functions script scripts program programs class classes method methods query queries "
        "snippet snippets code regex regexes regexp regexps expression expressions liner liners module "
        "modules decorator decorators lambda lambdas endpoint endpoints test tests implementation "
        "implementations routine routines subroutine subroutines procedure procedures command commands "
        "cli api algorithm algorithms component components macro macros struct structs parser parsers "
        "classifier classifiers"
    ).split()
)
_ARTIFACTS = (
    r"functions?|scripts?|programs?|class(?:es)?|methods?|quer(?:y|ies)|snippets?|code|regex(?:es)?|"
    r"regexps?|regular expressions?|one-liners?|modules?|decorators?|lambdas?|endpoints?|unit tests?|"
    r"implementations?|routines?|subroutines?|procedures?|commands?|cli|api|algorithms?|"
    r"components?|macros?|structs?|parsers?|classifiers?"
)
_CODE_VERBS = (
    r"write|code|create|build|generate|implement|make|develop|fix|debug|refactor|optimi[sz]e|complete|"
    r"rewrite|port|translate|convert|give me|show me|provide|design"
)
# Up to four words between verb and artefact, none of which turns it into a topic ("a poem about a function").
_CODE_GAP = r"(?:(?!about\b|on\b|of\b|regarding\b|explaining\b|describing\b)[\w+#.'-]+\s+){0,4}?"
_CODE_REQUEST = re.compile(rf"(?<![a-z0-9_])(?:{_CODE_VERBS})\s+{_CODE_GAP}(?:{_ARTIFACTS})(?![a-z0-9_])")
_LANGUAGE_ARTIFACT = re.compile(rf"(?<![a-z0-9_+#])(?:{_LANGUAGES})\s+(?:{_ARTIFACTS})(?![a-z0-9_])")
_CODE_REQUEST_BEFORE = 120  # characters a verb and its gap words may stand before the artefact
_LANGUAGE_BEFORE = 30

_REGEX_REQUEST = re.compile(
    r"(?:regexp?s?|regexes|regular\s+expressions?)\s+(?:that|which|to|for)\s+(?:match|matches|"
    r"validate|validates|extract|extracts|find|finds|capture|captures)(?![a-z0-9_])"
)
_DEFINITION = re.compile(r"(?:def|fn|func|function)\s+[a-z_]\w*\s*\(")
_CLASS_DEFINITION = re.compile(r"class\s+[a-z_]\w*\s*[:({]")
_SQL_SELECT = re.compile(r"select\s+(?:\*|distinct\s|count\s*\(|[a-z_][\w.]*\s*,)")
_IMPORT = re.compile(r"import\s+[a-z_][\w.]*[^\S\n]*(?:\n|;|\Z)")
_ARROW_BLOCK = re.compile(r"=>\s*\{")
# (word that must be in the request, pattern matched at each of its occurrences)
_CODE_LINE_MARKERS: tuple[tuple[bytes, re.Pattern[str]], ...] = (
    (b"def", _DEFINITION),
    (b"fn", _DEFINITION),
    (b"func", _DEFINITION),
    (b"function", _DEFINITION),
    (b"class", _CLASS_DEFINITION),
    (b"select", _SQL_SELECT),
    (b"import", _IMPORT),
    (b"include", re.compile(r"include\s*<")),
    (b"static", re.compile(r"static\s+void(?![a-z0-9_])")),
    (b"console", re.compile(r"console\.log\(")),
)
_REGEX_WORDS = frozenset({b"regex", b"regexes", b"regexp", b"regexps", b"regular"})
_IMPLEMENT_WORDS = frozenset({b"implement", b"implementing"})

# Chinese: a verb shortly before an artefact, "用Python实现", "SQL 查询", or code named outright.
_ZH_CODE = re.compile(
    r"(?:写|编写|实现|生成|给出|创建|设计|开发|完成|修复|重构|优化|补全|提供)(?:(?!关于|介绍)[^。！？!?\n]){0,10}?"
    r"(?:函数|代码|程序|脚本|查询|正则|算法|接口|模块|命令)|"
    rf"(?:用|使用|以|基于)\s*(?:{_LANGUAGES})\s*(?:来)?\s*(?:实现|写|编写|完成|开发|解决)|"
    rf"(?<![a-z0-9_+#])(?:{_LANGUAGES})\s*(?:查询|语句|代码|函数|脚本|程序|实现)|"
    r"代码|正则表达式"
)
_ZH_CODE_BEFORE = 30


def _asks_for_code(request: _Analysed) -> bool:
    text = request.folded
    words = request.words
    if not words.isdisjoint(_IMPLEMENT_WORDS):
        return True
    for word in words & _ARTIFACT_WORDS:
        needle = word.decode()
        for position in _occurrences(text, needle):
            end = position + len(needle)
            if _CODE_REQUEST.search(text, max(0, position - _CODE_REQUEST_BEFORE), end):
                return True
            if _LANGUAGE_ARTIFACT.search(text, max(0, position - _LANGUAGE_BEFORE), end):
                return True
    if not words.isdisjoint(_REGEX_WORDS):
        for needle in ("regex", "regular"):
            for position in _occurrences_prefix(text, needle):
                if _REGEX_REQUEST.match(text, position):
                    return True
    for word, pattern in _CODE_LINE_MARKERS:
        if word in words:
            for position in _occurrences(text, word.decode()):
                if pattern.match(text, position):
                    return True
    if "```" in text or ("=>" in text and _ARROW_BLOCK.search(text)):
        return True
    for _keyword, position in request.zh_hits:
        if _ZH_CODE.search(text, max(0, position - _ZH_CODE_BEFORE), min(len(text), position + 6)):
            return True
    return False


_MARKER_WORDS = frozenset(word for word, _pattern in _CODE_LINE_MARKERS)
_DETECT_VOCABULARY = frozenset({b"json"}) | _ARTIFACT_WORDS | _REGEX_WORDS | _IMPLEMENT_WORDS | _MARKER_WORDS


# --------------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------------


def detect_task(text: str, *, has_schema: bool = False) -> TaskLabel:
    """Classify a request as ``"json"``, ``"code"`` or ``"general"``.

    ``"json"`` when ``has_schema`` is true or the request asks for JSON output (the word "json" with an
    output directive, or an example object after a directive); ``"code"`` when it asks for code (a
    write/implement request for a function, script, query…, a code fence, a ``def f(`` line, or the
    Chinese equivalents). JSON wins over code when both apply, because the JSON contract is the
    stricter check.
    """
    _require_str(text, "text")
    return _detect_analysed(_analyse(text), has_schema=has_schema)


def _detect_analysed(request: _Analysed, *, has_schema: bool) -> TaskLabel:
    """:func:`detect_task` on a request already passed through :func:`_analyse`."""
    if has_schema or _asks_for_json_word(request):
        return "json"
    code = _asks_for_code(request)
    if not code and _has_example_object(request):
        # Code prompts often hold dict literals, so an example object alone only counts outside code.
        return "json"
    return "code" if code else "general"
