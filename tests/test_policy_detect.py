"""Task detection: many spellings of "answer in JSON" (DESIGN.md §5), JSON as a topic, code requests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsglab.config import PolicyConfig
from tsglab.errors import SpecError
from tsglab.policy import detect
from tsglab.policy.detect import analyse, detect_analysed, detect_task, keyword_scan, normalize
from tsglab.policy.planner import heavy_keywords, plan

# --------------------------------------------------------------------------------------------------
# normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ＪＳＯＮ", "json"),
        ("Return  JSON\n\tNOW", "return json now"),
        ("｛＂ａ＂：１｝", '{"a":1}'),
        ("只输出ＪＳＯＮ。", "只输出json。"),
        ("  \u3000Straße  ", "strasse"),
        ("ｆｕｌｌ－ｗｉｄｔｈ？", "full-width?"),
        ("", ""),
    ],
)
def test_normalize_folds_width_case_and_space(text, expected):
    assert normalize(text) == expected


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_normalize_is_idempotent_and_has_no_whitespace_runs(text):
    once = normalize(text)
    assert normalize(once) == once
    assert "  " not in once
    assert "\n" not in once
    assert once == once.strip()


def test_normalize_rejects_non_str():
    with pytest.raises(SpecError, match=r"`text` must be a str; got NoneType"):
        normalize(None)


# --------------------------------------------------------------------------------------------------
# JSON: positives (the paper's code missed "只输出JSON")

JSON_REQUESTS = [
    "Return JSON",
    "return json",
    "RETURN JSON",
    "respond in JSON only",
    "Respond ONLY with JSON",
    "Output a JSON object",
    "answer in json format",
    "JSON only, no prose",
    "as json",
    "in JSON:",
    "give me a json",
    "format: json",
    "output: JSON",
    "FORMAT：JSON",
    "只输出JSON",
    "只输出 json",
    "只输出ＪＳＯＮ",
    "请用JSON格式输出",
    "以 JSON 返回",
    "输出为json",
    "返回json对象",
    "用json回答",
    "JSON格式",
    "仅返回 JSON",
    "给出JSON",
    "用JSON格式回答下面的问题：地球有几个卫星？",
    "ＪＳＯＮ",
    "Return ＪＳＯＮ",
    "ｒｅｓｐｏｎｄ ｉｎ ｊｓｏｎ",
    'Reply with {"name": ..., "age": ...}',
    "Reply with {'name': ..., 'age': ...}",
    "回复格式：｛＂name＂： …｝",
    "请按如下格式回复：｛“名字”：…，“年龄”：…｝",
    "json\n",
    "List three colors.\njson\n",
    "List three colors. JSON.",
    "Summarize the article below. JSON",
    "Convert this CSV to JSON: a,b\n1,2",
    "List three fruits in JSON",
    "Please provide your answer in JSON format.",
    "Return the result as valid JSON.",
    "Respond in the following JSON format: {}",
    "Give the answer as a JSON array",
    "Use JSON for the answer.",
    "JSON, please",
    "Write JSON describing a cat",
    "Produce strict JSON",
    "Answer with JSON: what is 2+2?",
    "What are the planets? Answer in JSON.",
    "Respond  \n  in\tJSON",
    "Respond using JSON-formatted output.",
    "Write a Python function that parses logs. Return JSON only.",
]


@pytest.mark.parametrize("text", JSON_REQUESTS)
def test_json_output_requests_are_json(text):
    assert detect_task(text) == "json"


def test_there_are_at_least_forty_json_spellings():
    assert len(set(JSON_REQUESTS)) >= 40


# --------------------------------------------------------------------------------------------------
# JSON as a topic, not as the output format

JSON_TOPICS = [
    "What is JSON?",
    "Explain the difference between JSON and XML",
    "Why is JSONP insecure?",
    "jsonschema is a library; explain what it does",
    "Tell me about Jason",
    "How do I return JSON from a Flask view?",
    "Write a JSON parser in C",
    "Describe the history of the JSON format.",
    "什么是JSON格式？",
    "用JSON存储数据有什么好处？",
    "JSON和XML有什么区别？",
    "Is YAML better than JSON for config files?",
    "Who created JSON?",
    "Open settings.json and explain each field.",
    "Explain nested objects in JSON.",
    "What does JSON stand for?",
    "Is JSON a subset of JavaScript?",
    "What are the best ways to store dates in JSON format?",
    "Tell me about JSON-LD",
    "The JSONL format stores one record per line; why?",
]


@pytest.mark.parametrize("text", JSON_TOPICS)
def test_json_as_topic_is_not_json(text):
    assert detect_task(text) != "json"


def test_schema_makes_any_request_json():
    assert detect_task("Tell me about Jason", has_schema=True) == "json"
    assert detect_task("", has_schema=True) == "json"


def test_example_object_needs_a_directive():
    assert detect_task('Reply with {"city": "…"}') == "json"
    assert detect_task('The dict {"a": 1} has one key; why is it hashable?') == "general"


def test_dict_literal_inside_a_code_request_stays_code():
    assert detect_task('Write a Python function that returns {"a": 1} for empty input') == "code"


# --------------------------------------------------------------------------------------------------
# Code

CODE_REQUESTS = [
    "Write a Python function to reverse a list",
    "write a bash script that backs up /home",
    "Write a SQL query for the top customers",
    "Create a JavaScript class for a stack",
    "write a js snippet that debounces input",
    "write me a small program that prints primes",
    "Implement quicksort",
    "def foo(x):\n    return x\nwhat is wrong?",
    "```\nprint(1)\n```\nwhy does this print 1?",
    "Give me a regex that matches email addresses",
    "a regular expression to validate dates",
    "写一个函数计算斐波那契数列",
    "编写代码读取文件",
    "用Python实现二分查找",
    "用 python 实现二分查找",
    "SQL 查询：找出工资最高的员工",
    "Ｗｒｉｔｅ ａ ｐｙｔｈｏｎ ｆｕｎｃｔｉｏｎ",
    "SELECT * FROM users WHERE id = 1; why is it slow?",
    "Write unit tests for this class",
    "write a one-liner to flatten a list",
    "Write a regular expression for ISO dates",
    "写一段Python代码",
    "用Java写一个单例",
]


@pytest.mark.parametrize("text", CODE_REQUESTS)
def test_code_requests_are_code(text):
    assert detect_task(text) == "code"


GENERAL_REQUESTS = [
    "Explain what a function is in mathematics",
    "Write a short story about a Python programmer",
    "Write a poem about a function",
    "写一篇关于算法的文章",
    "写一篇关于人类的文章",
    "Select the best option from the list",
    "Give me the test results summary",
    "What is a class in sociology?",
    "What is the capital of France?",
    "用三句话介绍长城",
    "",
]


@pytest.mark.parametrize("text", GENERAL_REQUESTS)
def test_general_requests_are_general(text):
    assert detect_task(text) == "general"


@pytest.mark.parametrize(
    "text",
    [
        "Write a Python function to reverse a list. Return JSON.",
        "用Python实现二分查找，只输出JSON",
        "```\nx = 1\n```\nRespond in JSON only",
    ],
)
def test_json_wins_over_code(text):
    assert detect_task(text) == "json"


def test_detect_task_rejects_non_str():
    with pytest.raises(SpecError, match=r"`text` must be a str; got bytes"):
        detect_task(b"Return JSON")


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_detect_task_always_returns_a_label(text):
    assert detect_task(text) in ("json", "code", "general")
    assert detect_task(text, has_schema=True) == "json"


# --------------------------------------------------------------------------------------------------
# Fast paths against their plain twins

_MIXED_PIECES = st.sampled_from(
    [
        "法律",
        "复杂算法",
        "算法",
        "写",
        "代码",
        "json",
        "JSON",
        "，",
        "：",
        "Ａ",
        "ｊｓｏｎ",
        "abc ",
        "x" * 300,
        "中文" * 150,
        "\n",
    ]
)


@given(st.lists(_MIXED_PIECES, max_size=40), st.booleans())
@settings(max_examples=200, deadline=None)
def test_chunked_chinese_keyword_scan_equals_one_scan(pieces, with_heavy_keywords):
    from tsglab.policy.planner import _HEAVY_ZH

    scan = keyword_scan(_HEAVY_ZH if with_heavy_keywords else ())
    text = "".join(pieces)
    request = analyse(text, scan=scan)
    one_scan = [(match[0], match.start()) for match in scan.pattern.finditer(request.text)]
    assert request.zh_hits == one_scan


@given(st.lists(_MIXED_PIECES, max_size=40))
@settings(max_examples=200, deadline=None)
def test_width_folding_matches_nfkc_on_ascii_words_and_chinese(pieces):
    import unicodedata

    from tsglab.policy.detect import _fold_width

    text = "".join(pieces)
    assert unicodedata.normalize("NFKC", _fold_width(text)) == unicodedata.normalize("NFKC", text)
    # and detection does not depend on whether the caller normalised first
    assert detect_task(unicodedata.normalize("NFKC", text)) == detect_task(text)


# --------------------------------------------------------------------------------------------------
# Long prompts: detection looks at the whole text, not only its ends

EN_FILLER = "The river flows past the old mill and the town sleeps quietly under the stars. " * 10
ZH_FILLER = "季度报告涵盖了收入、运营成本以及下一财年的展望。各部门提交的数据已由团队与总账核对。" * 20
ALL_REQUESTS = JSON_REQUESTS + JSON_TOPICS + CODE_REQUESTS + GENERAL_REQUESTS


@pytest.mark.parametrize("filler", [EN_FILLER, ZH_FILLER], ids=["english", "chinese"])
@pytest.mark.parametrize("text", ALL_REQUESTS)
def test_a_request_inside_a_long_document_keeps_its_label(text, filler):
    document = f"{filler}\n{text}\n{filler}"
    assert len(document) > 1500
    assert detect_task(document) == detect_task(text)


@pytest.mark.parametrize("offset", [250, 253, 254, 255, 256, 257, 508, 510, 511, 512, 513])
@pytest.mark.parametrize(
    ("request_text", "expected"),
    [("只输出ＪＳＯＮ", "json"), ("写一个函数", "code"), ("Return ＪＳＯＮ", "json"), ("用Python实现排序", "code")],
)
def test_requests_across_internal_chunk_borders(offset, request_text, expected):
    # The analysis works in chunks of 256 and 512 characters; a request split by a border still counts.
    prefix = ("x " * 400)[: offset - 1] + " "
    assert len(prefix) == offset
    document = prefix + request_text + "。" + "y " * 400
    assert detect_task(document) == expected


# --------------------------------------------------------------------------------------------------
# The analysis the planner shares with the detector


def test_detect_public_api_is_sorted_and_public():
    assert detect.__all__ == sorted(detect.__all__)
    for name in detect.__all__:
        assert not name.startswith("_"), name
        assert hasattr(detect, name), name


def test_planner_imports_only_public_names_of_the_detector():
    import ast
    import inspect

    from tsglab.policy import planner

    tree = ast.parse(inspect.getsource(planner))
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "tsglab.policy.detect"
        for alias in node.names
    ]
    assert imported, "the planner should reuse the detector's analysis"
    assert [name for name in imported if name.startswith("_") or name not in detect.__all__] == []


def _heavy_zh_table() -> dict[str, str]:
    from tsglab.policy.planner import _HEAVY_ZH

    return dict(_HEAVY_ZH)


@pytest.mark.parametrize(("keyword", "name"), sorted(_heavy_zh_table().items()))
def test_every_chinese_heavy_keyword_is_found(keyword, name):
    # The Chinese heavy keywords used to live in two hand-kept tables (the planner's names and the
    # detector's scan); a keyword missing from the scan was silently never found.
    from tsglab.policy.planner import _HEAVY_ORDER

    assert name in _HEAVY_ORDER, f"{keyword!r} maps to {name!r}, which is no heavy keyword name"
    assert heavy_keywords(keyword) == (name,)
    assert heavy_keywords(f"这份材料涉及{keyword}，请看看。") == (name,)
    report = plan(f"请看一下：{keyword}", PolicyConfig())
    assert report.heavy
    assert f"heavy:{name}" in report.risk_factors


def test_the_planner_scan_is_the_detector_scan_plus_the_heavy_table():
    from tsglab.policy.planner import _PLANNER_ZH_SCAN

    heavy = set(_heavy_zh_table())
    detector = set(keyword_scan().keywords)
    assert set(_PLANNER_ZH_SCAN.keywords) == detector | heavy
    assert heavy - detector, "the heavy table should add keywords the detector does not read"
    lengths = [len(keyword) for keyword in _PLANNER_ZH_SCAN.keywords]
    assert lengths == sorted(lengths, reverse=True)
    assert _PLANNER_ZH_SCAN.longest == lengths[0]


_PLANNER_PIECES = st.sampled_from(
    [*_heavy_zh_table(), "算法", "程序", "写", "编写", "代码", "函数", "实现", "解决", "用", "Python", "来", "查询",
     "表达式", "json", "只输出", "格式", "什么是", "。", "？", " ", "\n", "write a function", "中文" * 150, "x" * 300]
)  # fmt: skip


@given(st.lists(_PLANNER_PIECES, max_size=30))
@settings(max_examples=300, deadline=None)
def test_the_planner_and_the_detector_agree_on_the_task(pieces):
    # The planner's scan also finds its heavy keywords; that must not change what the detector sees.
    text = "".join(pieces)
    assert plan(text, PolicyConfig()).task == detect_task(text)


def test_analyse_defaults_to_the_detector_vocabulary_and_scan():
    request = analyse("请写一个函数，法律问题 and write a function")
    assert request.words == {b"function"}
    assert [keyword for keyword, _position in request.zh_hits] == ["写", "函数"]
    assert detect_analysed(request, has_schema=False) == "code"
    assert detect_analysed(analyse("hello"), has_schema=True) == "json"


@pytest.mark.parametrize("bad", ["", "json", "a法律", 3])
def test_keyword_scan_refuses_keywords_it_could_never_find(bad):
    with pytest.raises(
        SpecError,
        match=r"`extra` keywords of keyword_scan must be strings that start with a "
        r"Chinese character; got .*Put ASCII words in the vocabulary",
    ):
        keyword_scan([bad])
