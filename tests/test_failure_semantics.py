"""Failure semantics of whole runs against a real HTTP server on 127.0.0.1: every failure becomes an
event with its ``error_kind``, the run goes on, retries happen only as the spec says, and reports count
failures instead of timing them."""

from __future__ import annotations

import threading
import time

import pytest
from stub_server import StubServer

from tsglab.config import spec_from_dict
from tsglab.events import read_events
from tsglab.load.runner import run_experiment
from tsglab.report import build_report


def make_spec(endpoint: str, *, limit=4, retry=None, **load):
    tiers = {t: {"backend": "openai", "endpoint": endpoint, "model": f"stub-{t}", "max_tokens": 16}
             for t in ("light", "std", "enh")}
    raw = {"name": "fail", "prompts": {"limit": limit, "seed": 1},
           "arms": {"baseline": {"kind": "baseline"}, "tsg": {}}, "tiers": tiers,
           "load": {"mode": "paced", "period_ms": 0, "timeout_s": 5, **load}, "energy": {"meter": "none"}}
    if retry is not None:
        raw["retry"] = retry
    return spec_from_dict(raw)


@pytest.mark.parametrize(("fail", "kind"), [("http_500", "http_5xx"), ("malformed", "malformed_response"),
                                            ("drop_mid_stream", "stream_interrupted")])
def test_each_server_failure_is_an_error_event_with_its_kind(tmp_path, fail, kind):
    with StubServer(fail=fail) as stub:
        result = run_experiment(make_spec(stub.base_url), runs_dir=tmp_path, run_id=fail, progress=False)
    events = read_events(result.run_dir)
    assert result.status == "complete"
    assert len(events) == result.n_planned == 8
    assert {e.error.kind for e in events} == {kind}
    assert all(not e.censoring.right_censored and e.quality.score == 0.0 for e in events)


def test_a_server_that_dies_mid_run_does_not_stop_the_run(tmp_path):
    stub = StubServer(process=True, delay_ms=20)
    killer_done = threading.Event()

    def kill_after_six_requests():
        while stub.stats()["received"] < 6:
            time.sleep(0.01)
        stub.close()
        killer_done.set()

    threading.Thread(target=kill_after_six_requests, daemon=True).start()
    try:
        result = run_experiment(make_spec(stub.base_url, limit=10, period_ms=60), runs_dir=tmp_path, run_id="dies",
                                progress=False)
    finally:
        stub.close()
    assert killer_done.is_set()
    events = sorted(read_events(result.run_dir), key=lambda e: e.seq)
    assert result.status == "complete"
    assert len(events) == result.n_planned == 20
    kinds = [e.error.kind if e.error else "" for e in events]
    assert kinds[:5] == [""] * 5  # answered before the server died
    assert kinds[-5:] == ["connect_error"] * 5  # refused after it
    report = build_report(result.run_dir, write=False)
    load = report.load.set_index("arm")
    assert load["errors"].sum() == sum(k not in ("", "timeout") for k in kinds)
    assert report.p95_views["errors"].max() > 0


def test_retries_follow_the_spec_and_show_as_attempts(tmp_path):
    with StubServer(fail="http_500") as stub:
        spec = make_spec(stub.base_url, limit=2, retry={"max_retries": 2, "on": ["http_5xx"], "backoff_ms": 1})
        result = run_experiment(spec, runs_dir=tmp_path, run_id="retry", progress=False)
        received = stub.stats()["received"]
    events = read_events(result.run_dir)
    assert received == 3 * len(events)  # one attempt and two retries per request
    for event in events:
        assert [a.kind for a in event.attempts] == ["initial", "retry", "retry"]
        assert event.error.kind == "http_5xx"
        assert event.fingerprint.retry == {"max_retries": 2, "on": ["http_5xx"], "backoff_ms": 1.0}
