"""Backends against hostile servers (issue 10, items 2 and 3): every request ends by its deadline and
every server answer ends as a classified backend error, in both load modes, never as a stopped run.

The servers are real sockets on 127.0.0.1 (``tests/stub_server.py`` fault modes), so the whole HTTP
stack is exercised: connect, headers, every byte of the body.
"""

from __future__ import annotations

import re
import time
import tracemalloc
from pathlib import Path

import pytest
from stub_server import StubServer

from tsglab.backends import CompletionRequest, Message
from tsglab.backends.openai_compat import OpenAICompatBackend
from tsglab.config import spec_from_dict
from tsglab.errors import BackendError, BackendTimeout
from tsglab.events import read_events
from tsglab.load.runner import run_experiment

REQUEST = CompletionRequest(messages=(Message("user", "Say hi."),), max_tokens=8, timeout_s=1.0)
README = Path(__file__).resolve().parents[1] / "README.md"

#: valid JSON of the wrong shape, sent as one `data:` event of an otherwise valid stream
WRONG_SHAPES = [
    '"str"', "1", "[]", "null", "true", "{}", '{"choices": "x"}', '{"choices": [1]}', '{"choices": [null]}',
    '{"choices": [{"delta": "x"}]}', '{"choices": [{"delta": {"content": 5}}]}',
    '{"choices": [{"delta": {"content": ["a", "b"]}}]}', '{"choices": [{"delta": {}, "finish_reason": 7}]}',
    '{"choices": [], "usage": "many"}', '{"choices": [], "usage": {"completion_tokens": "many"}}',
    '{"choices": [], "usage": {"completion_tokens": -3}}', '{"choices": [], "usage": {"prompt_tokens": [1]}}',
    '{"choices": [{"delta": {"content": "x"}}], "model": {"a": 1}}', '{"error": ["x"]}',
    '{"error": {"message": {"nested": 1}, "code": "abc"}}', '{"choices": {"0": {}}}', "1e999", '"\\ud800"',
    "{not json", "<html>oops</html>",
]


def _complete(stub: StubServer, timeout_s: float = 1.0, **options) -> tuple[BaseException | None, float]:
    backend = OpenAICompatBackend("stub", base_url=stub.base_url, api_key="sk-test-0123456789", **options)
    started = time.monotonic()
    try:
        backend.complete(CompletionRequest(messages=REQUEST.messages, max_tokens=8, timeout_s=timeout_s))
    except BaseException as exc:  # noqa: BLE001 (the test inspects whatever came out)
        return exc, time.monotonic() - started
    finally:
        backend.close()
    return None, time.monotonic() - started


# -- item 2: one overall deadline per attempt --------------------------------------------------------

@pytest.mark.parametrize("fail", ["no_newline", "trickle", "trickle_headers"])
def test_a_stream_that_never_finishes_ends_by_its_deadline(fail):
    with StubServer(fail=fail, trickle_ms=50, tokens=64) as stub:
        exc, elapsed = _complete(stub, timeout_s=1.0, max_line_bytes=2**28, max_response_bytes=2**28)
    assert isinstance(exc, BackendTimeout), repr(exc)
    assert elapsed < 1.5, f"{fail}: the 1 s deadline ended after {elapsed:.2f} s"
    assert exc.error_kind == "timeout"


