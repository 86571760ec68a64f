from __future__ import annotations

import importlib.util
import threading
import time
from collections import Counter

import numpy as np
import pytest
from conftest import scripted_ladder

from tsglab.config import spec_from_dict
from tsglab.events import read_events, read_manifest
from tsglab.load import open_loop
from tsglab.load.arrivals import build_arrivals
from tsglab.load.runner import run_experiment

TIERS = {"light": {"max_tokens": 16}, "std": {"max_tokens": 64}, "enh": {"max_tokens": 128}}
HAS_OPENAI_BACKEND = importlib.util.find_spec("tsglab.backends.openai_compat") is not None


def make_spec(limit=10, tiers=TIERS, arms=None, **load):
    return spec_from_dict({
        "name": "ol",
        "prompts": {"limit": limit, "seed": 1},
        "arms": arms or {"baseline": {"kind": "baseline"}, "tsg": {}},
        "tiers": tiers,
        "load": {"mode": "open_loop", "rate_per_s": 100, "concurrency": 2, "timeout_s": 5, **load},
    })


def answer(request):
    if request.json_schema is not None or "json" in request.messages[-1].content.lower():
        return '{"answer": 1}'
    return "The answer is 42 and it is positive."


def by_seq(run_dir):
    return sorted(read_events(run_dir), key=lambda e: e.seq)


def latencies(events, key):
    return np.array([getattr(e.latency, key) for e in events])


def check_stall_is_seen_by_co_and_hidden_by_raw(events, stall_ms):
    raw, co = latencies(events, "raw_ms"), latencies(events, "co_ms")
    assert (raw >= 0.8 * stall_ms).sum() == 1  # raw latency: only the stalled request looks slow
    # the ~rate × stall arrivals due during the stall waited behind it: CO latency counts the wait
    assert (co >= 0.4 * stall_ms).sum() >= 10
    assert np.percentile(co, 95) >= 0.4 * stall_ms
    assert np.percentile(co, 95) > 10 * np.percentile(raw, 95)


def test_co_latency_captures_a_stall_that_raw_latency_hides_scripted(tmp_path):
    calls = {"n": 0}
    lock = threading.Lock()

    def stall_once(request):
        with lock:
            calls["n"] += 1
            number = calls["n"]
        if number == 10:
            time.sleep(1.0)  # the server stalls once for 1 s
        return answer(request)

    spec = make_spec(limit=40, arms={"baseline": {"kind": "baseline"}, "b2": {"kind": "baseline"}},
                     rate_per_s=40, concurrency=1)
    result = run_experiment(spec, runs_dir=tmp_path, run_id="stall", ladder=scripted_ladder(stall_once),
                            progress=False)
    events = by_seq(result.run_dir)
    assert result.status == "complete"
    assert len(events) == result.n_planned == 80
    check_stall_is_seen_by_co_and_hidden_by_raw(events, 1000.0)


@pytest.mark.skipif(not HAS_OPENAI_BACKEND, reason="tsglab/backends/openai_compat.py not written yet")
def test_co_latency_captures_a_stall_of_a_real_server_that_raw_latency_hides(tmp_path):
    from stub_server import StubServer

    with StubServer(serial=True, delay_ms=1, tokens=4, stall_ms=1000, stall_after=10) as stub:
        tiers = {t: {"backend": "openai", "endpoint": stub.base_url, "model": f"stub-{t}", "max_tokens": 16}
                 for t in ("light", "std", "enh")}
        spec = make_spec(limit=40, tiers=tiers, arms={"baseline": {"kind": "baseline"}, "b2": {"kind": "baseline"}},
                         rate_per_s=40, concurrency=1)
        result = run_experiment(spec, runs_dir=tmp_path, run_id="stub-stall", progress=False)
        stats = stub.stats()
    events = by_seq(result.run_dir)
    assert result.status == "complete"
    assert len(events) == 80
    assert stats["received"] == 80
    assert not any(e.error for e in events)
    check_stall_is_seen_by_co_and_hidden_by_raw(events, 1000.0)


