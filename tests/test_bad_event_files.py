"""A corpus of bad event files given to ``report`` (issue 10, item 9, the event-file part).

Each case is one ``events.jsonl`` (or energy sidecar) with one problem; ``report`` must end with one
clear :class:`~tsglab.errors.RunError` — never a ``KeyError`` / ``MergeError`` / ``UnicodeDecodeError``
/ ``RecursionError`` traceback — whose message names the file, the line and the field, and says what to
do. Mixed runs, mixed schema versions and a request recorded twice name both lines.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tsglab.api import build_report
from tsglab.cli import main
from tsglab.errors import RunError
from tsglab.events import synthetic_event, write_manifest
from tsglab.events.log import ENERGY_FILE, EVENTS_FILE
from tsglab.report import ProtocolSettings

N_PROMPTS = 4  # lines 1..8: baseline p0, tsg p0, baseline p1, tsg p1, ...
FIX_WORDS = ("delete", "correct", "re-run", "move", "remove", "resume", "split", "restore", "attach")


def good_events() -> list[dict]:
    events = []
    for i in range(N_PROMPTS):
        for arm in ("baseline", "tsg"):
            events.append(synthetic_event(f"p{i}", arm=arm, seq=len(events), run_id="bad",
                                          raw_ms=100.0 + len(events)).to_json())
    return events


def lines_of(events: list) -> bytes:
    return b"".join((e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n" for e in events)


def edit(line: int, fn: Callable[[dict], object]) -> Callable[[], bytes]:
    """A file whose ``line`` (1-based) is ``fn`` applied to the good event there (fn edits in place and
    returns None, or returns the replacement: a dict, or bytes written as they are)."""
    def build() -> bytes:
        events = good_events()
        event = copy.deepcopy(events[line - 1])
        out = fn(event)
        events[line - 1] = event if out is None else out
        return lines_of(events)
    return build


def set_path(dotted: str, value) -> Callable[[dict], None]:
    def fn(event: dict) -> None:
        *parents, last = dotted.split(".")
        target = event
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[int(last) if isinstance(target, list) else last] = value
    return fn


def drop(dotted: str) -> Callable[[dict], None]:
    def fn(event: dict) -> None:
        *parents, last = dotted.split(".")
        target = event
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        del target[last]
    return fn


def sub(old: str, new: str) -> Callable[[dict], bytes]:
    """The line's JSON text with ``old`` replaced by ``new`` (once; it must occur)."""
    def fn(event: dict) -> bytes:
        text = json.dumps(event)
        assert old in text, old
        return text.replace(old, new, 1).encode()
    return fn


def raw(data: bytes) -> Callable[[dict], bytes]:
    return lambda _event: data


def v1(event: dict) -> dict:
    """The event as a version-1 line (what an older tsglab wrote)."""
    out = {k: v for k, v in event.items() if k != "prompt_sha"}
    out["schema_version"] = 1
    return out


def duplicate(of: int) -> Callable[[], bytes]:
    def build() -> bytes:
        events = good_events()
        return lines_of([*events, events[of - 1]])
    return build


def other_run(line: int) -> Callable[[], bytes]:
    def build() -> bytes:
        events = good_events()
        stranger = synthetic_event("p9", arm="tsg", seq=99, run_id="another-run").to_json()
        events.insert(line - 1, stranger)
        return lines_of(events)
    return build


def mixed_versions(line: int) -> Callable[[], bytes]:
    def build() -> bytes:
        events = good_events()
        events[line - 1] = v1(events[line - 1])
        return lines_of(events)
    return build


