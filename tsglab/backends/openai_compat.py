"""OpenAI-compatible chat-completions backend (vLLM, SGLang, LMDeploy, TensorRT-LLM, llama.cpp servers).

Every request streams (``stream: true`` with ``stream_options.include_usage``) so the client can
time the answer: ``ttft_ms`` is the arrival of the first content delta, ``prompt_eval_ms`` equals it,
``eval_ms`` is the rest of the client wall time ``total_ms``. The gaps between content chunks give the
inter-token latency (``extra``: ``itl_ms_mean``, ``itl_ms_p50``, ``itl_ms_max``, ``n_chunks``). Token
counts come from the server's usage chunk; a server that sends none (``python -m llama_cpp.server``)
gets its content chunks counted instead, ``prompt_tokens`` is then 0 (unknown) and
``extra["usage_source"]`` says ``"content_chunks"``.

The API key is held privately: it is sent as ``Authorization: Bearer …`` and appears in no name,
repr, message, ``extra`` or log line; everything the server sends that is kept (answers, error bodies,
excerpts of malformed events) is scrubbed of it, of any ``Authorization`` value and of the URL's
user info (:class:`tsglab.config.secrets.Scrubber`).

Hostile servers. The request's ``timeout_s`` is one overall deadline on the whole attempt — connect,
headers and every byte of the body — enforced on each socket operation (see
:mod:`tsglab.backends._http`), so a server that trickles bytes or never ends a line is cut off at the
deadline and its connection closed. A line longer than ``max_line_bytes`` without a newline, or an
answer longer than ``max_response_bytes``, ends as ``malformed_response``; so does any answer that is
not the documented event stream (an HTML page, JSON of the wrong shape, bytes that are not UTF-8, a
body that is not the gzip it claims, bytes that are not HTTP at all), with a scrubbed excerpt.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tsglab.backends._http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    REDACTED,
    Scrubber,
    attempt_limits,
    chunk_timing,
    display_url,
    excerpt,
    host_port,
    limited_transport,
    read_capped,
)
from tsglab.backends.base import Completion, CompletionRequest
from tsglab.errors import (
    BackendCancelled,
    BackendConnectError,
    BackendError,
    BackendHTTPError,
    BackendMalformedResponse,
    BackendStreamInterrupted,
    BackendTimeout,
    SpecError,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
DEFAULT_MAX_LINE_BYTES = 2**20
_ERROR_BODY_BYTES = 65536
JSON_MODES = ("json_schema", "json_object_schema", "json_object")
JsonMode = Literal["json_schema", "json_object_schema", "json_object"]

if TYPE_CHECKING:
    from tsglab.config import TierSpec


def response_format(schema: dict, json_mode: str) -> dict:
    """The ``response_format`` body field that asks a server of kind ``json_mode`` for ``schema``."""
    if json_mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    if json_mode == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_object"}


@dataclass
class _StreamState:
    """What has arrived so far on one streamed answer."""

    started_ns: int
    headers_received: bool = False
    pieces: list[str] = field(default_factory=list)
    arrivals_ns: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict | None = None
    model: str = ""
    done: bool = False
    n_events: int = 0
    n_bytes: int = 0
    head: bytes = b""  # the first bytes of the body, for the excerpt of an answer that is not an event stream


class OpenAICompatBackend:
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint, streamed over httpx.

    Parameters
    ----------
    model : the model name the server expects (its alias or served model name).
    base_url : e.g. ``http://127.0.0.1:8000/v1``; default: env ``OPENAI_BASE_URL``, else that URL.
    api_key : the key; default: the environment variable named ``api_key_env`` (``OPENAI_API_KEY``);
        none found means no ``Authorization`` header.
    connect_timeout_s : how long to wait for the TCP connection (the request's ``timeout_s`` is an
        overall deadline on top, enforced while streaming).
    json_mode : how ``request.json_schema`` is sent as ``response_format``:

        - ``"json_schema"`` (OpenAI standard; vLLM, SGLang, LMDeploy, TensorRT-LLM):
          ``{"type": "json_schema", "json_schema": {"name": "answer", "schema": S, "strict": true}}``
        - ``"json_object_schema"`` (``python -m llama_cpp.server``, whose request model only accepts
          ``type`` ``"text"`` or ``"json_object"`` and rejects ``"json_schema"`` with HTTP 422):
          ``{"type": "json_object", "schema": S}`` — compiled to a grammar by llama-cpp-python.
        - ``"json_object"``: ``{"type": "json_object"}``, JSON without a schema (servers with JSON
          mode only).
    extra_body : more fields merged into every request body (e.g. ``{"top_k": 20}``).
    max_line_bytes : the longest stream line accepted (a longer one is a ``malformed_response``).
    max_response_bytes : the most bytes one attempt reads (more is a ``malformed_response``).
    client_kwargs : keyword arguments for ``httpx.Client`` (tests pass ``transport=``; without one the
        deadline-enforcing transport of :mod:`tsglab.backends._http` is used).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        connect_timeout_s: float = 5.0,
        json_mode: JsonMode = "json_schema",
        extra_body: dict[str, Any] | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        import httpx

        if json_mode not in JSON_MODES:
            raise SpecError(f"`json_mode` must be one of {list(JSON_MODES)}; got {json_mode!r}. Use "
                            "'json_object_schema' for llama_cpp.server, 'json_schema' for vLLM/SGLang.")
        if connect_timeout_s <= 0:
            raise SpecError(f"`connect_timeout_s` must be > 0; got {connect_timeout_s}.")
        for key, value in (("max_line_bytes", max_line_bytes), ("max_response_bytes", max_response_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
                raise SpecError(f"`{key}` must be an integer >= 1024 (bytes); got {value!r}.")
        self.max_line_bytes, self.max_response_bytes = max_line_bytes, max_response_bytes
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self._shown_url = display_url(self.url)
        self._api_key = api_key or os.environ.get(api_key_env or "OPENAI_API_KEY") or None
        self.connect_timeout_s = connect_timeout_s
        self.json_mode = json_mode
        self.extra_body = dict(extra_body or {})
        self.name = f"openai:{model}@{host_port(self.base_url)}"
        headers = {"Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        kwargs = dict(client_kwargs or {})
        self._scrub = Scrubber.for_endpoint(api_key=self._api_key, url=self.base_url,
                                            headers={**headers, **kwargs.get("headers", {})})
        kwargs.setdefault("transport", limited_transport())
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(None, connect=connect_timeout_s), **kwargs)

    def __repr__(self) -> str:
        key = REDACTED if self._api_key else "none"
        return f"OpenAICompatBackend(name={self.name!r}, url={self._shown_url!r}, api_key={key})"

    # -- request -------------------------------------------------------------------------------

    def request_body(self, request: CompletionRequest) -> dict[str, Any]:
        """The JSON body sent for ``request`` (public so tests and notebooks can inspect it)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.json_schema is not None:
            body["response_format"] = response_format(request.json_schema, self.json_mode)
        body.update(self.extra_body)
        return body

    def complete(self, request: CompletionRequest) -> Completion:

        state = _StreamState(started_ns=time.perf_counter_ns())
        deadline_ns = None if request.timeout_s is None else state.started_ns + int(request.timeout_s * 1e9)
        with attempt_limits(deadline_ns, self.max_response_bytes) as limits:
            try:
                self._exchange(request, state, deadline_ns)
            except BackendError:
                raise
            except Exception as exc:
                raise self._classify(exc, state, limits, request.timeout_s) from exc
        return self._completion(state)

    def _exchange(self, request: CompletionRequest, state: _StreamState, deadline_ns: int | None) -> None:
        with self._client.stream("POST", self.url, json=self.request_body(request),
                                 timeout=self._timeout(deadline_ns)) as response:
            state.headers_received = True
            if response.status_code >= 400:
                body = read_capped(response, _ERROR_BODY_BYTES)
                raise self._http_error(response.status_code, body.decode("utf-8", errors="replace"))
            content_type = response.headers.get("content-type", "")
            if content_type.startswith("text/html"):
                page = read_capped(response, _ERROR_BODY_BYTES).decode("utf-8", errors="replace")
                raise self._malformed_body(state, f"an HTML page (Content-Type {content_type})", page)
            self._read_events(response, state, deadline_ns, request.timeout_s, cancel=request.cancel)

    def _classify(self, exc: Exception, state: _StreamState, limits: Any, timeout_s: float | None) -> BackendError:
        """The backend error for an exception of httpx (or of a parser meeting an answer it cannot read)."""
        import httpx

        if limits.over_budget:
            return self._malformed(state, f"more than {self.max_response_bytes} bytes in one answer (option "
                                          "`max_response_bytes`)")
        if limits.expired or isinstance(exc, httpx.TimeoutException):
            elapsed_ms = self._elapsed_ms(state)
            deadline_ns = limits.deadline_ns
            if isinstance(exc, httpx.ConnectTimeout) and not limits.expired and (
                    deadline_ns is None or time.perf_counter_ns() < deadline_ns):
                return BackendConnectError(
                    f"{self.name}: no TCP connection to {self._shown_url} within {self.connect_timeout_s:g} s; "
                    "check that the server is running and the host is reachable.")
            return self._timeout_error(timeout_s, elapsed_ms)
        if isinstance(exc, httpx.ConnectError):
            return BackendConnectError(
                f"{self.name}: cannot connect to {self._shown_url} ({type(exc).__name__}); check that the server "
                "is running and `base_url` (or OPENAI_BASE_URL) names the right host and port.")
        if isinstance(exc, httpx.DecodingError):
            return self._malformed(state, f"a body that cannot be decoded as its Content-Encoding says "
                                          f"({self._scrub.message(excerpt(str(exc), 120))})")
        if isinstance(exc, httpx.RemoteProtocolError) and not state.headers_received:
            text = str(exc)
            if "disconnected" in text.lower():
                return BackendConnectError(
                    f"{self.name}: {self._shown_url} closed the connection without an answer; check that the "
                    "server is running and healthy.")
            return BackendMalformedResponse(
                f"{self.name}: {self._shown_url} answered with something that is not an HTTP response "
                f"({self._scrub.message(excerpt(text, 160))!r}); check that `base_url` names an HTTP server "
                "(the scheme, host and port).")
        if isinstance(exc, httpx.TransportError):
            return self._broken_error(state, exc)
        if isinstance(exc, UnicodeDecodeError):
            return self._malformed(state, "bytes that are not UTF-8")
        # Any other exception here comes from reading what the server sent (a shape no check foresaw):
        # it describes the server's answer, never a reason to stop the run.
        return self._malformed(state, f"an answer that could not be read ({type(exc).__name__}: "
                                      f"{self._scrub.message(excerpt(str(exc), 120))})")

    # -- helpers -------------------------------------------------------------------------------

    def _timeout(self, deadline_ns: int | None):
        import httpx

        if deadline_ns is None:
            return httpx.Timeout(None, connect=self.connect_timeout_s)
        remaining = max((deadline_ns - time.perf_counter_ns()) / 1e9, 1e-3)
        return httpx.Timeout(remaining, connect=min(self.connect_timeout_s, remaining))

    @staticmethod
    def _elapsed_ms(state: _StreamState) -> float:
        return (time.perf_counter_ns() - state.started_ns) / 1e6

    def _timeout_error(self, timeout_s: float | None, elapsed_ms: float) -> BackendTimeout:
        limit = "the client's limits" if timeout_s is None else f"{timeout_s:g} s"
        return BackendTimeout(
            f"{self.name}: no complete answer from {self._shown_url} within {limit} "
            f"(gave up after {elapsed_ms:.0f} ms); raise `load.timeout_s` or lower `max_tokens`.",
            elapsed_ms=elapsed_ms,
        )

    def _http_error(self, status: int, body: str) -> BackendHTTPError:
        hint = {401: "check the API key", 403: "check the API key", 404: "check `model` and the base URL",
                422: "the server rejected the request body; check `json_mode`",
                429: "the server is rate limiting"}.get(status, "see the server's log")
        if "response_format" in body:
            hint = "the server rejected `response_format`; check `json_mode` (llama_cpp.server: 'json_object_schema')"
        text = excerpt(self._scrub.message(body))
        return BackendHTTPError(f"{self.name}: HTTP {status} from {self._shown_url}: {text!r}; {hint}.",
                                status=status)

    def _broken_error(self, state: _StreamState, exc: Exception) -> BackendError:
        if state.headers_received:
            return BackendStreamInterrupted(
                f"{self.name}: the connection to {self._shown_url} broke after {len(state.pieces)} content "
                f"chunk(s) ({type(exc).__name__}); check whether the server crashed (see its log)."
            )
        return BackendConnectError(
            f"{self.name}: the connection to {self._shown_url} failed before an answer ({type(exc).__name__}); "
            "check that the server is running and healthy."
        )

    def _read_events(self, response, state: _StreamState, deadline_ns: int | None, timeout_s: float | None, *,
                     cancel: threading.Event | None = None) -> None:
        """Parse the SSE stream: ``data:`` lines joined per event, comments and other fields ignored.

        Lines are split here, on bytes, so a line is capped at ``max_line_bytes`` while it arrives and
        the deadline is checked on every chunk (also with a transport that does not enforce it).
        After ``[DONE]`` the body is still read to its end: a response read to the end returns its
        connection to the pool, one closed early costs a new TCP connection per request."""
        data_lines: list[str] = []
        pending = bytearray()
        for chunk in response.iter_bytes():
            if deadline_ns is not None and time.perf_counter_ns() > deadline_ns:
                response.close()
                raise self._timeout_error(timeout_s, self._elapsed_ms(state))
            if cancel is not None and cancel.is_set() and not state.done:
                response.close()  # the server sees the client go away and stops generating
                raise BackendCancelled(f"{self.name}: cancelled after {len(state.pieces)} content chunks",
                                       elapsed_ms=self._elapsed_ms(state), completion_tokens=len(state.pieces))
            if state.done:
                continue
            if len(state.head) < 512:
                state.head += chunk[: 512 - len(state.head)]
            state.n_bytes += len(chunk)
            pending += chunk
            start = 0
            while (end := pending.find(b"\n", start)) >= 0:
                self._line(bytes(pending[start:end]), data_lines, state)
                start = end + 1
            del pending[:start]
            if len(pending) > self.max_line_bytes:
                response.close()
                raise self._malformed(state, f"a line of more than {self.max_line_bytes} bytes without a newline "
                                             "(option `max_line_bytes`)")
        if pending and not state.done:
            self._line(bytes(pending), data_lines, state)
        if data_lines:
            self._handle_event("\n".join(data_lines), state)
        if not state.done and state.finish_reason is None:
            if state.n_events == 0 and state.n_bytes > 0:
                body = state.head.decode("utf-8", errors="replace")
                kind = response.headers.get("content-type", "no Content-Type")
                raise self._malformed_body(state, f"no `data:` event ({kind})", body)
            raise BackendStreamInterrupted(
                f"{self.name}: the stream from {self._shown_url} ended after {len(state.pieces)} content chunk(s) "
                "without a finish_reason or [DONE]; check whether the server crashed (see its log)."
            )

    def _line(self, raw: bytes, data_lines: list[str], state: _StreamState) -> None:
        try:
            line = raw.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError as exc:
            raise self._malformed(state, f"bytes that are not UTF-8 ({excerpt(repr(raw[:80]), 100)})") from exc
        if state.done:
            return
        if line == "":
            if data_lines:
                self._handle_event("\n".join(data_lines), state)
                data_lines.clear()
            return
        if line.startswith(":"):
            return
        fieldname, _, value = line.partition(":")
        if fieldname == "data":
            data_lines.append(value.removeprefix(" "))

    def _handle_event(self, data: str, state: _StreamState) -> None:
        state.n_events += 1
        if data.strip() == "[DONE]":
            state.done = True
            return
        try:
            chunk = json.loads(data)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise BackendMalformedResponse(
                f"{self.name}: event {state.n_events} from {self._shown_url} is not JSON: "
                f"{excerpt(self._scrub.message(data))!r}; check that `base_url` points at an OpenAI-compatible "
                "/v1 endpoint."
            ) from exc
        if not isinstance(chunk, dict):
            raise self._malformed(state, f"a JSON {type(chunk).__name__} instead of an object")
        if "error" in chunk:
            raise self._stream_error(chunk["error"], state)
        choices = chunk.get("choices")
        usage = chunk.get("usage")
        if choices is None and usage is None:
            raise self._malformed(state, f"no 'choices' (keys: {self._scrub.message(str(sorted(chunk)[:8]))})")
        if usage is not None:
            state.usage = self._checked_usage(usage, state)
        model = chunk.get("model")
        if model is not None and not isinstance(model, str):
            raise self._malformed(state, f"a 'model' that is a {type(model).__name__}, not a text")
        if model:
            state.model = self._scrub(model)
        if choices is None or choices == []:
            return
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise self._malformed(state, "'choices' that is not a list of objects")
        choice = choices[0]
        delta = choice.get("delta")
        if delta is not None and not isinstance(delta, dict):
            raise self._malformed(state, f"a 'delta' that is a {type(delta).__name__}, not an object")
        piece = (delta or {}).get("content")
        if piece is not None and not isinstance(piece, str):
            raise self._malformed(state, f"a 'delta.content' that is a {type(piece).__name__}, not a text")
        finish = choice.get("finish_reason")
        if finish is not None and not isinstance(finish, str):
            raise self._malformed(state, f"a 'finish_reason' that is a {type(finish).__name__}, not a text")
        if piece:
            state.arrivals_ns.append(time.perf_counter_ns())
            state.pieces.append(piece)
        if finish:
            state.finish_reason = self._scrub(finish)

    def _checked_usage(self, usage: Any, state: _StreamState) -> dict | None:
        if not usage:
            return state.usage
        if not isinstance(usage, dict):
            raise self._malformed(state, f"a 'usage' that is a {type(usage).__name__}, not an object")
        for key in ("prompt_tokens", "completion_tokens"):
            value = usage.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise self._malformed(state, f"a 'usage.{key}' that is not a count of tokens "
                                             f"({excerpt(repr(value), 40)})")
        return usage

    def _malformed_body(self, state: _StreamState, what: str, body: str) -> BackendMalformedResponse:
        return BackendMalformedResponse(
            f"{self.name}: {self._shown_url} answered with {what}, not an event stream: "
            f"{excerpt(self._scrub.message(body))!r}; check that `base_url` points at the OpenAI-compatible server "
            "itself (a proxy or gateway in front of it may have answered with its own error page)."
        )

    def _malformed(self, state: _StreamState, what: str) -> BackendMalformedResponse:
        return BackendMalformedResponse(
            f"{self.name}: event {state.n_events} from {self._shown_url} has {what}; check that `base_url` "
            "points at an OpenAI-compatible chat-completions server."
        )

    def _stream_error(self, error: Any, state: _StreamState) -> BackendError:
        detail = error.get("message", error) if isinstance(error, dict) else error
        code = error.get("code") if isinstance(error, dict) else None
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        text = excerpt(self._scrub.message(str(detail)))
        if isinstance(code, int) and code >= 400:
            return BackendHTTPError(f"{self.name}: the server at {self._shown_url} reported error {code} in the "
                                    f"stream: {text!r}; see the server's log.", status=code)
        return BackendStreamInterrupted(
            f"{self.name}: the server at {self._shown_url} reported an error after {len(state.pieces)} content "
            f"chunk(s): {text!r}; see the server's log."
        )

    def _completion(self, state: _StreamState) -> Completion:
        ended_ns = time.perf_counter_ns()
        total_ms = (ended_ns - state.started_ns) / 1e6
        ttft_ms = (state.arrivals_ns[0] - state.started_ns) / 1e6 if state.arrivals_ns else total_ms
        usage = state.usage or {}
        if usage.get("completion_tokens") is not None:
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage["completion_tokens"])
            usage_source = "server"
        else:
            prompt_tokens, completion_tokens, usage_source = 0, len(state.pieces), "content_chunks"
        return Completion(
            text=self._scrub("".join(state.pieces)),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            prompt_eval_ms=ttft_ms,
            eval_ms=total_ms - ttft_ms,
            total_ms=total_ms,
            ttft_ms=ttft_ms,
            load_ms=0.0,
            finish_reason=state.finish_reason or "stop",
            model=self.model,
            extra={**chunk_timing(state.arrivals_ns), "usage_source": usage_source,
                   "server_model": state.model, "json_mode": self.json_mode},
        )

    def preflight(self, timeout_s: float = 10.0) -> None:
        """``GET {base_url}/models`` answers within ``timeout_s`` and lists :attr:`model`; raises a
        :class:`~tsglab.errors.BackendError` naming the endpoint and the fix otherwise."""
        url = f"{self.base_url}/models"
        shown = display_url(url)
        state = _StreamState(started_ns=time.perf_counter_ns())
        with attempt_limits(state.started_ns + int(timeout_s * 1e9), _ERROR_BODY_BYTES * 16) as limits:
            try:
                response = self._client.get(url, headers={"Accept": "application/json"})
                state.headers_received = True
                if response.status_code >= 400:
                    raise self._http_error(response.status_code, response.text)
                payload = response.json()
            except BackendError:
                raise
            except Exception as exc:
                raise self._classify(exc, state, limits, timeout_s) from exc
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise BackendMalformedResponse(f"{self.name}: {shown} did not list models (no 'data' list: "
                                           f"{excerpt(self._scrub.message(str(payload)), 120)!r}); check that "
                                           "`base_url` ends with the server's /v1.")
        served = sorted(str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id") is not None)
        if self.model not in served:
            raise BackendError(f"{self.name}: the server at {shown} does not serve model {self.model!r} (it serves "
                               f"{[self._scrub(m) for m in served[:10]]}); set the tier's `model` to one of them.")

    def warm_up(self) -> float:
        """Nothing to load: the server holds its model already (its load time is not the client's). 0.0."""
        return 0.0

    def close(self) -> None:
        self._client.close()


def from_tier_spec(tier: TierSpec) -> OpenAICompatBackend:
    """The registry's ``openai`` factory: ``tier.endpoint`` is the base URL, ``tier.options`` keywords."""
    return OpenAICompatBackend(tier.model, base_url=tier.endpoint or None, api_key=tier.api_key or None,
                               api_key_env=tier.api_key_env or None, **tier.options)
