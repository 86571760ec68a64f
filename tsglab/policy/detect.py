"""Robust task detection: does a request ask for JSON output, for code, or for neither?

The paper's released code missed "只输出JSON" (no space between the directive and the word), which
silently disabled the JSON floor, the repair loop and the JSON gate (DESIGN.md §5). Detection here
works on text with NFKC's compatibility mappings applied and case ignored, so full-width letters,
digits, punctuation and braces ("ＪＳＯＮ", "｛｝", "：") look like their ASCII forms, and "json" is
matched with ASCII-only word boundaries: "jsonp", "jsonschema" and "jason" are not "json", yet
"输出json格式" is.

A request is a JSON task when a schema is given, or when the word "json" stands next to an output
directive (return, respond, reply, output, answer, give, format, only, as, in …, 输出, 返回, 格式,
回答, 只, 仅, 用, 以 …), or when an example object like ``{"name": …}`` follows a directive. "json" as
the topic of a question ("What is JSON?", "Explain JSON vs XML") is not a JSON task.

Speed (the planner's budget is ~100 µs per request, prompts run to thousands of characters): a regex
scan costs 5–20 ns per character in CPython, so no English pattern is run over a whole long prompt.
The text is analysed once (:func:`analyse`): width folding (NFKC's mappings, see :func:`_fold_width`),
then a lower-cased bytes copy in which every non-word character is a space (``encode`` + ``translate``,
C speed, same indices as the text); its words are intersected with the vocabulary the detectors use,
Chinese keywords are found by one scan for their first characters, and every other pattern runs only
in a small window around an occurrence of the word it needs.

The planner reuses one analysis for task detection and its own keywords: it extends the vocabulary
(:data:`DETECT_VOCABULARY`) with its words and the Chinese scan with its keywords
(:func:`keyword_scan`), then calls :func:`analyse` and :func:`detect_analysed`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from tsglab.errors import SpecError

__all__ = [
    "Analysis",
    "DETECT_VOCABULARY",
    "KeywordScan",
    "analyse",
    "detect_analysed",
    "detect_task",
    "keyword_scan",
    "normalize",
    "require_str",
]

TaskLabel = Literal["json", "code", "general"]


def normalize(text: str) -> str:
    """NFKC-normalise, case-fold and collapse every whitespace run to one space (ends stripped).

    Full-width letters, digits, punctuation and braces become ASCII ("ＪＳＯＮ｛：｝" → "json{:}").
    """
    require_str(text, "text")
    return " ".join(unicodedata.normalize("NFKC", _replace_common_full_width(text)).casefold().split())


# Full-width punctuation of ordinary Chinese text, with its NFKC image. Replacing these first is exact
# (each is a starter that maps to one ASCII starter) and lets most Chinese text pass NFKC's quick check:
# CPython's NFKC recomposition costs ~130 ns per CJK character once a text fails it.
_COMMON_FULL_WIDTH = (
    ("，", ","), ("：", ":"), ("？", "?"), ("！", "!"), ("；", ";"), ("（", "("), ("）", ")"), ("\u3000", " "),
)  # fmt: skip


def _replace_common_full_width(text: str) -> str:
    if text.isascii():
        return text
    for full_width, ascii_form in _COMMON_FULL_WIDTH:
        if full_width in text:
            text = text.replace(full_width, ascii_form)
    return text


def _fold_width(text: str) -> str:
    """Text with NFKC's compatibility mappings applied: full-width forms, ideographic space, ligatures.

    Equal to NFKC for text that holds no compatibility character beyond common full-width
    punctuation; otherwise NFKD, which maps every compatibility character as NFKC does but skips the
    recomposition (NFKC takes ~400 µs on a 3 000-character Chinese prompt with one full-width letter).
    Detection only reads ASCII words and Chinese characters, which NFKC and NFKD leave alike.
    """
    return _fold(text)[1]


_FOLD_CHUNK = 512


def _fold(text: str) -> tuple[str, str, list[tuple[int, int]] | None]:
    """Fold ``text`` chunk by chunk; see :func:`_fold_width`.

    Returns the text with common full-width punctuation replaced (nothing else: "？" is "?" there, so
    marks can be counted), the width-folded text, and the spans of the folded text that hold non-ASCII
    characters (``None`` when a decomposition moved positions, i.e. "look everywhere").

    Chunks let a long English text with one Chinese or full-width sentence pay for that sentence only.
    The replacements map one character to one; NFKD of a chunk may order combining marks differently
    from NFKD of the whole text where a border splits them, which no detector can see.
    """
    if text.isascii():
        return text, text, []
    plain_pieces = []
    folded_pieces = []
    decomposed = False
    spans: list[tuple[int, int]] = []
    for start in range(0, len(text), _FOLD_CHUNK):
        chunk = text[start : start + _FOLD_CHUNK]
        folded = chunk
        if not chunk.isascii():
            # Chinese prose often needs "，" alone; the quick check then spares the other seven scans.
            chunk = folded = chunk.replace("，", ",")
            if not unicodedata.is_normalized("NFKC", chunk):
                for full_width, ascii_form in _COMMON_FULL_WIDTH[1:]:
                    if full_width in chunk:
                        chunk = folded = chunk.replace(full_width, ascii_form)
            if not unicodedata.is_normalized("NFKC", chunk):
                folded = unicodedata.normalize("NFKD", chunk)
                decomposed = True
            stop = start + len(chunk)
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], stop)
            else:
                spans.append((start, stop))
        plain_pieces.append(chunk)
        folded_pieces.append(folded)
    plain = "".join(plain_pieces)
    if not decomposed:
        return plain, plain, spans
    return plain, "".join(folded_pieces), None


def require_str(value: object, name: str) -> None:
    """Raise :class:`~tsglab.errors.SpecError` naming ``name`` unless ``value`` is a ``str``."""
    if not isinstance(value, str):
        raise SpecError(f"`{name}` must be a str; got {type(value).__name__}. Pass the request text.")


# --------------------------------------------------------------------------------------------------
# One analysis per request
# --------------------------------------------------------------------------------------------------

# Bytes that belong to an ASCII word ([a-z0-9_], upper case lowered); everything else, non-ASCII
# included, becomes a space.
_WORD_BYTES = bytes(
    c + 32 if 65 <= c <= 90 else c if (97 <= c <= 122 or 48 <= c <= 57 or c == 95) else 32 for c in range(256)
)
_SPACE = 32


def _compile_ci(pattern: str) -> re.Pattern[str]:
    """Patterns run on width-folded text whose case is kept (case-folding a long text costs more)."""
    return re.compile(pattern, re.IGNORECASE)


@dataclass(frozen=True)
class KeywordScan:
    """Chinese keywords found by one left-to-right scan of a request (build one with :func:`keyword_scan`).

    ``keywords`` are tried longest first, so where one contains another ("复杂算法", "算法") the longer
    wins; matches do not overlap. ``pattern`` is their compiled alternation, ``longest`` the longest
    keyword's length.
    """

    keywords: tuple[str, ...]
    pattern: re.Pattern[str]
    longest: int


def keyword_scan(extra: Iterable[str] = ()) -> KeywordScan:
    """A scan for the detector's Chinese keywords and the ``extra`` ones (the planner's heavy keywords).

    The detector reads only its own keywords among the hits; an extra keyword changes what it sees only
    where it would overlap one of them, which none of the planner's do (a test checks that the planner
    and :func:`detect_task` agree). A scan compiles a regex: build it once and reuse it.
    """
    keywords = set(_DETECT_ZH_KEYWORDS)
    for keyword in extra:
        # Only the non-ASCII parts of a request are scanned, so a keyword must start with such a character.
        if not isinstance(keyword, str) or not keyword or keyword[0].isascii():
            raise SpecError(
                f"`extra` keywords of keyword_scan must be strings that start with a Chinese character; got "
                f"{keyword!r}. Put ASCII words in the vocabulary passed to analyse() instead."
            )
        keywords.add(keyword)
    ordered = tuple(sorted(keywords, key=lambda keyword: (-len(keyword), keyword)))
    return KeywordScan(ordered, re.compile("|".join(map(re.escape, ordered))), len(ordered[0]))


class Analysis:
    """A request prepared once for every detector (and the planner): build one with :func:`analyse`.

    ``plain``: the text with common full-width punctuation replaced and nothing else ("？" is "?" here);
    ``text``: width-folded, case and whitespace kept; ``ascii_bytes``: ``text`` with one byte per
    character; ``word_bytes``: the same, lower-cased, every non-word byte a space; ``words``: the
    vocabulary words that occur as whole words; ``zh_hits``: (keyword, position) of each Chinese keyword.
    """

    __slots__ = ("ascii_bytes", "plain", "text", "word_bytes", "words", "zh_hits")

    def __init__(self, text: str, vocabulary: frozenset[bytes], scan: KeywordScan) -> None:
        # plain: common full-width punctuation replaced, nothing else ("？" is "?" here: marks can be
        # counted); text: width-folded (see _fold_width), case and whitespace kept as sent.
        self.plain, self.text, non_ascii_spans = _fold(text)
        # One byte per character of ``text`` ("replace" writes one "?" per non-ASCII character), so
        # indices agree; searching bytes is much faster than searching a str that holds Chinese.
        self.ascii_bytes = self.text.encode("ascii", "replace")
        # The same with ASCII word characters lowered and every other byte a space.
        self.word_bytes = self.ascii_bytes.translate(_WORD_BYTES)
        # Intersecting with the vocabulary, rather than building a set of every word, halves the cost.
        self.words = vocabulary.intersection(self.word_bytes.split())
        # (keyword, position) of each Chinese keyword, in order.
        self.zh_hits = _chinese_keywords(self.text, non_ascii_spans, scan)


def _chinese_keywords(
    text: str, spans: list[tuple[int, int]] | None, scan: KeywordScan | None = None
) -> list[tuple[str, int]]:
    """(keyword, position) of every keyword of ``scan`` (default: the detector's), left to right, without
    overlaps.

    The scan costs ~5 ns per character, ASCII or not, so only ``spans`` (the parts of the text that
    hold non-ASCII characters; ``None``: all of it) are scanned: a keyword starts with a Chinese
    character.
    """
    scan = _DETECT_ZH_SCAN if scan is None else scan
    if spans is None:
        return [(match[0], match.start()) for match in scan.pattern.finditer(text)]
    hits = []
    length = len(text)
    resume = 0  # where the previous match ended: matches do not overlap, as in one scan
    for start, stop in spans:
        for match in scan.pattern.finditer(text, max(start, resume), min(length, stop + scan.longest - 1)):
            if match.start() >= stop:
                break
            hits.append((match[0], match.start()))
            resume = match.end()
    return hits


def analyse(text: str, vocabulary: frozenset[bytes] | None = None, scan: KeywordScan | None = None) -> Analysis:
    """Fold ``text`` and find the words of ``vocabulary`` and the Chinese keywords of ``scan``.

    ``vocabulary`` holds lower-case ASCII words as bytes and must include :data:`DETECT_VOCABULARY`
    for :func:`detect_analysed` to see what it needs (default: exactly that); ``scan`` comes from
    :func:`keyword_scan` (default: the detector's keywords). ``text`` is not type-checked here: call
    :func:`require_str` first where it comes from a user.
    """
    return Analysis(
        text, DETECT_VOCABULARY if vocabulary is None else vocabulary, _DETECT_ZH_SCAN if scan is None else scan
    )


def _occurrences(word_bytes: bytes, word: bytes) -> list[int]:
    """Start of every occurrence of ``word`` as a whole ASCII word (Chinese neighbours allowed)."""
    size = len(word)
    length = len(word_bytes)
    found = []
    position = word_bytes.find(word)
    while position != -1:
        end = position + size
        if (position == 0 or word_bytes[position - 1] == _SPACE) and (end == length or word_bytes[end] == _SPACE):
            found.append(position)
        position = word_bytes.find(word, end)
    return found


def _occurrences_prefix(word_bytes: bytes, prefix: bytes) -> list[int]:
    """Start of every occurrence of ``prefix`` at the start of an ASCII word."""
    found = []
    position = word_bytes.find(prefix)
    while position != -1:
        if position == 0 or word_bytes[position - 1] == _SPACE:
            found.append(position)
        position = word_bytes.find(prefix, position + 1)
    return found


# --------------------------------------------------------------------------------------------------
# JSON: the word "json" with an output directive
# --------------------------------------------------------------------------------------------------

# ASCII-only word boundaries: Chinese text has no spaces, so "输出json" must match, while "jsonp" must not.
_JSON = r"(?<![a-z0-9_])json(?![a-z0-9_])"

# Words that may stand between a directive and "json": "respond ONLY with valid JSON",
# "provide your answer in the following JSON", "return the result as JSON".
_FILLER_WORDS = (
    "me us a an the only just strictly exclusively in as with using valid strict pure plain raw proper "
    "well-formed minified compact pretty-printed single one your final whole entire answer response reply "
    "result results output data everything it this that back following below same properly correctly "
    "formatted machine-readable parseable parsable inside within w/"
).split()
# Strong directives name the output; weak ones ("in", "as", "use") only do so outside a topic question.
_STRONG_WORDS = (
    "return respond reply output answer give provide produce emit generate print format formatted only "
    "write serialize encode convert structure structured render dump make create build send need want "
    "prepare compose construct extract put wrap"
).split()
_WEAK_WORDS = "in as use using into to just".split()
# Directives that name a conversion: inside a code request ("a function that converts a dict to JSON")
# they describe what the code does, so they do not make the request a JSON task.
_CONVERSION_WORDS = frozenset("convert serialize encode dump into to".split())
_SEPARATORS = r"[\s:,=`-]"


def _reversed_directive(directives: list[str]) -> re.Pattern[str]:
    """``directive (filler)* json`` read backwards from "json", for an anchored ``match``.

    A forward search would try every position of a 200-character window; matching the reversed
    window at its start costs only as much as the gap is long.
    """
    fillers = "|".join(re.escape(word[::-1]) for word in _FILLER_WORDS)
    words = "|".join(re.escape(word[::-1]) for word in directives)
    return _compile_ci(rf"nosj{_SEPARATORS}*(?:(?:{fillers}){_SEPARATORS}+)*(?<![a-z0-9_])(?:{words})(?![a-z0-9_])")


_STRONG_BEFORE_REVERSED = _reversed_directive(_STRONG_WORDS)
_WEAK_BEFORE_REVERSED = _reversed_directive(_WEAK_WORDS)
# A requirement: "Output must be JSON", "Your answer should be a single JSON object", "The reply has to
# be parseable by json.loads" (read backwards from "json", like the directives).
_MODAL_BEFORE_REVERSED = _compile_ci(
    rf"nosj{_SEPARATORS}*(?:(?:{'|'.join(re.escape(word[::-1]) for word in [*_FILLER_WORDS, 'by'])})"
    rf"{_SEPARATORS}+)*eb\s+(?:tsum|dluohs|llahs|ot\s+(?:sah|evah|sdeen|deen))(?![a-z0-9_])"
)
# A directive that is negated: "Don't use JSON", "never reply in JSON", "without JSON".
_EN_NEGATED = _compile_ci(r"(?:(?<![a-z0-9_])(?:don'?t|do\s+not|never|not|without|no\s+need\s+to)|n't)\s*$")
# A question that opens with one of these and ends with "?" is about JSON, not a request for it
# ("In JSON, are trailing commas allowed?", "Should my API return JSON?") ...
_EN_QUESTION_START = _compile_ci(
    r"^\s*(?:what|what's|why|how|when|where|who|which|is|are|was|were|does|do|did|can|could|should|would|"
    r"will|has|have|in|using|with|as)(?![a-z0-9_])"
)
# A report, not a request: "My manager wants all our reports in JSON" (weak directives only).
_EN_STATEMENT_START = _compile_ci(r"^\s*(?:my|our|his|her|their|we|they|he|she|it|everyone|everybody)(?![a-z0-9_])")
# ... unless it is a polite request ("Can you list the planets in JSON?").
_EN_POLITE = _compile_ci(
    r"^\s*(?:please|(?:can|could|would|will)\s+(?:you|u)|(?:can|could|may)\s+i\s+(?:get|have))(?![a-z0-9_])"
)
# Matched at a "json" occurrence: "JSON only", "JSON, please".
_EN_AFTER = _compile_ci(r"json[\s-]*(?:only|please|output only|response only|,\s*please)(?![a-z0-9_])")
# A weak directive made explicit: "in JSON:", "as JSON format", "in JSON only".
_EXPLICIT_SUFFIX = _compile_ci(r"json(?:\s*:|\s+(?:format|formatted|only|object|array)(?![a-z0-9_]))")
# After a lone "json": optional "." "!" ":", then the end of the line or text ("JSON.", a "json" line).
_LONE_AFTER = _compile_ci(r"json[^\S\n]*[.!:]?[^\S\n]*(?:\n|\Z)")
_LABEL_AFTER = _compile_ci(r"json\s*:")
# "json" used as an adjective of an artefact: "Write a JSON parser", "the only JSON library".
_JSON_ARTIFACT = _compile_ci(
    rf"{_JSON}[\s-]*(?:parser|parsers|parsing|library|libraries|lib|serializer|serialiser|"
    r"deserializer|decoder|encoder|validator|tokenizer|lexer|linter|module|package|api|spec|"
    r"specification|standard|rfc|vs\.?|versus)(?![a-z0-9_])"
)
# A question about JSON, not a request for JSON: weak directives do not count in such a segment.
_EN_TOPIC_START = _compile_ci(
    r"^\s*(?:what|why|how|when|where|who|which|explain|describe|tell me|discuss|compare|define|is|are|"
    r"does|do|can|could|should|would)(?![a-z0-9_])"
)
# "how do I return JSON from Flask": even a strong directive is the topic here.
_EN_HOW_TO = _compile_ci(
    r"(?<![a-z0-9_])(?:how\s+(?:to|do|does|did|can|could|should|would)|explain\s+how|ways?\s+to)"
    r"(?![a-z0-9_])"
)
_SEGMENT_ENDS = ".!?\n;。！？；"
_HORIZONTAL_WHITESPACE = " \t\r\f\v"

_ZH_STRONG = r"输出|返回|回答|回复|给出|生成|提供|只|仅|仅仅|必须|打印|转换|转成|转为|整理|格式"
_ZH_WEAK = r"用|以|按|按照|采用|使用|为|成|请"
# At most a few characters between a Chinese directive and "json" ("只输出 json", "输出为json").
_ZH_BEFORE_STRONG = _compile_ci(rf"(?:{_ZH_STRONG})[^。！？!?\n]{{0,6}}?{_JSON}")
_ZH_BEFORE_WEAK = _compile_ci(rf"(?:{_ZH_WEAK})[^。！？!?\n]{{0,4}}?{_JSON}")
_ZH_AFTER = _compile_ci(r"json\s*(?:格式|对象|数组|形式|结构|字符串|输出|返回|回答|回复|表示|来回答|来输出|来返回)")
_ZH_TOPIC = re.compile(
    r"什么是|是什么|有什么|为什么|区别|介绍|解释|优缺点|好处|历史|原理|含义|意思|吗\s*[?？]|的定义|如何解析|怎么解析"
)

# An inline example object: {"name": …}, {'age': 3}, {“名字”: …} (after NFKC: ｛ → {, ： → :).
# "JSON" firmly named as the output after the word: "用JSON回答", "json格式输出".
_ZH_AFTER_FIRM = _compile_ci(r"json\s*(?:格式|形式)?\s*(?:来)?(?:输出|返回|回答|回复)")
_ZH_CONVERSION = ("转换", "转成", "转为", "整理")
# A negated directive: "不要用JSON", "无需输出JSON".
_ZH_NEGATION = r"(?:不要|不用|别|无需|无须|不必|勿|不需要|(?<!能)不能|禁止)"
_ZH_NEGATED = re.compile(rf"{_ZH_NEGATION}\s*$")
_ZH_NEGATION_ANYWHERE = re.compile(_ZH_NEGATION)
# A question word before the directive makes the sentence a question about JSON ("为什么API都返回JSON？") ...
_ZH_QUESTION_WORD = re.compile(r"为什么|为何|怎么|怎样|如何|是否|有没有|是不是|哪个|哪种|什么")
# ... unless it is a polite request ("能不能用JSON给我列一下…？").
_ZH_POLITE = re.compile(r"^\s*(?:请|麻烦|能不能|能否|可不可以|可以|可否|帮我|帮忙|你能)")
# An opinion or a report, not a request: "我觉得用JSON写配置挺方便的".
_ZH_STATEMENT = re.compile(r"我觉得|我认为|我发现|听说|据说|以前|通常|一般来说|大家都|很多人")
_ZH_NEGATABLE_TOPIC_BEFORE = re.compile(r"(?:不要|不用|别|无需|无须|不必|勿|不需要)$")
_ZH_CLAUSE_ENDS = "。！？!?\n；;:："

# An inline example object: {"name": …}, {'age': 3}, {“名字”: …} (after NFKC: ｛ → {, ： → :), or a
# placeholder object "{...}" / "{…}".
_EXAMPLE_OBJECT = re.compile(r"\{\s*(?:[\"'“‘「]\s*[^\W\d][\w \-]{0,40}?\s*[\"'”’」]\s*:|(?:\.{2,}|…)\s*\})")
# A directive shortly before the example object: "Reply with {…}", "format: {…}", "如下格式：{…}".
_OBJECT_DIRECTIVE = _compile_ci(
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


_JSON_BEFORE = 160  # characters a directive and its filler words may stand before "json"
_ZH_JSON_BEFORE = 12
_ZH_TOPIC_AROUND = 40  # a topic word ("什么是", "有什么好处") this close to "json" makes it the topic


_FIRM = 2  # JSON is named as the output
_SOFT = 1  # only a weak or conversion directive: inside a code request it describes what the code does


def _sentence_after(text: str, position: int, ends: str = _SEGMENT_ENDS) -> str:
    """From ``position`` to the end of its sentence, the closing mark included (at most 300 characters)."""
    stop = min(len(text), position + _SEGMENT_WINDOW)
    found = [index for index in (text.find(end, position, stop) for end in ends) if index != -1]
    return text[position : min(found) + 1] if found else text[position:stop]


def _en_question_about_json(text: str, sentence_start: str, position: int) -> bool:
    """The sentence holding ``position`` is a question (not a polite request) that opens with a question word."""
    if not _EN_QUESTION_START.search(sentence_start) or _EN_POLITE.search(sentence_start):
        return False
    return _sentence_after(text, position).endswith("?")


def _en_json_strength(text: str, position: int) -> int:
    """How firmly the English around "json" at ``position`` asks for JSON output (0: it does not)."""
    end = position + 4
    if _EN_AFTER.match(text, position) or _json_stands_alone(text, position):
        return _FIRM
    if _JSON_ARTIFACT.match(text, position) is not None:  # "a JSON parser": json is not the output
        return 0
    backwards = text[max(0, position - _JSON_BEFORE) : end][::-1]
    modal = _MODAL_BEFORE_REVERSED.match(backwards)
    strong = _STRONG_BEFORE_REVERSED.match(backwards)
    weak = _WEAK_BEFORE_REVERSED.match(backwards)
    if not (modal or strong or weak):
        return 0
    sentence = _segment_before(text, position)
    if _en_question_about_json(text, sentence, position):
        return 0
    if modal and not _EN_HOW_TO.search(sentence):
        return _FIRM
    if strong:
        directive_start = end - strong.end()
        segment = _segment_before(text, directive_start)
        if not _EN_HOW_TO.search(segment) and not _EN_NEGATED.search(segment):
            word = re.match(r"[a-z]*", strong[0][::-1].lower())
            return _SOFT if word is not None and word[0] in _CONVERSION_WORDS else _FIRM
    if weak:
        segment = _segment_before(text, end - weak.end())
        explicit = _EXPLICIT_SUFFIX.match(text, position) is not None
        topic = (_EN_TOPIC_START.search(segment) and not _EN_POLITE.search(segment)) or _EN_STATEMENT_START.search(
            segment
        )
        if not _EN_HOW_TO.search(segment) and not _EN_NEGATED.search(segment) and (explicit or not topic):
            return _SOFT
    return 0


def _zh_clause_start(text: str, position: int) -> int:
    lo = max(0, position - _SEGMENT_WINDOW)
    return max(text.rfind(mark, lo, position) for mark in _ZH_CLAUSE_ENDS) + 1 or lo


def _zh_topic_near(text: str, lo: int, hi: int) -> bool:
    """A topic word ("什么是", "为什么", "解释" …) between ``lo`` and ``hi`` that is not negated ("不要解释")."""
    for match in _ZH_TOPIC.finditer(text, lo, hi):
        if not _ZH_NEGATABLE_TOPIC_BEFORE.search(text, max(0, match.start() - 3), match.start()):
            return True
    return False


def _zh_json_strength(text: str, position: int) -> int:
    """How firmly the Chinese around "json" at ``position`` asks for JSON output (0: it does not)."""
    end = position + 4
    zh_lo = max(0, position - _ZH_JSON_BEFORE)
    clause = _zh_clause_start(text, position)
    sentence_start = max(text.rfind(mark, max(0, position - _SEGMENT_WINDOW), position) for mark in "。！？!?\n；;") + 1
    polite = _ZH_POLITE.match(text, sentence_start) is not None
    best = 0
    for match in _ZH_BEFORE_STRONG.finditer(text, zh_lo, end):
        directive = match.start()
        if _ZH_NEGATED.search(text, max(0, directive - 4), directive) or _ZH_NEGATION_ANYWHERE.search(
            text, directive, position
        ):
            continue
        if not polite and _ZH_QUESTION_WORD.search(text, sentence_start, directive):
            continue
        best = _SOFT if text.startswith(_ZH_CONVERSION, directive) else _FIRM
        if best == _FIRM:
            return _FIRM
    weak = [
        match
        for match in _ZH_BEFORE_WEAK.finditer(text, zh_lo, end)
        if not _ZH_NEGATED.search(text, max(0, match.start() - 4), match.start())
        and not _ZH_NEGATION_ANYWHERE.search(text, match.start(), position)
    ]
    after = _ZH_AFTER.match(text, position)
    if (weak or after) and not best:
        after_json = _sentence_after(text, end, _ZH_CLAUSE_ENDS)
        question = after_json.endswith(("?", "？")) and not polite
        if question or _ZH_STATEMENT.search(text, sentence_start, position):
            return 0
        if _ZH_AFTER_FIRM.match(text, position):  # "用JSON输出": the output is named
            return _FIRM
        # "用JSON存储数据有什么好处？" asks about JSON; "请用JSON格式存储" asks for it.
        if _zh_topic_near(text, max(clause, position - _ZH_TOPIC_AROUND), min(len(text), end + _ZH_TOPIC_AROUND)):
            return 0
        return _FIRM if _ZH_AFTER_FIRM.match(text, position) else _SOFT
    return best


def _json_word_strength(request: Analysis) -> int:
    """The firmest request for JSON among the occurrences of the word "json" (0: none asks for it)."""
    if b"json" not in request.words:
        return 0
    text = request.text
    best = 0
    for position in _occurrences(request.word_bytes, b"json"):
        best = max(best, _en_json_strength(text, position))
        # the Chinese rules need a Chinese character near "json"
        if best < _FIRM and not text[max(0, position - _ZH_JSON_BEFORE) : position + 4 + _ZH_TOPIC_AROUND].isascii():
            best = max(best, _zh_json_strength(text, position))
        if best == _FIRM:
            break
    return best


def _asks_for_json_word(request: Analysis) -> bool:
    """Whether any occurrence of "json" asks for JSON output (firmly or not); benchmarks time this stage."""
    return _json_word_strength(request) > 0


def _has_example_object(request: Analysis) -> bool:
    if b"{" not in request.ascii_bytes:
        return False
    text = request.text
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

_LANGUAGE_NAMES = (
    "python py javascript js typescript ts node node.js sql postgres postgresql mysql sqlite bash shell sh "
    "zsh powershell c++ cpp c# c java kotlin scala go golang rust ruby php swift r perl haskell lua matlab "
    "julia dart elixir html css react vue numpy pandas"
).split()
# Artefact words (as the word bytes spell them) and, for those that need one, the word before them.
_ARTIFACT_WORDS = frozenset(
    word.encode()
    for word in (
        "function functions script scripts program programs class classes method methods query queries "
        "snippet snippets code regex regexes regexp regexps expression expressions liner liners module "
        "modules decorator decorators lambda lambdas endpoint endpoints test tests implementation "
        "implementations routine routines subroutine subroutines procedure procedures command commands "
        "cli api algorithm algorithms component components macro macros struct structs parser parsers "
        "classifier classifiers handler handlers pseudocode dockerfile dockerfiles makefile makefiles "
        "statement statements loop loops comprehension comprehensions interface interfaces view views "
        "trigger triggers form forms page pages"
    ).split()
)
_LANGUAGE_ALTERNATION = "|".join(re.escape(name) for name in sorted(_LANGUAGE_NAMES, key=len, reverse=True))
_ARTIFACT_QUALIFIERS: dict[bytes, re.Pattern[str]] = {
    word: _compile_ci(rf"(?<![a-z0-9_]){qualifier}$")
    for words, qualifier in (
        ((b"test", b"tests"), r"unit\s+"),
        ((b"expression", b"expressions"), r"(?:regular|cron|jq|xpath|boolean|lambda)\s+"),
        ((b"liner", b"liners"), r"one-"),
        # "a SQL statement", "an UPDATE statement", "an if statement" (not "a statement for the press")
        (
            (b"statement", b"statements"),
            (
                rf"(?:{_LANGUAGE_ALTERNATION}|select|insert|update|delete|create|alter|drop|merge|upsert|join|"
                r"if|if-else|switch|case|return|print|try|import)\s+"
            ),
        ),
        ((b"loop", b"loops"), rf"(?:{_LANGUAGE_ALTERNATION}|for|while|foreach|for-each|do-while|nested|event)\s+"),
        ((b"view", b"views", b"trigger", b"triggers"), rf"(?:{_LANGUAGE_ALTERNATION}|materialized|database)\s+"),
        ((b"form", b"forms", b"page", b"pages"), r"(?:html|react|vue|php|flask|django)\s+"),
        ((b"comprehension", b"comprehensions"), r"(?:list|dict|dictionary|set|generator)\s+"),
        ((b"interface", b"interfaces"), rf"(?:{_LANGUAGE_ALTERNATION}|typescript|go|java|c#)\s+"),
    )
    for word in words
}
# "a script for a wedding toast", "a program for the spring concert", "a query letter": not code.
_NOT_CODE_AFTER = _compile_ci(
    r"\s+(?:(?:for|of)\s+(?:[\w'-]+\s+){0,4}?(?:toasts?|speech(?:es)?|videos?|films?|movies?|plays?|podcasts?|"
    r"scenes?|commercials?|ads?|adverts?|skits?|sketch(?:es)?|shows?|episodes?|presentations?|talks?|interviews?|"
    r"weddings?|concerts?|ceremony|ceremonies|festivals?|conferences?|events?|party|parties|gala|trailers?|"
    r"radio|youtube|tiktok|theatre|theater|stage|comedy|drama|evening|night|channel)|letters?)(?![a-z0-9_])"
)
_CODE_VERB_WORDS = [
    *(
        "write code create build generate implement make develop fix debug refactor optimize optimise complete "
        "rewrite port translate convert provide design give show"
    ).split(),
    "give me",
    "show me",
]
# Gap words that make the artefact a topic: "write a poem about a function".
_CODE_GAP_STOPS = "about on of regarding explaining describing".split()


def _reversed_alternation(words: list[str]) -> str:
    return "|".join(re.escape(word[::-1]) for word in sorted(words, key=len, reverse=True))


# Read backwards from the artefact: whitespace, up to four gap words, a verb ("write a small python
# function"); or whitespace and a language name ("python function"). Matched at the start of the
# reversed text before the artefact, so the cost is the length of the gap, not of a window.
_CODE_REQUEST_REVERSED = _compile_ci(
    rf"\s+(?:(?!(?:{_reversed_alternation(_CODE_GAP_STOPS)})\s)[\w+#.'-]+\s+){{0,4}}?"
    rf"(?:{_reversed_alternation(_CODE_VERB_WORDS)})(?![a-z0-9_])"
)
_LANGUAGE_REVERSED = _compile_ci(rf"\s+(?:{_reversed_alternation(_LANGUAGE_NAMES)})(?![a-z0-9_+#])")
_CODE_REQUEST_BEFORE = 120  # characters a verb and its gap words may stand before the artefact

_REGEX_REQUEST = _compile_ci(
    r"(?:regexp?s?|regexes|regular\s+expressions?)\s+(?:that|which|to|for)\s+(?:match|matches|"
    r"validate|validates|extract|extracts|find|finds|capture|captures)(?![a-z0-9_])"
)
_DEFINITION = _compile_ci(r"(?:def|fn|func|function)\s+[a-z_]\w*\s*\(")
_CLASS_DEFINITION = _compile_ci(r"class\s+[a-z_]\w*\s*[:({]")
_SQL_SELECT = _compile_ci(r"select\s+(?:\*|distinct\s|count\s*\(|[a-z_][\w.]*\s*,)")
_IMPORT = _compile_ci(r"import\s+[a-z_][\w.]*[^\S\n]*(?:\n|;|\Z)")
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
    (b"include", _compile_ci(r"include\s*<")),
    (b"static", _compile_ci(r"static\s+void(?![a-z0-9_])")),
    (b"console", _compile_ci(r"console\.log\(")),
    (b"print", _compile_ci(r"print\s*\(|print\s+[\"']")),
    (b"println", _compile_ci(r"println\s*\(")),
    (b"for", _compile_ci(r"for\s+[a-z_]\w*\s+in\s+[^\n]{1,80}:[^\S\n]*(?:\n|$)")),
    # SQL written out in capitals ("SELECT name FROM people"); lower case is too common in prose
    (b"select", re.compile(r"SELECT\s+[^\n;]{1,200}?\s+FROM\s+[A-Za-z_]")),
    (b"update", re.compile(r"UPDATE\s+\w+\s+SET\s")),
    (b"insert", re.compile(r"INSERT\s+INTO\s")),
    (b"delete", re.compile(r"DELETE\s+FROM\s")),
    (b"create", re.compile(r"CREATE\s+(?:TABLE|INDEX|VIEW)\s")),
)
_REGEX_WORDS = frozenset({b"regex", b"regexes", b"regexp", b"regexps", b"regular"})
_MEDIA_ARTIFACTS = frozenset({b"script", b"scripts", b"program", b"programs", b"query", b"queries"})

# A language named as what to write: "Write the SQL to create a table", "Give me the bash for this"
# (a code verb shortly before, and the name ends the phrase), or "Code a game in Python", "Show me how
# to read a CSV with pandas" (a code verb earlier in the sentence, then "in/with/using <language>").
_LANGUAGE_WORDS = frozenset(
    name.encode()
    for name in (
        "python javascript typescript sql postgresql mysql sqlite bash shell powershell java kotlin scala go "
        "golang rust ruby php swift haskell lua matlab julia dart elixir perl c cpp numpy pandas html css r"
    ).split()
)
_LANGUAGE_NOUNS = frozenset(_LANGUAGE_WORDS - {b"go", b"c", b"r", b"shell", b"html", b"css", b"numpy", b"pandas"})
_LANGUAGE_NOUN_END = _compile_ci(r"\s*(?:[.:;,!?]|$|\s(?:to|that|which|for|so)(?![a-z0-9_]))")
_IN_LANGUAGE_BEFORE = _compile_ci(r"(?<![a-z0-9_])(?:in|with|using|via)\s+$")
_NOT_A_LANGUAGE_AFTER = _compile_ci(r"\s+(?:major|minor|sharp|flat)(?![a-z0-9_])")
_CODE_VERB_IN_SENTENCE = _compile_ci(
    r"(?<![a-z0-9_])(?:write|code|implement|build|create|make|generate|develop|program|show\s+me\s+how|"
    r"give\s+me|port|translate|convert|rewrite|refactor)(?![a-z0-9_])"
)


def _language_requested(text: str, position: int, size: int) -> bool:
    if _NOT_A_LANGUAGE_AFTER.match(text, position + size):
        return False
    if position and not text[position - 1].isascii():
        # "写出建表SQL": a Chinese verb shortly before, and the name ends the phrase
        return _ZH_LANGUAGE_NOUN_END.match(text, position + size) is not None and (
            _ZH_VERB_REVERSED.match(text[max(0, position - 12) : position][::-1]) is not None
        )
    if _IN_LANGUAGE_BEFORE.search(text, max(0, position - 8), position):
        return _CODE_VERB_IN_SENTENCE.search(_segment_before(text, position)) is not None
    if text[position : position + size].lower().encode() not in _LANGUAGE_NOUNS:
        return False
    if not _LANGUAGE_NOUN_END.match(text, position + size):
        return False
    backwards = text[max(0, position - 40) : position][::-1]
    return _CODE_REQUEST_REVERSED.match(backwards) is not None
_IMPLEMENT_WORDS = frozenset({b"implement", b"implementing"})

# Chinese, checked backwards from each keyword the scan found: a verb shortly before an artefact
# ("写一个函数", "编写代码"), a language name before an artefact ("SQL 查询", "python实现"), or
# "用 <language> 实现/写". "代码", "伪代码" and "正则表达式" name code outright.
_ZH_ARTIFACTS = frozenset(
    "函数 代码 程序 脚本 查询 正则 算法 复杂算法 伪代码 接口 模块 命令 组件 循环 列表推导式 单元测试 装饰器 "
    "爬虫".split()
)
_ZH_LANGUAGE_ARTIFACTS = frozenset("查询 语句 代码 函数 脚本 程序 实现 组件 列表推导式 装饰器 爬虫".split())
_ZH_USE_VERBS = frozenset("实现 写 编写 完成 开发 解决".split())
_ZH_VERB_REVERSED = re.compile(
    r"(?:(?!于关|绍介)[^。！？!?\n]){0,10}?(?:写编|写|现实|成生|出给|建创|计设|发开|成完|复修|构重|化优|全补|供提|成改|换转|译翻)"
)
_ZH_LANGUAGE_REVERSED = _compile_ci(rf"\s*(?:{_reversed_alternation(_LANGUAGE_NAMES)})(?![a-z0-9_+#])")
_ZH_USE_LANGUAGE_REVERSED = _compile_ci(
    rf"\s*(?:来)?\s*(?:{_reversed_alternation(_LANGUAGE_NAMES)})\s*(?:用使|用|以|于基)"
)
_ZH_CODE_BEFORE = 24
# "实现" as "implement": at the start of a clause, before something code is made of ("请实现一个LRU缓存",
# "实现二分查找"), not "实现梦想" (realise a dream) or "如何实现财务自由".
_ZH_IMPLEMENT_OBJECT = _compile_ci(
    r"(?:一个|一下|一种|下)?\s*(?:[a-z]|缓存|链表|栈|队列|二分|快速排序|冒泡|排序|哈希|二叉|树|堆|算法|函数|类|接口|"
    r"查找|搜索|矩阵|单例|装饰器|迭代器|生成器|解析器|计算器|爬虫|回调|递归)"
)
_ZH_CLAUSE_OPENERS = "。！？!?\n；;:：,，、请你我帮来先再并"
# A video or show script ("短视频脚本") is not code; nor is a function in mathematics ("函数f(x)的导数").
_ZH_MEDIA_BEFORE = re.compile(
    r"(?:视频|直播|广告|宣传片|节目|话剧|剧本|拍摄|口播|演讲|短剧|vlog)[^\s。！？，,a-z]{0,2}的?\s*$", re.IGNORECASE
)
_ZH_MATH_FUNCTION_AFTER = _compile_ci(
    r"\s*(?:[a-z]\s*\(|[a-z]\s*=|的?(?:导数|图像|图象|定义域|值域|极值|最值|零点|单调|对称轴))"
)
_ZH_MATH_FUNCTION_BEFORE = re.compile(r"(?:二次|一次|三角|指数|对数|反比例|正比例|幂|数学)$")
# "代码规范", "代码审查": code as a topic, not as the answer (a verb before still makes it code).
_ZH_CODE_TOPIC_AFTER = re.compile(r"规范|风格|审查|评审|质量|行数|仓库|托管|管理|能力|水平|量")
_ZH_LANGUAGE_NOUN_END = re.compile(r"\s*(?:[。！？!?，,；;：:\n]|$|语句|代码|脚本|查询)")


def _asks_for_code(request: Analysis) -> bool:
    text = request.text
    word_bytes = request.word_bytes
    words = request.words
    ascii_bytes = request.ascii_bytes
    if not words.isdisjoint(_IMPLEMENT_WORDS) or b"```" in ascii_bytes:
        return True
    for word in words & _ARTIFACT_WORDS:
        qualifier = _ARTIFACT_QUALIFIERS.get(word)
        for position in _occurrences(word_bytes, word):
            if word in _MEDIA_ARTIFACTS and _NOT_CODE_AFTER.match(text, position + len(word)):
                continue
            if qualifier is not None:
                qualified = qualifier.search(text, max(0, position - 16), position)
                if qualified is None:
                    continue
                position = qualified.start()
            backwards = text[max(0, position - _CODE_REQUEST_BEFORE) : position][::-1]
            if _CODE_REQUEST_REVERSED.match(backwards) or _LANGUAGE_REVERSED.match(backwards):
                return True
    for word in words & _LANGUAGE_WORDS:
        for position in _occurrences(word_bytes, word):
            if _language_requested(text, position, len(word)):
                return True
    if not words.isdisjoint(_REGEX_WORDS):
        for prefix in (b"regex", b"regular"):
            for position in _occurrences_prefix(word_bytes, prefix):
                if _REGEX_REQUEST.match(text, position):
                    return True
    for word, pattern in _CODE_LINE_MARKERS:
        if word in words:
            # cheap byte checks spare the regex on prose full of "for" and lower-case "select"/"update"
            if (word == b"for" and b":" not in ascii_bytes) or (
                word in _UPPER_CASE_MARKERS and word.upper() not in ascii_bytes
            ):
                continue
            for position in _occurrences(word_bytes, word):
                if pattern.match(text, position):
                    return True
    if b"=>" in ascii_bytes and _ARROW_BLOCK.search(text):
        return True
    return any(_chinese_code_at(text, keyword, position) for keyword, position in request.zh_hits)


def _chinese_code_at(text: str, keyword: str, position: int) -> bool:
    size = len(keyword)
    if keyword == "伪代码" or (keyword == "正则" and text.startswith("表达式", position + 2)):
        return True
    if keyword == "代码" and not _ZH_CODE_TOPIC_AFTER.match(text, position + 2):
        return True
    if (
        keyword == "实现"
        and (position == 0 or text[position - 1] in _ZH_CLAUSE_OPENERS)
        and _ZH_IMPLEMENT_OBJECT.match(text, position + 2)
    ):
        return True
    if keyword == "脚本" and _ZH_MEDIA_BEFORE.search(text, max(0, position - 6), position):
        return False
    if keyword == "函数" and (
        _ZH_MATH_FUNCTION_AFTER.match(text, position + size)
        or _ZH_MATH_FUNCTION_BEFORE.search(text, max(0, position - 3), position)
    ):
        return False
    backwards = None
    if keyword in _ZH_ARTIFACTS:
        backwards = text[max(0, position - _ZH_CODE_BEFORE) : position][::-1]
        if _ZH_VERB_REVERSED.match(backwards):
            return True
    if keyword in _ZH_LANGUAGE_ARTIFACTS or keyword in _ZH_USE_VERBS:
        backwards = backwards or text[max(0, position - _ZH_CODE_BEFORE) : position][::-1]
        if keyword in _ZH_LANGUAGE_ARTIFACTS and _ZH_LANGUAGE_REVERSED.match(backwards):
            return True
        if keyword in _ZH_USE_VERBS and _ZH_USE_LANGUAGE_REVERSED.match(backwards):
            return True
    return False


_MARKER_WORDS = frozenset(word for word, _pattern in _CODE_LINE_MARKERS)
_UPPER_CASE_MARKERS = frozenset({b"update", b"insert", b"delete", b"create"})
DETECT_VOCABULARY: frozenset[bytes] = (
    frozenset({b"json"}) | _ARTIFACT_WORDS | _REGEX_WORDS | _IMPLEMENT_WORDS | _MARKER_WORDS | _LANGUAGE_WORDS
)
"""The ASCII words (lower-case bytes) the detectors look up; extend it for an analysis that needs more."""

# The Chinese keywords the detector reads (_chinese_code_at), derived from the tables it reads them with
# so the scan cannot drift from them. The planner adds its heavy keywords through keyword_scan().
_DETECT_ZH_KEYWORDS = _ZH_ARTIFACTS | _ZH_LANGUAGE_ARTIFACTS | _ZH_USE_VERBS | {"代码", "伪代码", "正则"}
_DETECT_ZH_SCAN = keyword_scan()


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
    require_str(text, "text")
    return detect_analysed(analyse(text), has_schema=has_schema)


def detect_analysed(request: Analysis, *, has_schema: bool) -> TaskLabel:
    """:func:`detect_task` on a request already passed through :func:`analyse`."""
    if has_schema:
        return "json"
    json_strength = _json_word_strength(request)
    if json_strength == _FIRM:
        return "json"
    if _asks_for_code(request):
        # A conversion inside a code request ("a function that converts a dict to JSON") describes the code;
        # code prompts often hold dict literals, so an example object alone only counts outside code.
        return "code"
    if json_strength or _has_example_object(request):
        return "json"
    return "general"
