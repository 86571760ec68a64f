"""OpenAICompatBackend against httpx.MockTransport: SSE parsing, request body, headers, error mapping."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from _mock_http import PartStream
from _mock_http import Recorder as MockHandler

from tsglab.backends.base import CompletionRequest, Message
from tsglab.backends.openai_compat import OpenAICompatBackend
from tsglab.errors import (
    BackendConnectError,
    BackendHTTPError,
    BackendMalformedResponse,
    BackendStreamInterrupted,
    BackendTimeout,
    SpecError,
)
from tsglab.servers.launch import free_port

SECRET = "sk-test-6f1c0d2a9b8e7f"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
BASE = "http://10.1.2.3:8123/v1"


def request(**overrides) -> CompletionRequest:
    values = {"messages": (Message("system", "Be brief."), Message("user", "2+2?")), "max_tokens": 8,
              "temperature": 0.0, "seed": 7}
    return CompletionRequest(**{**values, **overrides})


def chunk(content: str | None = None, finish: str | None = None, model: str = "served-model") -> dict:
    delta = {} if content is None else {"content": content}
    return {"id": "c1", "object": "chat.completion.chunk", "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def sse(*events, done: bool = True, sep: str = "\n\n") -> bytes:
    body = "".join(f"data: {json.dumps(e) if isinstance(e, dict) else e}{sep}" for e in events)
    return (body + (f"data: [DONE]{sep}" if done else "")).encode()


USAGE = {"id": "c1", "object": "chat.completion.chunk", "model": "served-model", "choices": [],
         "usage": {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24}}
ANSWER = sse({**chunk(None), "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]},
             chunk("The"), chunk(" answer"), chunk(" is 4"), chunk(None, "stop"), USAGE)


def Recorder(content: bytes = ANSWER, status: int = 200, stream=None) -> MockHandler:  # noqa: N802
    """A recording handler that replays an SSE answer (by default ``ANSWER``)."""
    return MockHandler(content, status, stream, content_type="text/event-stream")


def backend(handler, **kwargs) -> OpenAICompatBackend:
    return OpenAICompatBackend("served-model", base_url=kwargs.pop("base_url", BASE),
                               client_kwargs={"transport": httpx.MockTransport(handler)}, **kwargs)


def SlowStream(parts: list[bytes], pause_s: float = 0.0, break_after: int | None = None) -> PartStream:  # noqa: N802
    """SSE chunks from a slow server, optionally cut mid-way as a dying server would."""
    return PartStream(parts, pause_s, break_after,
                      httpx.RemoteProtocolError("peer closed connection without sending complete message body"))


# -- parsing and timing ---------------------------------------------------------------------------


def test_stream_with_usage_chunk_maps_text_tokens_and_timings():
    handler = Recorder()
    result = backend(handler).complete(request())
    assert result.text == "The answer is 4"
    assert (result.prompt_tokens, result.completion_tokens) == (21, 3)
    assert result.extra["usage_source"] == "server"
    assert result.finish_reason == "stop"
    assert result.model == "served-model"
    assert 0 < result.ttft_ms <= result.total_ms
    assert result.prompt_eval_ms == result.ttft_ms
    assert result.eval_ms == pytest.approx(result.total_ms - result.ttft_ms)
    assert result.extra["n_chunks"] == 3
    assert 0 <= result.extra["itl_ms_p50"] <= result.extra["itl_ms_max"]
    assert result.extra["itl_ms_mean"] <= result.extra["itl_ms_max"]


def test_without_usage_chunk_counts_content_chunks_and_says_so():
    content = sse(chunk("a"), chunk("b"), chunk(None, "length"))
    result = backend(Recorder(content=content)).complete(request())
    assert result.text == "ab"
    assert result.completion_tokens == 2
    assert result.prompt_tokens == 0
    assert result.extra["usage_source"] == "content_chunks"
    assert result.finish_reason == "length"


def test_sse_comments_other_fields_crlf_and_multiline_data_are_handled():
    lines = (": ping - 2025-01-01\r\n\r\n"
             "event: message\r\nid: 1\r\ndata: " + json.dumps(chunk("x")) + "\r\n\r\n"
             "data: {\"id\": \"c1\", \"model\": \"m\",\r\ndata: \"choices\": [{\"delta\": {\"content\": \"y\"}, "
             "\"finish_reason\": \"stop\"}]}\r\n\r\n"
             "data: [DONE]\r\n\r\n")
    result = backend(Recorder(content=lines.encode())).complete(request())
    assert result.text == "xy"
    assert result.finish_reason == "stop"


def test_single_content_chunk_has_nan_inter_token_latency():
    result = backend(Recorder(content=sse(chunk("only"), chunk(None, "stop")))).complete(request())
    assert result.extra["n_chunks"] == 1
    assert math.isnan(result.extra["itl_ms_mean"])


def test_stream_stops_reading_at_done_marker():
    content = sse(chunk("a"), chunk(None, "stop")) + b"data: this is not json\n\n"
    assert backend(Recorder(content=content)).complete(request()).text == "a"


def test_inter_token_gaps_reflect_a_slow_stream():
    parts = [sse(chunk("a"), done=False), sse(chunk("b"), done=False), sse(chunk(None, "stop"))]
    result = backend(Recorder(stream=SlowStream(parts, pause_s=0.05))).complete(request())
    assert result.extra["itl_ms_p50"] >= 45
    assert result.ttft_ms < result.total_ms


# -- request body and headers ------------------------------------------------------------------


def test_request_body_carries_stream_usage_sampling_and_messages():
    handler = Recorder()
    backend(handler, extra_body={"top_k": 20}).complete(request())
    body = handler.body
    assert handler.requests[0].url == httpx.URL(BASE + "/chat/completions")
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["model"], body["max_tokens"], body["temperature"], body["seed"]) == ("served-model", 8, 0.0, 7)
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    assert body["top_k"] == 20
    assert "response_format" not in body


@pytest.mark.parametrize(("mode", "expected"), [
    ("json_schema", {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}}),
    ("json_object_schema", {"type": "json_object", "schema": SCHEMA}),
    ("json_object", {"type": "json_object"}),
])
def test_response_format_per_json_mode(mode, expected):
    handler = Recorder()
    backend(handler, json_mode=mode).complete(request(json_schema=SCHEMA))
    assert handler.body["response_format"] == expected


def test_unknown_json_mode_is_rejected():
    with pytest.raises(SpecError, match=r"`json_mode` must be one of .* got 'grammar'"):
        backend(Recorder(), json_mode="grammar")


def test_bad_connect_timeout_is_rejected():
    with pytest.raises(SpecError, match=r"`connect_timeout_s` must be > 0; got 0"):
        backend(Recorder(), connect_timeout_s=0)


def test_authorization_header_sent_when_a_key_is_set():
    handler = Recorder()
    backend(handler, api_key=SECRET).complete(request())
    assert handler.requests[0].headers["authorization"] == f"Bearer {SECRET}"


def test_key_read_from_named_environment_variable(monkeypatch):
    monkeypatch.setenv("MY_SERVER_KEY", SECRET)
    handler = Recorder()
    backend(handler, api_key_env="MY_SERVER_KEY").complete(request())
    assert handler.requests[0].headers["authorization"] == f"Bearer {SECRET}"


def test_no_authorization_header_without_a_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    handler = Recorder()
    backend(handler).complete(request())
    assert "authorization" not in handler.requests[0].headers


def test_base_url_from_environment_and_default(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gpu-box:9000/v1/")
    assert OpenAICompatBackend("m").name == "openai:m@gpu-box:9000"
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert OpenAICompatBackend("m").url == "http://127.0.0.1:8000/v1/chat/completions"


def test_key_never_in_name_repr_extra_or_error_messages():
    echo = json.dumps({"error": {"message": f"invalid key Bearer {SECRET}"}}).encode()
    b = backend(Recorder(status=401, content=echo), api_key=SECRET)
    assert SECRET not in b.name
    assert SECRET not in repr(b)
    assert "<redacted>" in repr(b)
    with pytest.raises(BackendHTTPError, match=r"HTTP 401 .*<redacted>.*check the API key") as info:
        b.complete(request())
    assert SECRET not in str(info.value)
    ok = backend(Recorder(), api_key=SECRET).complete(request())
    assert SECRET not in json.dumps(ok.extra)


def test_credentials_in_the_base_url_stay_out_of_name_and_messages():
    b = backend(Recorder(status=500, content=b"boom"), base_url=f"http://user:{SECRET}@10.1.2.3:8123/v1")
    assert SECRET not in b.name
    assert SECRET not in repr(b)
    with pytest.raises(BackendHTTPError) as info:
        b.complete(request())
    assert SECRET not in str(info.value)


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "kind"), [(404, "http_4xx"), (429, "http_429"), (503, "http_5xx")])
def test_http_errors_map_to_status_and_kind(status, kind):
    b = backend(Recorder(status=status, content=b'{"error": {"message": "nope"}}'))
    with pytest.raises(BackendHTTPError, match=rf"openai:served-model@10.1.2.3:8123: HTTP {status} from "
                                               r"http://10.1.2.3:8123/v1/chat/completions: .*nope") as info:
        b.complete(request())
    assert info.value.status == status
    assert info.value.error_kind == kind


def test_rejected_response_format_hints_at_json_mode():
    body = b'{"error": {"message": "body.response_format.type: Input should be text or json_object"}}'
    with pytest.raises(BackendHTTPError, match=r"HTTP 500 .*check `json_mode`"):
        backend(Recorder(status=500, content=body)).complete(request(json_schema=SCHEMA))


def test_non_json_event_is_malformed():
    with pytest.raises(BackendMalformedResponse, match=r"event 1 from .* is not JSON: '<html>"):
        backend(Recorder(content=b"data: <html>oops</html>\n\n")).complete(request())


def test_event_without_choices_is_malformed():
    with pytest.raises(BackendMalformedResponse, match=r"event 1 .* has no 'choices'"):
        backend(Recorder(content=sse({"id": "x", "object": "list"}))).complete(request())


def test_event_that_is_not_an_object_is_malformed():
    with pytest.raises(BackendMalformedResponse, match=r"has a JSON list instead of an object"):
        backend(Recorder(content=sse([1, 2]))).complete(request())


def test_error_event_in_stream_maps_to_its_status_or_interruption():
    coded = sse(chunk("a"), {"error": {"message": "overloaded", "code": 503}}, done=False)
    with pytest.raises(BackendHTTPError, match=r"reported error 503 in the stream: 'overloaded'") as info:
        backend(Recorder(content=coded)).complete(request())
    assert info.value.error_kind == "http_5xx"
    plain = sse(chunk("a"), {"error": {"message": "engine died"}}, done=False)
    with pytest.raises(BackendStreamInterrupted, match=r"reported an error after 1 content chunk\(s\): 'engine died'"):
        backend(Recorder(content=plain)).complete(request())


def test_stream_broken_mid_way_is_interrupted():
    parts = [sse(chunk("a"), done=False), sse(chunk("b"), done=False), sse(chunk(None, "stop"))]
    b = backend(Recorder(stream=SlowStream(parts, break_after=2)))
    with pytest.raises(BackendStreamInterrupted, match=r"broke after 2 content chunk\(s\) \(RemoteProtocolError\)"):
        b.complete(request())


def test_stream_ending_without_finish_or_done_is_interrupted():
    with pytest.raises(BackendStreamInterrupted, match=r"ended after 1 content chunk\(s\) without a finish_reason"):
        backend(Recorder(content=sse(chunk("a"), done=False))).complete(request())


def test_slow_stream_past_the_deadline_times_out_with_elapsed_ms():
    parts = [sse(chunk(c), done=False) for c in "abcdef"] + [sse(chunk(None, "stop"))]
    b = backend(Recorder(stream=SlowStream(parts, pause_s=0.05)))
    with pytest.raises(BackendTimeout, match=r"no complete answer from .* within 0.12 s") as info:
        b.complete(request(timeout_s=0.12))
    assert 120 <= info.value.elapsed_ms < 1000
    assert info.value.error_kind == "timeout"


def test_transport_read_timeout_maps_to_backend_timeout():
    def handler(req):
        raise httpx.ReadTimeout("timed out", request=req)

    with pytest.raises(BackendTimeout, match=r"within 5 s \(gave up after \d+ ms\)") as info:
        backend(handler).complete(request(timeout_s=5))
    assert info.value.elapsed_ms >= 0


def test_read_timeout_sent_to_httpx_is_the_remaining_time():
    seen = {}

    def handler(req):
        seen.update(req.extensions["timeout"])
        return httpx.Response(200, content=ANSWER)

    backend(handler, connect_timeout_s=2.0).complete(request(timeout_s=1.5))
    assert 1.0 < seen["read"] <= 1.5
    assert seen["connect"] <= 1.5


def test_connect_timeout_before_the_deadline_is_a_connect_error():
    def handler(req):
        raise httpx.ConnectTimeout("timed out", request=req)

    with pytest.raises(BackendConnectError, match=r"no TCP connection to .* within 5 s"):
        backend(handler).complete(request(timeout_s=30))


def test_connection_refused_on_a_closed_port_is_a_connect_error():
    b = OpenAICompatBackend("m", base_url=f"http://127.0.0.1:{free_port()}/v1", connect_timeout_s=2)
    with pytest.raises(BackendConnectError, match=r"openai:m@127.0.0.1:\d+: cannot connect to "
                                                  r"http://127.0.0.1:\d+/v1/chat/completions .*check that the server"
                       ) as info:
        b.complete(request(timeout_s=5))
    assert info.value.error_kind == "connect_error"
    b.close()


def test_backend_is_shared_by_threads():
    from concurrent.futures import ThreadPoolExecutor

    b = backend(Recorder())
    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(lambda _: b.complete(request()).text, range(8)))
    assert texts == ["The answer is 4"] * 8
