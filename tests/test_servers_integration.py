"""Real local servers on 127.0.0.1: llama_cpp.server (OpenAI API) and ollama-proxy-plus in front of it.

One llama.cpp server and one proxy serve the whole module; the kill test starts its own short-lived
server so the shared one survives. Answers are kept short (few tokens) so the file runs in well under
a minute on two cores.
"""

from __future__ import annotations

import json
import secrets
import sys

import jsonschema
import pytest

from tsglab.backends.base import CompletionRequest, Message
from tsglab.backends.ollama_api import OllamaBackend
from tsglab.backends.openai_compat import OpenAICompatBackend
from tsglab.errors import BackendConnectError, BackendTimeout, ModelNotInstalledError
from tsglab.servers.launch import LlamaCppServer, OllamaProxy, ServerStartError, free_port

pytestmark = pytest.mark.integration
pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")
pytest.importorskip("ollama_proxy", reason="needs ollama-proxy-plus")

SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
ALIAS = "smollm2"


def ask(text: str, **overrides) -> CompletionRequest:
    return CompletionRequest(messages=(Message("user", text),), **{"max_tokens": 12, "timeout_s": 30, **overrides})


@pytest.fixture(scope="module")
def model_path():
    from tsglab.backends.models import resolve_model

    try:
        return resolve_model("smollm2-135m")
    except ModelNotInstalledError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="module")
def llama_server(model_path, log_dir):
    with LlamaCppServer(model_path, n_ctx=2048, n_threads=2, model_alias=ALIAS, log_dir=log_dir) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(llama_server, log_dir):
    with OllamaProxy(llama_server.base_url, log_dir=log_dir) as running:
        yield running


@pytest.fixture(scope="module")
def openai_backend(llama_server):
    backend = OpenAICompatBackend(llama_server.model_alias, base_url=llama_server.base_url,
                                  json_mode="json_object_schema")
    yield backend
    backend.close()


def test_launcher_binds_loopback_and_names_its_log(llama_server):
    assert llama_server.base_url == f"http://127.0.0.1:{llama_server.port}/v1"
    assert llama_server.pid is not None
    assert llama_server.log_path.is_file()
    assert "127.0.0.1" in repr(llama_server)


def test_openai_completion_has_text_tokens_and_ordered_timings(openai_backend):
    result = openai_backend.complete(ask("Say hello."))
    assert result.text.strip()
    assert result.completion_tokens > 0
    assert result.extra["usage_source"] == "content_chunks"
    assert 0 < result.ttft_ms < result.total_ms
    assert result.extra["n_chunks"] == result.completion_tokens
    assert result.model == ALIAS


def test_json_schema_constrained_answer_parses_and_validates(openai_backend):
    result = openai_backend.complete(ask("What is 2+2? Answer in JSON.", max_tokens=48, json_schema=SCHEMA))
    answer = json.loads(result.text)  # the grammar forced a JSON object with an integer "answer"
    assert isinstance(answer, dict)
    assert isinstance(answer["answer"], int)
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(answer)) == []


def test_openai_json_schema_mode_is_rejected_by_llama_cpp_server(llama_server):
    """Documents why llama_cpp.server needs json_mode='json_object_schema'."""
    from tsglab.errors import BackendHTTPError

    backend = OpenAICompatBackend(llama_server.model_alias, base_url=llama_server.base_url, json_mode="json_schema")
    with pytest.raises(BackendHTTPError, match=r"check `json_mode`"):
        backend.complete(ask("2+2?", json_schema=SCHEMA))
    backend.close()


def test_tiny_timeout_is_a_backend_timeout(openai_backend):
    with pytest.raises(BackendTimeout, match=r"within 0.05 s") as info:
        openai_backend.complete(ask("Write a long story about the sea.", max_tokens=400, timeout_s=0.05))
    assert 50 <= info.value.elapsed_ms < 5000


def test_ollama_backend_through_the_proxy(proxy, llama_server):
    backend = OllamaBackend(proxy.model_name(llama_server.model_alias), host=proxy.host)
    assert backend.name == f"ollama:llama/{ALIAS}@127.0.0.1:{proxy.port}"
    result = backend.complete(ask("Say hello to the world."))
    assert result.text.strip()
    assert result.prompt_tokens == 5  # the proxy counts words of the prompt, not tokens
    assert result.completion_tokens > 0
    assert result.extra["done_reason"] == "stop"
    assert 0 < result.ttft_ms < result.total_ms
    backend.close()


