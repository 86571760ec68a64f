"""Ablations that change nothing are flagged: the routing replay of tsglab.load.dry_route (issue 11, item 4).

The real case is the bundled ``experiments/ablations.yaml``: with the paper's defaults the fast lane (score
<= 0.30) can never change a decision because a score below thr_std (0.40) starts on light anyway, so
B_no_fast_lane routes exactly like tsg; every other pair differs (in routes, or after the route).
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path

import pytest
from _rundir_helpers import tsglab_cli
from conftest import scripted_ladder

from tsglab.config import PolicyConfig, load_spec
from tsglab.errors import IdenticalRoutingWarning, TsglabWarning
from tsglab.events import read_manifest
from tsglab.load.dry_route import (
    PLANNER_FIELDS,
    ROUTER_FIELDS,
    replay_routing,
    replay_spec,
    routing_warnings,
)
from tsglab.load.runner import run_experiment
from tsglab.load.schedule import select_prompts
from tsglab.policy import plan, route
from tsglab.report import ProtocolSettings, build_report
from tsglab.suite import bundled_suite_path, load_suite

ROOT = Path(__file__).resolve().parents[1]
ABLATIONS = ROOT / "experiments" / "ablations.yaml"
SCRIPTED = {f"tiers.{tier}.backend": "scripted" for tier in ("light", "std", "enh")}
SETTINGS = ProtocolSettings(n_resamples=100, seed=1)
SUITE = load_suite(bundled_suite_path())


def ablations(**overrides):
    return load_spec(ABLATIONS, {**SCRIPTED, **overrides})


def answer(request):
    if request.json_schema is not None:
        return '{"answer": 1}'
    return "The answer is 42 and it is positive."


def naive_tiers(config: PolicyConfig, items, ladder=("light", "std", "enh")) -> list[str]:
    """The initial tiers the gateway would pick, one plan and route per prompt (no sharing between arms)."""
    return [route(plan(it.prompt, config, json_schema=it.json_schema), config, ladder).tier for it in items]


def test_the_bundled_ablations_flag_exactly_tsg_and_b():
    spec = load_spec(ABLATIONS)
    items = select_prompts(SUITE, spec.prompts)
    replay = replay_spec(spec, items)
    assert [pair.arms for pair in replay.identical] == [("tsg", "B_no_fast_lane")]
    (pair,) = replay.identical
    assert pair.differing == {"force_light_len": (120, 0)}
    message = pair.message()
    assert "force_light_len (tsg 120, B_no_fast_lane 0)" in message
    assert "no effect on these prompts" in message
    assert f"every one of the {len(items)} prompts" in message
    assert "force_light_score = 0.3" in message
    assert "thr_std = 0.4" in message
    # F_no_repair routes like tsg and B but repairs differently: recorded, not warned
    same = {pair.arms: pair for pair in replay.same_routes}
    assert set(same) == {("tsg", "B_no_fast_lane"), ("tsg", "F_no_repair"), ("B_no_fast_lane", "F_no_repair")}
    assert same[("tsg", "F_no_repair")].beyond_routing == ("same_tier_repair",)
    assert not same[("tsg", "F_no_repair")].identical
    assert replay.warnings() == [message]
    # the replay agrees with a plain plan-and-route of every prompt, arm by arm
    for arm, config in spec.arms.items():
        assert list(replay.tiers[arm]) == naive_tiers(config, items), arm
    # and every pair it did not flag really routes differently somewhere (or differs after the route)
    for first, second in [(a, b) for i, a in enumerate(spec.arms) for b in list(spec.arms)[i + 1:]]:
        if (first, second) not in same:
            assert replay.tiers[first] != replay.tiers[second], (first, second)


def test_the_whole_bundled_suite_gives_the_same_verdict():
    replay = replay_spec(load_spec(ABLATIONS), SUITE)
    assert [pair.arms for pair in replay.identical] == [("tsg", "B_no_fast_lane")]


@pytest.mark.parametrize(("force_light_score", "flagged"), [(0.1, True), (0.3, True), (0.39, True), (0.7, False)])
def test_the_fast_lane_is_flagged_only_while_it_cannot_go_below_the_threshold(force_light_score, flagged):
    arms = {"tsg": PolicyConfig(force_light_score=force_light_score),
            "no_fast_lane": PolicyConfig(force_light_score=force_light_score, force_light_len=0)}
    replay = replay_routing(arms, SUITE)
    assert bool(replay.identical) is flagged
    routes_differ = naive_tiers(arms["tsg"], SUITE) != naive_tiers(arms["no_fast_lane"], SUITE)
    assert routes_differ is not flagged  # the flag is the truth about the routes, not about the parameters


def test_baseline_arms_compare_by_their_fixed_tier():
    arms = {"baseline": PolicyConfig(kind="baseline"),
            "baseline_other_thresholds": PolicyConfig(kind="baseline", thr_std=0.1, thr_enh=0.2),
            "baseline_std": PolicyConfig(kind="baseline", baseline_tier="std"),
            "all_to_enh": PolicyConfig(thr_std=0.0, thr_enh=0.0, json_floor="enh", code_floor="enh",
                                       def_floor="enh")}
    replay = replay_routing(arms, SUITE)
    assert [pair.arms for pair in replay.identical] == [("baseline", "baseline_other_thresholds")]
    assert replay.identical[0].differing == {"thr_std": (0.4, 0.1), "thr_enh": (0.85, 0.2)}
    same = {pair.arms: pair for pair in replay.same_routes}
    # a gateway arm that starts every prompt on enh still checks, repairs and upgrades: not the baseline
    assert same[("baseline", "all_to_enh")].beyond_routing == ("kind",)
    assert ("baseline", "baseline_std") not in same
    assert replay.tiers["baseline_std"] == ("std",) * len(SUITE)


def test_equal_arms_and_arms_differing_after_the_route_are_not_warned():
    arms = {"a": PolicyConfig(), "a_again": PolicyConfig(label="copy"),
            "fewer_upgrades": PolicyConfig(max_upgrades=0), "no_refusal_check": PolicyConfig(check_refusal=False)}
    replay = replay_routing(arms, SUITE)
    assert replay.identical == ()
    assert ("a", "a_again") not in {pair.arms for pair in replay.same_routes}  # an A/A comparison is deliberate
    assert {pair.arms for pair in replay.same_routes} >= {("a", "fewer_upgrades"), ("a", "no_refusal_check")}


def test_every_policy_field_is_known_to_the_replay():
    """A field the replay does not know is taken to act after the route (never 'no effect'); the planner and
    router lists must name real fields."""
    fields = {f.name for f in dataclasses.fields(PolicyConfig)}
    assert set(PLANNER_FIELDS) <= fields
    assert set(ROUTER_FIELDS) <= fields
    new_field_like = {"tsg": PolicyConfig(), "other": PolicyConfig(min_answer_chars=50)}
    assert replay_routing(new_field_like, SUITE[:20]).identical == ()


def test_a_prompt_the_router_rejects_counts_as_not_routed():
    arms = {"enh_baseline": PolicyConfig(kind="baseline"), "std_baseline": PolicyConfig(kind="baseline",
                                                                                        baseline_tier="std")}
    replay = replay_routing(arms, SUITE[:5], ladder=("light", "std"))  # enh is not on this ladder
    assert replay.tiers["enh_baseline"] == ("(not routed)",) * 5
    assert replay.to_dict()["routes"]["enh_baseline"] == {"(not routed)": 5}


def test_no_prompt_flags_nothing():
    assert replay_routing({"tsg": PolicyConfig(), "b": PolicyConfig(force_light_len=0)}, []).same_routes == ()


def test_the_replay_of_hundreds_of_prompts_takes_well_under_a_second():
    spec = load_spec(ABLATIONS)
    items = [dataclasses.replace(it, id=f"{it.id}#{copy}") for copy in range(3) for it in SUITE]  # the suite 3 times
    arms = {**spec.arms, **{f"{arm}_copy": dataclasses.replace(cfg, score_cap=1.5) for arm, cfg in spec.arms.items()}}
    replay_routing(arms, items[:5])  # imports and first calls
    started = time.perf_counter()
    replay = replay_routing(arms, items, ladder=spec.ladder)
    elapsed = time.perf_counter() - started
    print(f"routing replay: {len(items)} prompts x {len(arms)} arms in {elapsed * 1e3:.1f} ms "
          f"(its own figure {replay.elapsed_ms:.1f} ms)")
    assert len(replay.prompt_ids) == 3 * len(SUITE)
    assert len(replay.tiers) == 12
    assert elapsed < 1.0


def test_a_run_warns_before_the_schedule_starts_and_records_the_replay(tmp_path):
    spec = ablations(**{"prompts.limit": 6})
    seen_at_first_request: list[int] = []
    caught: list[warnings.WarningMessage] = []

    def first_answer_checks(request):
        if not seen_at_first_request:
            seen_at_first_request.append(sum(issubclass(w.category, IdenticalRoutingWarning) for w in caught))
        return answer(request)

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        caught = record
        result = run_experiment(spec, runs_dir=tmp_path, run_id="abl", ladder=scripted_ladder(first_answer_checks),
                                progress=False)
    ours = [w for w in caught if issubclass(w.category, IdenticalRoutingWarning)]
    assert len(ours) == 1
    assert issubclass(ours[0].category, TsglabWarning)
    assert "'tsg' and 'B_no_fast_lane'" in str(ours[0].message)
    assert "force_light_len" in str(ours[0].message)
    assert seen_at_first_request == [1]  # already warned when the first request went out
    # the warning points at the arm's line in the spec file
    assert ours[0].filename == str(ABLATIONS)
    assert ABLATIONS.read_text().splitlines()[ours[0].lineno - 1].strip().startswith("B_no_fast_lane:")
    manifest = read_manifest(result.run_dir)
    replay = manifest["routing_replay"]
    assert replay["n_prompts"] == 6
    assert replay["warnings"] == [str(ours[0].message)]
    assert [p["arms"] for p in replay["same_routes"] if p["identical"]] == [["tsg", "B_no_fast_lane"]]
    assert set(replay["routes"]) == set(spec.arms)
    assert sum(replay["routes"]["tsg"].values()) == 6
    json.dumps(replay)  # plain JSON


def test_the_report_prints_the_warning_under_the_verdict(tmp_path):
    spec = ablations(**{"prompts.limit": 6})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdenticalRoutingWarning)
        result = run_experiment(spec, runs_dir=tmp_path, run_id="abl", ladder=scripted_ladder(answer),
                                progress=False)
    report = build_report(result.run_dir, settings=SETTINGS, write=False)
    lines = str(report).splitlines()
    verdict_at = next(i for i, line in enumerate(lines) if line.startswith("Verdict at"))
    assert lines[verdict_at + 1].startswith("WARNING: arms 'tsg' and 'B_no_fast_lane' route every one of the 6 ")
    assert "no effect on these prompts" in lines[verdict_at + 1]
    assert sum(line.startswith("WARNING: arms") for line in lines) == 1  # F_no_repair is not flagged
    assert report.notes["headline"].startswith("Routing replay: arms 'tsg' and 'B_no_fast_lane'")


def test_a_run_with_arms_that_differ_warns_nothing_and_its_report_says_nothing(tmp_path):
    spec = ablations(**{"prompts.limit": 6, "arms": {"baseline": {"kind": "baseline"}, "tsg": {},
                                                     "F_no_repair": {"same_tier_repair": False}}})
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdenticalRoutingWarning)
        result = run_experiment(spec, runs_dir=tmp_path, run_id="ok", ladder=scripted_ladder(answer), progress=False)
    assert read_manifest(result.run_dir)["routing_replay"]["warnings"] == []
    report = build_report(result.run_dir, settings=SETTINGS, write=False)
    assert report.routing_line() == ""
    assert "WARNING: arms" not in str(report)


def test_routing_warnings_read_from_run_json():
    recorded = {"run_id": "r1", "routing_replay": {"warnings": ["arms 'a' and 'b' ..."]}}
    assert routing_warnings([recorded]) == ["arms 'a' and 'b' ..."]
    assert routing_warnings([recorded, {"run_id": "r0"}]) == ["run r1: arms 'a' and 'b' ..."]
    assert routing_warnings([{"run_id": "old"}, {"routing_replay": "garbled"}]) == []  # runs made before it


def test_the_cli_prints_the_warning_naming_the_spec_line(tmp_path):
    sets = [word for key, value in {**SCRIPTED, "prompts.limit": "4"}.items() for word in ("--set", f"{key}={value}")]
    proc = tsglab_cli("run", str(ABLATIONS), "--run-id", "cli", "--quiet", "--no-report", *sets, cwd=tmp_path)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"{ABLATIONS}:13: IdenticalRoutingWarning: arms 'tsg' and 'B_no_fast_lane'" in err
    assert "  B_no_fast_lane: {force_light_len: 0}" in err  # the spec's line that defines the arm
    assert err.count("IdenticalRoutingWarning") == 1
    assert out.startswith("run cli: complete")
