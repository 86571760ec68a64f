"""httpx MockTransport helpers shared by the backend tests: a handler that records requests and
replays one response, and a byte stream that can pause between parts or break mid-way."""

from __future__ import annotations

import json
import time

import httpx


class Recorder:
    """A MockTransport handler: records every request, answers with ``content`` (or ``stream``)."""

    def __init__(self, content: bytes = b"", status: int = 200, stream=None, *,
                 content_type: str = "application/x-ndjson") -> None:
        self.content, self.status, self.stream = content, status, stream
        self.headers = {"content-type": content_type}
        self.requests: list[httpx.Request] = []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.requests.append(req)
        if self.stream is not None:
            return httpx.Response(self.status, headers=self.headers, stream=self.stream)
        return httpx.Response(self.status, headers=self.headers, content=self.content)

    @property
    def body(self) -> dict:
        return json.loads(self.requests[-1].content)


class PartStream(httpx.SyncByteStream):
    """Yields ``parts`` with ``pause_s`` before each after the first (a slow server); raises
    ``error`` instead of part ``break_after`` (a connection that breaks mid-answer)."""

    def __init__(self, parts: list[bytes], pause_s: float = 0.0, break_after: int | None = None,
                 error: Exception | None = None) -> None:
        self.parts, self.pause_s, self.break_after = parts, pause_s, break_after
        self.error = error or httpx.ReadError("connection reset by peer")

    def __iter__(self):
        for k, part in enumerate(self.parts):
            if k == self.break_after:
                raise self.error
            if k:
                time.sleep(self.pause_s)
            yield part
