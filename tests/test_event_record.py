"""The typed event record (tsglab.events.record): constructors, JSON round trip, schema, version-1 reader."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest

from tsglab.errors import RunError
from tsglab.events import (
    EVENTS_FILE,
    SCHEMA_VERSION,
    Attempt,
    Energy,
    ErrorInfo,
    Event,
    EventWriter,
    Fingerprint,
    Plan,
    Quality,
    Route,
    Schedule,
    event_json_schema,
    prompt_sha,
    read_events,
    synthetic_event,
)
from tsglab.events.record import SCHEMA_FILE, V1_LADDER, event_json_schema_text
from tsglab.report.frame import FRAME_COLUMNS, events_frame

V1_FIXTURE = Path(__file__).parent / "fixtures" / "events_v1"
FINGERPRINT = Fingerprint(tsglab="0.0.test", ladder=("light", "std", "enh"), policy_hash="abc")


def attempt(tier, kind="initial", *, eval_ms=4.0, prompt_eval_ms=1.0, tokens=8, load_ms=0.0, ttft_ms=2.0,
            error_kind=""):
    if error_kind:  # what the executor records for a failed attempt: its elapsed time, no tokens
        return Attempt(tier, kind, f"m-{tier}", 0, 0, 0.0, 0.0, 30.0, math.nan, 0.0, error_kind, False, error_kind,
                       error_kind, "b", cost_ms=30.0, cost_source="elapsed")
    return Attempt(tier, kind, f"m-{tier}", 5, tokens, prompt_eval_ms, eval_ms, prompt_eval_ms + eval_ms, ttft_ms,
                   load_ms, "stop", True, "", cost_ms=prompt_eval_ms + eval_ms, cost_source="backend")


def answered(**overrides) -> Event:
    fields = dict(run_id="r", arm="tsg", prompt_id="p1", prompt="What is 2+2?", seq=3,
                  schedule=Schedule(1_000_000, 3_500_000, 10_000_000),
                  attempts=[attempt("std"), attempt("std", "repair", load_ms=5.0), attempt("enh", "upgrade")],
                  quality=Quality(1.0, None, False, "ok", True), route=Route("std", "light", "std", "enh", 1, True),
                  fingerprint=FINGERPRINT, timeout_s=5.0, answer="4", overhead_ms=0.2, bucket={"task": "arith"})
    return Event.answered(**{**fields, **overrides})


# ---- constructors ----------------------------------------------------------------------------------

def test_answered_derives_latency_cost_and_route_from_the_stamps_and_attempts():
    event = answered()
    assert event.schema_version == SCHEMA_VERSION == 2
    assert event.request_id == "r/tsg/p1"
    assert event.prompt_sha == hashlib.sha256(b"What is 2+2?").hexdigest()[:16]
    assert (event.latency.raw_ms, event.latency.co_ms, event.latency.dispatch_lag_ms) == (6.5, 9.0, 2.5)
    assert event.latency.cost_ms == 15.0
    assert event.latency.cost_source == "attempts"
    assert event.latency.eval_ms == 12.0
    assert event.latency.prompt_eval_ms == 3.0
    assert event.latency.ttft_ms == 2.0
    assert event.route.tiers_touched == ("enh", "std")
    assert event.route.final == "enh"
    assert event.cold_start  # the repair loaded its model
    assert event.plan == Plan(chars=len("What is 2+2?"))  # no planner report given: what is known
    assert not event.energy.available
    assert event.energy.reason == "no energy meter configured for this run"


def test_a_nan_time_to_first_token_is_null():
    event = answered(attempts=[attempt("std", ttft_ms=math.nan)])
    assert event.attempts[0].ttft_ms is None
    assert event.latency.ttft_ms is None
    assert '"ttft_ms":null' in json.dumps(event.to_json(), separators=(",", ":"))


def test_failed_records_what_is_known_without_a_plan_or_route():
    event = Event.failed(run_id="r", arm="tsg", prompt_id="p1", prompt="Return JSON", seq=0,
                         schedule=Schedule(0, 1_000_000, 301_000_000), error=ErrorInfo("timeout", "abandoned"),
                         fingerprint=FINGERPRINT, timeout_s=0.1, expects_json=True, timed_out=True)
    assert event.attempts == ()
    assert event.route == Route(reason="timeout")
    assert event.plan == Plan(chars=11)
    assert event.latency.cost_source == "elapsed"
    assert event.latency.cost_ms == event.latency.raw_ms == 300.0
    assert event.latency.overhead_ms is None
    assert event.censoring.right_censored
    assert event.quality == Quality(0.0, False, False, "no answer: timeout", False)


def test_converters_read_the_policy_objects(tmp_path):
    from tsglab.config import PAPER_TSG
    from tsglab.policy.executor import Attempt as ExecutorAttempt
    from tsglab.policy.planner import plan
    from tsglab.policy.router import route

    assert ExecutorAttempt is Attempt  # one attempt type
    report = plan("Return JSON with the keys a and b.", PAPER_TSG)
    decision = route(report, PAPER_TSG)
    execution = type("Execution", (), {"final_tier": "enh", "upgrades": 1, "repaired": False})()
    assert Plan.from_report(report) == Plan(report.score, report.raw_score, report.task, report.chars, report.marks,
                                            report.heavy, tuple(report.risk_factors))
    got = Route.from_decision(decision, execution)
    assert (got.initial, got.floor, got.reason, got.final, got.upgrades) == (
        decision.tier, decision.floor, decision.reason, "enh", 1)


def test_prompt_sha_is_sha256_of_the_utf8_text():
    assert prompt_sha("只输出JSON") == hashlib.sha256("只输出JSON".encode()).hexdigest()[:16]
    assert prompt_sha("a") != prompt_sha("a ")


# ---- JSON ----------------------------------------------------------------------------------------

def test_json_round_trip_is_exact():
    event = answered(energy=Energy(True, meter="fake", joules=2.5, tokens=10.0))
    assert Event.from_json(event.to_json()) == event
    assert Event.from_json(json.loads(json.dumps(event.to_json()))) == event


def test_written_events_read_back_equal(tmp_path):
    events = [answered(seq=i, prompt_id=f"p{i}") for i in range(3)] + [synthetic_event("s", tiers=())]
    with EventWriter(tmp_path) as writer:
        for event in events:
            writer.write(event)
    assert read_events(tmp_path) == events


def test_from_json_names_where_and_the_dotted_field():
    obj = answered().to_json()
    obj["attempts"][1]["tier"] = None
    with pytest.raises(RunError, match=r"^run.jsonl:7: field 'attempts\[1\]\.tier' expected `str`, got `null`"):
        Event.from_json(obj, where="run.jsonl:7")
    obj = answered().to_json()
    obj["latency"]["co_ms"] = math.inf
    with pytest.raises(RunError, match=r"^x: field 'latency\.co_ms' is infinite \(got inf\)"):
        Event.from_json(obj, where="x")
    with pytest.raises(RunError, match=r"^event: an event must be a JSON object; got list"):
        Event.from_json([])


def test_the_committed_json_schema_is_the_generated_one():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == event_json_schema_text(), (
        "tsglab/events/event.schema.json is stale: run `python -c \"from tsglab.events import "
        "write_event_json_schema; write_event_json_schema()\"` and commit it")
    schema = event_json_schema()
    event = schema["$defs"]["Event"]
    assert {"prompt_sha", "fingerprint", "latency"} <= set(event["required"])
    assert "ladder" in schema["$defs"]["Fingerprint"]["required"]
    assert schema["$defs"]["Latency"]["properties"]["raw_ms"]["minimum"] == 0.0


def test_the_schema_accepts_written_events_and_refuses_a_bad_one():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(event_json_schema())
    good = answered().to_json()
    assert not list(validator.iter_errors(good))
    good["latency"]["raw_ms"] = -1.0
    assert [e.json_path for e in validator.iter_errors(good)] == ["$.latency.raw_ms"]


# ---- the report frame ----------------------------------------------------------------------------

def test_the_frame_has_exactly_the_defined_columns_and_dtypes():
    frame = events_frame([synthetic_event("a"), synthetic_event("b", tiers=(), error_kind="connect_error")])
    assert list(frame.columns) == list(FRAME_COLUMNS)
    assert {c: str(t) for c, t in frame.dtypes.items()} == FRAME_COLUMNS
    assert frame["failed"].tolist() == [False, True]
    assert frame["cost_source"].tolist() == ["attempts", "elapsed"]


def test_touched_top_is_the_top_rung_of_the_events_own_ladder():
    ladder = ("nano", "light", "std", "max")
    events = [synthetic_event("a", tiers=("std", "max"), ladder=ladder),
              synthetic_event("b", tiers=("light", "std", "enh")),  # the default ladder's top rung
              synthetic_event("c", tiers=("std", "enh"), ladder=ladder)]  # enh is not this ladder's top
    frame = events_frame(events)
    assert frame["touched_top"].tolist() == [True, True, False]
    assert frame["ladder"].tolist() == [ladder, V1_LADDER, ladder]


def test_synthetic_events_keep_their_latencies_exactly():
    event = synthetic_event("p", raw_ms=812.3456789, co_ms=900.1234567, tiers=("light", "light", "std"),
                            cost_ms=30.0, quality=0.25)
    assert (event.latency.raw_ms, event.latency.co_ms) == (812.3456789, 900.1234567)
    assert [a.kind for a in event.attempts] == ["initial", "repair", "upgrade"]
    assert event.route.upgrades == 1
    assert event.route.repaired
    assert event.latency.cost_ms == pytest.approx(30.0)
    assert event.quality.score == 0.25
    assert event.latency.dispatch_lag_ms == pytest.approx(87.7777778)


# ---- version 1 -----------------------------------------------------------------------------------

@pytest.fixture
def v1_run(tmp_path):
    shutil.copy(V1_FIXTURE / EVENTS_FILE, tmp_path / EVENTS_FILE)
    return tmp_path


def test_a_version_1_log_reads_as_version_2_records(v1_run):
    events = read_events(v1_run)
    assert len(events) == 4
    assert all(e.schema_version == 2 for e in events)
    assert all(e.prompt_sha == "" and e.fingerprint.ladder == V1_LADDER for e in events)  # unknown in version 1
    assert events[0].fingerprint.policy_hash
    assert events[0].fingerprint.source == "run"
    # written before attempts had a cost: the executor's rule, from the durations
    first = events[0].attempts[0]
    assert first.cost_source == "backend"
    assert first.cost_ms == first.prompt_eval_ms + first.eval_ms
    assert events[0].latency.cost_source == "attempts"
    assert first.details == {}
    assert first.backend == ""
    failed = events[2]
    assert failed.error.kind == "runner_exception"
    assert failed.attempts == ()
    assert failed.plan.score is None
    assert failed.route.score is None  # NaN in version 1
    assert events[3].energy.available
    assert events[3].energy.joules == 1.25  # inline in version 1


def test_a_version_1_log_continued_by_a_version_2_writer_reads_whole(v1_run):
    with EventWriter(v1_run) as writer:  # a resumed version-1 run appends version-2 lines
        writer.write(answered(seq=9))
    events = read_events(v1_run)
    assert len(events) == 5
    assert events[-1] == answered(seq=9)
    assert (v1_run / EVENTS_FILE).read_text().splitlines()[0].startswith('{"schema_version": 1')


def test_a_bad_version_1_latency_keeps_its_precise_message(v1_run):
    path = v1_run / EVENTS_FILE
    lines = path.read_text().splitlines()
    event = json.loads(lines[1])
    event["latency"]["raw_ms"] = -2.0
    lines[1] = json.dumps(event)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RunError, match=rf"{path}:2: field 'latency\.raw_ms' is negative \(got -2\.0\)"):
        read_events(v1_run)


def test_records_are_frozen():
    event = answered()
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.seq = 4  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.latency.raw_ms = 0.0  # type: ignore[misc]


def test_the_events_package_exports_its_public_names_sorted():
    import tsglab.events

    assert tsglab.events.__all__ == sorted(tsglab.events.__all__)
    assert all(hasattr(tsglab.events, name) for name in tsglab.events.__all__)


@pytest.mark.parametrize(("edit", "field", "problem"), [
    (lambda e: e.__setitem__("prompt_sha", "not-a-hash"), "prompt_sha", r"expected `str` matching regex"),
    (lambda e: e["fingerprint"].__setitem__("ladder", []), "fingerprint.ladder", r"expected `array` of length >= 1"),
])
def test_prompt_sha_and_ladder_are_checked_on_reading(edit, field, problem):
    obj = answered().to_json()
    edit(obj)
    with pytest.raises(RunError, match=rf"^e: field '{field}' {problem}"):
        Event.from_json(obj, where="e")
