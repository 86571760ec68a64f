"""OllamaBackend against Ollama's documented responses (tests/fixtures/ollama) through httpx.MockTransport."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from _mock_http import PartStream, Recorder

from tsglab.backends.base import CompletionRequest, Message
from tsglab.backends.ollama_api import OllamaBackend, generate_prompt
from tsglab.errors import (
    BackendConnectError,
    BackendHTTPError,
    BackendMalformedResponse,
    BackendStreamInterrupted,
    BackendTimeout,
    SpecError,
)
from tsglab.servers.launch import free_port

FIXTURES = Path(__file__).parent / "fixtures" / "ollama"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def request(**overrides) -> CompletionRequest:
    values = {"messages": (Message("system", "Be brief."), Message("user", "Why is the sky blue?")),
              "max_tokens": 32, "temperature": 0.0, "seed": 11}
    return CompletionRequest(**{**values, **overrides})


def backend(handler, **kwargs) -> OllamaBackend:
    return OllamaBackend(kwargs.pop("model", "llama3.2"), host=kwargs.pop("host", "http://10.9.8.7:11434"),
                         client_kwargs={"transport": httpx.MockTransport(handler)}, **kwargs)


# -- duration and token mapping ------------------------------------------------------------------


def test_chat_stream_maps_server_durations_tokens_and_cold_start():
    handler = Recorder(fixture("chat_stream.ndjson"))
    result = backend(handler).complete(request())
    assert handler.requests[0].url.path == "/api/chat"
    assert result.text == "The sky is blue."
    assert (result.prompt_tokens, result.completion_tokens) == (31, 5)
    assert result.prompt_eval_ms == pytest.approx(152.463)
    assert result.eval_ms == pytest.approx(91.0505)
    assert result.load_ms == pytest.approx(1532.840125)
    assert result.extra["server_total_ms"] == pytest.approx(1804.35625)
    assert result.extra["server_load_ms"] == pytest.approx(1532.840125)
    assert result.extra["done_reason"] == "stop"
    assert result.extra["durations_source"] == "server"
    assert result.extra["cold_start"] is True
    assert result.extra["n_chunks"] == 5
    assert 0 < result.ttft_ms <= result.total_ms
    assert result.model == "llama3.2"


def test_generate_stream_uses_prompt_and_system_fields():
    handler = Recorder(fixture("generate_stream.ndjson"))
    result = backend(handler, endpoint="generate", model="gemma3").complete(request())
    body = handler.body
    assert handler.requests[0].url.path == "/api/generate"
    assert body["prompt"] == "Why is the sky blue?"
    assert body["system"] == "Be brief."
    assert "messages" not in body
    assert result.text == "Hello! How can I help?"
    assert (result.prompt_tokens, result.completion_tokens) == (11, 18)
    assert result.prompt_eval_ms == pytest.approx(13.074791)
    assert result.eval_ms == pytest.approx(52.479709)
    assert result.extra["server_total_ms"] == pytest.approx(174.560334)


def test_cold_start_threshold_keeps_short_loads_warm():
    warm = backend(Recorder(fixture("chat_response.json")), cold_start_threshold_ms=50).complete(request())
    assert warm.load_ms == 0.0
    assert warm.extra["cold_start"] is False
    assert warm.extra["server_load_ms"] == pytest.approx(2.941417)
    cold = backend(Recorder(fixture("chat_response.json"))).complete(request())
    assert cold.load_ms == pytest.approx(2.941417)
    assert cold.extra["cold_start"] is True


def test_non_streamed_body_is_read_as_a_single_final_chunk():
    result = backend(Recorder(fixture("generate_response.json")), endpoint="generate").complete(request())
    assert result.text == "Hello! How can I help you today?"
    assert result.completion_tokens == 18
    assert result.load_ms == pytest.approx(101.397084)


def test_missing_durations_fall_back_to_client_timing():
    result = backend(Recorder(fixture("proxy_stream_no_durations.ndjson"))).complete(request())
    assert result.extra["durations_source"] == "client"
    assert result.prompt_eval_ms == result.ttft_ms
    assert result.eval_ms == pytest.approx(result.total_ms - result.ttft_ms)
    assert result.load_ms == 0.0
    assert result.extra["server_load_ms"] is None
    assert (result.prompt_tokens, result.completion_tokens) == (4, 2)


# -- request body ----------------------------------------------------------------------------


def test_request_body_has_schema_format_options_and_keep_alive():
    handler = Recorder(fixture("chat_stream.ndjson"))
    backend(handler, keep_alive="10m", num_ctx=4096, top_p=0.9, mirostat=0).complete(request(json_schema=SCHEMA))
    body = handler.body
    assert body["model"] == "llama3.2"
    assert body["stream"] is True
    assert body["format"] == SCHEMA
    assert body["keep_alive"] == "10m"
    assert body["options"] == {"num_predict": 32, "temperature": 0.0, "seed": 11, "num_ctx": 4096, "top_p": 0.9,
                               "mirostat": 0}
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Why is the sky blue?"}]


def test_tier_options_override_request_defaults():
    handler = Recorder(fixture("chat_stream.ndjson"))
    backend(handler, num_predict=5, seed=3, temperature=0.7).complete(request())
    assert handler.body["options"] == {"num_predict": 5, "temperature": 0.7, "seed": 3}
    assert "format" not in handler.body
    assert "keep_alive" not in handler.body


def test_format_json_option_forces_plain_json_mode():
    handler = Recorder(fixture("chat_stream.ndjson"))
    backend(handler, format="json").complete(request(json_schema=SCHEMA))
    assert handler.body["format"] == "json"
    plain = Recorder(fixture("chat_stream.ndjson"))
    backend(plain, format="json").complete(request())  # requests without a schema stay unconstrained
    assert "format" not in plain.body


def test_format_option_other_than_json_is_rejected():
    with pytest.raises(SpecError, match=r"option `format` may only be 'json'"):
        backend(Recorder(), format={"type": "object"})


def test_unknown_endpoint_is_rejected():
    with pytest.raises(SpecError, match=r"`endpoint` must be one of \['chat', 'generate'\]; got 'embed'"):
        backend(Recorder(), endpoint="embed")


def test_generate_prompt_of_a_repair_conversation_is_a_transcript():
    messages = (Message("user", "2+2?"), Message("assistant", "5"), Message("user", "Check again."))
    system, prompt = generate_prompt(messages)
    assert system == ""
    assert prompt == "user: 2+2?\n\nassistant: 5\n\nuser: Check again.\n\nassistant:"


def test_host_from_environment_names_the_backend(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:5000")
    assert OllamaBackend("m").name == "ollama:m@gpu-box:5000"
    monkeypatch.delenv("OLLAMA_HOST")
    assert OllamaBackend("m").name == "ollama:m@127.0.0.1:11434"


def test_deadline_sets_the_httpx_timeouts_of_the_request():
    seen = {}

    def handler(req):
        seen.update(req.extensions["timeout"])
        return httpx.Response(200, content=fixture("chat_stream.ndjson"))

    backend(handler, connect_timeout_s=3.0).complete(request(timeout_s=2.0))
    assert 1.5 < seen["read"] <= 2.0
    assert seen["connect"] <= 2.0


# -- errors ------------------------------------------------------------------------------------


def test_model_not_found_is_http_404_with_a_pull_hint():
    handler = Recorder(fixture("error_model_not_found.json"), status=404)
    with pytest.raises(BackendHTTPError, match=r"ollama:llama3.2@10.9.8.7:11434: HTTP 404 from "
                                               r"http://10.9.8.7:11434/api/chat: \"model 'llama3.2' not found\"; "
                                               r"pull the model \(`ollama pull llama3.2`\)") as info:
        backend(handler).complete(request())
    assert info.value.status == 404
    assert info.value.error_kind == "http_4xx"


def test_server_error_is_http_5xx():
    handler = Recorder(b'{"error":"the model failed to generate a response"}', status=500)
    with pytest.raises(BackendHTTPError, match=r"HTTP 500 .*the model failed to generate a response.*server's log"
                       ) as info:
        backend(handler).complete(request())
    assert info.value.error_kind == "http_5xx"


def test_error_line_mid_stream_is_an_interruption():
    handler = Recorder(fixture("stream_error.ndjson"))
    with pytest.raises(BackendStreamInterrupted, match=r"reported an error in the stream after 2 chunk\(s\): "
                                                       r"'an error was encountered while running the model'"):
        backend(handler, endpoint="generate", model="gemma3").complete(request())


def test_malformed_ndjson_line_is_a_malformed_response():
    lines = fixture("chat_stream.ndjson").splitlines(keepends=True)
    broken = b"".join(lines[:2]) + b'{"model": "llama3.2", "message": {"content": "x"\n' + lines[-1]
    with pytest.raises(BackendMalformedResponse, match=r"a line of the /api/chat stream .* is not a valid Ollama "
                                                       r"response \(JSONDecodeError"):
        backend(Recorder(broken)).complete(request())


def test_line_with_wrong_types_is_a_malformed_response():
    bad = b'{"model": "llama3.2", "message": {"role": "assistant", "content": "x"}, "done": "perhaps"}\n'
    with pytest.raises(BackendMalformedResponse, match=r"\(ValidationError"):
        backend(Recorder(bad)).complete(request())


def test_stream_without_done_line_is_an_interruption():
    lines = fixture("chat_stream.ndjson").splitlines(keepends=True)
    with pytest.raises(BackendStreamInterrupted, match=r"ended after 3 chunk\(s\) without a `done` line"):
        backend(Recorder(b"".join(lines[:3]))).complete(request())


def test_connection_broken_mid_stream_is_an_interruption():
    lines = fixture("chat_stream.ndjson").splitlines(keepends=True)
    with pytest.raises(BackendStreamInterrupted, match=r"connection to .* broke after 2 chunk\(s\) \(ReadError\)"):
        backend(Recorder(stream=PartStream(lines, break_after=2))).complete(request())


def test_slow_stream_past_the_deadline_times_out():
    lines = fixture("chat_stream.ndjson").splitlines(keepends=True)
    b = backend(Recorder(stream=PartStream(lines, pause_s=0.05)))
    with pytest.raises(BackendTimeout, match=r"no complete answer from http://10.9.8.7:11434 within 0.08 s") as info:
        b.complete(request(timeout_s=0.08))
    assert 80 <= info.value.elapsed_ms < 1000


def test_httpx_read_timeout_is_a_backend_timeout():
    def handler(req):
        raise httpx.ReadTimeout("timed out", request=req)

    with pytest.raises(BackendTimeout, match=r"within 3 s"):
        backend(handler).complete(request(timeout_s=3))


def test_connection_refused_on_a_closed_port_is_a_connect_error():
    b = OllamaBackend("llama3.2", host=f"127.0.0.1:{free_port()}", connect_timeout_s=2)
    with pytest.raises(BackendConnectError, match=r"ollama:llama3.2@127.0.0.1:\d+: cannot connect to "
                                                  r"http://127.0.0.1:\d+ .*`ollama serve`") as info:
        b.complete(request(timeout_s=5))
    assert info.value.error_kind == "connect_error"
    b.close()
