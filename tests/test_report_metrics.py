"""Every metric has one definition (tsglab.report.metrics) and every table reports the same number."""

from __future__ import annotations

import math
import threading

import pandas as pd
import pytest
from conftest import scripted_ladder

from tsglab.comparison import comparison_table
from tsglab.config import DEFAULT_TIERS as TIERS
from tsglab.config import spec_from_dict
from tsglab.errors import BackendTimeout, SpecError
from tsglab.events import read_events, synthetic_event
from tsglab.load import open_loop
from tsglab.load.runner import run_experiment
from tsglab.report import build_report, metrics
from tsglab.report.frame import events_frame
from tsglab.report.tables import arm_metrics, task_table, tier_table


def request(task="json", *, json_ok=None, quality=1.0, cost_ms=10.0, timeout=False, failed=False, tiers=("std",),
            refusal=False, tokens=5):
    """One request's event (``tiers``: its attempts' tiers in order); ``frame`` turns a list into the report frame."""
    return dict(task=task, json_ok=json_ok, quality=quality, cost_ms=cost_ms, timeout=timeout, tiers=tiers,
                error_kind="connect_error" if failed else "", refusal=refusal, completion_tokens=tokens,
                timeout_s=5.0)


def frame(requests: list[dict]) -> pd.DataFrame:
    return events_frame([synthetic_event(f"p{i}", seq=i, **r) for i, r in enumerate(requests)])


def json_arm() -> pd.DataFrame:
    """Four json requests — valid JSON, invalid JSON, a timeout and a failure (no verdict) — and one code
    request: 3 of 4 json requests did not deliver valid JSON."""
    return frame([
        request(json_ok=True),
        request(json_ok=False, quality=0.0),
        request(json_ok=None, quality=0.0, timeout=True),
        request(json_ok=None, quality=0.0, failed=True),
        request("code", json_ok=None),
    ])


# ---- the JSON failure rule ---------------------------------------------------------------------

def test_a_timed_out_or_failed_json_request_is_a_json_failure():
    arm = json_arm()
    assert metrics.json_failed(arm).tolist() == [False, True, True, True, False]  # code never fails JSON
    failures, n = metrics.json_failures(arm)
    assert (failures, n) == (3, 4)
    assert metrics.json_failures(arm).rate == metrics.json_fail_rate(arm) == 0.75


def test_json_failure_rate_is_nan_without_json_requests():
    arm = frame([request("code"), request("open")])
    assert metrics.json_failures(arm) == (0, 0)
    assert math.isnan(metrics.json_fail_rate(arm))


def test_headline_and_task_table_report_the_same_json_failure_rate():
    # before: the headline skipped the timed-out and failed requests (0.5), Family C counted them (0.75)
    arm = json_arm()
    tasks = task_table({"tsg": arm}).set_index("task")
    assert arm_metrics(arm)["json_fail_rate"] == tasks.loc["json", "json_fail_rate"] == 0.75
    assert math.isnan(tasks.loc["code", "json_fail_rate"])


def test_family_c_counts_json_failures_by_the_same_rule():
    from tsglab.report.protocol import ProtocolSettings, family_c

    table = family_c({"tsg": json_arm()}, ProtocolSettings())
    overall = table[table["stratum"] == "overall"].iloc[0]
    assert (overall["failures"], overall["n"]) == metrics.json_failures(json_arm()) == (3, 4)


# ---- quality, cost, routing --------------------------------------------------------------------

def test_rates_are_over_every_request_and_nan_over_none():
    arm = json_arm()
    assert metrics.mean_quality(arm) == pytest.approx(2 / 5)
    assert metrics.timeout_rate(arm) == metrics.error_rate(arm) == pytest.approx(1 / 5)
    empty = arm.iloc[0:0]
    assert all(math.isnan(f(empty)) for f in (metrics.mean_quality, metrics.avg_cost_ms, metrics.r_costly,
                                               metrics.retry_rate, metrics.error_rate))


def test_a_nan_cost_is_not_skipped():
    arm = frame([request(cost_ms=10.0), request(cost_ms=20.0)])
    arm.loc[1, "cost_ms"] = math.nan  # an event cannot hold a NaN cost (refused on reading and writing)
    assert math.isnan(metrics.avg_cost_ms(arm))


def test_routing_metrics_on_a_known_arm():
    arm = frame([
        request(tiers=("light",)),
        request(tiers=("light", "std", "enh"), cost_ms=30.0, tokens=15),  # two upgrades to the top
        request(tiers=("std", "std"), refusal=True, cost_ms=20.0, tokens=10),  # a repair
        request(tiers=(TIERS[-1],), cost_ms=40.0, tokens=20),
    ])
    assert arm["touched_top"].tolist() == [False, True, False, True]
    got = metrics.routing_metrics(arm)
    assert got == pytest.approx({"n": 4, "r_light": 0.5, "r_std": 0.25, "r_enh": 0.25, "r_costly": 0.5,
                                 "retry_rate": 0.5, "upgrade_rate": 0.25, "refusal_rate": 0.25,
                                 "attempts_per_req": 7 / 4, "avg_eval_ms": 25.0, "tokens_per_req": 12.5})


def test_an_unknown_tier_name_is_refused():
    # the frame's ladder comes from the events' fingerprint.ladder (here the default light, std, enh)
    with pytest.raises(SpecError, match=r"tier 'premium' is not on the ladder \['light', 'std', 'enh'\]"):
        metrics.initial_tier_share(json_arm(), "premium")


