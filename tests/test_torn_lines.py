"""Torn lines are decided on bytes, by one rule, in the writer, the reader and resume (issue 10, item 4).

A line is complete only when it ends with ``b"\\n"``. Whatever follows the last newline (a crash or a
full disk mid-write) is torn — even when it parses as a whole event. The reader skips it (and never
decodes half a UTF-8 character), resume therefore does not count its request as done, and the writer
cuts it off before appending: the torn request is sent again, exactly once, and nothing complete is
lost. The cut is tried at every byte offset of the last line.
"""

from __future__ import annotations

import dataclasses
import shutil
import warnings
from collections import Counter
from pathlib import Path

import pytest

from tsglab.config import spec_from_dict
from tsglab.errors import TsglabWarning
from tsglab.events import EventWriter, read_events, synthetic_event
from tsglab.events.log import ENERGY_FILE, EVENTS_FILE, append_energy, read_energy
from tsglab.events.record import Energy, EnergyEntry
from tsglab.load.runner import run_experiment

MULTIBYTE_ANSWER = "Ответ: 答案 — é ✓"  # 2-, 3- and 3-byte UTF-8 characters


def _events(n: int = 4) -> list:
    return [dataclasses.replace(synthetic_event(f"p{i}", seq=i, arm="tsg" if i % 2 else "baseline"),
                                answer=MULTIBYTE_ANSWER)
            for i in range(n)]


def _write(run_dir: Path, events) -> bytes:
    with EventWriter(run_dir) as writer:
        for event in events:
            writer.write(event)
    return (run_dir / EVENTS_FILE).read_bytes()


def _read_quietly(run_dir: Path) -> tuple[list, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        events = read_events(run_dir)
    return events, [str(w.message) for w in caught if issubclass(w.category, TsglabWarning)]


def _last_line_cuts(data: bytes) -> range:
    start = data[:-1].rfind(b"\n") + 1
    return range(start, len(data) + 1)


def test_split_torn_tail_is_the_one_rule():
    from tsglab.events.log import split_torn_tail

    assert split_torn_tail(b"") == (b"", b"")
    assert split_torn_tail(b'{"a": 1}\n') == (b'{"a": 1}\n', b"")
    assert split_torn_tail(b'{"a": 1}\n{"b": 2}') == (b'{"a": 1}\n', b'{"b": 2}')  # valid JSON, still torn
    assert split_torn_tail(b'{"a": 1}') == (b"", b'{"a": 1}')
    assert split_torn_tail(b"x\n\xd0") == (b"x\n", b"\xd0")  # half a UTF-8 character


def test_reader_at_every_byte_offset_of_the_last_line(tmp_path):
    events = _events()
    data = _write(tmp_path, events)
    answer_bytes = MULTIBYTE_ANSWER.encode()
    last = data[:-1].rfind(b"\n") + 1
    at = data.index(answer_bytes, last)
    inside_char = {at + i for i, byte in enumerate(answer_bytes) if 0x80 <= byte < 0xC0}  # continuation bytes
    cuts = _last_line_cuts(data)
    assert inside_char <= set(cuts)
    assert len(inside_char) >= 8
    outcomes = Counter()
    for cut in cuts:
        (tmp_path / EVENTS_FILE).write_bytes(data[:cut])
        got, messages = _read_quietly(tmp_path)
        complete = cut == len(data) or cut == last
        expected = events if cut == len(data) else events[:-1]
        assert [e.request_id for e in got] == [e.request_id for e in expected], cut
        assert got == expected
        if complete:
            assert messages == []
        else:
            assert len(messages) == 1
            assert f"{EVENTS_FILE}:{len(events)}: skipped a torn last line ({cut - last} bytes" in messages[0]
        outcomes[len(got)] += 1
    # the cut that loses only the final newline is torn too: before, it was read as recorded
    assert outcomes == {len(events) - 1: len(cuts) - 1, len(events): 1}


def test_done_set_plus_writer_at_every_byte_offset_loses_and_duplicates_nothing(tmp_path):
    """What resume does, at every cut: the done-set from ``read_events``, then the writer appends what is
    missing. Every request ends recorded exactly once, and every complete line survives byte for byte."""
    events = _events()
    data = _write(tmp_path / "orig", events)
    for cut in _last_line_cuts(data):
        run_dir = tmp_path / f"cut{cut}"
        run_dir.mkdir()
        (run_dir / EVENTS_FILE).write_bytes(data[:cut])
        done, _ = _read_quietly(run_dir)
        done_keys = {(e.arm, e.prompt_id) for e in done}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TsglabWarning)
            _write(run_dir, [e for e in events if (e.arm, e.prompt_id) not in done_keys])
        final, messages = _read_quietly(run_dir)
        assert messages == []
        assert sorted(e.request_id for e in final) == sorted(e.request_id for e in events)
        assert (run_dir / EVENTS_FILE).read_bytes() == data  # same events, same bytes, same order
        shutil.rmtree(run_dir)


