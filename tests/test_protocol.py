"""The protocol's families on constructed arms whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import scripted_ladder

from tsglab.config import spec_from_dict
from tsglab.errors import SpecError
from tsglab.events import synthetic_event
from tsglab.load.runner import run_experiment
from tsglab.report import build_report
from tsglab.report.frame import events_frame
from tsglab.report.protocol import ProtocolSettings, family_a, family_b, family_c, routing_cost, verdict

TASKS = ("json", "code", "open", "arith")


def arm(n_per_task=220, *, quality=0.7, latency=1000.0, seed=0, json_fail=0, drop=None):
    """A synthetic arm: the report frame (tsglab.report.frame.events_frame) of synthetic events.

    Quality is pass/fail and decided per prompt (the same in every arm: identical answers), unless
    ``drop=(task, share)`` turns that share of the task's passes into fails. Latency has a per-prompt
    part shared by the arms (a long prompt is slow everywhere) and an arm-specific part from ``seed``.
    Every request starts on std; every fifth is repaired once, every third upgraded to enh.
    """
    prompt_rng = np.random.default_rng(12345)
    rng = np.random.default_rng(seed)
    events = []
    for t, task in enumerate(TASKS):
        for i in range(n_per_task):
            q = float(prompt_rng.random() < quality)
            if drop and task == drop[0] and q == 1.0 and rng.random() < drop[1]:
                q = 0.0
            lat = float(latency * np.exp(0.3 * prompt_rng.standard_normal() + 0.1 * rng.standard_normal()))
            tiers = ("std",) + ("std",) * (i % 5 == 0) + ("enh",) * (i % 3 == 0)
            events.append(synthetic_event(f"{task}-{i}", seq=t * n_per_task + i, task=task, in_warmup=i < 2,
                                          quality=q, raw_ms=lat, co_ms=lat * 1.1, cost_ms=lat * 0.9, tiers=tiers,
                                          json_ok=(i >= json_fail) if task == "json" else None,
                                          completion_tokens=20, timeout_s=60.0))
    return events_frame(events)


SETTINGS = ProtocolSettings(n_resamples=500)


def test_family_a_flags_the_stratum_whose_quality_drops_and_only_that_one():
    base = arm(seed=1)
    gate = arm(seed=2, drop=("code", 0.3))
    table = family_a(base, gate, SETTINGS).set_index("stratum")
    assert table.loc["code", "decision"] == "failed"
    assert not table.loc["code", "passed"]
    assert table.loc[["json", "open", "arith"], "passed"].all()
    assert (table["method"] == "exact-binary").all()
    strata = table.drop(index="overall")
    assert (strata["q_fail"] >= strata["p_fail"] - 1e-12).all()  # BH never lowers a p-value


def test_family_a_identical_pairs_carry_their_real_p_value_not_zero():
    base = arm(n_per_task=2, seed=1)  # 8 pairs, every answer identical
    table = family_a(base, base.copy(), SETTINGS).set_index("stratum")
    assert (table["mean_diff"] == 0).all()
    assert not table["passed"].any()
    assert table.loc["overall", "p_value"] >= 0.95 ** 8 - 1e-9
    assert (table["decision"] == "underpowered").all()
    assert (table["n_needed"] > 8).all()


def test_family_a_pairs_by_prompt_id_not_by_row_order():
    base = arm(seed=1)
    gate = base.sample(frac=1.0, random_state=3).reset_index(drop=True)  # same answers, shuffled rows
    table = family_a(base, gate, SETTINGS).set_index("stratum")
    assert (table["mean_diff"] == 0).all()
    assert table["passed"].all()


def test_family_a_tost_needs_the_difference_inside_both_margins():
    base = arm(seed=1, quality=0.5)
    better = base.copy()
    better.loc[better.index % 4 == 0, "quality"] = 1.0  # clearly better: non-inferior, not equivalent
    ni = family_a(base, better, SETTINGS).set_index("stratum")
    tost = family_a(base, better, ProtocolSettings(n_resamples=500, equivalence=True)).set_index("stratum")
    assert ni.loc["overall", "passed"]
    assert not tost.loc["overall", "passed"]
    same = family_a(base, base.copy(), ProtocolSettings(n_resamples=500, equivalence=True)).set_index("stratum")
    assert same.loc["overall", "passed"]
    assert (same["test"] == "equivalence (TOST)").all()
    assert (same["ci_low"] <= same["mean_diff"]).all()
    assert (same["mean_diff"] <= same["ci_high"]).all()


def test_passed_rows_never_show_a_bound_on_the_wrong_side_of_their_margin():
    base = arm(seed=1)
    for gate in (arm(seed=2), arm(seed=2, drop=("code", 0.1)), arm(seed=3, latency=1080.0)):
        a, b = family_a(base, gate, SETTINGS), family_b(base, gate, SETTINGS)
        assert (a.loc[a["passed"], "ci_low"] > -a.loc[a["passed"], "margin"]).all()
        assert (a.loc[~a["passed"], "ci_low"] <= -a.loc[~a["passed"], "margin"] + 1e-9).all()
        assert (b.loc[b["passed"], "ratio_ci_high"] < b.loc[b["passed"], "bound"]).all()


def test_family_b_passes_equal_latency_and_fails_a_doubled_tail():
    base = arm(seed=1)
    same = family_b(base, arm(seed=1), SETTINGS)
    assert same["passed"].all()
    slower = arm(seed=1, latency=2000.0)
    table = family_b(base, slower, SETTINGS)
    assert not table["passed"].any()
    assert (table["decision"] == "failed").all()
    assert set(table["view"]) == {"Overall", "Warm-only"}
    assert (table.loc[table["stratum"] == "overall", "ratio"] > 1.9).all()


def test_family_b_counts_failed_requests_at_the_slo_cap_so_failing_fast_never_helps():
    base, gate = arm(seed=1), arm(seed=1)
    failing = gate["prompt_id"].str.endswith(("-1", "-7"))  # ~1.3 % fail almost instantly
    gate.loc[failing, ["co_ms", "raw_ms"]] = 0.5
    gate.loc[failing, "failed"] = True
    table = family_b(base, gate, SETTINGS)
    overall = table[(table["stratum"] == "overall") & (table["view"] == "Overall")].iloc[0]
    assert overall["p95_gateway"] > overall["p95_baseline"]


def test_family_b_is_not_identifiable_when_more_than_5_percent_fail_and_cannot_pass():
    base, gate = arm(seed=1), arm(seed=1, latency=3000.0)
    failing = base.index % 10 == 0  # the baseline fails 10 %: its P95 sits at the SLO cap
    base.loc[failing, "failed"] = True
    table = family_b(base, gate, SETTINGS)
    overall = table[table["stratum"] == "overall"]
    assert (overall["decision"] == "not identifiable").all()
    assert not overall["passed"].any()
    result = verdict(family_a(base, gate, SETTINGS), table, family_c({"tsg": gate}, SETTINGS), "tsg")
    assert not result["family_B"]
    assert not result["overall"]
    assert not result["identifiable"]


def test_family_b_small_strata_are_underpowered_not_passed():
    base = arm(n_per_task=30, seed=1)
    table = family_b(base, arm(n_per_task=30, seed=1), SETTINGS)
    strata = table[table["stratum"] != "overall"]
    assert (strata["decision"] == "underpowered").all()
    assert not strata["passed"].any()


def test_family_b_uses_co_latency_unless_co_correction_is_off():
    base, gate = arm(seed=1), arm(seed=1)
    gate["co_ms"] = gate["co_ms"] * 3  # a backlog only the CO view sees
    assert not family_b(base, gate, SETTINGS)["passed"].any()
    assert family_b(base, gate, ProtocolSettings(n_resamples=500, co_correction=False))["passed"].all()


def test_family_c_gate_counts_failures_and_says_when_n_is_too_small():
    table = family_c({"base": arm(json_fail=0), "tsg": arm(json_fail=6)}, SETTINGS)
    overall = table[table["stratum"] == "overall"].set_index("arm")
    assert overall.loc["tsg", "failures"] == 6
    assert not overall.loc["tsg", "passed_point"]
    assert overall.loc["base", "failures"] == 0
    assert overall.loc["base", "passed_point"]
    assert overall.loc["base", "underpowered"]
    assert not overall.loc["base", "passed_test"]
    assert "too small" in overall.loc["base", "note"]


def test_verdict_fails_when_any_family_fails():
    base, gate = arm(seed=1), arm(seed=1, drop=("open", 0.4))
    a, b, c = family_a(base, gate, SETTINGS), family_b(base, gate, SETTINGS), family_c({"tsg": gate}, SETTINGS)
    result = verdict(a, b, c, "tsg")
    assert not result["family_A"]
    assert not result["overall"]
    assert "open" in result["failed_strata"]


def test_verdict_fails_when_a_stratum_is_flagged_even_if_the_overall_row_passes():
    base = arm(n_per_task=400, seed=1)
    gate = arm(n_per_task=400, seed=1, drop=("code", 0.2))
    a = family_a(base, gate, SETTINGS)
    overall = a.set_index("stratum").loc["overall"]
    assert overall["passed"]  # the drop is diluted overall ...
    assert a.set_index("stratum").loc["code", "decision"] == "failed"  # ... but the screen finds it
    result = verdict(a, family_b(base, gate, SETTINGS), family_c({"tsg": gate}, SETTINGS), "tsg")
    assert not result["family_A"]
    assert result["failed_strata"] == ["code"]


def test_routing_cost_counts_every_attempt():
    table = routing_cost({"tsg": arm()}).iloc[0]
    assert table["retry_rate"] == pytest.approx(1 / 5 + 1 / 3 - 1 / 15, abs=0.01)
    assert table["r_std"] == 1.0
    assert table["r_costly"] == pytest.approx(1 / 3, abs=0.01)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"strata": ("final_tier",)}, "post-treatment"),
    ({"fdr_method": "holm"}, "fdr_method must be 'bh' or 'by'"),
    ({"n_resamples": 10}, "n_resamples must be >= 100"),
])
def test_settings_errors(kwargs, match):
    with pytest.raises(SpecError, match=match):
        ProtocolSettings(**kwargs)


def test_report_writes_the_protocol_artifacts(tmp_path):
    spec = spec_from_dict({"name": "p", "prompts": {"limit": 14}, "tiers": {t: {} for t in ("light", "std", "enh")},
                           "load": {"timeout_s": 5}})
    result = run_experiment(spec, runs_dir=tmp_path, run_id="p", ladder=scripted_ladder('{"a": 1} the answer'),
                            progress=False)
    report = build_report(result.run_dir, settings=ProtocolSettings(n_resamples=200))
    for name in ("tests_family_A.csv", "tests_family_B.csv", "tests_family_C.csv"):
        assert len(pd.read_csv(result.run_dir / name)) > 0
    meta = json.loads((result.run_dir / "bootstrap_meta.json").read_text())
    assert meta["n_resamples"] == 200
    assert "verdict" in meta
    assert "intersection-union" in meta["multiplicity"]["verdict"]
    manifest = (result.run_dir / "seed_manifest.txt").read_text()
    assert "protocol_seed: 0" in manifest
    assert "numba:" in manifest
    assert "Verdict at α = 0.05:" in str(report)
    assert (result.run_dir / "tables" / "family_A.tex").exists()


def test_ablation_table_has_one_row_per_arm_and_the_cli_prints_it(tmp_path, capsys):
    from tsglab.cli import main
    from tsglab.config import load_spec
    from tsglab.report import build_ablation

    spec = load_spec("experiments/ablations.yaml", {"prompts.limit": 4})
    result = run_experiment(spec, runs_dir=tmp_path, run_id="abl", ladder=scripted_ladder("an answer"),
                            progress=False)
    table = build_ablation([result.run_dir])
    assert list(table["arm"]) == ["baseline", "tsg", "A_two_stage", "B_no_fast_lane", "E_no_planner",
                                  "F_no_repair"]
    assert table.set_index("arm").loc["baseline", "r_costly"] == 1.0
    assert main(["ablation", str(result.run_dir)]) == 0
    assert "F_no_repair" in capsys.readouterr().out
    assert (result.run_dir / "tables" / "ablation.tex").exists()