def test_a_line_without_newline_does_not_grow_memory_without_bound():
    """A 64 KiB/10 ms endless line: with a generous deadline the line cap ends it, memory stays small."""
    tracemalloc.start()
    try:
        with StubServer(fail="no_newline") as stub:
            exc, elapsed = _complete(stub, timeout_s=30.0, max_line_bytes=256 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(exc, BackendError), repr(exc)
    assert exc.error_kind == "malformed_response"
    assert "newline" in str(exc)
    assert elapsed < 10
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"


# -- item 3: every answer is classified -------------------------------------------------------------

@pytest.mark.parametrize("event", WRONG_SHAPES)
def test_wrong_shapes_are_malformed_responses(event):
    with StubServer(fail="event", event=event, tokens=4) as stub:
        exc, _ = _complete(stub)
    assert isinstance(exc, BackendError), f"{event}: {exc!r}"
    expected = "stream_interrupted" if event.startswith('{"error"') else "malformed_response"
    assert exc.error_kind == expected, f"{event}: {exc!r}"


@pytest.mark.parametrize(("fail", "kind", "match"), [
    ("bad_utf8", "malformed_response", "UTF-8"),
    ("bad_gzip", "malformed_response", "decod"),
    ("html_200", "malformed_response", "502 Bad Gateway"),
    ("html_502", "http_5xx", "502 Bad Gateway"),
    ("garbage", "malformed_response", "not an HTTP"),
])
def test_bad_encodings_pages_and_non_http_answers_are_classified(fail, kind, match):
    with StubServer(fail=fail) as stub:
        exc, elapsed = _complete(stub)
    assert isinstance(exc, BackendError), repr(exc)
    assert exc.error_kind == kind, repr(exc)
    assert re.search(match, str(exc)), str(exc)
    assert "check whether the server crashed" not in str(exc)
    assert elapsed < 1.5


def _spec(endpoint: str, mode: str, *, on_error: str = "record", limit: int = 2, timeout_s: float = 1.0):
    tiers = {t: {"backend": "openai", "endpoint": endpoint, "model": "stub", "max_tokens": 8}
             for t in ("light", "std", "enh")}
    load = {"mode": mode, "timeout_s": timeout_s}
    if mode == "open_loop":
        load.update(rate_per_s=50, concurrency=4)
    return spec_from_dict({"name": "hostile", "prompts": {"limit": limit, "seed": 1}, "tiers": tiers, "load": load,
                           "arms": {"baseline": {"kind": "baseline"}, "tsg": {}}, "energy": {"meter": "none"},
                           "on_error": on_error, "preflight": False})


@pytest.mark.parametrize("mode", ["paced", "open_loop"])
@pytest.mark.parametrize(("fail", "event", "kind"), [
    ("event", '"str"', "malformed_response"),
    ("event", '{"choices": [], "usage": {"completion_tokens": "many"}}', "malformed_response"),
    ("bad_gzip", "", "malformed_response"),
    ("html_200", "", "malformed_response"),
    ("garbage", "", "malformed_response"),
    ("no_newline", "", "malformed_response"),  # the line cap (1 MiB) ends it before the 1 s deadline
    ("trickle", "", "timeout"),
])
def test_no_server_answer_stops_a_run_in_either_mode(tmp_path, mode, fail, event, kind):
    knobs = {"event": event} if event else {}
    with StubServer(fail=fail, **knobs) as stub:
        spec = _spec(stub.base_url, mode, on_error="stop")  # stop: any exception would end the run
        started = time.monotonic()
        result = run_experiment(spec, runs_dir=tmp_path, run_id="r", progress=False)
        elapsed = time.monotonic() - started
    events = read_events(result.run_dir)
    assert result.status == "complete"
    assert len(events) == result.n_planned == 4
    assert {e.error.kind for e in events} == {kind}
    assert elapsed < 20


def test_readme_lists_every_error_kind_the_code_can_write():
    """Every `error_kind = "..."` and every kind literal the recorder writes is in the README's list."""
    root = Path(__file__).resolve().parents[1] / "tsglab"
    code = "\n".join(p.read_text(encoding="utf-8") for p in root.rglob("*.py"))
    kinds = set(re.findall(r'error_kind = "([a-z_0-9]+)"', code))
    # the kinds the runner writes itself (a request that raised, one abandoned by the open-loop watchdog)
    load_code = "\n".join(p.read_text(encoding="utf-8") for p in (root / "load").glob("*.py"))
    kinds |= set(re.findall(r'kind="([a-z_0-9]+)"', load_code))
    kinds |= {"http_429", "http_4xx", "http_5xx"}  # computed from the status in BackendHTTPError
    readme = README.read_text(encoding="utf-8")
    listed = re.search(r"^\| `error` \|(.+)$", readme, re.MULTILINE)
    assert listed is not None
    documented = set(re.findall(r"`([a-z_0-9]+)`", listed.group(1)))
    assert {"timeout", "malformed_response", "runner_exception"} <= kinds
    assert kinds - documented == set(), f"kinds the README's `error` row does not list: {kinds - documented}"


# -- the Ollama backend against the same faults ------------------------------------------------------

def _ollama_complete(stub: StubServer, timeout_s: float = 1.0, **options) -> tuple[BaseException | None, float]:
    from tsglab.backends.ollama_api import OllamaBackend

    backend = OllamaBackend("stub", host=f"http://127.0.0.1:{stub.port}", **options)
    started = time.monotonic()
    try:
        backend.complete(CompletionRequest(messages=REQUEST.messages, max_tokens=8, timeout_s=timeout_s))
    except BaseException as exc:  # noqa: BLE001 (the test inspects whatever came out)
        return exc, time.monotonic() - started
    finally:
        backend.close()
    return None, time.monotonic() - started


def test_ollama_answers_normally_through_the_deadline_transport():
    with StubServer(tokens=3) as stub:
        from tsglab.backends.ollama_api import OllamaBackend

        backend = OllamaBackend("stub", host=f"http://127.0.0.1:{stub.port}")
        try:
            completion = backend.complete(REQUEST)
        finally:
            backend.close()
    assert completion.text == " t0 t1 t2"


@pytest.mark.parametrize(("fail", "kind"), [("no_newline", "timeout"), ("trickle_headers", "timeout"),
                                            ("bad_gzip", "malformed_response"), ("html_200", "malformed_response"),
                                            ("html_502", "http_5xx"), ("garbage", "malformed_response")])
def test_ollama_ends_by_its_deadline_and_classifies_hostile_answers(fail, kind):
    with StubServer(fail=fail, trickle_ms=50) as stub:
        exc, elapsed = _ollama_complete(stub, timeout_s=1.0)
    assert isinstance(exc, BackendError), repr(exc)
    assert exc.error_kind == kind, repr(exc)
    assert elapsed < 1.5


def test_ollama_caps_a_line_that_never_ends():
    with StubServer(fail="no_newline") as stub:
        exc, elapsed = _ollama_complete(stub, timeout_s=30.0, max_response_bytes=2**20)
    assert isinstance(exc, BackendError), repr(exc)
    assert exc.error_kind == "malformed_response"
    assert "max_response_bytes" in str(exc)
    assert elapsed < 10


@pytest.mark.parametrize("event", ['"str"', "1", "[]", "null", '{"message": "x", "done": false}',
                                   '{"message": {"content": 5}, "done": false}', '{"done": "maybe"}',
                                   '{"model": "m", "message": {"content": "x"}, "done": false, "eval_count": "many"}',
                                   "{not json", "<html>"])
def test_ollama_wrong_shapes_are_malformed_responses(event):
    with StubServer(fail="event", event=event, tokens=4) as stub:
        exc, _ = _ollama_complete(stub)
    assert isinstance(exc, BackendError), f"{event}: {exc!r}"
    assert exc.error_kind == "malformed_response", f"{event}: {exc!r}"
