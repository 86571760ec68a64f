"""The enforcement experiment: its request suite (strata, languages, checks that score), its specs (arms and guard
settings as the issue describes them), the framework comparison's enforcement arms, and one small real run on the
embedded backend whose guard arms carry enforcement records and whose unguarded arms do not."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tsglab.config import load_spec
from tsglab.config.guard import GuardConfig
from tsglab.errors import SuiteError
from tsglab.suite import load_suite, score_answer
from tsglab.suite.panel import gold_answer

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "tsglab" / "suite" / "data" / "enforcement_prompts.jsonl"
SPEC = REPO / "experiments" / "enforcement.yaml"
DECODING_SPEC = REPO / "experiments" / "enforcement-decoding.yaml"
GENERATOR = REPO / "tools" / "generate_enforcement_prompts.py"
RULES = ("pii", "secrets", "code", "sql")
RISKS = {"pii", "secrets", "code", "sql", "benign"}
GUARD_ARMS = {"enforcement", "routing_enforcement", "routing_enforcement_parallel", "routing_judge"}
PLAIN_ARMS = {"baseline", "routing"}


def _generator():
    spec = importlib.util.spec_from_file_location("generate_enforcement_prompts", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the request suite --------------------------------------------------------------------------------------------


def test_the_suite_loads_with_both_languages_and_every_risk_stratum():
    items = load_suite(SUITE)
    assert 50 <= len(items) <= 80
    risks = Counter(item.strata["risk"] for item in items)
    assert set(risks) == RISKS
    assert min(risks.values()) >= 8
    for risk in RISKS:  # each stratum in both languages, so the report can split it
        assert {item.lang for item in items if item.strata["risk"] == risk} == {"en", "zh"}
    assert {item.task for item in items if item.json_schema is not None} == {"json"}
    assert sum(item.task == "json" for item in items) >= 5  # Family C has json items to test


def test_benign_look_alikes_are_marked_and_only_benign():
    items = load_suite(SUITE)
    look_alikes = [item for item in items if item.strata.get("look_alike")]
    assert len(look_alikes) >= 8
    assert {item.strata["risk"] for item in look_alikes} == {"benign"}


def test_every_gold_answer_scores_full_marks_and_an_empty_answer_none():
    items = load_suite(SUITE)
    for item in items:
        assert score_answer(item, gold_answer(item)).score == 1.0, item.id
        assert score_answer(item, "").score == 0.0, item.id
        assert score_answer(item, "I can't share that answer: it failed a safety check.").score == 0.0, item.id


def test_the_committed_suite_is_what_the_generator_writes():
    assert SUITE.read_text(encoding="utf-8") == _generator().render()
    done = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_generator_refuses_an_unknown_risk():
    with pytest.raises(ValueError, match="risk 'weapons' is not one of"):
        _generator()._item("weapons-en-x", "weapons", "prompt", "open", {"kind": "exact", "answer": "x"})


def test_a_suite_line_with_a_bad_stratum_value_names_the_line(tmp_path):
    line = SUITE.read_text(encoding="utf-8").splitlines()[-1].replace('"risk": "benign"', '"risk": 0.5')
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(SuiteError, match=r"bad.jsonl:1: field 'strata.risk' must be a string"):
        load_suite(path)


# -- the specs ----------------------------------------------------------------------------------------------------


def test_the_enforcement_spec_reads_the_suite_next_to_it_from_any_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the suite path is relative to the spec, not to the working directory
    spec = load_spec(SPEC)
    assert Path(spec.suite).resolve() == SUITE.resolve()
    assert len(load_suite(spec.suite)) == len(load_suite(SUITE))


def test_the_enforcement_arms_are_the_issues():
    spec = load_spec(SPEC)
    arms = spec.arms
    assert set(arms) == GUARD_ARMS | PLAIN_ARMS
    assert arms["baseline"].kind == "baseline"
    assert arms["baseline"].baseline_tier == spec.ladder[-1]
    assert arms["routing"].kind == "tsg"
    for name in PLAIN_ARMS:
        assert not arms[name].guard.enabled
    enforcement = arms["enforcement"]
    assert (enforcement.kind, enforcement.baseline_tier) == ("baseline", "std")
    assert enforcement.guard.output == RULES
    assert enforcement.guard.on_violation == ("repair", "block")
    for name, mode in (("routing_enforcement", "blocking"), ("routing_enforcement_parallel", "parallel")):
        guard = arms[name].guard
        assert arms[name].kind == "tsg"
        assert (guard.output, guard.on_violation, guard.mode) == (RULES, ("repair", "upgrade", "block"), mode)
    judge = arms["routing_judge"]
    assert judge.kind == "tsg"
    assert judge.guard.output == ("judge",)
    assert judge.guard.judge_tier == spec.ladder[0] == "light"
    # apart from their guardians, the routing arms are the paper's TSG: the same routing parameters
    plain = dataclasses.replace(arms["routing"], label="x")
    for name in ("routing_enforcement", "routing_enforcement_parallel", "routing_judge"):
        assert dataclasses.replace(arms[name], label="x", guard=GuardConfig()) == plain, name


@pytest.mark.parametrize(("limit", "n"), [(None, 30), (12, 12)])  # the spec's selection; the notebook's default
def test_the_selected_prompts_cover_every_risk_stratum(limit, n):
    from tsglab.load import select_prompts

    spec = load_spec(SPEC, {"prompts.limit": limit})
    prompts = select_prompts(load_suite(spec.suite), spec.prompts)
    assert len(prompts) == n
    assert {item.strata["risk"] for item in prompts} == RISKS
    assert {item.lang for item in prompts} == {"en", "zh"}
    if limit is None:  # 5 per risky stratum, 10 benign
        assert Counter(item.strata["risk"] for item in prompts) == {"pii": 5, "secrets": 5, "code": 5, "sql": 5,
                                                                    "benign": 10}


def test_an_empty_id_list_runs_the_whole_suite():
    from tsglab.load import select_prompts

    spec = load_spec(SPEC, {"prompts.ids": []})
    assert len(select_prompts(load_suite(spec.suite), spec.prompts)) == len(load_suite(SUITE))


def test_the_enforcement_spec_states_the_claims_and_the_quickstart_ladder():
    spec = load_spec(SPEC)
    assert spec.claims == {"guardian_detection": 0.998, "guardian_fpr": 0.001, "guardian_latency_ms": 10}
    quickstart = load_spec(REPO / "experiments" / "quickstart.yaml")
    assert spec.tiers == quickstart.tiers
    assert all(tier.backend == "embedded" for tier in spec.tiers.values())


def test_the_decoding_spec_compares_constrained_and_validated_json():
    spec = load_spec(DECODING_SPEC)
    assert spec.suite == "bundled"
    assert spec.prompts.tasks == ("json",)
    assert {name: arm.guard.json_decoding for name, arm in spec.arms.items()} == {
        "constrained": "constrained", "validate": "validate"}
    assert {arm.kind for arm in spec.arms.values()} == {"tsg"}


def test_the_framework_comparison_runs_the_enforcement_arms_beside_tsg():
    from tsglab.comparison import load_comparison, variant_spec

    comparison = load_comparison(REPO / "experiments" / "backends.yaml")
    spec = variant_spec(comparison, "embedded-llama.cpp", {})
    assert {"tsg", "enforcement", "routing_enforcement"} <= set(spec.arms)
    assert not spec.arms["tsg"].guard.enabled
    assert spec.arms["routing_enforcement"].guard.output == RULES
    assert spec.arms["routing_enforcement"].guard.on_violation == ("repair", "upgrade", "block")
    assert (spec.arms["enforcement"].kind, spec.arms["enforcement"].baseline_tier) == ("baseline", "std")


# -- a real run (embedded llama.cpp) --------------------------------------------------------------------------------


def _guard_stage_landed() -> bool:
    from tsglab.policy import executor

    source = Path(executor.__file__).read_text(encoding="utf-8")
    return "enforcement" in source and "guard" in source


@pytest.mark.integration
def test_a_small_enforcement_run_records_enforcement_on_guard_arms_only(tmp_path):
    pytest.importorskip("llama_cpp", reason="the embedded runtime is installed by `make setup`")
    if not _guard_stage_landed():
        pytest.skip("the executor's guard stage (tsglab/policy/executor.py) has not landed yet")
    import tsglab
    from tsglab.events import read_events

    # one llama.cpp thread per model: on a shared 2-core machine two threads wait on each other (docs/enforcement.md)
    overrides = {"prompts.limit": 2, "load.warmup_count": 0, "load.timeout_s": 180,
                 **{f"tiers.{tier}.options.n_threads": 1 for tier in ("light", "std", "enh")}}
    result = tsglab.run(SPEC, runs_dir=tmp_path, run_id="enf", overrides=overrides, progress=False)
    assert result.status == "complete"
    events = read_events(result.run_dir)
    assert Counter(e.arm for e in events) == dict.fromkeys(GUARD_ARMS | PLAIN_ARMS, 2)
    checked: Counter[str] = Counter()
    for event in events:
        if event.arm in PLAIN_ARMS:
            assert event.enforcement is None, event.arm
            continue
        assert event.enforcement is not None, (event.arm, event.prompt_id)
        expected = {"judge"} if event.arm == "routing_judge" else set(RULES)
        guardians = {check.guardian for check in event.enforcement.checks}
        assert guardians <= expected, (event.arm, guardians)  # empty when no answer passed the executor's checks
        assert event.enforcement.outcome in ("pass", "block", "input_block", "redact", "deliver")
        if guardians == expected:
            checked[event.arm] += 1
    assert set(checked) == GUARD_ARMS, checked  # every guard arm checked at least one answer with all its guardians


# -- the notebook (scripted backend: no model) ----------------------------------------------------------------------

SCRIPTED_REPLIES = {
    "e-mail": "Name: Lena Brandt, e-mail: lena.brandt@posteo.de, mobile: +49 151 2345 6789",  # the pii guardian fires
    "Luhn": "The Luhn check is a checksum used to validate credit card numbers.",
}


def _scripted_enforcement_spec(tmp_path: Path) -> Path:
    """experiments/enforcement.yaml with every rung on the scripted backend (replies keyed by prompt substrings)."""
    import yaml

    raw = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    raw["name"] = "nb-enforcement"
    raw["suite"] = str(SUITE)
    raw["energy"] = {"meter": "none"}
    raw["load"] = {"mode": "paced", "period_ms": 0, "timeout_s": 5}
    options = {"reply": "The answer is 42.", "replies": SCRIPTED_REPLIES, "prompt_ms": 2, "sleep": True}
    raw["tiers"] = {tier: {"backend": "scripted", "max_tokens": values["max_tokens"], "options": options}
                    for tier, values in raw["tiers"].items()}
    path = tmp_path / "enforcement-scripted.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.integration
def test_the_notebook_runs_the_experiment_and_shows_the_enforcement_tables_claims_and_figure(tmp_path):
    import json

    import nbformat
    import papermill

    if not _guard_stage_landed():
        pytest.skip("the executor's guard stage (tsglab/policy/executor.py) has not landed yet")
    out = tmp_path / "enforcement-out.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "enforcement.ipynb"), str(out), cwd=str(REPO),
                               kernel_name="python3", progress_bar=False,
                               parameters={"spec": str(_scripted_enforcement_spec(tmp_path)),
                                           "runs_dir": str(tmp_path), "run_id": "nb", "prompts_limit": 3})
    run_dir = tmp_path / "nb"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    assert len((run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()) == 3 * 6
    outputs = "".join(json.dumps(cell.get("outputs", []), ensure_ascii=False)
                      for cell in nbformat.read(out, as_version=4).cells)
    assert "[enforcement_arms]" in outputs
    assert "Claim FPR ≤ 0.1 %" in outputs  # the claims lines of the spec's guardian_fpr
    assert "Claim P95 per check < 10 ms" in outputs
    assert "image/png" in outputs  # the trade-off figure
    assert "routing_enforcement_parallel" in outputs
