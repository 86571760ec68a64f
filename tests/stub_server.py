"""A minimal OpenAI-compatible server for load tests and failure tests (stdlib asyncio, 127.0.0.1 only).

Endpoints (HTTP/1.1, keep-alive):

- ``POST /v1/chat/completions``: a JSON completion, or with ``"stream": true`` server-sent events
  (a role chunk, one content delta per token, a finish chunk, a usage chunk when
  ``stream_options.include_usage`` is set, then ``data: [DONE]``), sent with chunked encoding.
- ``GET /v1/models``: the models of :data:`SERVED` (``stub`` and the per-tier names tests and the load
  benchmark use; completions answer any model name, the list is what a pre-flight check sees).
- ``POST /api/chat`` and ``GET /api/tags``: Ollama's API (NDJSON stream, one installed model
  ``stub:latest``), with the same knobs (``event`` replaces one line of the stream).
- ``GET /control``: the knobs and the counters ``received`` (completion requests read),
  ``answered`` (200 responses sent in full, malformed ones included) and ``connections`` (TCP
  connections accepted, to see whether clients keep them alive); ``POST /control`` with a
  JSON object of knobs changes them (``{"reset": true}`` also zeroes the counters).

Knobs: ``delay_ms`` (time before each answer), ``tokens`` (tokens per answer), ``stall_ms`` and
``stall_after`` (request number ``stall_after + 1`` — 1-based, counted by ``received`` — is held
``stall_ms`` longer, once per configuration), ``serial`` (one request at a time, like a single-slot
server: later requests queue), ``fail`` (``none``, ``http_500``, ``malformed`` — a body that is not
the documented JSON — or ``drop_mid_stream`` — the connection is cut after part of the answer), or one
of the hostile modes in :data:`HOSTILE`:

- ``no_newline``: a 200 event stream whose body is ``data: xxxx…`` without a newline, 64 KiB every
  10 ms, until the client goes away (a deadline checked per line never fires; memory grows);
- ``trickle``: a valid event stream sent one byte every ``trickle_ms``;
- ``trickle_headers``: the status line, then the headers one byte every ``trickle_ms``;
- ``event``: a valid stream in which one content event is replaced by ``data: <event>`` (the knob
  ``event``: any text, e.g. ``"str"``, ``1``, ``[]``, ``{"choices": "x"}``);
- ``bad_utf8``: a content event with bytes that are not UTF-8;
- ``bad_gzip``: ``Content-Encoding: gzip`` over bytes that are not gzip;
- ``html_200`` / ``html_502``: an HTML error page (as a proxy sends) with status 200 or 502;
- ``garbage``: bytes that are not HTTP at all, then the connection is closed;
- ``echo_key``: echoes the request's ``Authorization`` value back — in a response header always,
  and by request number (1-based, cycling) in the answer's content, in a non-JSON stream event, in an
  HTML error page (500), in a JSON error body (401) and in an error object inside the stream.

Python API::

    with StubServer(delay_ms=5) as stub:          # in a thread of this process
        backend = OpenAICompatBackend("stub", base_url=stub.base_url)
        stub.configure(fail="http_500")
        stub.stats()  # {"received": ..., "answered": ..., "knobs": {...}}

    StubServer(process=True)  # its own process (`python tests/stub_server.py --port 0`), so a
                              # benchmark's server does not share the client's GIL

It lives in ``tests/`` because only tests and ``benchmarks/bench_load.py`` use it: it is not part of
the installed package (the wheel ships no test servers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tsglab.errors import SpecError

HOST = "127.0.0.1"
MODEL_ID = "stub"
SERVED = (MODEL_ID, "stub-light", "stub-std", "stub-enh")
HOSTILE = ("no_newline", "trickle", "trickle_headers", "event", "bad_utf8", "bad_gzip", "html_200", "html_502",
           "garbage", "echo_key")
FAILURES = ("none", "http_500", "malformed", "drop_mid_stream", *HOSTILE)
DEFAULT_KNOBS: dict[str, Any] = {"delay_ms": 0.0, "tokens": 8, "stall_ms": 0.0, "stall_after": 0,
                                 "serial": False, "fail": "none", "trickle_ms": 50.0, "event": "\"str\""}
ECHO_VARIANTS = ("content", "event", "html_500", "json_401", "stream_error")
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 500: "Internal Server Error", 502: "Bad Gateway"}
_HTML_PAGE = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
              "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


def validate_knobs(knobs: dict[str, Any]) -> dict[str, Any]:
    """Check knob names and values; return them normalised (floats, ints, bools)."""
    unknown = sorted(set(knobs) - set(DEFAULT_KNOBS) - {"reset"})
    if unknown:
        raise SpecError(f"unknown stub knob(s) {unknown}; known: {sorted(DEFAULT_KNOBS)} and 'reset'.")
    clean: dict[str, Any] = {}
    for name in ("delay_ms", "stall_ms", "trickle_ms"):
        if name in knobs:
            value = knobs[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise SpecError(f"stub knob {name} must be a number of milliseconds >= 0; got {value!r}.")
            clean[name] = float(value)
    for name, low in (("tokens", 1), ("stall_after", 0)):
        if name in knobs:
            value = knobs[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SpecError(f"stub knob {name} must be an integer >= {low}; got {value!r}.")
            clean[name] = value
    for name in ("serial", "reset"):
        if name in knobs:
            if not isinstance(knobs[name], bool):
                raise SpecError(f"stub knob {name} must be true or false; got {knobs[name]!r}.")
            clean[name] = knobs[name]
    if "event" in knobs:
        if not isinstance(knobs["event"], str):
            raise SpecError(f"stub knob event must be a text (sent as `data: <event>`); got {knobs['event']!r}.")
        clean["event"] = knobs["event"]
    if "fail" in knobs:
        if knobs["fail"] not in FAILURES:
            raise SpecError(f"stub knob fail must be one of {list(FAILURES)}; got {knobs['fail']!r}.")
        clean["fail"] = knobs["fail"]
    return clean


class _State:
    """Knobs and counters shared by the connections of one server (touched from its loop thread, and
    from the owner's thread through ``update``/``snapshot`` under a lock)."""

    def __init__(self, knobs: dict[str, Any]) -> None:
        self.knobs = {**DEFAULT_KNOBS, **validate_knobs(knobs)}
        self.received = 0
        self.answered = 0
        self.connections = 0
        self.stalled = False
        self.lock = threading.Lock()
        self.writers: set = set()  # open connections, closed on shutdown (touched by the loop thread only)
        self.serial_lock: asyncio.Lock | None = None

    def update(self, knobs: dict[str, Any]) -> None:
        clean = validate_knobs(knobs)
        with self.lock:
            if clean.pop("reset", False):
                self.received = self.answered = self.connections = 0
                self.stalled = False
            if "stall_ms" in clean or "stall_after" in clean:
                self.stalled = False
            self.knobs.update(clean)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"received": self.received, "answered": self.answered, "connections": self.connections,
                    "knobs": dict(self.knobs)}


