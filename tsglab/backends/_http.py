"""Helpers shared by the HTTP backends: one overall deadline and a byte cap per attempt, safe URL
display, secret scrubbing, chunk timing.

The deadline. httpx's timeouts apply to each socket operation (its read timeout starts again with
every byte), so a server that trickles bytes, or sends a line that never ends, keeps a request alive
forever. :func:`limited_transport` is an httpx transport whose sockets ask the calling thread's
:class:`AttemptLimits` before every connect, read and write: each operation waits at most the time
left to the attempt's deadline, one past it raises a timeout (and httpcore closes the connection),
and the bytes read per attempt are capped. The limits are per thread, so one client serves the
threads of an open-loop run, each request with its own deadline.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tsglab.config.secrets import REDACTED, Scrubber

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "REDACTED", "AttemptLimits", "Scrubber", "attempt_limits", "chunk_timing",
           "display_url", "excerpt", "host_port", "limited_transport", "read_capped", "scrub"]

#: bytes one attempt may read (headers and body): far above any answer of a chat model, far below a
#: runaway stream's memory
DEFAULT_MAX_RESPONSE_BYTES = 32 * 2**20

_local = threading.local()


@dataclass
class AttemptLimits:
    """The limits of one attempt, in the thread that makes it. ``expired`` / ``over_budget`` say which
    limit ended it (the backend turns that into a timeout or a malformed-response error)."""

    deadline_ns: int | None
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    bytes_read: int = 0
    expired: bool = False
    over_budget: bool = False

    def remaining_s(self) -> float | None:
        if self.deadline_ns is None:
            return None
        return (self.deadline_ns - time.perf_counter_ns()) / 1e9

    def timeout(self, timeout: float | None, error: type[Exception]) -> float | None:
        """The socket timeout for the next operation: ``timeout`` cut to the time left; ``error`` past it."""
        left = self.remaining_s()
        if left is None:
            return timeout
        if left <= 0:
            self.expired = True
            raise error("the attempt's overall deadline passed")
        return left if timeout is None else min(timeout, left)


@contextlib.contextmanager
def attempt_limits(deadline_ns: int | None, max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> Iterator[AttemptLimits]:
    """Enforce ``deadline_ns`` (``time.perf_counter_ns`` clock) and ``max_bytes`` on every socket
    operation of :class:`LimitedTransport` made by this thread inside the block."""
    limits = AttemptLimits(deadline_ns, max_bytes)
    previous = getattr(_local, "limits", None)
    _local.limits = limits
    try:
        yield limits
    finally:
        _local.limits = previous


def _current() -> AttemptLimits | None:
    return getattr(_local, "limits", None)


def _limited_stream_classes() -> tuple[type, type]:
    """The network stream and backend classes (built on first use: httpcore is imported only then)."""
    import httpcore

    class LimitedStream(httpcore.NetworkStream):
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            limits = _current()
            if limits is None:
                return self._inner.read(max_bytes, timeout)
            try:
                data = self._inner.read(max_bytes, limits.timeout(timeout, httpcore.ReadTimeout))
            except httpcore.ReadTimeout:
                left = limits.remaining_s()
                limits.expired = left is not None and left <= 0.001
                raise
            limits.bytes_read += len(data)
            if limits.bytes_read > limits.max_bytes:
                limits.over_budget = True
                raise httpcore.ReadError(f"the answer exceeded {limits.max_bytes} bytes")
            return data

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            limits = _current()
            if limits is not None:
                timeout = limits.timeout(timeout, httpcore.WriteTimeout)
            self._inner.write(buffer, timeout)

        def close(self) -> None:
            self._inner.close()

        def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                      timeout: float | None = None) -> Any:
            limits = _current()
            if limits is not None:
                timeout = limits.timeout(timeout, httpcore.ConnectTimeout)
            return LimitedStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

        def get_extra_info(self, info: str) -> Any:
            return self._inner.get_extra_info(info)

    class LimitedBackend(httpcore.NetworkBackend):
        def __init__(self) -> None:
            self._inner = httpcore.SyncBackend()

        def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                        socket_options: Any = None) -> Any:
            limits = _current()
            if limits is not None:
                timeout = limits.timeout(timeout, httpcore.ConnectTimeout)
            return LimitedStream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

        def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
            limits = _current()
            if limits is not None:
                timeout = limits.timeout(timeout, httpcore.ConnectTimeout)
            return LimitedStream(self._inner.connect_unix_socket(path, timeout, socket_options))

        def sleep(self, seconds: float) -> None:
            self._inner.sleep(seconds)

    return LimitedStream, LimitedBackend


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """httpcore's exceptions as httpx's, as httpx's own transport raises them."""
    import httpcore
    import httpx

    same: dict[type[Exception], type[Exception]] = {
        httpcore.ConnectTimeout: httpx.ConnectTimeout, httpcore.ReadTimeout: httpx.ReadTimeout,
        httpcore.WriteTimeout: httpx.WriteTimeout, httpcore.PoolTimeout: httpx.PoolTimeout,
        httpcore.ConnectError: httpx.ConnectError, httpcore.ReadError: httpx.ReadError,
        httpcore.WriteError: httpx.WriteError}
    try:
        yield
    except httpcore.TimeoutException as exc:
        raise same.get(type(exc), httpx.TimeoutException)(str(exc)) from exc
    except httpcore.NetworkError as exc:
        raise same.get(type(exc), httpx.NetworkError)(str(exc)) from exc
    except httpcore.RemoteProtocolError as exc:
        raise httpx.RemoteProtocolError(str(exc)) from exc
    except httpcore.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc)) from exc
    except httpcore.UnsupportedProtocol as exc:
        raise httpx.UnsupportedProtocol(str(exc)) from exc
    except httpcore.ProtocolError as exc:
        raise httpx.ProtocolError(str(exc)) from exc


