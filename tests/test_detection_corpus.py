"""Task detection measured on the labelled corpus (issue 11, item 2): targets, coverage, the issue's
examples, the bundled suite detected from its text, and a scorer that can fail."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _detection_corpus import (
    CORPUS,
    HOLDOUT,
    CorpusError,
    LabelledPrompt,
    class_scores,
    evaluate,
    load_corpus,
    suite_items,
)

from tsglab.config import PolicyConfig
from tsglab.policy.detect import detect_task
from tsglab.policy.planner import heavy_keywords, plan


@pytest.fixture(scope="module")
def corpus() -> list[LabelledPrompt]:
    return load_corpus(CORPUS)


def test_the_corpus_covers_both_languages_every_class_and_heavy(corpus):
    assert len(corpus) >= 300
    for lang in ("en", "zh"):
        for task in ("json", "code", "general"):
            assert sum(item.lang == lang and item.task == task for item in corpus) >= 25, (lang, task)
        assert sum(item.lang == lang and item.heavy for item in corpus) >= 20, lang
        assert sum(item.lang == lang and not item.heavy for item in corpus) >= 100, lang


def test_the_holdout_is_separate_and_covers_every_class(corpus):
    holdout = load_corpus(HOLDOUT)
    assert len(holdout) >= 100
    assert {item.prompt for item in holdout}.isdisjoint(item.prompt for item in corpus)
    assert {(item.lang, item.task) for item in holdout} == {(lang, task) for lang in ("en", "zh")
                                                            for task in ("json", "code", "general")}


@pytest.mark.parametrize("path", [CORPUS, HOLDOUT], ids=["corpus", "holdout"])
def test_detection_meets_the_targets(path):
    evaluation = evaluate(load_corpus(path))
    errors = [f"{item.id}: {item.task} -> {predicted}: {item.prompt!r}" for item, predicted in evaluation.task_errors]
    assert evaluation.missed_targets() == [], "\n".join(errors)
    json_score, code_score = evaluation.score("json"), evaluation.score("code")
    assert json_score.recall >= 0.98
    assert json_score.precision >= 0.95
    assert code_score.recall >= 0.95


@pytest.mark.parametrize("path", [CORPUS, HOLDOUT], ids=["corpus", "holdout"])
def test_heavy_keywords_do_not_fire_on_ordinary_words(path):
    evaluation = evaluate(load_corpus(path))
    errors = [
        f"{item.id}: heavy={item.heavy}, found {found}: {item.prompt!r}" for item, found in evaluation.heavy_errors
    ]
    assert evaluation.heavy.precision >= 0.95, "\n".join(errors)
    assert evaluation.heavy.recall >= 0.95, "\n".join(errors)


def test_the_bundled_suite_is_detected_from_its_text_alone():
    # Every json item carries a schema, which forces the task; the text must carry it too.
    evaluation = evaluate(suite_items())
    misses = [f"{item.id}: {item.task} -> {predicted}: {item.prompt[:120]!r}"
              for item, predicted in evaluation.task_errors if item.task in ("json", "code")]
    assert evaluation.score("json").recall >= 0.98, "\n".join(misses)
    assert evaluation.score("json").precision >= 0.95
    assert evaluation.score("code").recall >= 0.95, "\n".join(misses)


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("In JSON, are trailing commas allowed?", "general"),
        ("Using JSON in Python is easy, right?", "general"),
        ("Output must be JSON.", "json"),
        ("用json回答，不要解释", "json"),
        ("Write a SQL statement that sets status to 'shipped' for the order with id 236.", "code"),
        ("What sort of dog should I get?", "general"),
        ("今天比较冷吗？", "general"),
    ],
)
def test_the_issue_examples(prompt, task):
    assert detect_task(prompt) == task


@pytest.mark.parametrize(
    ("prompt", "heavy"),
    [
        ("What sort of dog should I get?", False),
        ("Sort these numbers: 3, 1, 2", True),
        ("今天比较冷吗？", False),
        ("比较一下北京和上海", True),
        ("Wipe it with a damp rag.", False),
        ("Build a RAG pipeline.", True),
        ("调高对比度", False),
        ("每天多步行", False),
        ("正则化有什么用？", False),
        ("Can you explain to me why ice floats?", True),
    ],
)
def test_heavy_in_the_issue_examples(prompt, heavy):
    assert bool(heavy_keywords(prompt)) is heavy
    assert plan(prompt, PolicyConfig()).heavy is heavy


def test_the_default_policy_hash_is_unchanged():
    # Detection changed, the policy's parameters did not: runs made before stay comparable by hash.
    assert PolicyConfig().config_hash() == "2bf068557762"


# --------------------------------------------------------------------------------------------------
# The scorer can fail


def test_a_detector_that_answers_general_misses_every_target(corpus):
    evaluation = evaluate(corpus, detect=lambda _text: "general", heavy=lambda _text: ())
    assert evaluation.score("json").recall == 0.0
    assert evaluation.score("code").recall == 0.0
    assert len(evaluation.missed_targets()) == 3
    assert evaluation.heavy.recall == 0.0


def test_a_detector_that_says_json_whenever_json_is_mentioned_fails_precision(corpus):
    def naive(text: str) -> str:
        return "json" if "json" in text.lower() else detect_task(text)

    evaluation = evaluate(corpus, detect=naive)
    assert evaluation.score("json").precision < 0.95
    assert any("json precision" in line for line in evaluation.missed_targets())


def test_class_scores_by_hand():
    truth = ["json", "json", "code", "general"]
    predicted = ["json", "general", "json", "general"]
    json_score, code_score, general_score = class_scores(truth, predicted, ("json", "code", "general"))
    assert (json_score.true_positives, json_score.n_true, json_score.n_predicted) == (1, 2, 2)
    assert json_score.precision == 0.5
    assert json_score.recall == 0.5
    assert code_score.recall == 0.0
    assert code_score.n_predicted == 0
    assert general_score.precision == 0.5
    assert general_score.recall == 1.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", r"bad\.jsonl:2: not a JSON object"),
        ('{"id": "a", "lang": "en", "task": "json", "prompt": "x"}', r"bad\.jsonl:2: expected exactly the keys"),
        ('{"id": "a", "lang": "fr", "task": "json", "heavy": false, "prompt": "x"}', r"bad\.jsonl:2: task must be"),
        ('{"id": "a", "lang": "en", "task": "json", "heavy": 0, "prompt": "x"}', r"heavy true or false"),
        ('{"id": "a", "lang": "en", "task": "json", "heavy": false, "prompt": " "}', r"non-empty strings"),
        ('{"id": "a", "lang": "en", "task": "code", "heavy": false, "prompt": "y"}', r"id 'a' is already used"),
    ],
)
def test_bad_corpus_lines_are_named(tmp_path, line, message):
    bad = tmp_path / "bad.jsonl"
    first = '{"id": "a", "lang": "en", "task": "json", "heavy": false, "prompt": "Return JSON."}'
    bad.write_text(f"{first}\n{line}\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        load_corpus(bad)