def test_ollama_generate_endpoint_through_the_proxy(proxy, llama_server):
    backend = OllamaBackend(proxy.model_name(llama_server.model_alias), host=proxy.host, endpoint="generate")
    result = backend.complete(CompletionRequest(messages=(Message("system", "Be brief."), Message("user", "Hi!")),
                                                max_tokens=8, timeout_s=30))
    assert result.text.strip()
    assert result.prompt_tokens == 3  # words of system + prompt
    backend.close()


def test_closed_port_is_a_connect_error():
    backend = OpenAICompatBackend(ALIAS, base_url=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(BackendConnectError, match=r"cannot connect to http://127.0.0.1:\d+/v1/chat/completions"):
        backend.complete(ask("hi"))
    backend.close()


def test_killed_server_then_request_is_a_connect_error(model_path, log_dir):
    server = LlamaCppServer(model_path, n_ctx=512, n_threads=1, model_alias=ALIAS, log_dir=log_dir)
    with server:
        backend = OpenAICompatBackend(ALIAS, base_url=server.base_url, json_mode="json_object_schema")
        assert backend.complete(ask("Hi", max_tokens=2)).text is not None
        pid = server.pid
        server.kill()
        assert server.pid is None
        assert pid is not None
        with pytest.raises(BackendConnectError, match=r"cannot connect") as info:
            backend.complete(ask("Hi again", max_tokens=2))
        assert info.value.error_kind == "connect_error"
        backend.close()


def test_server_that_dies_at_start_names_its_log(tmp_path):
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_bytes(b"GGUF but not really")
    with pytest.raises(ServerStartError, match=r"llama-cpp-server exited with code \d+ before answering on "
                                               r"http://127.0.0.1:\d+; see its log .*llama-cpp-server-\d+\.log"):
        LlamaCppServer(bogus, log_dir=tmp_path, startup_timeout_s=30).start()


def test_server_that_does_not_answer_in_time_is_stopped(tmp_path, monkeypatch):
    server = OllamaProxy("http://127.0.0.1:9/v1", log_dir=tmp_path, startup_timeout_s=0.2)
    # a process that never listens: the launcher must give up and kill it
    monkeypatch.setattr(server, "_command", lambda: [sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(ServerStartError, match=r"did not answer on http://127.0.0.1:\d+/api/version within 0.2 s"):
        server.start()
    assert server.pid is None


def test_end_to_end_run_on_both_servers_keeps_the_key_secret(tmp_path, llama_server, proxy, log_dir):
    from tsglab.config import spec_from_dict
    from tsglab.events import read_events
    from tsglab.load.runner import run_experiment

    secret = "sk-" + secrets.token_hex(16)
    openai_tier = {"backend": "openai", "model": llama_server.model_alias, "endpoint": llama_server.base_url,
                   "api_key": secret, "max_tokens": 8, "options": {"json_mode": "json_object_schema"}}
    spec = spec_from_dict({
        "name": "servers-e2e",
        "arms": {"light_only": {"kind": "baseline", "baseline_tier": "light"},
                 "enh_only": {"kind": "baseline", "baseline_tier": "enh"}},
        "tiers": {
            "light": {"backend": "ollama", "model": proxy.model_name(llama_server.model_alias),
                      "endpoint": proxy.host, "max_tokens": 8},
            "std": openai_tier,
            "enh": openai_tier,
        },
        "prompts": {"limit": 6},
        "load": {"mode": "paced", "period_ms": 0, "timeout_s": 60},
        "energy": {"meter": "none"},
    })
    result = run_experiment(spec, runs_dir=tmp_path, progress=False)
    events = read_events(result.run_dir)
    assert len(events) == 12
    assert all(e.error is None for e in events)
    models = {a.model for e in events for a in e.attempts}
    backends = {a.backend.split(":")[0] for e in events for a in e.attempts}
    assert models == {f"llama/{ALIAS}", ALIAS}
    assert backends == {"ollama", "openai"}
    streamed = [a.details for e in events for a in e.attempts if a.completion_tokens > 2]
    assert streamed
    assert all(d["itl_ms_p50"] > 0 and d["n_chunks"] >= 2 for d in streamed)  # ITL reaches events
    files = [p for p in tmp_path.rglob("*") if p.is_file()] + [p for p in log_dir.rglob("*") if p.is_file()]
    assert any(p.name == "events.jsonl" for p in files)
    assert any(p.suffix == ".log" for p in files)
    leaked = [str(p) for p in files if secret.encode() in p.read_bytes()]
    assert leaked == []