# (case id, file builder, line named, pattern the message must contain besides path:line)
EVENT_CASES: list[tuple[str, Callable[[], bytes], int, str]] = [
    # not JSON, not UTF-8, not an object
    ("garbage", edit(3, raw(b"this is not json")), 3, r"not valid JSON"),
    ("truncated_object_with_newline", edit(2, raw(b'{"schema_version": 2, "run_id": "bad"')), 2, r"not valid JSON"),
    ("trailing_comma", edit(4, lambda e: json.dumps(e).encode()[:-1] + b", }"), 4, r"not valid JSON"),
    ("single_quotes", edit(1, raw(b"{'schema_version': 2}")), 1, r"not valid JSON"),
    ("invalid_utf8_in_answer", edit(5, lambda e: json.dumps(e).encode().replace(b'"synthetic"', b'"syn\xff\xfe"', 1)),
     5, r"not valid UTF-8"),
    ("utf8_char_cut_mid_line", edit(6, lambda e: json.dumps(e, ensure_ascii=False).encode().replace(
        b'"answer": "synthetic"', '"answer": "Отв'.encode()[:-1] + b'"', 1)), 6, r"not valid UTF-8"),
    ("two_events_on_one_line", edit(1, lambda e: json.dumps(e).encode() * 2), 1, r"not valid JSON \(Extra data"),
    ("nul_bytes", edit(7, raw(b"\x00" * 40)), 7, r"not valid JSON"),
    ("deeply_nested", edit(2, raw(b"[" * 200_000 + b"]" * 200_000)), 2, r"nested"),
    ("deeply_nested_field", edit(3, sub('"bucket": {', '"bucket": {"deep": ' + "[" * 100_000 + "]" * 100_000 + ", ")),
     3, r"nested"),
    ("json_array", edit(2, raw(b"[1, 2, 3]")), 2, r"must be a JSON object; got list"),
    ("json_string", edit(2, raw(b'"an event"')), 2, r"must be a JSON object; got str"),
    ("json_null", edit(8, raw(b"null")), 8, r"must be a JSON object; got NoneType"),
    ("json_number", edit(8, raw(b"42")), 8, r"must be a JSON object; got int"),
    # schema version
    ("schema_version_missing", edit(2, drop("schema_version")), 2, r"field 'schema_version' is None"),
    ("schema_version_3", edit(3, set_path("schema_version", 3)), 3, r"field 'schema_version' is 3"),
    ("schema_version_string", edit(3, set_path("schema_version", "2")), 3, r"field 'schema_version' is '2'"),
    # required fields and types
    ("run_id_missing", edit(4, drop("run_id")), 4, r"field 'run_id' is missing"),
    ("arm_missing", edit(1, drop("arm")), 1, r"field 'arm' is missing"),
    ("prompt_id_missing", edit(5, drop("prompt_id")), 5, r"field 'prompt_id' is missing"),
    ("request_id_missing", edit(5, drop("request_id")), 5, r"field 'request_id' is missing"),
    ("arm_not_a_string", edit(2, set_path("arm", 5)), 2, r"field 'arm' expected `str`, got `int`"),
    ("seq_as_string", edit(6, set_path("seq", "6")), 6, r"field 'seq' expected `int`, got `str`"),
    ("seq_fraction", edit(6, set_path("seq", 6.5)), 6, r"field 'seq' expected `int`, got `float`"),
    ("bucket_a_list", edit(7, set_path("bucket", ["general"])), 7, r"field 'bucket' expected `object`, got `array`"),
    ("schedule_missing", edit(3, drop("schedule")), 3, r"field 'schedule' is missing"),
    ("schedule_stamp_string", edit(3, set_path("schedule.dispatched_ns", "0")), 3,
     r"field 'schedule.dispatched_ns' expected `int`"),
    ("attempts_not_a_list", edit(2, set_path("attempts", {"tier": "std"})), 2, r"field 'attempts' expected `array`"),
    ("attempt_cost_missing", edit(4, drop("attempts.0.cost_ms")), 4, r"field 'attempts\[0\]\.cost_ms' is missing"),
    ("attempt_cost_source_unknown", edit(4, set_path("attempts.0.cost_source", "guess")), 4,
     r"field 'attempts\[0\]\.cost_source' invalid enum value 'guess'"),
    ("ladder_empty", edit(8, set_path("fingerprint.ladder", [])), 8, r"field 'fingerprint\.ladder'"),
    ("prompt_sha_not_hex", edit(1, set_path("prompt_sha", "not-a-sha")), 1, r"field 'prompt_sha'"),
    ("quality_score_string", edit(2, set_path("quality.score", "high")), 2, r"field 'quality\.score' expected `float`"),
    ("error_kind_missing", edit(3, set_path("error", {"message": "boom"})), 3, r"field 'error\.kind' is missing"),
    ("seq_too_large", edit(5, sub('"seq": 4,', '"seq": 123456789012345678901234567890,')), 5, r"field 'seq'"),
    # latencies: the precise messages of tsglab.events.validate
    ("latency_nan", edit(1, sub('"raw_ms": 100.0', '"raw_ms": NaN')), 1, r"field 'latency\.raw_ms' is NaN"),
    ("latency_infinity", edit(2, sub('"co_ms": 101.0', '"co_ms": Infinity')), 2, r"field 'latency\.co_ms' is infinite"),
    ("latency_negative", edit(3, set_path("latency.raw_ms", -1.0)), 3, r"field 'latency\.raw_ms' is negative"),
    ("latency_string", edit(4, set_path("latency.cost_ms", "12 ms")), 4, r"field 'latency\.cost_ms' is not a number"),
    ("latency_missing", edit(5, drop("latency")), 5, r"field 'latency' is missing"),
    ("latency_field_missing", edit(6, drop("latency.dispatch_lag_ms")), 6,
     r"field 'latency\.dispatch_lag_ms' is missing"),
    ("attempt_latency_negative", edit(7, set_path("attempts.0.total_ms", -5.0)), 7,
     r"field 'attempts\[0\]\.total_ms' is negative"),
    ("latency_huge_number", edit(8, sub('"raw_ms": 107.0', '"raw_ms": 1e999')), 8,
     r"field 'latency\.raw_ms' is infinite"),
    # the file as a whole: one run, one schema version, each request once
    ("duplicated_request", duplicate(3), 9, r"field 'request_id' 'bad/baseline/p1' .*line 3"),
    ("duplicated_request_first_line", duplicate(1), 9, r"field 'request_id' 'bad/baseline/p0' .*line 1"),
    ("mixed_runs", other_run(5), 5, r"field 'run_id' is 'another-run' .*line 1 .*'bad'"),
    ("mixed_runs_last_line", other_run(9), 9, r"field 'run_id' is 'another-run'"),
    ("mixed_schema_versions", mixed_versions(4), 4, r"field 'schema_version' is 1 .*line 1 .*2"),
    ("mixed_schema_versions_last", mixed_versions(8), 8, r"field 'schema_version' is 1 .*line 1 .*2"),
]


