"""Ladders of any rungs: the spec's order is the ladder, floors are checked against it, the router and
the executor climb it, and a spec with scripted tiers runs end to end without a model."""

from __future__ import annotations

import json

import pytest

from tsglab.backends import build_backends
from tsglab.config import DEFAULT_TIERS, PolicyConfig, spec_from_dict, tier_index
from tsglab.errors import SpecError
from tsglab.policy import PlanReport, TierLadder, execute, handle, route

SCHEMA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
FOUR = ("nano", "light", "std", "enh")
# every rung starts at the bottom of the four-rung ladder and may climb to its top
BOTTOM_UP = {"json_floor": "nano", "code_floor": "nano", "def_floor": "nano", "baseline_tier": "enh",
             "max_upgrades": 3}


def ladder_spec(tiers: dict, arms: dict | None = None, **extra):
    return spec_from_dict({"name": "ladder", "tiers": tiers, "arms": arms or {"tsg": {}}, **extra})


def scripted_tiers(replies: dict[str, str]) -> dict:
    """A ``tiers:`` section whose rungs answer from the spec (backend: scripted), in the given order."""
    return {tier: {"backend": "scripted", "model": f"m-{tier}", "options": {"reply": reply}}
            for tier, reply in replies.items()}


def ladder_of(spec) -> TierLadder:
    return TierLadder(spec.tiers, build_backends(spec.tiers))


def planned(score: float, task: str = "general", chars: int = 500) -> PlanReport:
    return PlanReport(score=score, raw_score=score, task=task, chars=chars, marks=0, heavy=False,
                      heavy_keywords=(), risk_factors=())


# --------------------------------------------------------------------------------------------------
# The spec's ladder


def test_the_ladder_is_the_order_of_tiers_in_the_spec():
    spec = ladder_spec(scripted_tiers(dict.fromkeys(FOUR, "ok")), {"tsg": BOTTOM_UP})
    assert spec.ladder == FOUR
    assert ladder_of(spec).tiers == FOUR
    assert [tier_index(t, spec.ladder) for t in FOUR] == [0, 1, 2, 3]


def test_the_default_ladder_is_only_a_default():
    spec = ladder_spec({t: {} for t in DEFAULT_TIERS})
    assert spec.ladder == DEFAULT_TIERS == ("light", "std", "enh")


def test_a_floor_naming_a_tier_not_on_the_ladder_is_refused_naming_arm_field_value_and_ladder():
    with pytest.raises(SpecError, match=r"<spec>: arms.tsg.json_floor is 'std', which is not a rung of the ladder "
                                        r"\['small', 'big'\]; set arms.tsg.json_floor to one of them"):
        ladder_spec({"small": {}, "big": {}}, {"tsg": {"code_floor": "small", "def_floor": "small",
                                                       "baseline_tier": "big"}})


def test_every_tier_valued_field_is_checked():
    ok = {"json_floor": "small", "code_floor": "small", "def_floor": "small", "baseline_tier": "big"}
    for field in ok:
        with pytest.raises(SpecError, match=rf"arms.a.{field} is 'huge', which is not a rung"):
            ladder_spec({"small": {}, "big": {}}, {"a": {**ok, field: "huge"}})
    assert ladder_spec({"small": {}, "big": {}}, {"a": ok}).arms["a"].json_floor == "small"


def test_the_default_ladder_names_out_of_order_are_refused_not_silently_inverted():
    with pytest.raises(SpecError, match=r"tiers are listed as \['enh', 'std', 'light'\]"):
        ladder_spec({"enh": {}, "std": {}, "light": {}})
    # the usual names may be extended on either side
    assert ladder_spec({"nano": {}, "light": {}, "std": {}, "enh": {}, "max": {}}).ladder[-1] == "max"


def test_spec_hash_sees_the_ladder_order_and_keeps_default_ladder_hashes():
    small_big = ladder_spec({"small": {}, "big": {}}, {"a": {"json_floor": "small", "code_floor": "small",
                                                              "def_floor": "small", "baseline_tier": "big"}})
    big_small = ladder_spec({"big": {}, "small": {}}, {"a": {"json_floor": "small", "code_floor": "small",
                                                              "def_floor": "small", "baseline_tier": "big"}})
    assert small_big.spec_hash() != big_small.spec_hash()
    default = ladder_spec({t: {} for t in DEFAULT_TIERS})
    # the hash of a default-ladder spec is the plain hash of to_dict() (as before ladders were configurable)
    import hashlib

    # on_error, preflight, claims, load.processes and an arm's default guard came later and are left out of
    # the hash (at their defaults, or always)
    before = {k: v for k, v in default.to_dict().items() if k not in ("on_error", "preflight", "claims")}
    before["load"] = {k: v for k, v in before["load"].items() if k != "processes"}
    before["arms"] = {arm: {k: v for k, v in values.items() if k != "guard"} for arm, values in before["arms"].items()}
    plain = hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()[:12]
    assert default.spec_hash() == plain


