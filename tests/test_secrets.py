"""Secrets never persist (issue 10, item 7): runs against a server that echoes the key everywhere it
can (a response header, the answer's content, a non-JSON stream event, an HTML error page, a JSON error
body, an error object in the stream) leave no trace of the key or of the endpoint's password in any
file of the run directory, in the report, or in messages."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from stub_server import ECHO_VARIANTS, StubServer

from tsglab.backends import CompletionRequest, Message
from tsglab.backends.openai_compat import OpenAICompatBackend
from tsglab.config import spec_from_dict
from tsglab.config.secrets import REDACTED, Scrubber, redact_options, redact_url
from tsglab.errors import BackendError
from tsglab.events import read_events
from tsglab.load.runner import run_experiment
from tsglab.report import build_report

KEY = "sk-live-7f3a9c2e1b5d4f60a8e7"
PASSWORD = "pw-Zq8vN3rT6yK1"


def _spec(endpoint: str, *, api_key: str = "", limit: int = 6, mode: str = "paced"):
    tiers = {t: {"backend": "openai", "endpoint": endpoint, "model": "stub", "max_tokens": 8, "api_key": api_key}
             for t in ("light", "std", "enh")}
    load = {"mode": mode, "timeout_s": 2}
    if mode == "open_loop":
        load.update(rate_per_s=40, concurrency=4)
    return spec_from_dict({"name": "secrets", "prompts": {"limit": limit, "seed": 3}, "tiers": tiers, "load": load,
                           "arms": {"baseline": {"kind": "baseline"}, "tsg": {}}, "energy": {"meter": "none"}})


def _grep_tree(root: Path, needles: list[str]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path.relative_to(root)}: {needle!r}" for needle in needles if needle.encode() in data]
    return hits


@pytest.mark.parametrize("mode", ["paced", "open_loop"])
def test_a_key_echoing_server_leaves_no_key_in_any_artifact(tmp_path, mode, capsys):
    with StubServer(fail="echo_key", tokens=4) as stub:
        result = run_experiment(_spec(stub.base_url, api_key=KEY, mode=mode), runs_dir=tmp_path, run_id="r",
                                progress=False)
        echoed = stub.stats()["received"]
    assert echoed >= len(ECHO_VARIANTS)  # every way of echoing was tried
    events = read_events(result.run_dir)
    kinds = {e.error.kind if e.error else "" for e in events}
    assert {"", "http_4xx", "http_5xx", "malformed_response"} <= kinds  # the echoes reached every path
    assert any(REDACTED in (e.error.message if e.error else e.answer) for e in events)
    report = build_report(result.run_dir)  # writes its tables and figures into the run directory
    print(report)
    printed = capsys.readouterr()
    needles = [KEY, KEY[8:]]
    assert _grep_tree(tmp_path, needles) == []
    assert all(n not in printed.out + printed.err for n in needles)


def test_endpoint_user_info_is_redacted_in_run_json_events_and_messages(tmp_path):
    with StubServer(fail="echo_key", tokens=4) as stub:
        endpoint = stub.base_url.replace("http://", f"http://alice:{PASSWORD}@")
        result = run_experiment(_spec(endpoint), runs_dir=tmp_path, run_id="r", progress=False)
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert _grep_tree(tmp_path, [PASSWORD, basic]) == []
    manifest = (result.run_dir / "run.json").read_text()
    assert f"http://{REDACTED}@127.0.0.1" in manifest


def test_backend_messages_are_scrubbed_of_the_key():
    with StubServer(fail="echo_key", tokens=4) as stub:
        backend = OpenAICompatBackend("stub", base_url=stub.base_url, api_key=KEY)
        messages = []
        try:
            for _ in ECHO_VARIANTS:
                try:
                    completion = backend.complete(CompletionRequest((Message("user", "hi"),), max_tokens=8,
                                                                    timeout_s=2))
                    messages.append(completion.text)
                except BackendError as exc:
                    messages.append(str(exc))
        finally:
            backend.close()
    assert all(KEY not in m for m in messages), messages
    assert sum(REDACTED in m for m in messages) >= 4, messages


def test_scrubber_redacts_known_and_unknown_authorization_values():
    scrub = Scrubber.for_endpoint(api_key=KEY, url=f"http://bob:{PASSWORD}@h/v1")
    assert scrub(f"answer {KEY} and {PASSWORD}") == f"answer {REDACTED} and {REDACTED}"
    assert KEY not in scrub.message(f'{{"headers": {{"Authorization": "Bearer {KEY}"}}}}')
    assert "abcdefgh12345678" not in scrub.message("Authorization: Bearer abcdefgh12345678")
    assert "zzzzsecret99" not in scrub.message("upstream http://eve:zzzzsecret99@proxy/ failed")
    assert scrub("Basic knowledge") == "Basic knowledge"  # answers keep their words: known secrets only
    assert Scrubber(["ab"])("ab cd") == "ab cd"  # too short to be a secret worth breaking text for


def test_stored_config_values_are_redacted():
    assert redact_url(f"https://bob:{PASSWORD}@h:8/v1?api_key=k&x=1") == f"https://{REDACTED}@h:8/v1?api_key={REDACTED}&x=1"
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert redact_options({"headers": {"X-Api-Key": "k1"}, "top_k": 5, "token": ""}) == {
        "headers": {"X-Api-Key": REDACTED}, "top_k": 5, "token": ""}
    spec = _spec(f"http://bob:{PASSWORD}@127.0.0.1:1/v1", api_key=KEY)
    stored = repr(spec.to_dict())
    assert PASSWORD not in stored
    assert KEY not in stored