ENERGY_CASES: list[tuple[str, bytes, int, str]] = [
    ("energy_not_json", b'{"request_id": "bad/tsg/p0", "energy": {"available": true}}\nnot json\n', 2,
     r"not valid JSON"),
    ("energy_request_id_missing", b'{"energy": {"available": true}}\n', 1, r"field 'request_id' is missing"),
    ("energy_available_string", b'{"request_id": "bad/tsg/p0", "energy": {"available": "yes"}}\n', 1,
     r"field 'energy\.available' expected `bool`"),
    ("energy_not_utf8", b'{"request_id": "bad/tsg/\xff", "energy": {"available": true}}\n', 1, r"not valid UTF-8"),
]


def _run_dir(tmp_path: Path, data: bytes, energy: bytes | None = None) -> Path:
    run_dir = tmp_path / "bad"
    run_dir.mkdir()
    (run_dir / EVENTS_FILE).write_bytes(data)
    if energy is not None:
        (run_dir / ENERGY_FILE).write_bytes(energy)
    write_manifest(run_dir, {"run_id": "bad", "status": "complete", "seed": 1, "spec": {}})
    return run_dir


SETTINGS = ProtocolSettings(n_resamples=100, seed=1)


def _assert_clear(message: str, path: Path, line: int, pattern: str) -> None:
    import re

    first = message.splitlines()[0]
    assert first == message.strip(), "one line, no traceback"
    assert f"{path}:{line}:" in message
    assert re.search(pattern, message), message
    assert any(word in message.lower() for word in FIX_WORDS), f"no fix in: {message}"


def test_the_corpus_is_large_and_distinct():
    names = [case[0] for case in EVENT_CASES + ENERGY_CASES]
    assert len(names) == len(set(names))
    assert len(names) >= 35
    files = [build() for _, build, _, _ in EVENT_CASES]
    assert len(set(files)) == len(files)  # distinct files, not one file under many names


def test_the_good_file_is_reported(tmp_path):
    report = build_report(_run_dir(tmp_path, lines_of(good_events())), settings=SETTINGS, write=False)
    assert report.headline is not None


@pytest.mark.parametrize(("name", "build", "line", "pattern"), EVENT_CASES, ids=[c[0] for c in EVENT_CASES])
def test_bad_event_file_gives_one_clear_error(tmp_path, name, build, line, pattern):
    run_dir = _run_dir(tmp_path, build())
    with pytest.raises(RunError) as caught:
        build_report(run_dir, settings=SETTINGS, write=False)
    _assert_clear(str(caught.value), run_dir / EVENTS_FILE, line, pattern)


@pytest.mark.parametrize(("name", "energy", "line", "pattern"), ENERGY_CASES, ids=[c[0] for c in ENERGY_CASES])
def test_bad_energy_sidecar_gives_one_clear_error(tmp_path, name, energy, line, pattern):
    run_dir = _run_dir(tmp_path, lines_of(good_events()), energy)
    with pytest.raises(RunError) as caught:
        build_report(run_dir, settings=SETTINGS, write=False)
    _assert_clear(str(caught.value), run_dir / ENERGY_FILE, line, pattern)


@pytest.mark.parametrize("name", ["invalid_utf8_in_answer", "duplicated_request", "mixed_runs", "deeply_nested"])
def test_the_report_command_prints_one_line_and_exits_2(tmp_path, capsys, name):
    build = next(case[1] for case in EVENT_CASES if case[0] == name)
    run_dir = _run_dir(tmp_path, build())
    assert main(["report", str(run_dir), "--no-write", "--resamples", "100"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tsglab: error: {run_dir / EVENTS_FILE}:")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_an_empty_event_file_names_the_file(tmp_path):
    for data in (b"", b"\n\n  \n"):
        run_dir = _run_dir(tmp_path, data)
        with pytest.raises(RunError, match=f"{run_dir / EVENTS_FILE}: no events"):
            build_report(run_dir, settings=SETTINGS, write=False)
        import shutil

        shutil.rmtree(run_dir)
