"""Helpers shared by the HTTP backends: safe URL display, secret scrubbing, chunk timing."""

from __future__ import annotations

import itertools
import math
import statistics

REDACTED = "<redacted>"


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