def test_nothing_is_lost_and_every_event_has_its_dispatch_lag(tmp_path):
    spec = make_spec(limit=30, arrival="poisson", rate_per_s=300, concurrency=3, seed=4)
    ladder = scripted_ladder(answer, sleep=True, prompt_ms=2.0, eval_ms_per_token=0.1)
    result = run_experiment(spec, runs_dir=tmp_path, run_id="all", ladder=ladder, progress=False)
    events = read_events(result.run_dir)
    assert result.n_events == len(events) == result.n_planned == 60
    assert Counter(e.seq for e in events) == Counter(range(60))
    for e in events:
        s, lat = e.schedule, e.latency
        assert s.intended_start_ns <= s.dispatched_ns <= s.completed_ns
        assert lat.dispatch_lag_ms >= 0
        assert lat.co_ms == pytest.approx(lat.raw_ms + lat.dispatch_lag_ms, abs=1e-6)
    summary = read_manifest(result.run_dir)["load_generator"]
    assert summary["arrival"] == "poisson"
    assert summary["n_dispatched"] == 60
    assert summary["concurrency"] == 3
    assert summary["target_rate_per_s"] == 300
    assert summary["achieved_rate_per_s"] > 0
    assert set(summary["dispatch_lag_ms"]) == {"p50", "p99", "max"}
    assert summary["n_lag_over_1ms"] >= 0
    assert summary["switch_interval_s"] == open_loop.SWITCH_INTERVAL_S


class InFlight:
    """Scripted replies that count how many calls run at once."""

    def __init__(self, service_s):
        self.service_s, self.now, self.peak = service_s, 0, 0
        self.lock = threading.Lock()

    def __call__(self, request):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.service_s)
        with self.lock:
            self.now -= 1
        return answer(request)


def test_concurrency_bound_is_never_exceeded(tmp_path):
    counter = InFlight(0.02)
    spec = make_spec(limit=20, arms={"a": {"kind": "baseline"}, "b": {"kind": "baseline"}}, rate_per_s=500,
                     concurrency=3)
    result = run_experiment(spec, runs_dir=tmp_path, run_id="bound", ladder=scripted_ladder(counter), progress=False)
    events = read_events(result.run_dir)
    assert len(events) == 40
    assert counter.peak == 3  # the bound is reached, never passed
    # 500 req/s against 3 × 50 req/s of capacity: arrivals queue and their dispatch lag grows
    assert max(latencies(events, "dispatch_lag_ms")) > 100


def test_a_worker_exception_becomes_an_error_event_and_the_run_goes_on(tmp_path):
    calls = {"n": 0}

    def broken_every_fifth(request):
        calls["n"] += 1
        if calls["n"] % 5 == 0:
            raise RuntimeError("bug in a backend")
        return answer(request)

    spec = make_spec(limit=10, arms={"a": {"kind": "baseline"}, "b": {"kind": "baseline"}}, concurrency=1)
    result = run_experiment(spec, runs_dir=tmp_path, run_id="exc", ladder=scripted_ladder(broken_every_fifth),
                            progress=False)
    events = by_seq(result.run_dir)
    assert result.status == "complete"
    assert len(events) == 20
    failed = [e for e in events if e.error]
    assert len(failed) == 4
    assert all(e.error.kind == "runner_exception" and "RuntimeError: bug in a backend" in e.error.message
               for e in failed)
    assert all(e.quality.score == 0.0 and e.attempts == () for e in failed)


def test_a_backend_that_ignores_its_timeout_is_recorded_as_censored(tmp_path, monkeypatch):
    monkeypatch.setattr(open_loop, "_abandon_after_ns", lambda timeout_s: 300_000_000)
    calls = {"n": 0}
    release = threading.Event()

    def hang_third(request):
        calls["n"] += 1
        if calls["n"] == 3:
            release.wait(5)  # never returns in time and raises no BackendTimeout
        return answer(request)

    spec = make_spec(limit=4, arms={"a": {"kind": "baseline"}, "b": {"kind": "baseline"}}, concurrency=1,
                     timeout_s=0.1)
    try:
        result = run_experiment(spec, runs_dir=tmp_path, run_id="hang", ladder=scripted_ladder(hang_third),
                                progress=False)
    finally:
        release.set()
    events = by_seq(result.run_dir)
    assert result.status == "complete"
    assert len(events) == 8
    assert Counter(e.seq for e in events)[2] == 1
    hung = events[2]
    assert hung.censoring.right_censored
    assert hung.error.kind == "timeout"
    assert "abandoned" in hung.error.message
    assert hung.latency.raw_ms >= 300
    assert read_manifest(result.run_dir)["load_generator"]["n_abandoned"] == 1
    time.sleep(0.05)  # the released thread's late answer is dropped, not appended
    assert len(read_events(result.run_dir)) == 8