# --- HTTP ------------------------------------------------------------------------------------------

def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _json_response(status: int, payload: Any, *, keep_alive: bool) -> bytes:
    body = json.dumps(payload).encode()
    return _head(status, {"Content-Type": "application/json", "Content-Length": str(len(body)),
                          "Connection": "keep-alive" if keep_alive else "close"}) + body


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _sse(payload: Any) -> bytes:
    return _chunk(b"data: " + (payload if isinstance(payload, bytes) else json.dumps(payload).encode()) + b"\n\n")


def _prompt_tokens(body: dict) -> int:
    messages = body.get("messages") or []
    return sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))


class _Buffer:
    """Collects what :meth:`_Connection._stream` writes, so :meth:`_Connection._trickle` can send it slowly."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None

    @property
    def transport(self):
        raise RuntimeError("trickle: the stream may not abort")


class _Connection:
    def __init__(self, state: _State, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.state, self.reader, self.writer = state, reader, writer
        self.headers: dict[str, str] = {}  # of the request being answered
        self.number = 0  # its number, counted by `received`

    async def serve(self) -> None:
        try:
            while await self._one_request():
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                self.writer.close()

    async def _one_request(self) -> bool:
        """Serve one request; return whether the connection stays open."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3:
            await self._send(_json_response(400, {"error": {"message": "bad request line"}}, keep_alive=False))
            return False
        method, target, version = parts
        headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            await self._send(_json_response(411, {"error": {"message": "send a Content-Length"}}, keep_alive=False))
            return False
        length = int(headers.get("content-length", "0") or 0)
        raw_body = await self.reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0].rstrip("/")
        if path == "/v1/chat/completions" and method == "POST":
            self.headers = headers
            return await self._chat(raw_body, keep_alive)
        if path == "/api/chat" and method == "POST":
            self.headers = headers
            return await self._ollama_chat(raw_body, keep_alive)
        if path == "/api/tags" and method == "GET":
            model = {"name": f"{MODEL_ID}:latest", "model": f"{MODEL_ID}:latest", "size": 1, "digest": "0" * 12}
            await self._send(_json_response(200, {"models": [model]}, keep_alive=keep_alive))
            return keep_alive
        if path == "/v1/models" and method == "GET":
            payload = {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "tsglab"}
                                                  for name in SERVED]}
            await self._send(_json_response(200, payload, keep_alive=keep_alive))
        elif path == "/control" and method in ("GET", "POST"):
            if method == "POST":
                try:
                    self.state.update(json.loads(raw_body or b"{}"))
                except (SpecError, ValueError, TypeError, AttributeError) as exc:
                    await self._send(_json_response(400, {"error": {"message": str(exc)}}, keep_alive=keep_alive))
                    return keep_alive
            await self._send(_json_response(200, self.state.snapshot(), keep_alive=keep_alive))
        elif path in ("/v1/chat/completions", "/v1/models", "/control"):
            await self._send(_json_response(405, {"error": {"message": f"{method} not allowed on {path}"}},
                                            keep_alive=keep_alive))
        else:
            await self._send(_json_response(404, {"error": {"message": f"no route {path}"}}, keep_alive=keep_alive))
        return keep_alive

    async def _send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def _chat(self, raw_body: bytes, keep_alive: bool) -> bool:
        state = self.state
        try:
            body = json.loads(raw_body)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise ValueError("the body needs a 'messages' list")
        except ValueError as exc:
            await self._send(_json_response(400, {"error": {"message": f"bad request body: {exc}"}},
                                            keep_alive=keep_alive))
            return keep_alive
        with state.lock:
            state.received += 1
            number = state.received
            knobs = dict(state.knobs)
            stall = knobs["stall_ms"] > 0 and not state.stalled and number == knobs["stall_after"] + 1
            if stall:
                state.stalled = True
        self.number = number
        if knobs["serial"]:
            if state.serial_lock is None:
                state.serial_lock = asyncio.Lock()
            async with state.serial_lock:
                return await self._answer(body, knobs, stall, keep_alive)
        return await self._answer(body, knobs, stall, keep_alive)

    async def _answer(self, body: dict, knobs: dict[str, Any], stall: bool, keep_alive: bool) -> bool:
        wait_ms = knobs["delay_ms"] + (knobs["stall_ms"] if stall else 0.0)
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1e3)
        fail = knobs["fail"]
        if fail in HOSTILE and fail not in ("event", "bad_utf8", "echo_key", "trickle"):
            return await self._hostile(fail, knobs, keep_alive)
        if fail == "http_500":
            await self._send(_json_response(500, {"error": {"message": "stub: injected failure",
                                                            "type": "server_error"}}, keep_alive=keep_alive))
            return keep_alive
        model = str(body.get("model") or MODEL_ID)
        words = [f"t{i}" for i in range(knobs["tokens"])]
        usage = {"prompt_tokens": _prompt_tokens(body), "completion_tokens": len(words),
                 "total_tokens": _prompt_tokens(body) + len(words)}
        ident, created = f"chatcmpl-stub-{id(body):x}", int(time.time())
        if fail == "echo_key":
            return await self._echo(body, model, words, usage, ident, created, keep_alive)
        if body.get("stream"):
            if fail == "trickle":
                return await self._trickle(body, model, words, usage, ident, created, knobs, keep_alive)
            return await self._stream(body, model, words, usage, ident, created, fail, keep_alive,
                                      event=knobs["event"])
        if fail == "malformed":
            junk = b'{"id": "chatcmpl-stub", "choices": [{"message": '
            self._count_answer()
            self.writer.write(_head(200, {"Content-Type": "application/json", "Content-Length": str(len(junk)),
                                          "Connection": "keep-alive" if keep_alive else "close"}) + junk)
            await self.writer.drain()
            return keep_alive
        payload = {"id": ident, "object": "chat.completion", "created": created, "model": model,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": " ".join(words)},
                                "finish_reason": "stop"}],
                   "usage": usage}
        data = _json_response(200, payload, keep_alive=keep_alive)
        if fail == "drop_mid_stream":  # headers promise the whole body; half of it arrives, then EOF
            self.writer.write(data[: len(data) - len(json.dumps(payload)) // 2])
            await self.writer.drain()
            self.writer.transport.abort()
            return False
        self._count_answer()  # counted before the write, so a client that has the answer sees the count
        self.writer.write(data)
        await self.writer.drain()
        return keep_alive

    async def _stream(self, body, model, words, usage, ident, created, fail, keep_alive, *, event: str = "",
                      headers: dict[str, str] | None = None, echo: str = "") -> bool:
        def chunk(delta: dict, finish: str | None = None) -> dict:
            return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        self.writer.write(_head(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                      "Transfer-Encoding": "chunked",
                                      "Connection": "keep-alive" if keep_alive else "close", **(headers or {})}))
        self.writer.write(_sse(chunk({"role": "assistant", "content": ""})))
        for i, word in enumerate(words):
            if (i == len(words) // 2 and fail in ("event", "bad_utf8")) or (echo and i == 0):
                if fail == "event":
                    self.writer.write(_sse(event.encode()))
                elif fail == "bad_utf8":
                    not_utf8 = json.dumps(chunk({"content": "@@"})).encode().replace(b"@@", b"\xff\xfe\xc3(")
                    self.writer.write(_sse(not_utf8))
                elif echo == "event":
                    self.writer.write(_chunk(f"data: upstream said {self.headers.get('authorization')}\n\n"
                                             .encode()))
                elif echo == "stream_error":
                    self.writer.write(_sse({"error": {"message": f"bad credentials "
                                                                 f"{self.headers.get('authorization')}"}}))
                continue
            if fail == "drop_mid_stream" and i == len(words) // 2:
                await self.writer.drain()
                self.writer.transport.abort()  # no terminating chunk, no [DONE]: the stream is cut
                return False
            if fail == "malformed" and i == len(words) // 2:
                self.writer.write(_chunk(b'data: {"choices": [{"delta": \n\n'))
                continue
            self.writer.write(_sse(chunk({"content": word if i == 0 else " " + word})))
        self.writer.write(_sse(chunk({}, "stop")))
        options = body.get("stream_options") or {}
        if isinstance(options, dict) and options.get("include_usage"):
            self.writer.write(_sse({"id": ident, "object": "chat.completion.chunk", "created": created,
                                    "model": model, "choices": [], "usage": usage}))
        self._count_answer()
        self.writer.write(_sse(b"[DONE]") + b"0\r\n\r\n")
        await self.writer.drain()
        return keep_alive

    async def _ollama_chat(self, raw_body: bytes, keep_alive: bool) -> bool:
        """Ollama's /api/chat as an NDJSON stream (chunked), or a hostile answer."""
        with self.state.lock:
            self.state.received += 1
            knobs = dict(self.state.knobs)
        if knobs["delay_ms"] > 0:
            await asyncio.sleep(knobs["delay_ms"] / 1e3)
        fail = knobs["fail"]
        if fail in HOSTILE and fail not in ("event", "bad_utf8", "echo_key", "trickle"):
            return await self._hostile(fail, knobs, keep_alive)
        body = json.loads(raw_body or b"{}")
        model = str(body.get("model") or MODEL_ID)
        lines = [{"model": model, "message": {"role": "assistant", "content": f" t{i}"}, "done": False}
                 for i in range(knobs["tokens"])]
        raw_lines = [json.dumps(line).encode() for line in lines]
        if fail == "event":
            raw_lines[len(raw_lines) // 2] = knobs["event"].encode()
        raw_lines.append(json.dumps({"model": model, "message": {"role": "assistant", "content": ""}, "done": True,
                                     "done_reason": "stop", "prompt_eval_count": 3, "eval_count": knobs["tokens"],
                                     "prompt_eval_duration": 1000, "eval_duration": 2000}).encode())
        self._count_answer()
        self.writer.write(_head(200, {"Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked",
                                      "Connection": "keep-alive" if keep_alive else "close"}))
        for line in raw_lines:
            self.writer.write(_chunk(line + b"\n"))
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()
        return keep_alive

    async def _trickle(self, body, model, words, usage, ident, created, knobs, keep_alive) -> bool:
        """The whole answer of :meth:`_stream`, written one byte every ``trickle_ms``."""
        real_writer = self.writer
        buffer = _Buffer()
        self.writer = buffer  # type: ignore[assignment]
        try:
            await self._stream(body, model, words, usage, ident, created, "none", keep_alive)
        finally:
            self.writer = real_writer
        for k in range(len(buffer.data)):
            real_writer.write(buffer.data[k:k + 1])
            await real_writer.drain()
            await asyncio.sleep(knobs["trickle_ms"] / 1e3)
        return keep_alive

    async def _echo(self, body, model, words, usage, ident, created, keep_alive) -> bool:
        """Echo the Authorization value: always in a header, and by request number somewhere else."""
        secret = self.headers.get("authorization", "")
        variant = ECHO_VARIANTS[(self.number - 1) % len(ECHO_VARIANTS)]
        echo_header = {"X-Echo-Authorization": secret}
        if variant == "html_500":
            page = f"<html><body><h1>500</h1><p>request with Authorization: {secret} failed</p></body></html>"
            data = page.encode()
            self._count_answer()
            await self._send(_head(500, {"Content-Type": "text/html", "Content-Length": str(len(data)),
                                         "Connection": "close", **echo_header}) + data)
            return False
        if variant == "json_401":
            data = json.dumps({"error": {"message": f"invalid key {secret}", "type": "auth"}}).encode()
            self._count_answer()
            await self._send(_head(401, {"Content-Type": "application/json", "Content-Length": str(len(data)),
                                         "Connection": "close", **echo_header}) + data)
            return False
        if variant == "content":
            words = [*words[:2], secret.split()[-1] if secret else "nokey", *words[2:]]
        return await self._stream(body, model, words, usage, ident, created, "none", keep_alive,
                                  headers=echo_header, echo=variant if variant != "content" else "")

    async def _hostile(self, fail: str, knobs: dict[str, Any], keep_alive: bool) -> bool:
        """Answers that are not what an OpenAI-compatible server sends; the connection closes after each."""
        self._count_answer()
        if fail == "garbage":
            await self._send(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\x00\x01\x02 not http at all\r\n\r\n")
            self.writer.transport.abort()
            return False
        if fail in ("html_200", "html_502"):
            status = 200 if fail == "html_200" else 502
            data = _HTML_PAGE.encode()
            await self._send(_head(status, {"Content-Type": "text/html", "Content-Length": str(len(data)),
                                            "Connection": "close"}) + data)
            return False
        if fail == "bad_gzip":
            data = b"\x1f\x8b this is not gzip at all " * 4
            await self._send(_head(200, {"Content-Type": "text/event-stream", "Content-Encoding": "gzip",
                                         "Content-Length": str(len(data)), "Connection": "close"}) + data)
            return False
        if fail == "trickle_headers":
            head = _head(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                               "X-Padding": "p" * 4096, "Connection": "close"})
            await self._send(head[:17])
            for k in range(17, len(head)):
                await self._send(head[k:k + 1])
                await asyncio.sleep(knobs["trickle_ms"] / 1e3)
            return False
        # no_newline: one endless line, until the client closes the connection
        await self._send(_head(200, {"Content-Type": "text/event-stream", "Connection": "close"}) + b"data: ")
        block = b"x" * 65536
        while not self.writer.is_closing():
            await self._send(block)
            await asyncio.sleep(0.01)
        return False

    def _count_answer(self) -> None:
        with self.state.lock:
            self.state.answered += 1


async def _start(state: _State, port: int) -> asyncio.base_events.Server:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with state.lock:
            state.connections += 1
        state.writers.add(writer)
        try:
            await _Connection(state, reader, writer).serve()
        finally:
            state.writers.discard(writer)

    return await asyncio.start_server(on_connect, HOST, port, backlog=1024)


# --- the handle ------------------------------------------------------------------------------------

class StubServer:
    """Start a stub server (see the module docstring); use it as a context manager or call ``close()``."""

    def __init__(self, *, port: int = 0, process: bool = False, **knobs: Any) -> None:
        self._state = _State(knobs)  # validates the knobs before anything starts
        self._process: subprocess.Popen | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        if process:
            self.port = self._start_process(port, self._state.knobs)
        else:
            self.port = self._start_thread(port)
        self.base_url = f"http://{HOST}:{self.port}/v1"

    def _start_thread(self, port: int) -> int:
        self._loop = asyncio.new_event_loop()
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(_start(self._state, port))
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="tsglab-stub", daemon=True)
        self._thread.start()
        started.wait(10)
        if self._server is None:
            raise RuntimeError("the stub server did not start within 10 s")
        return self._server.sockets[0].getsockname()[1]

    def _start_process(self, port: int, knobs: dict[str, Any]) -> int:
        self._process = subprocess.Popen(
            # run by path: this file is not an importable module of an installed package
            [sys.executable, str(Path(__file__).resolve()), "--port", str(port), "--knobs", json.dumps(knobs)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            self._process.kill()
            err = self._process.stderr.read()
            raise RuntimeError(f"the stub server process did not report its port: {line!r} {err[-2000:]}")
        return int(line)

    def _control(self, knobs: dict[str, Any] | None) -> dict[str, Any]:
        data = None if knobs is None else json.dumps(knobs).encode()
        request = urllib.request.Request(f"http://{HOST}:{self.port}/control", data=data,
                                         method="GET" if data is None else "POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def configure(self, **knobs: Any) -> None:
        """Change knobs (see the module docstring); ``reset=True`` also zeroes the counters."""
        validate_knobs(knobs)
        if self._process is not None:
            self._control(knobs)
        else:
            self._state.update(knobs)

    def stats(self) -> dict[str, Any]:
        """``{"received": int, "answered": int, "connections": int, "knobs": {...}}``."""
        return self._control(None) if self._process is not None else self._state.snapshot()

    def close(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            for stream in (self._process.stdout, self._process.stderr):
                stream.close()
            self._process = None
        if self._loop is not None and self._thread is not None:
            loop, server, open_writers = self._loop, self._server, self._state.writers

            async def stop() -> None:
                server.close()
                # keep-alive connections outlive the listening socket: close them so their tasks end
                for writer in list(open_writers):
                    writer.close()
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                await asyncio.wait(tasks, timeout=1) if tasks else None
                await server.wait_closed()

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(stop(), loop).result(2)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> StubServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StubServer({self.base_url}, {'process' if self._process else 'thread'})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python tests/stub_server.py", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--knobs", default="{}", help="initial knobs as a JSON object")
    args = parser.parse_args(argv)
    state = _State(json.loads(args.knobs))

    async def run() -> None:
        server = await _start(state, args.port)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