def test_policy_config_hash_is_unchanged_on_the_default_ladder():
    # 2bf068557762 is PolicyConfig().config_hash() printed before tsglab.config existed (commit 7b6af21)
    assert PolicyConfig().config_hash() == "2bf068557762"


def test_route_refuses_a_config_whose_floor_is_not_on_the_ladder():
    with pytest.raises(SpecError, match=r"policy.json_floor is 'std', which is not a rung of the ladder "
                                        r"\['small', 'big'\]"):
        route(planned(0.1), PolicyConfig(baseline_tier="big", def_floor="small", code_floor="small"),
              ("small", "big"))


def test_route_refuses_an_empty_ladder():
    with pytest.raises(SpecError, match=r"`ladder` must be a non-empty sequence of tier names"):
        route(planned(0.1), PolicyConfig(), ())


# --------------------------------------------------------------------------------------------------
# Four rungs


@pytest.mark.parametrize(("score", "tier"), [(0.1, "nano"), (0.5, "light"), (0.9, "std"), (1.6, "std")])
def test_thresholds_pick_rungs_0_1_2_on_a_four_rung_ladder(score, tier):
    decision = route(planned(score), PolicyConfig(**BOTTOM_UP), FOUR)
    assert decision.tier == tier
    assert decision.score_tier == tier


def test_floors_reach_the_fourth_rung_and_the_fast_lane_goes_to_the_lowest():
    config = PolicyConfig(**{**BOTTOM_UP, "json_floor": "enh"})
    json_decision = route(planned(0.1, task="json"), config, FOUR)
    assert (json_decision.tier, json_decision.reason) == ("enh", "json_floor")
    fast = route(planned(0.1, chars=20), config, FOUR)
    assert (fast.tier, fast.reason, fast.fast_lane) == ("nano", "fast_lane", True)


def test_max_upgrades_3_climbs_a_four_rung_ladder_from_the_bottom_to_the_top():
    spec = ladder_spec(scripted_tiers({"nano": "not json", "light": "still not", "std": "nope",
                                       "enh": '{"name": "Ada"}'}), {"tsg": BOTTOM_UP})
    result = execute(ladder_of(spec), spec.arms["tsg"], "Return JSON with the name.", tier="nano", task="json",
                     json_schema=SCHEMA, timeout_s=None)
    assert [(a.tier, a.kind) for a in result.attempts] == [
        ("nano", "initial"), ("nano", "repair"), ("light", "upgrade"), ("std", "upgrade"), ("enh", "upgrade")]
    assert result.ok
    assert (result.final_tier, result.upgrades) == ("enh", 3)
    assert [a.model for a in result.attempts] == ["m-nano", "m-nano", "m-light", "m-std", "m-enh"]


def test_max_upgrades_2_stops_one_rung_short_of_the_top():
    spec = ladder_spec(scripted_tiers({"nano": "x", "light": "x", "std": "x", "enh": '{"name": "Ada"}'}),
                       {"tsg": {**BOTTOM_UP, "max_upgrades": 2}})
    result = execute(ladder_of(spec), spec.arms["tsg"], "Return JSON.", tier="nano", task="json",
                     json_schema=SCHEMA, timeout_s=None)
    assert result.final_tier == "std"
    assert not result.ok


def test_the_gateway_routes_repairs_and_upgrades_through_all_four_rungs():
    tiers = {tier: {"backend": "scripted", "options": {"reply": "no", "replies": {"name": reply}}}
             for tier, reply in {"nano": "???", "light": "not JSON", "std": "[broken", "enh": '{"name": "Bo"}'}.items()}
    spec = ladder_spec(tiers, {"tsg": BOTTOM_UP})
    handled = handle(ladder_of(spec), spec.arms["tsg"], "Give the name as JSON.", json_schema=SCHEMA, timeout_s=5)
    assert handled.decision.tier == "nano"  # json_floor nano, a low score
    assert [a.tier for a in handled.execution.attempts] == ["nano", "nano", "light", "std", "enh"]
    assert handled.execution.text == '{"name": "Bo"}'


def test_an_unknown_starting_tier_names_the_ladder():
    spec = ladder_spec(scripted_tiers(dict.fromkeys(FOUR, "ok")), {"tsg": BOTTOM_UP})
    with pytest.raises(SpecError, match=r"tier must be one of \('nano', 'light', 'std', 'enh'\).*got 'max'"):
        execute(ladder_of(spec), spec.arms["tsg"], "x", tier="max", task="general", json_schema=None,
                timeout_s=None)


# --------------------------------------------------------------------------------------------------
# Two rungs and one


TWO = {"json_floor": "small", "code_floor": "small", "def_floor": "small", "baseline_tier": "big"}


@pytest.mark.parametrize(("score", "tier", "reason"), [
    (0.1, "small", "score<thr_std"), (0.5, "big", "thr_std<=score<thr_enh"), (1.2, "big", "score>=thr_enh")])
def test_a_two_rung_ladder_clamps_the_third_score_tier_to_the_top(score, tier, reason):
    decision = route(planned(score), PolicyConfig(**TWO), ("small", "big"))
    assert (decision.tier, decision.score_tier, decision.reason) == (tier, tier, reason)


