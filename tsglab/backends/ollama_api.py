"""Ollama backend through the official ``ollama`` Python client (``/api/chat`` or ``/api/generate``).

Answers stream so the client measures the time to the first content chunk. Durations come from the
server's final ``done`` chunk (nanoseconds in Ollama's API): ``prompt_eval_ms`` = prompt_eval_duration,
``eval_ms`` = eval_duration, ``load_ms`` = load_duration, tokens = prompt_eval_count / eval_count;
``total_ms`` is the client wall time and ``extra`` keeps ``server_total_ms``, ``server_load_ms`` and
``done_reason``. When a proxy omits prompt_eval_duration or eval_duration, both fall back to the client's
split (time to first chunk / the rest) and ``extra["durations_source"]`` says ``"client"``.

``load_ms`` above ``cold_start_threshold_ms`` marks a cold start (``Completion.load_ms`` is then the
server's load time; at or below it, 0). The default 0 follows Ollama's documentation, where a loaded
model reports no load time; a server that reports a few ms on every warm call needs a threshold.

The request's ``timeout_s`` is one overall deadline on the whole attempt: every socket operation
(connect, headers, each byte of the body) waits at most the time left (the deadline-enforcing
transport of :mod:`tsglab.backends._http`; one client is shared by threads, the deadline is per
thread), and every chunk checks it. An answer longer than ``max_response_bytes`` (a line that never
ends included) and any answer that is not Ollama's NDJSON stream (wrong JSON shapes, HTML pages, a
bad gzip body, bytes that are not HTTP) end as ``malformed_response`` with a scrubbed excerpt.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

from tsglab.backends._http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    Scrubber,
    attempt_limits,
    chunk_timing,
    excerpt,
    host_port,
    limited_transport,
)
from tsglab.backends.base import Completion, CompletionRequest, Message
from tsglab.errors import (
    BackendCancelled,
    BackendConnectError,
    BackendError,
    BackendHTTPError,
    BackendMalformedResponse,
    BackendStreamInterrupted,
    BackendTimeout,
    MissingDependencyError,
    SpecError,
)

DEFAULT_HOST = "http://127.0.0.1:11434"
ENDPOINTS = ("chat", "generate")

if TYPE_CHECKING:
    from tsglab.config import TierSpec


def _import_ollama():
    try:
        import ollama
    except ImportError as exc:
        raise MissingDependencyError("the ollama backend needs the `ollama` client: install the extra with "
                                     "`pip install 'tsglab[ollama]'`.") from exc
    return ollama


def generate_prompt(messages: tuple[Message, ...]) -> tuple[str, str]:
    """(system, prompt) for ``/api/generate``: system messages joined; a lone user message is the
    prompt as is, a longer conversation becomes a ``role: text`` transcript ending in ``assistant:``."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns = [m for m in messages if m.role != "system"]
    if len(turns) == 1 and turns[0].role == "user":
        return system, turns[0].content
    transcript = "\n\n".join(f"{m.role}: {m.content}" for m in turns)
    return system, f"{transcript}\n\nassistant:"


def _split_host(host: str | None) -> tuple[str, str]:
    """(scheme, ``host:port``) the way the ollama client reads ``host`` (bare hosts get port 11434)."""
    host = (host or DEFAULT_HOST).strip()
    default_port: int | None = None
    if "://" in host:
        scheme, rest = host.split("://", 1)
    else:
        scheme, rest, default_port = "http", host, 11434
    authority = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if authority.startswith(":"):
        authority = "127.0.0.1" + authority
    return scheme, host_port(f"{scheme}://{authority}", default_port=default_port)


def _ms(nanoseconds: int | None) -> float | None:
    return None if nanoseconds is None else nanoseconds / 1e6