def limited_transport(*, verify: Any = True, limits: Any = None) -> Any:
    """An httpx transport (HTTP/1.1 over a connection pool) whose every socket operation honours the
    calling thread's :func:`attempt_limits`; outside such a block it behaves as httpx's own."""
    return _limited_transport_class()(verify=verify, limits=limits)


_TRANSPORT_CLASS: type | None = None


def _limited_transport_class() -> type:
    global _TRANSPORT_CLASS
    if _TRANSPORT_CLASS is not None:
        return _TRANSPORT_CLASS
    import httpcore
    import httpx

    _, limited_backend = _limited_stream_classes()

    class _Body(httpx.SyncByteStream):
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __iter__(self) -> Iterator[bytes]:
            with _httpx_errors():
                yield from self._inner

        def close(self) -> None:
            with _httpx_errors():
                self._inner.close()

    class _LimitedTransport(httpx.BaseTransport):
        def __init__(self, *, verify: Any = True, limits: httpx.Limits | None = None) -> None:
            limits = limits or httpx.Limits(max_connections=None, max_keepalive_connections=100, keepalive_expiry=5.0)
            self._pool = httpcore.ConnectionPool(
                ssl_context=httpx.create_ssl_context(verify=verify), max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry, network_backend=limited_backend())

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            core = httpcore.Request(
                method=request.method,
                url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port,
                                 target=request.url.raw_path),
                headers=request.headers.raw, content=request.stream, extensions=request.extensions)
            with _httpx_errors():
                response = self._pool.handle_request(core)
            return httpx.Response(status_code=response.status, headers=response.headers, stream=_Body(response.stream),
                                  extensions=response.extensions)

        def close(self) -> None:
            self._pool.close()

    _TRANSPORT_CLASS = _LimitedTransport
    return _TRANSPORT_CLASS


def read_capped(response: Any, limit: int = 65536) -> bytes:
    """At most ``limit`` bytes of ``response``'s (decoded) body; the rest is not read."""
    data = bytearray()
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit])


def display_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe to put into names, messages and logs."""
    import httpx

    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path.rstrip('/')}"


def host_port(url: str, default_port: int | None = None) -> str:
    """``host:port`` of ``url`` (the scheme's default port when none is written)."""
    import httpx

    parsed = httpx.URL(url)
    port = parsed.port or default_port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{host}:{port}"


def scrub(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced (servers sometimes echo headers back)."""
    return text.replace(secret, REDACTED) if secret else text


def excerpt(text: str, limit: int = 200) -> str:
    """One line of at most ``limit`` characters, for error messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def chunk_timing(arrivals_ns: list[int]) -> dict[str, float | int]:
    """Inter-token latency from the arrival times of content chunks (NaN with fewer than two)."""
    gaps_ms = [(b - a) / 1e6 for a, b in itertools.pairwise(arrivals_ns)]
    if not gaps_ms:
        return {"itl_ms_mean": math.nan, "itl_ms_p50": math.nan, "itl_ms_max": math.nan, "n_chunks": len(arrivals_ns)}
    return {
        "itl_ms_mean": statistics.fmean(gaps_ms),
        "itl_ms_p50": statistics.median(gaps_ms),
        "itl_ms_max": max(gaps_ms),
        "n_chunks": len(arrivals_ns),
    }
