"""The pre-flight check before the schedule starts (issue 10, item 5): a server that is down, a model
that is not served or installed, fail fast with the tier, the endpoint and the fix — before anything
is written — unless the spec says ``preflight: false`` (CLI ``--no-preflight``)."""

from __future__ import annotations

import socket
import time

import pytest
from stub_server import StubServer

from tsglab.backends.ollama_api import OllamaBackend
from tsglab.backends.openai_compat import OpenAICompatBackend
from tsglab.config import spec_from_dict
from tsglab.errors import BackendError, PreflightError, SpecError
from tsglab.events import read_events
from tsglab.load.runner import run_experiment


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spec(endpoint: str, model: str = "stub", backend: str = "openai", **top):
    tiers = {t: {"backend": backend, "endpoint": endpoint, "model": model, "max_tokens": 8}
             for t in ("light", "std", "enh")}
    return spec_from_dict({"name": "pre", "prompts": {"limit": 1}, "tiers": tiers, "energy": {"meter": "none"},
                           "load": {"timeout_s": 2}, **top})


def test_openai_preflight_passes_for_a_served_model():
    with StubServer() as stub:
        backend = OpenAICompatBackend("stub", base_url=stub.base_url)
        try:
            backend.preflight()
        finally:
            backend.close()
        assert stub.stats()["received"] == 0  # no completion was sent


def test_openai_preflight_names_the_models_the_server_serves():
    with StubServer() as stub:
        backend = OpenAICompatBackend("llama-70b", base_url=stub.base_url)
        try:
            with pytest.raises(BackendError, match=r"does not serve model 'llama-70b' \(it serves \['stub', "
                                                   r"'stub-enh', .*\]\); set the tier's `model`"):
                backend.preflight()
        finally:
            backend.close()


def test_a_run_against_a_wrong_model_fails_before_anything_is_written(tmp_path):
    with StubServer() as stub:
        with pytest.raises(PreflightError, match=r"tiers.light: pre-flight check of openai:llama-70b@127.0.0.1:\d+ "
                                                 r"\(http://127.0.0.1:\d+/v1\) failed: .* `preflight: false`"):
            run_experiment(_spec(stub.base_url, model="llama-70b"), runs_dir=tmp_path, run_id="r", progress=False)
        assert stub.stats()["received"] == 0
    assert not (tmp_path / "r" / "run.json").exists()


def test_a_server_that_is_down_fails_fast_naming_tier_and_endpoint(tmp_path):
    endpoint = f"http://127.0.0.1:{_free_port()}/v1"
    started = time.monotonic()
    with pytest.raises(PreflightError, match=r"tiers.light: .*cannot connect to http://127.0.0.1:\d+/v1/"):
        run_experiment(_spec(endpoint), runs_dir=tmp_path, run_id="r", progress=False)
    assert time.monotonic() - started < 5
    assert not (tmp_path / "r").exists()


def test_the_endpoint_in_the_message_has_no_password(tmp_path):
    endpoint = f"http://bob:hunter2-secret@127.0.0.1:{_free_port()}/v1"
    with pytest.raises(PreflightError) as caught:
        run_experiment(_spec(endpoint), runs_dir=tmp_path, run_id="r", progress=False)
    assert "hunter2-secret" not in str(caught.value)


def test_preflight_false_skips_the_check(tmp_path):
    with StubServer() as stub:  # the stub answers any model name, so the run itself goes through
        result = run_experiment(_spec(stub.base_url, model="llama-70b", preflight=False), runs_dir=tmp_path,
                                run_id="r", progress=False)
    assert result.status == "complete"
    assert len(read_events(result.run_dir)) == result.n_planned


def test_preflight_must_be_a_boolean():
    with pytest.raises(SpecError, match=r"preflight must be true or false; got 'no'"):
        _spec("http://127.0.0.1:1/v1", preflight="no")


def test_preflight_does_not_change_the_spec_hash():
    assert _spec("http://127.0.0.1:1/v1").spec_hash() == _spec("http://127.0.0.1:1/v1", preflight=False).spec_hash()


def test_ollama_preflight_checks_the_model_is_installed():
    with StubServer() as stub:
        host = f"http://127.0.0.1:{stub.port}"
        ok, missing = OllamaBackend("stub", host=host), OllamaBackend("llama3.2:1b", host=host)
        try:
            ok.preflight()  # "stub" is "stub:latest"
            with pytest.raises(BackendError, match=r"model 'llama3.2:1b' is not installed on http://127.0.0.1:\d+ "
                                                   r"\(installed: \['stub:latest'\]\); pull it with `ollama pull"):
                missing.preflight()
        finally:
            ok.close()
            missing.close()


def test_ollama_preflight_asks_show_first_so_a_proxy_with_its_own_catalogue_passes():
    """ollama-proxy-plus lists only its cloud catalogue under /api/tags but serves (and shows) any model of a
    configured provider, such as the llama/... models of the llama.cpp server behind it."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Proxy(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._answer(200, {"models": [{"name": "anthropic/claude", "model": "anthropic/claude"}]})

        def do_POST(self):
            model = json.loads(self.rfile.read(int(self.headers["Content-Length"]))).get("model", "")
            if model.startswith("llama/"):
                self._answer(200, {"modelfile": "", "details": {}, "model_info": {}})
            else:
                self._answer(404, {"error": f"model '{model}' not found"})

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    served, unknown = OllamaBackend("llama/smollm2", host=host), OllamaBackend("other/model", host=host)
    try:
        served.preflight()
        with pytest.raises(BackendError, match=r"model 'other/model' is not installed .*anthropic/claude"):
            unknown.preflight()
    finally:
        served.close()
        unknown.close()
        server.shutdown()
        server.server_close()


def test_cli_no_preflight_flag_is_parsed():
    from tsglab.cli import build_parser

    args = build_parser().parse_args(["run", "spec.yaml", "--no-preflight"])
    assert args.no_preflight is True
