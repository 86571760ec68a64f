"""Events with NaN, infinite, negative or missing latencies are refused, naming the file, line and field;
so is any other mismatch with the typed record."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
from conftest import scripted_ladder

from tsglab.config import spec_from_dict
from tsglab.errors import RunError
from tsglab.events import EVENTS_FILE, latency_problem, read_events
from tsglab.load.runner import run_experiment
from tsglab.report import build_report
from tsglab.report.frame import events_frame

SPEC = {"name": "valid", "prompts": {"limit": 2, "seed": 1}, "arms": {"baseline": {"kind": "baseline"}},
        "tiers": {"light": {"max_tokens": 16}, "std": {"max_tokens": 64}, "enh": {"max_tokens": 128}},
        "load": {"mode": "paced", "period_ms": 0, "timeout_s": 5}}


@pytest.fixture
def run_dir(tmp_path):
    result = run_experiment(spec_from_dict(SPEC), runs_dir=tmp_path, run_id="v",
                            ladder=scripted_ladder("The answer is 42."), progress=False)
    return result.run_dir


def corrupt(run_dir, line: int, edit) -> str:
    """Apply ``edit`` to the event on 1-based ``line``; rewrite the file the way Python's json writes
    NaN and infinities (``NaN``, ``Infinity``, ``-Infinity``). Returns the path as the error shows it."""
    path = run_dir / EVENTS_FILE
    lines = path.read_text(encoding="utf-8").splitlines()
    event = json.loads(lines[line - 1])
    edit(event)
    lines[line - 1] = json.dumps(event)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_a_recorded_run_reads_cleanly(run_dir):
    events = read_events(run_dir)
    assert len(events) == 2
    assert all(latency_problem(e) is None for e in events)
    assert all(latency_problem(e.to_json()) is None for e in events)  # the record and its JSON read the same


@pytest.mark.parametrize(("field", "value", "literal", "reason"), [
    ("co_ms", math.nan, "NaN", "is NaN"),
    ("raw_ms", math.inf, "Infinity", "is infinite"),
    ("cost_ms", -math.inf, "-Infinity", "is infinite"),
    ("dispatch_lag_ms", -3.5, "-3.5", "is negative"),
    ("eval_ms", "12", '"12"', "is not a number"),
    ("ttft_ms", math.nan, "NaN", "is NaN"),
])
def test_a_bad_latency_is_refused_with_file_line_and_field(run_dir, field, value, literal, reason):
    path = corrupt(run_dir, 2, lambda e: e["latency"].__setitem__(field, value))
    assert f'"{field}": {literal}' in (run_dir / EVENTS_FILE).read_text()  # the literal really is in the file
    match = rf"^{re.escape(path)}:2: field 'latency\.{field}' {reason} \(got .*\); every latency must be a finite"
    with pytest.raises(RunError, match=match):
        read_events(run_dir)


def test_the_error_says_how_to_fix_it(run_dir):
    corrupt(run_dir, 1, lambda e: e["latency"].__setitem__("co_ms", math.nan))
    with pytest.raises(RunError, match=r"correct or delete that event, or re-run the arm"):
        build_report(run_dir, write=False)


def test_a_missing_latency_is_refused(run_dir):
    path = corrupt(run_dir, 1, lambda e: e["latency"].pop("raw_ms"))
    with pytest.raises(RunError, match=rf"{re.escape(path)}:1: field 'latency\.raw_ms' is missing \(got None\)"):
        read_events(run_dir)


def test_a_bad_attempt_duration_is_refused(run_dir):
    path = corrupt(run_dir, 2, lambda e: e["attempts"][0].__setitem__("eval_ms", -1.0))
    with pytest.raises(RunError, match=rf"{re.escape(path)}:2: field 'attempts\[0\]\.eval_ms' is negative"):
        read_events(run_dir)


def test_null_ttft_and_overhead_are_allowed(run_dir):
    corrupt(run_dir, 1, lambda e: e["latency"].update(ttft_ms=None, overhead_ms=None))
    assert len(read_events(run_dir)) == 2


def test_an_event_without_latency_is_refused_on_reading(run_dir):
    # the typed record requires every part: the log no longer stores a record without latency
    path = corrupt(run_dir, 1, lambda e: e.pop("latency"))
    with pytest.raises(RunError, match=rf"^{re.escape(path)}:1: field 'latency' is missing"):
        read_events(run_dir)


def test_events_frame_refuses_an_event_built_in_memory(run_dir):
    events = read_events(run_dir)
    events[1] = dataclasses.replace(events[1], latency=dataclasses.replace(events[1].latency, co_ms=math.nan))
    request_id = re.escape(repr(events[1].request_id))
    with pytest.raises(RunError, match=rf"^events\[1\]: field 'latency\.co_ms' is NaN .*request_id {request_id}"):
        events_frame(events)


@pytest.mark.parametrize(("edit", "field", "problem"), [
    (lambda e: e["route"].__setitem__("final", 3), "route.final", "expected `str`, got `int`"),
    (lambda e: e["attempts"][0].pop("cost_source"), r"attempts\[0\]\.cost_source", "is missing"),
    (lambda e: e["censoring"].__setitem__("timeout", "no"), "censoring.timeout", "expected `bool`, got `str`"),
    (lambda e: e["fingerprint"].pop("ladder"), "fingerprint.ladder", "is missing"),
    (lambda e: e.pop("prompt_sha"), "prompt_sha", "is missing"),
])
def test_any_other_mismatch_with_the_record_names_file_line_and_field(run_dir, edit, field, problem):
    path = corrupt(run_dir, 2, edit)
    with pytest.raises(RunError, match=rf"^{re.escape(path)}:2: field '{field}' {problem}; .*event\.schema\.json"):
        read_events(run_dir)


def test_an_unknown_schema_version_is_refused(run_dir):
    path = corrupt(run_dir, 1, lambda e: e.__setitem__("schema_version", 3))
    with pytest.raises(RunError, match=rf"^{re.escape(path)}:1: field 'schema_version' is 3; this tsglab reads "
                                       "versions 1 and 2"):
        read_events(run_dir)


def test_the_writer_refuses_an_invalid_event_before_writing(run_dir):
    from tsglab.events import EventWriter

    event = read_events(run_dir)[0]
    bad = dataclasses.replace(event, latency=dataclasses.replace(event.latency, raw_ms=-1.0))
    size = (run_dir / EVENTS_FILE).stat().st_size
    with EventWriter(run_dir) as writer, pytest.raises(RunError, match=r"refusing to write event seq 0: field "
                                                                      r"'latency\.raw_ms' is negative"):
        writer.write(bad)
    with EventWriter(run_dir) as writer, pytest.raises(RunError, match=r"takes a tsglab\.events\.Event; got dict"):
        writer.write(event.to_json())
    assert (run_dir / EVENTS_FILE).stat().st_size == size