def test_poisson_schedule_is_reproducible_for_a_fixed_seed(tmp_path):
    def offsets(run_id, seed):
        spec = make_spec(limit=15, arrival="poisson", rate_per_s=400, concurrency=4, seed=seed)
        result = run_experiment(spec, runs_dir=tmp_path, run_id=run_id, ladder=scripted_ladder(answer),
                                progress=False)
        intended = np.array([e.schedule.intended_start_ns for e in by_seq(result.run_dir)])
        return intended - intended[0], spec

    first, spec = offsets("p1", seed=11)
    second, _ = offsets("p2", seed=11)
    other, _ = offsets("p3", seed=12)
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)
    assert np.array_equal(first, build_arrivals(30, spec.load).offsets_ns)


class Interrupt:
    def __init__(self, at):
        self.at, self.calls = at, 0
        self.lock = threading.Lock()

    def __call__(self, request):
        with self.lock:
            self.calls += 1
            hit = self.calls == self.at
        if hit:
            raise KeyboardInterrupt
        return answer(request)


def test_ctrl_c_marks_the_run_incomplete_and_resume_finishes_it(tmp_path):
    spec = make_spec(limit=10, arms={"a": {"kind": "baseline"}, "b": {"kind": "baseline"}}, concurrency=2)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, runs_dir=tmp_path, run_id="cut", ladder=scripted_ladder(Interrupt(at=6)),
                       progress=False)
    run_dir = tmp_path / "cut"
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "incomplete"
    assert manifest["load_generator"]["n_planned"] == 20
    assert 0 < len(read_events(run_dir)) < 20
    result = run_experiment(spec, resume=run_dir, ladder=scripted_ladder(answer), progress=False)
    keys = Counter((e.arm, e.prompt_id) for e in read_events(run_dir))
    assert result.status == "complete"
    assert len(keys) == 20
    assert max(keys.values()) == 1
    assert read_manifest(run_dir)["load_generator"]["seed"] == [0, 1]  # the resumed segment's own draw


def test_warmup_counts_per_arm_in_schedule_order(tmp_path):
    spec = make_spec(limit=6, warmup_count=2, concurrency=3)
    result = run_experiment(spec, runs_dir=tmp_path, run_id="warm", ladder=scripted_ladder(answer), progress=False)
    assert [e.in_warmup for e in by_seq(result.run_dir)] == [True] * 4 + [False] * 8


def test_group_commit_writer_flushes_every_event_and_fsyncs_in_the_background(tmp_path, monkeypatch):
    import os

    from tsglab.events import EventWriter, synthetic_event

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    with pytest.raises(ValueError, match="`fsync_interval_s` must be >= 0 seconds; got -1"):
        EventWriter(tmp_path, fsync_interval_s=-1)
    writer = EventWriter(tmp_path, fsync_interval_s=0.05)
    for seq in range(3):
        writer.write(synthetic_event(f"p{seq}", seq=seq))
    # flushed per event: another reader (or a crash of this process) sees every line at once
    assert (tmp_path / "events.jsonl").read_text().count("\n") == 3
    assert synced == []
    deadline = time.monotonic() + 2
    while not synced and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(synced) == 1  # one fsync for the group of three
    writer.write(synthetic_event("p3", seq=3))
    writer.close()
    assert len(synced) >= 2
    assert len(read_events(tmp_path)) == 4  # close() fsyncs what is left
    writer.close()  # idempotent
    per_event = EventWriter(tmp_path / "paced")
    per_event.write(synthetic_event("p0"))
    per_event.close()
    assert len(synced) >= 3  # fsync_interval_s=0: every event
