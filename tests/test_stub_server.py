from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest
from stub_server import StubServer

from tsglab.errors import SpecError

BODY = {"model": "m-light", "messages": [{"role": "user", "content": "What is 17 + 25?"}]}


@pytest.fixture(scope="module")
def stub():
    with StubServer(tokens=4) as server:
        yield server


@pytest.fixture
def fresh(stub):
    stub.configure(reset=True, delay_ms=0, tokens=4, stall_ms=0, stall_after=0, serial=False, fail="none")
    return stub


def sse_events(text: str) -> list[str]:
    return [line[len("data: "):] for line in text.split("\n") if line.startswith("data: ")]


def test_binds_loopback_only_and_base_url_ends_in_v1(stub):
    assert stub.base_url.startswith("http://127.0.0.1:")
    assert stub.base_url.endswith("/v1")
    sockname = stub._server.sockets[0].getsockname()
    assert sockname[0] == "127.0.0.1"
    assert len(stub._server.sockets) == 1


def test_non_stream_completion_has_the_openai_shape(fresh):
    response = httpx.post(f"{fresh.base_url}/chat/completions", json=BODY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert payload["object"] == "chat.completion"
    assert payload["model"] == "m-light"
    choice = payload["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "t0 t1 t2 t3"}
    assert choice["finish_reason"] == "stop"
    assert payload["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
    assert fresh.stats()["received"] == 1
    assert fresh.stats()["answered"] == 1


def test_stream_sends_deltas_a_usage_chunk_and_done(fresh):
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    response = httpx.post(f"{fresh.base_url}/chat/completions", json=body)
    assert response.headers["content-type"] == "text/event-stream"
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "t0 t1 t2 t3"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    plain = sse_events(httpx.post(f"{fresh.base_url}/chat/completions", json={**BODY, "stream": True}).text)
    assert all("usage" not in json.loads(e) for e in plain[:-1])  # no usage chunk unless asked for


def test_models_and_unknown_routes(fresh):
    models = httpx.get(f"{fresh.base_url}/models").json()
    assert models["object"] == "list"
    assert models["data"][0]["id"] == "stub"
    assert httpx.get(f"{fresh.base_url}/nope").status_code == 404
    assert httpx.get(f"{fresh.base_url}/chat/completions").status_code == 405
    assert httpx.post(f"{fresh.base_url}/chat/completions", content=b"{not json").status_code == 400


def test_keep_alive_serves_several_requests_on_one_connection(fresh):
    port = int(fresh.base_url.split(":")[2].split("/")[0])
    body = json.dumps(BODY).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request + request)
        received = b""
        while received.count(b"chat.completion") < 2:
            received += sock.recv(65536)
    assert received.count(b"HTTP/1.1 200 OK") == 2
    assert fresh.stats()["answered"] == 2
    assert fresh.stats()["connections"] == 1


def test_control_endpoint_reads_and_sets_knobs(fresh):
    url = fresh.base_url.removesuffix("/v1") + "/control"
    assert httpx.post(url, json={"tokens": 2}).json()["knobs"]["tokens"] == 2
    assert httpx.post(f"{fresh.base_url}/chat/completions", json=BODY).json()["choices"][0]["message"]["content"] \
        == "t0 t1"
    counters = httpx.get(url).json()
    assert counters["received"] == 1
    assert counters["answered"] == 1
    bad = httpx.post(url, json={"fail": "explode"})
    assert bad.status_code == 400
    assert "fail must be one of" in bad.json()["error"]["message"]


def test_delay_and_a_single_stall_after_the_named_request(fresh):
    fresh.configure(delay_ms=20, stall_ms=300, stall_after=2)
    with httpx.Client() as client:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            client.post(f"{fresh.base_url}/chat/completions", json=BODY)
            times.append(time.perf_counter() - started)
    assert min(times) >= 0.019
    assert times[2] >= 0.3
    assert max(times[:2] + times[3:]) < 0.2  # request 3 stalls, once


def test_serial_makes_concurrent_requests_queue(fresh):
    def timed_batch() -> float:
        started = time.perf_counter()
        threads = [threading.Thread(target=httpx.post, args=(f"{fresh.base_url}/chat/completions",),
                                    kwargs={"json": BODY}) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - started

    # 200 ms per request: four in parallel take about 0.2 s, queued at least 0.8 s; the margin between
    # the two bounds absorbs a loaded machine (0.1 s requests made the parallel bound flaky under load)
    fresh.configure(delay_ms=200)
    parallel = timed_batch()
    fresh.configure(serial=True)
    serial = timed_batch()
    assert parallel < 0.6
    assert serial >= 0.8


def test_failure_knobs(fresh):
    url = f"{fresh.base_url}/chat/completions"
    fresh.configure(fail="http_500")
    assert httpx.post(url, json=BODY).status_code == 500
    fresh.configure(fail="malformed")
    with pytest.raises(json.JSONDecodeError):
        json.loads(httpx.post(url, json=BODY).text)
    streamed = sse_events(httpx.post(url, json={**BODY, "stream": True}).text)
    with pytest.raises(json.JSONDecodeError):
        [json.loads(e) for e in streamed if e != "[DONE]"]
    fresh.configure(fail="drop_mid_stream", tokens=8)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(url, json=BODY)
    received_text: list[str] = []

    def read_stream_until_the_cut() -> None:
        with httpx.stream("POST", url, json={**BODY, "stream": True}) as response:
            for line in response.iter_lines():
                received_text.append(line)  # noqa: PERF402 (list() would lose the lines read before the cut)

    with pytest.raises(httpx.RemoteProtocolError):
        read_stream_until_the_cut()
    assert any("t0" in line for line in received_text)
    assert not any("[DONE]" in line for line in received_text)
    # complete 200 responses count as answered, malformed ones too; a 500 or a cut connection does not
    assert fresh.stats()["answered"] == 2
    assert fresh.stats()["received"] == 5


def test_knob_validation_errors():
    with pytest.raises(SpecError, match=r"unknown stub knob\(s\) \['delay'\]"):
        StubServer(delay=5)
    with pytest.raises(SpecError, match="delay_ms must be a number of milliseconds >= 0; got -1"):
        StubServer(delay_ms=-1)
    with pytest.raises(SpecError, match="tokens must be an integer >= 1; got 0"):
        StubServer(tokens=0)
    with pytest.raises(SpecError, match="serial must be true or false; got 'yes'"):
        StubServer(serial="yes")


def test_process_mode_runs_in_its_own_process():
    with StubServer(process=True, tokens=3) as stub:
        assert stub._process is not None
        assert stub._process.pid
        payload = httpx.post(f"{stub.base_url}/chat/completions", json=BODY).json()
        assert payload["choices"][0]["message"]["content"] == "t0 t1 t2"
        stub.configure(fail="http_500")
        assert httpx.post(f"{stub.base_url}/chat/completions", json=BODY).status_code == 500
        stats = stub.stats()
        assert stats["connections"] >= 2  # the two posts, plus the control calls' own connections
        assert stats == {"received": 2, "answered": 1, "connections": stats["connections"],
                         "knobs": {**stats["knobs"], "fail": "http_500"}}
        process = stub._process
    assert process.poll() is not None  # closed with the context