def test_writer_cuts_only_the_torn_tail_and_keeps_its_bytes(tmp_path):
    events = _events(3)
    data = _write(tmp_path, events)
    torn = data[: len(data) - 7]
    (tmp_path / EVENTS_FILE).write_bytes(torn)
    with pytest.warns(TsglabWarning, match=r"cut a torn last line .* copied to .*events\.jsonl\.torn"):
        EventWriter(tmp_path).close()
    assert (tmp_path / EVENTS_FILE).read_bytes() == data[: data[:-1].rfind(b"\n") + 1]
    assert (tmp_path / (EVENTS_FILE + ".torn")).read_bytes() == torn[data[:-1].rfind(b"\n") + 1:] + b"\n"


def test_writer_finds_the_tail_of_a_large_log_and_a_tail_longer_than_its_read_chunk(tmp_path):
    events = [synthetic_event(f"p{i}", seq=i) for i in range(200)]  # ~300 kB: several 64 KiB chunks
    data = _write(tmp_path, events)
    long_tail = b'{"schema_version": 2, "answer": "' + b"x" * 200_000  # torn, longer than one chunk
    (tmp_path / EVENTS_FILE).write_bytes(data + long_tail)
    with pytest.warns(TsglabWarning, match=f"{len(long_tail)} bytes after byte {len(data)}"):
        EventWriter(tmp_path).close()
    assert (tmp_path / EVENTS_FILE).read_bytes() == data
    # a file that is nothing but a torn line is cut to empty
    (tmp_path / EVENTS_FILE).write_bytes(data[:100])
    with pytest.warns(TsglabWarning, match="cut a torn last line"):
        EventWriter(tmp_path).close()
    assert (tmp_path / EVENTS_FILE).read_bytes() == b""


def test_energy_sidecar_uses_the_same_rule(tmp_path):
    entries = [EnergyEntry(f"r{i}", Energy(True, meter="fake", joules=float(i + 1))) for i in range(3)]
    append_energy(tmp_path, entries)
    data = (tmp_path / ENERGY_FILE).read_bytes()
    for cut in _last_line_cuts(data)[1:-1]:  # a non-empty torn tail
        (tmp_path / ENERGY_FILE).write_bytes(data[:cut])
        with pytest.warns(TsglabWarning, match="torn last line"):
            assert set(read_energy(tmp_path)) == {"r0", "r1"}
    with pytest.warns(TsglabWarning, match="cut a torn last line"):
        append_energy(tmp_path, entries[2:])
    assert (tmp_path / ENERGY_FILE).read_bytes() == data


# ---- the real runner: resume re-sends exactly the torn request -------------------------------------


def _spec(mode: str):
    load = {"mode": mode, "timeout_s": 5, "rate_per_s": 200, "concurrency": 2}
    return spec_from_dict({"name": "torn", "prompts": {"limit": 5, "seed": 3}, "load": load,
                           "energy": {"meter": "none"},
                           "tiers": {t: {"backend": "scripted", "options": {"reply": MULTIBYTE_ANSWER * 3}}
                                     for t in ("light", "std", "enh")}})


def _cut_points(line: bytes) -> dict[str, int]:
    """Where to cut the last line (offsets into it): the first byte, inside a multi-byte character,
    the middle, and just before the final newline."""
    inside = line.index(MULTIBYTE_ANSWER.encode()) + 1  # between the two bytes of "О"
    return {"first_byte": 1, "inside_utf8_char": inside, "middle": len(line) // 2, "newline_only": len(line) - 1}


@pytest.mark.parametrize("mode", ["paced", "open_loop"])
def test_resume_resends_exactly_the_torn_request(tmp_path, mode):
    spec = _spec(mode)
    first = run_experiment(spec, runs_dir=tmp_path, run_id="full", progress=False)
    data = (first.run_dir / EVENTS_FILE).read_bytes()
    last = data[:-1].rfind(b"\n") + 1
    line = data[last:]
    assert line[line.index(MULTIBYTE_ANSWER.encode()) + 1] >= 0x80  # really inside a character
    original = read_events(first.run_dir)
    torn_key = (original[-1].arm, original[-1].prompt_id)
    for name, offset in _cut_points(line).items():
        run_dir = tmp_path / name
        shutil.copytree(first.run_dir, run_dir)
        (run_dir / EVENTS_FILE).write_bytes(data[: last + offset])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TsglabWarning)
            result = run_experiment(spec, resume=run_dir, progress=False)
        final, messages = _read_quietly(run_dir)
        assert messages == [], name
        assert result.status == "complete"
        resent = [(e.arm, e.prompt_id) for e in final if e.segment == 1]
        assert resent == [torn_key], name  # exactly the torn request, once
        keys = Counter((e.arm, e.prompt_id) for e in final)
        assert set(keys) == {(e.arm, e.prompt_id) for e in original}, name  # nothing lost
        assert max(keys.values()) == 1, name  # nothing duplicated
        assert (run_dir / EVENTS_FILE).read_bytes().startswith(data[:last])  # complete lines untouched
