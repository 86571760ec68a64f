"""Planner: hand-computed scores, heavy keywords, risk factors. Router: thresholds, floors, fast lane."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsglab.config import ABLATIONS, DEFAULT_TIERS, PolicyConfig, tier_index
from tsglab.errors import SpecError
from tsglab.policy.planner import PlanReport, plan
from tsglab.policy.router import RouteDecision, route

PAPER = PolicyConfig()


def padded(text: str, length: int) -> str:
    """``text`` followed by plain letters up to ``length`` characters (no marks, no keywords)."""
    assert len(text) <= length
    return text + "x" * (length - len(text))


def make_plan(score: float, task: str = "general", chars: int = 500) -> PlanReport:
    return PlanReport(
        score=score,
        raw_score=score,
        task=task,
        chars=chars,
        marks=0,
        heavy=False,
        heavy_keywords=(),
        risk_factors=(),
    )


# --------------------------------------------------------------------------------------------------
# Planner: the paper's score, computed by hand


def test_score_of_100_chars_2_marks_and_a_heavy_word_is_clipped():
    prompt = padded("Is this legal? Answer: ", 100)
    report = plan(prompt, PAPER)
    # 100/200 + 2/6 + 0.8 = 0.5 + 0.3333… + 0.8 = 1.6333…, clipped to the cap 1.6
    assert report.chars == 100
    assert report.marks == 2
    assert report.heavy
    assert report.raw_score == pytest.approx(0.5 + 2 / 6 + 0.8, abs=1e-12)
    assert report.raw_score == pytest.approx(1.633333333333, abs=1e-9)
    assert report.score == 1.6
    assert report.heavy_keywords == ("legal",)


def test_score_without_heavy_word_is_not_clipped():
    prompt = padded("Is this fine? Answer: ", 100)
    report = plan(prompt, PAPER)
    # 100/200 + 2/6 = 0.8333…
    assert not report.heavy
    assert report.score == report.raw_score == pytest.approx(0.5 + 1 / 3, abs=1e-12)


def test_marks_count_ascii_and_full_width_forms_and_newlines_in_the_original_text():
    prompt = "a?b？c:d：e\nf"  # 5 marks, 11 chars
    report = plan(prompt, PAPER)
    assert report.marks == 5
    assert report.chars == 11
    assert report.score == pytest.approx(11 / 200 + 5 / 6, abs=1e-12)


def test_chars_is_the_length_of_the_original_prompt():
    prompt = "ＡＢＣ   \u3000 def"  # NFKC would change it; chars must not
    assert plan(prompt, PAPER).chars == len(prompt) == 11


def test_score_uses_every_config_number():
    config = PolicyConfig(chars_per_unit=100.0, marks_per_unit=2.0, heavy_weight=0.5, score_cap=10.0)
    prompt = padded("sort this:\n", 50)  # 50 chars, 2 marks, heavy ("sort")
    report = plan(prompt, config)
    assert report.score == pytest.approx(50 / 100 + 2 / 2 + 0.5, abs=1e-12)


def test_score_is_clipped_at_the_cap_and_at_zero():
    long_prompt = "y" * 5000
    assert plan(long_prompt, PAPER).raw_score == pytest.approx(25.0)
    assert plan(long_prompt, PAPER).score == PAPER.score_cap
    negative = PolicyConfig(heavy_weight=-5.0)
    report = plan("legal", negative)
    assert report.raw_score == pytest.approx(5 / 200 - 5.0)
    assert report.score == 0.0
    assert plan("", PAPER).score == 0.0


def test_length_scorer_ignores_marks_and_heavy_words_but_reports_them():
    config = PolicyConfig(**ABLATIONS["E_no_planner"])
    prompt = padded("Is this legal? Answer: ", 100)
    report = plan(prompt, config)
    assert report.score == report.raw_score == pytest.approx(0.5)
    assert report.marks == 2
    assert report.heavy
    assert report.heavy_keywords == ("legal",)


# --------------------------------------------------------------------------------------------------
# Heavy keywords


@pytest.mark.parametrize(
    ("prompt", "keyword"),
    [
        ("Is this contract legal", "legal"),
        ("LEGAL question", "legal"),
        ("is it illegal to park here", "legal"),
        ("a compliance checklist", "compliance"),
        ("personal finance tips", "finance"),
        ("financial statements", "finance"),
        ("medical advice", "medical"),
        ("differential diagnosis", "diagnosis"),
        ("a complex algorithm for scheduling", "complex_algorithm"),
        ("a complex\nalgorithm", "complex_algorithm"),
        ("write pseudocode", "pseudocode"),
        ("write pseudo-code", "pseudocode"),
        ("a regex for dates", "regex"),
        ("a regular expression for dates", "regex"),
        ("a multi-step plan", "multi_step"),
        ("a multi step plan", "multi_step"),
        ("a multistep plan", "multi_step"),
        ("build a RAG pipeline", "rag"),
        ("rag", "rag"),
        ("dense retrieval", "retrieval"),
        ("compare A and B", "compare"),
        ("a comparison of A and B", "compare"),
        ("sort these numbers", "sort"),
        ("sorting algorithms", "sort"),
        ("Explain why the sky is blue", "explain_why"),
        ("ＥＸＰＬＡＩＮ　ＷＨＹ", "explain_why"),
        ("法律问题", "legal"),
        ("合规要求", "compliance"),
        ("金融市场", "finance"),
        ("财务报表", "finance"),
        ("医疗建议", "medical"),
        ("医学问题", "medical"),
        ("诊断结果", "diagnosis"),
        ("复杂算法", "complex_algorithm"),
        ("写伪代码", "pseudocode"),
        ("正则表达式", "regex"),
        ("多步推理", "multi_step"),
        ("检索增强", "retrieval"),
        ("比较两者", "compare"),
        ("对比两者", "compare"),
        ("排序算法", "sort"),
        ("解释为什么天是蓝的", "explain_why"),
    ],
)
def test_heavy_keywords_are_found(prompt, keyword):
    report = plan(prompt, PAPER)
    assert report.heavy
    assert keyword in report.heavy_keywords
    assert f"heavy:{keyword}" in report.risk_factors


@pytest.mark.parametrize(
    "prompt",
    [
        "cloud storage pricing",  # "rag" inside a word
        "write one paragraph",
        "a fragrant garden",
        "a resort by the sea",  # "sort" needs a word start
        "assorted candies",
        "a complex number",  # "complex" without "algorithm"
        "explain the sky",  # "explain" without "why"
        "a simple question",
    ],
)
def test_heavy_keywords_respect_word_boundaries(prompt):
    report = plan(prompt, PAPER)
    assert not report.heavy
    assert report.heavy_keywords == ()


def test_heavy_keywords_are_reported_once_in_table_order():
    report = plan("Sort and compare; 比较 and compare again, then sort. Legal?", PAPER)
    assert report.heavy_keywords == ("legal", "compare", "sort")


# --------------------------------------------------------------------------------------------------
# Risk factors


def test_risk_factors_of_a_long_multi_question_json_request():
    prompt = padded("Who? Why? Return JSON. Is it legal? ", 801)
    report = plan(prompt, PAPER)
    assert report.task == "json"
    assert report.risk_factors == ("json_contract", "heavy:legal", "long_context", "multi_question")


def test_risk_factor_boundaries():
    assert "long_context" not in plan("z" * 800, PAPER).risk_factors
    assert "long_context" in plan("z" * 801, PAPER).risk_factors
    assert "multi_question" not in plan("one?", PAPER).risk_factors
    assert "multi_question" in plan("one? two？", PAPER).risk_factors
    assert plan("Write a Python function to add two numbers", PAPER).risk_factors == ("code",)


def test_plan_report_to_dict_is_json_ready():
    values = plan("Return JSON", PAPER).to_dict()
    assert values["task"] == "json"
    assert values["risk_factors"] == ["json_contract"]


# --------------------------------------------------------------------------------------------------
# Planner errors


def test_plan_rejects_non_str_prompt():
    with pytest.raises(SpecError, match=r"`prompt` must be a str; got bytes"):
        plan(b"hello", PAPER)


def test_plan_rejects_a_mapping_as_config():
    with pytest.raises(SpecError, match=r"`config` must be a PolicyConfig; got dict.*from_dict"):
        plan("hello", {"thr_std": 0.4})


def test_plan_rejects_a_schema_string():
    with pytest.raises(SpecError, match=r"`json_schema` must be a dict .* got str.*json.loads"):
        plan("hello", PAPER, json_schema='{"type": "object"}')


def test_plan_rejects_required_that_is_not_a_list():
    with pytest.raises(SpecError, match=r"`json_schema\['required'\]` must be a list .* got str"):
        plan("hello", PAPER, json_schema={"required": "name"})


def test_plan_rejects_non_finite_config_numbers():
    with pytest.raises(SpecError, match=r"`config.chars_per_unit` must be finite; got inf"):
        plan("hello", PolicyConfig(chars_per_unit=math.inf))


def test_plan_rejects_negative_cap():
    with pytest.raises(SpecError, match=r"`config.score_cap` must be >= 0; got -1.0"):
        plan("hello", PolicyConfig(score_cap=-1.0))


# --------------------------------------------------------------------------------------------------
# Router: thresholds, floors, fast lane


@pytest.mark.parametrize(
    ("score", "tier", "reason"),
    [
        (0.0, "light", "score<thr_std"),
        (0.3999999, "light", "score<thr_std"),
        (0.40, "std", "thr_std<=score<thr_enh"),
        (0.8499999, "std", "thr_std<=score<thr_enh"),
        (0.85, "enh", "score>=thr_enh"),
        (1.6, "enh", "score>=thr_enh"),
    ],
)
def test_thresholds_at_the_boundaries(score, tier, reason):
    decision = route(make_plan(score), PAPER)
    assert decision == RouteDecision(
        tier=tier, score_tier=tier, floor="light", fast_lane=False, reason=reason, score=score
    )


@pytest.mark.parametrize(("task", "reason"), [("json", "json_floor"), ("code", "code_floor")])
def test_json_and_code_floors_raise_light_to_std(task, reason):
    decision = route(make_plan(0.1, task=task, chars=20), PAPER)
    assert decision.tier == "std"
    assert decision.score_tier == "light"
    assert decision.floor == "std"
    assert decision.reason == reason
    assert not decision.fast_lane  # the fast lane is for general requests only


def test_floor_does_not_lower_a_higher_score_tier():
    decision = route(make_plan(1.2, task="json"), PAPER)
    assert decision.tier == "enh"
    assert decision.floor == "std"
    assert decision.reason == "score>=thr_enh"


def test_configured_floors_are_used():
    config = PolicyConfig(json_floor="enh", code_floor="light", def_floor="std")
    assert route(make_plan(0.1, task="json"), config).tier == "enh"
    assert route(make_plan(0.1, task="code"), config).tier == "light"
    general = route(make_plan(0.1, task="general"), config)
    assert (general.tier, general.floor, general.reason) == ("std", "std", "def_floor")


def test_fast_lane_sends_short_simple_general_requests_to_light():
    config = PolicyConfig(thr_std=0.2)  # without the fast lane, 0.3 would be std
    at_limits = route(make_plan(0.30, chars=120), config)
    assert (at_limits.tier, at_limits.score_tier, at_limits.fast_lane, at_limits.reason) == (
        "light",
        "std",
        True,
        "fast_lane",
    )
    too_long = route(make_plan(0.30, chars=121), config)
    assert (too_long.tier, too_long.fast_lane) == ("std", False)
    too_complex = route(make_plan(0.31, chars=50), config)
    assert (too_complex.tier, too_complex.fast_lane) == ("std", False)


def test_fast_lane_off_when_force_light_len_is_zero():
    config = PolicyConfig(thr_std=0.2, **ABLATIONS["B_no_fast_lane"])
    decision = route(make_plan(0.30, chars=10), config)
    assert (decision.tier, decision.fast_lane, decision.reason) == ("std", False, "thr_std<=score<thr_enh")


def test_fast_lane_does_not_override_a_default_floor():
    decision = route(make_plan(0.1, chars=10), PolicyConfig(def_floor="std"))
    assert (decision.tier, decision.fast_lane, decision.reason) == ("std", True, "def_floor")


def test_two_stage_ablation_has_no_std_by_score():
    config = PolicyConfig(**ABLATIONS["A_two_stage"])
    assert route(make_plan(0.99), config).tier == "light"
    assert route(make_plan(1.0), config).tier == "enh"
    assert route(make_plan(1.6), config).tier == "enh"
    # the floors still give json and code requests std
    assert route(make_plan(0.99, task="json"), config).tier == "std"
    assert route(make_plan(0.99, task="code"), config).tier == "std"


def test_baseline_sends_everything_to_the_baseline_tier():
    baseline = PolicyConfig(kind="baseline")
    for task in ("json", "code", "general"):
        decision = route(make_plan(0.0, task=task, chars=5), baseline)
        assert (decision.tier, decision.reason, decision.fast_lane) == ("enh", "baseline", False)
    assert route(make_plan(1.6), PolicyConfig(kind="baseline", baseline_tier="std")).tier == "std"


def test_plan_then_route_end_to_end():
    assert route(plan("Hi there", PAPER), PAPER).reason == "fast_lane"
    assert route(plan("只输出JSON：你好", PAPER), PAPER).tier == "std"
    heavy = route(plan("Explain why the legal system differs. Compare two countries.", PAPER), PAPER)
    assert heavy.tier == "enh"  # 60/200 + 0/6 + 0.8 = 1.1


def test_route_decision_to_dict():
    assert route(make_plan(0.5), PAPER).to_dict()["tier"] == "std"


# --------------------------------------------------------------------------------------------------
# Router errors


def test_route_rejects_a_non_plan():
    with pytest.raises(SpecError, match=r"`plan` must be a PlanReport; got dict"):
        route({"score": 0.1}, PAPER)


def test_route_rejects_a_mapping_as_config():
    with pytest.raises(SpecError, match=r"`config` must be a PolicyConfig; got dict"):
        route(make_plan(0.1), {})


def test_route_rejects_an_unknown_task():
    with pytest.raises(SpecError, match=r"`plan.task` must be one of .*'general'.* got 'chat'"):
        route(make_plan(0.1, task="chat"), PAPER)


def test_route_rejects_a_nan_score():
    with pytest.raises(SpecError, match=r"`plan.score` must be finite; got nan"):
        route(make_plan(math.nan), PAPER)


# --------------------------------------------------------------------------------------------------
# Properties

tiers = st.sampled_from(DEFAULT_TIERS)
tasks = st.sampled_from(("json", "code", "general"))
scores = st.floats(min_value=0.0, max_value=3.0, allow_nan=False)


@st.composite
def configs(draw, *, fast_lane: bool = True):
    thr_std = draw(st.floats(min_value=0.0, max_value=2.0))
    thr_enh = draw(st.floats(min_value=thr_std, max_value=2.0))
    return PolicyConfig(
        thr_std=thr_std,
        thr_enh=thr_enh,
        json_floor=draw(tiers),
        code_floor=draw(tiers),
        def_floor=draw(tiers),
        force_light_len=draw(st.integers(0, 400)) if fast_lane else 0,
        force_light_score=draw(st.floats(min_value=0.0, max_value=2.0)),
    )


@given(score=scores, task=tasks, chars=st.integers(0, 2000), config=configs())
@settings(max_examples=300, deadline=None)
def test_routed_tier_is_never_below_its_floor(score, task, chars, config):
    decision = route(make_plan(score, task=task, chars=chars), config)
    floor = getattr(config, {"json": "json_floor", "code": "code_floor", "general": "def_floor"}[task])
    assert decision.floor == floor
    assert tier_index(decision.tier) >= tier_index(floor)
    assert tier_index(decision.tier) >= tier_index(decision.score_tier) or decision.fast_lane


@given(first=scores, second=scores, chars=st.integers(0, 2000), config=configs(fast_lane=False))
@settings(max_examples=300, deadline=None)
def test_routing_is_monotone_in_score_for_general_tasks(first, second, chars, config):
    low, high = sorted((first, second))
    low_tier = route(make_plan(low, chars=chars), config).tier
    high_tier = route(make_plan(high, chars=chars), config).tier
    assert tier_index(low_tier) <= tier_index(high_tier)


@given(prompt=st.text(max_size=400), config=configs(), with_schema=st.booleans())
@settings(max_examples=200, deadline=None)
def test_planned_requests_respect_floors_and_cap(prompt, config, with_schema):
    report = plan(prompt, config, json_schema={"required": ["a"]} if with_schema else None)
    assert 0.0 <= report.score <= config.score_cap
    decision = route(report, config)
    assert tier_index(decision.tier) >= tier_index(decision.floor)
    if with_schema:
        assert report.task == "json"


ladder_names = st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=4), min_size=1, max_size=6, unique=True)


@st.composite
def ladders_and_configs(draw, *, fast_lane: bool = True):
    """Any ladder (1 to 6 rungs, any names) and a config whose tier fields name its rungs."""
    ladder = tuple(draw(ladder_names))
    rungs = st.sampled_from(ladder)
    thr_std = draw(st.floats(min_value=0.0, max_value=2.0))
    config = PolicyConfig(
        thr_std=thr_std,
        thr_enh=draw(st.floats(min_value=thr_std, max_value=2.0)),
        json_floor=draw(rungs),
        code_floor=draw(rungs),
        def_floor=draw(rungs),
        baseline_tier=draw(rungs),
        force_light_len=draw(st.integers(0, 400)) if fast_lane else 0,
        force_light_score=draw(st.floats(min_value=0.0, max_value=2.0)),
    )
    return ladder, config


@given(score=scores, task=tasks, chars=st.integers(0, 2000), ladder_config=ladders_and_configs())
@settings(max_examples=300, deadline=None)
def test_on_any_ladder_the_routed_tier_is_a_rung_never_below_its_floor(score, task, chars, ladder_config):
    ladder, config = ladder_config
    decision = route(make_plan(score, task=task, chars=chars), config, ladder)
    assert decision.tier in ladder
    assert decision.score_tier in ladder
    assert tier_index(decision.tier, ladder) >= tier_index(decision.floor, ladder)
    # the thresholds reach rung 2 at most; higher rungs only through a floor
    assert tier_index(decision.score_tier, ladder) <= 2
    if tier_index(decision.tier, ladder) > 2:
        assert decision.reason.endswith("_floor")


@given(first=scores, second=scores, chars=st.integers(0, 2000), ladder_config=ladders_and_configs(fast_lane=False))
@settings(max_examples=300, deadline=None)
def test_on_any_ladder_routing_is_monotone_in_score(first, second, chars, ladder_config):
    ladder, config = ladder_config
    low, high = sorted((first, second))
    low_tier = route(make_plan(low, chars=chars), config, ladder).tier
    high_tier = route(make_plan(high, chars=chars), config, ladder).tier
    assert tier_index(low_tier, ladder) <= tier_index(high_tier, ladder)


@given(score=scores, config=configs())
@settings(max_examples=200, deadline=None)
def test_the_default_ladder_routes_as_before_ladders_were_configurable(score, config):
    """The default ladder passed explicitly or left out gives the same decision, and it matches the
    paper's rule written out with the three literal tier names."""
    by_default = route(make_plan(score), config)
    assert route(make_plan(score), config, ("light", "std", "enh")) == by_default
    paper_rule = "light" if score < config.thr_std else ("std" if score < config.thr_enh else "enh")
    assert by_default.score_tier == paper_rule


def test_plan_report_is_frozen():
    report = plan("hello", PAPER)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        report.score = 0.0  # type: ignore[misc]


_MARK_PIECES = st.sampled_from(
    ["?", "？", ":", "：", "\n", "，", "Ａ", "ｊｓｏｎ", "法律", "abc ", "x" * 300, "中文" * 200]
)


@given(st.lists(_MARK_PIECES, max_size=30))
@settings(max_examples=200, deadline=None)
def test_marks_and_chars_match_a_naive_count_of_the_original(pieces):
    prompt = "".join(pieces)
    report = plan(prompt, PAPER)
    assert report.chars == len(prompt)
    assert report.marks == sum(prompt.count(mark) for mark in ("?", "？", ":", "：", "\n"))
    assert ("multi_question" in report.risk_factors) == (prompt.count("?") + prompt.count("？") >= 2)