def test_tier_table_uses_every_ladder_tier_and_nan_for_empty_ones():
    table = tier_table({"tsg": json_arm()}).set_index("final_tier")
    assert list(table.index) == list(TIERS)
    assert table.loc["std", "mean_quality"] == pytest.approx(2 / 5)
    assert math.isnan(table.loc["light", "mean_quality"])
    assert math.isnan(table.loc["light", "avg_eval_ms"])


# ---- end to end: a cascade with timed-out attempts ----------------------------------------------

SPEC = {"name": "metrics", "prompts": {"tasks": ["json", "open"], "limit": 6, "seed": 1},
        "arms": {"baseline": {"kind": "baseline"}, "tsg": {"thr_enh": 2.0}},  # tsg starts below the top tier
        "tiers": {"light": {"max_tokens": 16}, "std": {"max_tokens": 64}, "enh": {"max_tokens": 128}},
        "load": {"mode": "paced", "period_ms": 0, "timeout_s": 5}}
STALL_MS = 250.0


def answer(request):
    return "The answer is 42 and it is positive."


def is_json(request):
    return request.json_schema is not None or "json" in request.messages[0].content.lower()


def invalid_json_below_the_top_tier(request):
    return "not json at all" if is_json(request) else answer(request)


def stalls_on_json(request):
    """The top tier stalls on json requests: a timeout after STALL_MS."""
    return BackendTimeout("stalled", elapsed_ms=STALL_MS) if is_json(request) else answer(request)


@pytest.fixture
def stalled_run(tmp_path):
    """Every json request ends in a timeout on the top tier: tsg after failed attempts and an upgrade,
    the baseline at once."""
    ladder = scripted_ladder({"light": invalid_json_below_the_top_tier, "std": invalid_json_below_the_top_tier,
                              "enh": stalls_on_json})
    return run_experiment(spec_from_dict(SPEC), runs_dir=tmp_path, run_id="stall", ladder=ladder,
                          progress=False).run_dir


def test_a_timed_out_attempt_costs_its_elapsed_time_in_the_event(stalled_run):
    stalled = [e for e in read_events(stalled_run) if e.censoring.timeout]
    assert {e.arm for e in stalled} == {"baseline", "tsg"}
    assert any(len(e.attempts) > 1 for e in stalled)  # a cascade: answered attempts, then the stall
    for event in stalled:
        last = event.attempts[-1]
        assert last.cost_source == "elapsed"
        assert last.cost_ms == last.total_ms == STALL_MS
        assert event.latency.cost_ms == pytest.approx(sum(a.cost_ms for a in event.attempts))
        assert event.latency.cost_ms >= STALL_MS
        assert event.latency.cost_source == "attempts"
    answered = [a for e in read_events(stalled_run) for a in e.attempts if not a.error_kind]
    assert all(a.cost_source == "backend" and a.cost_ms == a.prompt_eval_ms + a.eval_ms for a in answered)


def test_report_and_comparison_agree_on_every_shared_metric(stalled_run):
    report = build_report(stalled_run, write=False)
    frames = report.frames
    comparison = comparison_table({"v": stalled_run}).set_index("arm")
    for arm, frame in frames.items():
        headline = arm_metrics(frame)
        json_rows = task_table(frames).set_index(["arm", "task"]).loc[(arm, "json")]
        assert headline["json_fail_rate"] == json_rows["json_fail_rate"] == comparison.loc[arm, "json_fail_rate"]
        assert headline["mean_quality"] == comparison.loc[arm, "mean_quality"]
        assert headline["avg_eval_ms"] == comparison.loc[arm, "avg_eval_ms"]
        assert headline["error_rate"] == comparison.loc[arm, "error_rate"]
    assert all(arm_metrics(frame)["json_fail_rate"] == 1.0 for frame in frames.values())  # all timed out


def test_a_request_abandoned_by_the_watchdog_costs_its_elapsed_time(tmp_path, monkeypatch):
    monkeypatch.setattr(open_loop, "_abandon_after_ns", lambda timeout_s: 300_000_000)
    release = threading.Event()
    calls = {"n": 0}

    def hang_second(request):
        calls["n"] += 1
        if calls["n"] == 2:
            release.wait(5)  # never returns in time and raises no BackendTimeout
        return answer(request)

    spec = spec_from_dict({**SPEC, "prompts": {"tasks": ["open"], "limit": 2, "seed": 1},
                           "arms": {"a": {"kind": "baseline"}},
                           "load": {"mode": "open_loop", "rate_per_s": 100, "concurrency": 1, "timeout_s": 0.1}})
    try:
        run_dir = run_experiment(spec, runs_dir=tmp_path, run_id="hang", ladder=scripted_ladder(hang_second),
                                 progress=False).run_dir
    finally:
        release.set()
    abandoned = [e for e in read_events(run_dir) if e.attempts == ()]
    assert len(abandoned) == 1
    latency = abandoned[0].latency
    assert latency.cost_source == "elapsed"
    assert latency.cost_ms == latency.raw_ms >= 300
    # no second planner run: what is known, an empty route whose reason is the error kind
    assert abandoned[0].route.reason == "timeout"
    assert abandoned[0].route.initial == ""
    assert events_frame(read_events(run_dir))["cost_ms"].min() > 0
