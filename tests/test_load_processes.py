"""The open loop over several processes (``load.processes``): nothing lost or duplicated, the
summary covers every child, and a child that dies or a Ctrl-C leaves a run that ``resume`` finishes."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

import pytest
from conftest import scripted_ladder

from tsglab.config import spec_from_dict
from tsglab.errors import RunError, SpecError
from tsglab.events import read_events, read_manifest
from tsglab.load.runner import run_experiment

TIERS = {"light": {"max_tokens": 16}, "std": {"max_tokens": 64}, "enh": {"max_tokens": 128}}
ARMS = {"a": {"kind": "baseline"}, "b": {"kind": "baseline"}}
REPLY = "The answer is 42 and it is positive."


def make_spec(limit=20, **load):
    return spec_from_dict({"name": "mp", "prompts": {"limit": limit, "seed": 1}, "arms": ARMS, "tiers": TIERS,
                           "load": {"mode": "open_loop", "rate_per_s": 200, "concurrency": 4, "timeout_s": 5,
                                    "processes": 2, **load}})


def check_once_each(run_dir, n):
    keys = Counter((e.arm, e.prompt_id) for e in read_events(run_dir))
    assert len(keys) == n
    assert max(keys.values()) == 1


def test_two_processes_send_everything_once_and_summarise_every_child(tmp_path):
    parent = os.getpid()
    pids = set()
    lock = threading.Lock()

    def reply(request):
        with lock:
            pids.add(os.getpid())
        return REPLY

    result = run_experiment(make_spec(limit=30), runs_dir=tmp_path, run_id="two", ladder=scripted_ladder(reply),
                            progress=False)
    assert result.status == "complete"
    assert result.n_events == 60
    check_once_each(result.run_dir, 60)
    summary = read_manifest(result.run_dir)["load_generator"]
    assert summary["processes"] == 2
    assert summary["n_dispatched"] == 60
    assert summary["achieved_rate_per_s"] > 0
    assert summary["dispatch_lag_ms"]["p99"] is not None
    assert pids == set()  # the replies ran in the children, never in this process
    assert os.getpid() == parent


def test_a_child_that_dies_leaves_the_run_incomplete_and_resume_finishes_it(tmp_path):
    marker = tmp_path / "died"
    calls = Counter()

    def dies_on_third_call(request):
        calls[os.getpid()] += 1  # each forked child counts its own calls
        if calls[os.getpid()] == 3:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))  # only the first child to get here dies
            except FileExistsError:
                return REPLY
            os._exit(9)  # as a SIGKILL or an OOM kill would: nothing is flushed, nothing said
        return REPLY

    spec = make_spec(limit=20)
    died = (r"load-generator process \d \(exit code 9\) ended before sending its share "
            r"\(\d+ of 40 requests not recorded\); the run is incomplete: resume")
    with pytest.raises(RunError, match=died):
        run_experiment(spec, runs_dir=tmp_path, run_id="dead", ladder=scripted_ladder(dies_on_third_call),
                       progress=False)
    run_dir = tmp_path / "dead"
    assert read_manifest(run_dir)["status"] == "incomplete"
    assert len(read_events(run_dir)) < 40
    result = run_experiment(spec, resume=run_dir, ladder=scripted_ladder(REPLY), progress=False)
    assert result.status == "complete"
    check_once_each(run_dir, 40)


def test_ctrl_c_stops_every_child_and_resume_finishes_the_run(tmp_path):
    parent, calls = os.getpid(), Counter()

    def ctrl_c_at_third_call(request):
        calls[os.getpid()] += 1
        if calls[os.getpid()] == 3:
            os.kill(parent, signal.SIGINT)  # Ctrl-C reaches the parent mid-run (the children ignore SIGINT)
        return REPLY

    spec = make_spec(limit=40, rate_per_s=40)  # 80 requests over 2 s
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, runs_dir=tmp_path, run_id="cut", ladder=scripted_ladder(ctrl_c_at_third_call),
                       progress=False)
    run_dir = tmp_path / "cut"
    assert read_manifest(run_dir)["status"] == "incomplete"
    assert 0 < len(read_events(run_dir)) < 80
    result = run_experiment(spec, resume=run_dir, ladder=scripted_ladder(REPLY), progress=False)
    assert result.status == "complete"
    check_once_each(run_dir, 80)


@pytest.mark.parametrize(("load", "match"), [
    ({"processes": "two"}, r"load\.processes"),
    ({"processes": 0}, r"load\.processes must be >= 1; got 0"),
    ({"processes": 1000}, r"load\.processes must be <= 256"),
    ({"processes": 2, "mode": "paced"}, r"load\.processes is 2, but only an open_loop run has several senders"),
])
def test_a_bad_process_count_names_the_key_and_the_fix(load, match):
    with pytest.raises(SpecError, match=match):
        make_spec(limit=2, **load)


def test_the_process_count_is_not_part_of_the_spec_hash():
    assert make_spec(processes=1).spec_hash() == make_spec(processes=4).spec_hash()


def test_more_processes_than_workers_are_capped_at_the_concurrency(tmp_path):
    result = run_experiment(make_spec(limit=5, concurrency=2, processes=8), runs_dir=tmp_path, run_id="cap",
                            ladder=scripted_ladder(REPLY), progress=False)
    assert read_manifest(result.run_dir)["load_generator"]["processes"] == 2
    check_once_each(result.run_dir, 10)


def test_children_do_not_share_the_parents_pooled_connection(tmp_path):
    """A pre-flight check or a warm-up leaves an idle keep-alive connection in a backend's pool; forked
    children must each open their own, or two of them write requests into one TCP stream."""
    from stub_server import StubServer

    from tsglab.backends import build_backends
    from tsglab.backends.base import CompletionRequest, Message
    from tsglab.policy import TierLadder

    with StubServer(tokens=4, delay_ms=5) as stub:
        tiers = {t: {"backend": "openai", "endpoint": stub.base_url, "model": "stub", "max_tokens": 16}
                 for t in ("light", "std", "enh")}
        spec = spec_from_dict({"name": "mp-http", "prompts": {"limit": 30, "seed": 1}, "arms": ARMS, "tiers": tiers,
                               "load": {"mode": "open_loop", "rate_per_s": 200, "concurrency": 4, "timeout_s": 5}})
        ladder = TierLadder(spec.tiers, build_backends(spec.tiers))
        for backend in ladder.backends.values():  # every tier now holds an idle pooled connection
            backend.complete(CompletionRequest(messages=(Message("user", "hello"),), max_tokens=4, timeout_s=5))
        assert stub.stats()["connections"] == 3
        result = run_experiment(spec, runs_dir=tmp_path, run_id="http", ladder=ladder, progress=False)
        ladder.close()
        stats = stub.stats()
    events = read_events(result.run_dir)
    assert result.status == "complete"
    assert [e.error.message for e in events if e.error] == []
    assert len(events) == 60
    assert stats["received"] == stats["answered"] == 63
    assert stats["connections"] > 3  # the children opened their own


def test_in_process_models_refuse_a_fork_with_the_fix(tmp_path):
    from tsglab.backends.scripted import ScriptedBackend

    class FakeEmbedded(ScriptedBackend):  # stands in for EmbeddedBackend without loading a model
        __module__ = "tsglab.backends.embedded"

    ladder = scripted_ladder(REPLY)
    ladder.backends["std"] = FakeEmbedded(REPLY, name="fake-embedded")
    with pytest.raises(RunError, match=r"load\.processes: 2 forks the load generator.*tiers \['std'\].*set "
                                       r"load\.processes: 1 for embedded models"):
        run_experiment(make_spec(limit=4), runs_dir=tmp_path, run_id="emb", ladder=ladder, progress=False)
