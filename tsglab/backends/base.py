"""The one interface every serving backend implements."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tsglab.errors import BackendError, PreflightError


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class CompletionRequest:
    """What a backend is asked to do. ``json_schema`` set means: constrain decoding to that schema.

    ``cancel``, when given, is an event the caller sets to stop the generation early (a speculative attempt
    of parallel enforcement); a backend checks it between tokens and raises
    :class:`~tsglab.errors.BackendCancelled` with the tokens generated so far. A backend that cannot stop
    mid-generation may finish and then raise it."""

    messages: tuple[Message, ...]
    max_tokens: int
    json_schema: dict | None = None
    timeout_s: float | None = None
    temperature: float = 0.0
    seed: int = 0
    cancel: threading.Event | None = field(default=None, compare=False, repr=False)

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


@dataclass(frozen=True)
class Completion:
    """A finished generation with server-side (or in-process) durations in milliseconds.

    ``prompt_eval_ms`` is the time to process the prompt (time to first token for streaming
    backends), ``eval_ms`` the generation time after it; ``load_ms`` > 0 marks a cold start.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    prompt_eval_ms: float
    eval_ms: float
    total_ms: float
    ttft_ms: float = math.nan
    load_ms: float = 0.0
    finish_reason: str = "stop"
    model: str = ""
    extra: dict = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """What the executor calls. Build one from a tier spec with :func:`tsglab.backends.build_backend`.

    ``name`` identifies the backend in events (e.g. ``"ollama:llama3.2:1b@127.0.0.1:11434"``).
    """

    name: str

    def complete(self, request: CompletionRequest) -> Completion:
        """Run one completion; raise :class:`~tsglab.errors.BackendTimeout` past ``request.timeout_s``
        and another :class:`~tsglab.errors.BackendError` for any other failure."""
        ...

    def warm_up(self) -> float:
        """Load what the first request would otherwise load, before the timed schedule starts; return
        the load time in ms (0.0 when there is nothing to load here)."""
        ...

    def close(self) -> None:
        """Release connections or handles; the backend is not used afterwards."""
        ...


@runtime_checkable
class SupportsPreflight(Protocol):
    """Optional: a backend that can check, before the schedule starts, that its server answers and
    serves its model (or that its model file is there). ``preflight`` raises a
    :class:`~tsglab.errors.BackendError` saying what is wrong and how to fix it; it loads nothing and
    sends no completion. The runner calls it for every tier unless the spec says ``preflight: false``."""

    def preflight(self) -> None: ...


def preflight(backends: Mapping[str, Backend], endpoints: Mapping[str, str] | None = None) -> None:
    """Run the pre-flight check of every backend that has one (tier name → backend); the first failure
    raises :class:`~tsglab.errors.PreflightError` naming the tier, the backend, its endpoint and the fix."""
    for tier, backend in backends.items():
        if not isinstance(backend, SupportsPreflight):
            continue
        try:
            backend.preflight()
        except BackendError as exc:
            where = (endpoints or {}).get(tier) or "its default endpoint"
            raise PreflightError(f"tiers.{tier}: pre-flight check of {backend.name} ({where}) failed: {exc} "
                                 "Start or fix the server (or the tier's settings), or skip the check with "
                                 "`preflight: false` in the spec (CLI: `tsglab run --no-preflight`).") from exc