class OllamaBackend:
    """A model served by Ollama (or anything speaking its API, such as ollama-proxy-plus).

    Parameters
    ----------
    model : the Ollama model name (``llama3.2:1b``; through ollama-proxy-plus ``<provider>/<model>``).
    host : the server; default: env ``OLLAMA_HOST``, else the client's default ``127.0.0.1:11434``.
    endpoint : ``"chat"`` (messages) or ``"generate"`` (a prompt; see :func:`generate_prompt`).
    keep_alive : how long the server keeps the model loaded (``"5m"``, seconds, 0 to unload).
    cold_start_threshold_ms : server load time above which a request counts as a cold start.
    connect_timeout_s : TCP connect timeout.
    max_response_bytes : the most bytes one attempt reads (more is a ``malformed_response``).
    client_kwargs : keyword arguments for ``ollama.Client`` and through it ``httpx.Client``
        (tests pass ``transport=httpx.MockTransport(...)``).
    **options : Ollama options (``num_ctx``, ``num_predict``, ``temperature``, ``top_p``, ``seed``, …);
        ``num_predict``, ``temperature`` and ``seed`` default to the request's values. ``format="json"``
        forces plain JSON mode (otherwise a request's JSON Schema is sent as ``format``).
    """

    def __init__(
        self,
        model: str,
        *,
        host: str | None = None,
        endpoint: str = "chat",
        keep_alive: str | float | None = None,
        cold_start_threshold_ms: float = 0.0,
        connect_timeout_s: float = 5.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        client_kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        import httpx

        ollama = _import_ollama()
        if endpoint not in ENDPOINTS:
            raise SpecError(f"`endpoint` must be one of {list(ENDPOINTS)}; got {endpoint!r}.")
        if cold_start_threshold_ms < 0:
            raise SpecError(f"`cold_start_threshold_ms` must be >= 0; got {cold_start_threshold_ms}.")
        if connect_timeout_s <= 0:
            raise SpecError(f"`connect_timeout_s` must be > 0; got {connect_timeout_s}.")
        self.format = options.pop("format", None)
        if self.format not in (None, "json"):
            raise SpecError(f"option `format` may only be 'json' (plain JSON mode); got {self.format!r}. "
                            "A JSON Schema comes with each request (tier option `constrained_json`).")
        self.model = model
        self.host = host or os.environ.get("OLLAMA_HOST") or None
        self.endpoint = endpoint
        self.keep_alive = keep_alive
        self.cold_start_threshold_ms = cold_start_threshold_ms
        self.connect_timeout_s = connect_timeout_s
        if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int) or max_response_bytes < 1024:
            raise SpecError(f"`max_response_bytes` must be an integer >= 1024 (bytes); got {max_response_bytes!r}.")
        self.max_response_bytes = max_response_bytes
        self.options = options
        self._local = threading.local()
        kwargs = dict(client_kwargs or {})
        hooks = {key: list(value) for key, value in kwargs.pop("event_hooks", {}).items()}
        hooks.setdefault("request", []).append(self._on_request)
        hooks.setdefault("response", []).append(self._on_response)
        self._scrub = Scrubber.for_endpoint(url=self.host, headers=kwargs.get("headers"))
        kwargs.setdefault("transport", limited_transport())
        self._client = ollama.Client(host=self.host, timeout=httpx.Timeout(None, connect=connect_timeout_s),
                                     event_hooks=hooks, **kwargs)
        scheme, authority = _split_host(self.host)
        self._shown_host = f"{scheme}://{authority}"
        self.name = f"ollama:{model}@{authority}"

    def __repr__(self) -> str:
        return f"OllamaBackend(name={self.name!r}, endpoint={self.endpoint!r}, options={self.options!r})"

    # -- httpx hooks: per-thread deadline and "the answer has started" ---------------------------

    def _on_request(self, request) -> None:
        import httpx

        deadline_ns = getattr(self._local, "deadline_ns", None)
        if deadline_ns is None:
            return
        remaining = max((deadline_ns - time.perf_counter_ns()) / 1e9, 1e-3)
        timeout = httpx.Timeout(remaining, connect=min(self.connect_timeout_s, remaining))
        request.extensions["timeout"] = timeout.as_dict()

    def _on_response(self, response) -> None:
        self._local.status = response.status_code

    # -- request -------------------------------------------------------------------------------

    def request_options(self, request: CompletionRequest) -> dict[str, Any]:
        """The ``options`` sent for ``request``: request defaults, then the tier's options."""
        return {"num_predict": request.max_tokens, "temperature": request.temperature, "seed": request.seed,
                **self.options}

    def _format(self, request: CompletionRequest):
        """Constrain only requests that carry a schema; ``format="json"`` downgrades the schema to JSON mode."""
        if request.json_schema is None:
            return None
        return "json" if self.format == "json" else request.json_schema

    def _stream(self, request: CompletionRequest):
        common = {"model": self.model, "stream": True, "format": self._format(request),
                  "options": self.request_options(request), "keep_alive": self.keep_alive}
        if self.endpoint == "chat":
            messages = [{"role": m.role, "content": m.content} for m in request.messages]
            return self._client.chat(messages=messages, **common)
        system, prompt = generate_prompt(request.messages)
        return self._client.generate(prompt=prompt, system=system or None, **common)

    def complete(self, request: CompletionRequest) -> Completion:

        ollama = _import_ollama()
        started_ns = time.perf_counter_ns()
        deadline_ns = None if request.timeout_s is None else started_ns + int(request.timeout_s * 1e9)
        self._local.deadline_ns, self._local.status = deadline_ns, None
        pieces: list[str] = []
        arrivals_ns: list[int] = []
        final = None
        with attempt_limits(deadline_ns, self.max_response_bytes) as limits:
            try:
                final = self._read_stream(request, pieces, arrivals_ns, deadline_ns, started_ns)
            except BackendError:
                raise
            except ollama.ResponseError as exc:
                raise self._response_error(exc, len(pieces)) from exc
            except Exception as exc:
                raise self._classify(exc, limits, request.timeout_s, started_ns, len(pieces)) from exc
            finally:
                self._local.deadline_ns = None
        if final is None:
            raise BackendStreamInterrupted(
                f"{self.name}: the /api/{self.endpoint} stream from {self._shown_host} ended after {len(pieces)} "
                "chunk(s) without a `done` line; check whether the server crashed (see its log)."
            )
        return self._completion(final, pieces, arrivals_ns, started_ns)

    def _read_stream(self, request: CompletionRequest, pieces: list[str], arrivals_ns: list[int],
                     deadline_ns: int | None, started_ns: int) -> Any:
        """The stream's final ``done`` part (None if it ended without one); pieces and arrivals filled in."""
        for part in self._stream(request):
                now = time.perf_counter_ns()
                piece = (part.message.content if self.endpoint == "chat" and part.message else part.response) or ""
                if piece:
                    arrivals_ns.append(now)
                    pieces.append(piece)
                if part.done:
                    return part
                if deadline_ns is not None and now > deadline_ns:
                    raise self._timeout_error(request.timeout_s, started_ns)
                if request.cancelled():  # leaving the stream closes the connection: the server stops generating
                    raise BackendCancelled(f"{self.name}: cancelled after {len(pieces)} chunks",
                                           elapsed_ms=(now - started_ns) / 1e6, completion_tokens=len(pieces))
        return None

    def _classify(self, exc: Exception, limits: Any, timeout_s: float | None, started_ns: int,
                  n_pieces: int) -> BackendError:
        """The backend error for an exception of httpx or the ollama client (or of parsing a line of the
        wrong shape: whatever the server sends describes the answer, it is never a reason to stop the run)."""
        import httpx

        if limits.over_budget:
            return self._malformed(f"more than {self.max_response_bytes} bytes in one answer (option "
                                   "`max_response_bytes`; a line that never ends gets there too)")
        if limits.expired or isinstance(exc, httpx.TimeoutException):
            deadline_ns = limits.deadline_ns
            if isinstance(exc, httpx.ConnectTimeout) and not limits.expired and (
                    deadline_ns is None or time.perf_counter_ns() < deadline_ns):
                return self._connect_error(exc)
            return self._timeout_error(timeout_s, started_ns)
        if isinstance(exc, ConnectionError | httpx.ConnectError):
            return self._connect_error(exc)
        if isinstance(exc, httpx.DecodingError):
            return self._malformed("a body that cannot be decoded as its Content-Encoding says")
        if isinstance(exc, httpx.RemoteProtocolError) and getattr(self._local, "status", None) is None:
            if "disconnected" in str(exc).lower():
                return self._connect_error(exc)
            text = self._scrub.message(excerpt(str(exc), 120))
            return self._malformed(f"something that is not an HTTP response ({text})")
        if isinstance(exc, httpx.TransportError):
            return self._broken_error(exc, n_pieces)
        return BackendMalformedResponse(
            f"{self.name}: a line of the /api/{self.endpoint} stream from {self._shown_host} is not a valid "
            f"Ollama response ({type(exc).__name__}: {self._scrub.message(excerpt(str(exc), 120))}); check that "
            "`host` points at an Ollama server.")

    def _malformed(self, what: str) -> BackendMalformedResponse:
        return BackendMalformedResponse(
            f"{self.name}: the /api/{self.endpoint} stream from {self._shown_host} has {what}; check that `host` "
            "points at an Ollama server."
        )

    # -- errors --------------------------------------------------------------------------------

    def _timeout_error(self, timeout_s: float | None, started_ns: int) -> BackendTimeout:
        elapsed_ms = (time.perf_counter_ns() - started_ns) / 1e6
        limit = "the client's limits" if timeout_s is None else f"{timeout_s:g} s"
        return BackendTimeout(
            f"{self.name}: no complete answer from {self._shown_host} within {limit} (gave up after "
            f"{elapsed_ms:.0f} ms); raise `load.timeout_s` or lower `max_tokens` / `num_predict`.",
            elapsed_ms=elapsed_ms,
        )

    def _connect_error(self, exc: BaseException) -> BackendConnectError:
        return BackendConnectError(
            f"{self.name}: cannot connect to {self._shown_host} ({type(exc).__name__}); check that the Ollama "
            "server is running (`ollama serve`) and `host` (or OLLAMA_HOST) names the right host and port."
        )

    def _response_error(self, exc, n_pieces: int) -> BackendError:
        text = excerpt(self._scrub.message(str(exc.error)))
        if exc.status_code >= 400:
            hint = {404: f"pull the model (`ollama pull {self.model}`) or check its name"}.get(
                exc.status_code, "see the server's log")
            return BackendHTTPError(f"{self.name}: HTTP {exc.status_code} from {self._shown_host}/api/{self.endpoint}:"
                                    f" {text!r}; {hint}.", status=exc.status_code)
        return BackendStreamInterrupted(
            f"{self.name}: the server at {self._shown_host} reported an error in the stream after {n_pieces} "
            f"chunk(s): {text!r}; see the server's log."
        )

    def _broken_error(self, exc: BaseException, n_pieces: int) -> BackendError:
        if getattr(self._local, "status", None) is not None:
            return BackendStreamInterrupted(
                f"{self.name}: the connection to {self._shown_host} broke after {n_pieces} chunk(s) "
                f"({type(exc).__name__}); check whether the server crashed (see its log)."
            )
        return BackendConnectError(
            f"{self.name}: the connection to {self._shown_host} failed before an answer ({type(exc).__name__}); "
            "check that the server is running and healthy."
        )

    # -- result --------------------------------------------------------------------------------

    def _completion(self, final, pieces: list[str], arrivals_ns: list[int], started_ns: int) -> Completion:
        total_ms = (time.perf_counter_ns() - started_ns) / 1e6
        ttft_ms = (arrivals_ns[0] - started_ns) / 1e6 if arrivals_ns else total_ms
        prompt_eval_ms, eval_ms = _ms(final.prompt_eval_duration), _ms(final.eval_duration)
        if prompt_eval_ms is None or eval_ms is None:
            prompt_eval_ms, eval_ms, source = ttft_ms, total_ms - ttft_ms, "client"
        else:
            source = "server"
        server_load_ms = _ms(final.load_duration)
        cold = server_load_ms is not None and server_load_ms > self.cold_start_threshold_ms
        return Completion(
            text=self._scrub("".join(pieces)),
            prompt_tokens=int(final.prompt_eval_count or 0),
            completion_tokens=int(final.eval_count or 0),
            prompt_eval_ms=prompt_eval_ms,
            eval_ms=eval_ms,
            total_ms=total_ms,
            ttft_ms=ttft_ms,
            load_ms=server_load_ms if cold and server_load_ms is not None else 0.0,
            finish_reason=final.done_reason or "stop",
            model=self.model,
            extra={**chunk_timing(arrivals_ns), "server_total_ms": _ms(final.total_duration),
                   "server_load_ms": server_load_ms, "done_reason": final.done_reason,
                   "durations_source": source, "cold_start": cold, "endpoint": self.endpoint},
        )

    def preflight(self, timeout_s: float = 10.0) -> None:
        """The server knows :attr:`model` within ``timeout_s``: ``POST /api/show`` answers for it, or, where
        that says 404, ``GET /api/tags`` lists it (``name`` and ``name:latest`` are the same model); raises a
        :class:`~tsglab.errors.BackendError` otherwise. ``/api/show`` comes first because it resolves names
        as generation does, and a proxy in front of other servers (ollama-proxy-plus) lists only its own
        catalogue under ``/api/tags`` while it serves any model of a configured provider."""
        ollama = _import_ollama()
        started_ns = time.perf_counter_ns()
        self._local.status = None
        with attempt_limits(started_ns + int(timeout_s * 1e9), self.max_response_bytes) as limits:
            try:
                try:
                    self._client.show(self.model)
                    return
                except ollama.ResponseError as exc:
                    if exc.status_code != 404:
                        raise
                listing = self._client.list()
            except ollama.ResponseError as exc:
                raise self._response_error(exc, 0) from exc
            except Exception as exc:
                raise self._classify(exc, limits, timeout_s, started_ns, 0) from exc
        installed = sorted({str(m.model) for m in listing.models if m.model})
        wanted = {self.model, f"{self.model}:latest"} if ":" not in self.model else {self.model}
        if not wanted & set(installed):
            raise BackendError(f"{self.name}: model {self.model!r} is not installed on {self._shown_host} (installed: "
                               f"{installed[:10]}); pull it with `ollama pull {self.model}` or fix the tier's `model`.")

    def warm_up(self) -> float:
        """Nothing is loaded from here: 0.0. The server loads the model on the first request and reports
        it as ``load_ms`` (a cold start the warm-only view drops); preloading it here would hide that."""
        return 0.0

    def close(self) -> None:
        self._client.close()


def from_tier_spec(tier: TierSpec) -> OllamaBackend:
    """The registry's ``ollama`` factory: ``tier.endpoint`` is the host, ``tier.options`` go to Ollama."""
    return OllamaBackend(tier.model, host=tier.endpoint or None, **tier.options)