def test_a_two_rung_ladder_upgrades_once_and_stops_at_the_top():
    spec = ladder_spec(scripted_tiers({"small": "not json", "big": "not json either"}), {"tsg": TWO})
    result = execute(ladder_of(spec), spec.arms["tsg"], "Return JSON.", tier="small", task="json",
                     json_schema=SCHEMA, timeout_s=None)
    assert [(a.tier, a.kind) for a in result.attempts] == [("small", "initial"), ("small", "repair"),
                                                           ("big", "upgrade")]
    assert result.upgrades == 1


def test_the_baseline_arm_of_a_two_rung_ladder_uses_its_baseline_tier():
    spec = ladder_spec(scripted_tiers({"small": "s", "big": "b"}), {"baseline": {"kind": "baseline", **TWO}})
    handled = handle(ladder_of(spec), spec.arms["baseline"], "Hi", json_schema=None, timeout_s=None)
    assert handled.decision.tier == "big"
    assert handled.execution.text == "b"


def test_a_one_rung_ladder_sends_everything_to_it_and_never_upgrades():
    only = {"json_floor": "solo", "code_floor": "solo", "def_floor": "solo", "baseline_tier": "solo"}
    spec = ladder_spec(scripted_tiers({"solo": "not json"}), {"tsg": only})
    assert route(planned(1.6), spec.arms["tsg"], spec.ladder).tier == "solo"
    result = execute(ladder_of(spec), spec.arms["tsg"], "JSON?", tier="solo", task="json", json_schema=SCHEMA,
                     timeout_s=None)
    assert [a.kind for a in result.attempts] == ["initial", "repair"]
    assert result.upgrades == 0


# --------------------------------------------------------------------------------------------------
# Spec-only dry run through the runner (no model, no ladder passed in)


def test_a_four_rung_spec_with_scripted_tiers_runs_end_to_end(tmp_path):
    from tsglab.load.runner import run_experiment

    tiers = scripted_tiers({"nano": "no", "light": "no", "std": "no", "enh": '{"answer": 1}'})
    # thresholds above the score cap: every request starts on the lowest rung
    spec = ladder_spec(tiers, {"tsg": {**BOTTOM_UP, "thr_std": 2.0, "thr_enh": 2.0}},
                       prompts={"tasks": ["json"], "limit": 2},
                       energy={"meter": "none"})
    result = run_experiment(spec, runs_dir=tmp_path, run_id="four", progress=False)
    assert result.status == "complete"
    # the JSON lines as written (what every reader of a run sees)
    events = [json.loads(line) for line in (result.run_dir / "events.jsonl").read_text().splitlines()]
    assert len(events) == 2
    for event in events:
        attempts = event["attempts"]
        assert [a["tier"] for a in attempts] == ["nano", "nano", "light", "std", "enh"]
        assert event["route"]["final"] == "enh"


def test_an_unknown_backend_in_a_spec_stops_the_run_naming_it(tmp_path):
    from tsglab.load.runner import run_experiment

    spec = ladder_spec({"light": {"backend": "vllm"}, "std": {}, "enh": {}}, prompts={"limit": 1},
                       energy={"meter": "none"})
    with pytest.raises(SpecError, match=r"tiers.light.backend: unknown backend 'vllm'; known: \[.*'scripted'"):
        run_experiment(spec, runs_dir=tmp_path, run_id="bad", progress=False)
    assert not (tmp_path / "bad").exists()  # backends are built before anything is written


def test_a_four_rung_run_reports_every_rung_and_the_top_one_as_costly(tmp_path):
    from tsglab.load.runner import run_experiment
    from tsglab.report import build_report

    tiers = scripted_tiers({"nano": "no", "light": "no", "std": "no", "max": '{"answer": 1}'})
    arms = {"baseline": {**BOTTOM_UP, "kind": "baseline", "baseline_tier": "max"},
            "tsg": {**BOTTOM_UP, "baseline_tier": "max", "thr_std": 2.0, "thr_enh": 2.0}}
    spec = ladder_spec(tiers, arms, prompts={"tasks": ["json"], "limit": 4}, energy={"meter": "none"})
    result = run_experiment(spec, runs_dir=tmp_path, run_id="four-report", progress=False)
    report = build_report(result.run_dir)
    assert report.ladder == ("nano", "light", "std", "max")
    assert list(report.tiers.loc[report.tiers["arm"] == "tsg", "final_tier"]) == ["nano", "light", "std", "max"]
    routing = report.routing.set_index("arm")
    assert {"r_nano", "r_light", "r_std", "r_max"} <= set(routing.columns)
    assert routing.loc["tsg", "r_nano"] == 1.0  # every request starts on the lowest rung
    assert routing.loc["tsg", "r_costly"] == 1.0 == routing.loc["baseline", "r_costly"]  # both reach 'max'
    headline = report.headline.set_index("metric")
    assert "r_costly (share touching max)" in headline.index
    tex = (result.run_dir / "tables" / "tiers.tex").read_text()
    assert "max" in tex
    assert "nano" in tex
