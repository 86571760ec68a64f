"""A scripted in-memory backend: deterministic answers and durations for tests and dry runs.

In a spec (``backend: scripted``) its behaviour is written in the tier's ``options``, so a whole
pipeline runs without a model::

    tiers:
      light: {backend: scripted, options: {reply: "Paris.", replies: {"JSON": '{"name": "Ada"}'}}}
      std:   {backend: scripted, options: {reply: "A longer answer.", eval_ms_per_token: 3}}
      enh:   {backend: scripted, options: {error: http_5xx}}

``reply`` is the answer (default :data:`DEFAULT_REPLY`); ``replies`` maps a substring of the prompt
(the first user message) to the answer for prompts containing it (the first matching key, in the
order written, wins over ``reply``); ``prompt_ms`` and ``eval_ms_per_token`` set the durations
reported; ``sleep: true`` spends them for real; ``error`` makes every call raise the backend error of
that kind (one of :data:`ERROR_KINDS`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from tsglab.config import TierSpec

Reply = str | Completion | BaseException

DEFAULT_REPLY = "Scripted answer."
ERROR_KINDS = ("timeout", "connect_error", "http_429", "http_4xx", "http_5xx", "malformed_response",
               "stream_interrupted", "backend_error")
_HTTP_STATUS = {"http_429": 429, "http_4xx": 400, "http_5xx": 503}
_OPTIONS = ("reply", "replies", "prompt_ms", "eval_ms_per_token", "sleep", "error")


class ScriptedBackend:
    """Answers with ``reply(request)``: a text, a full :class:`Completion`, or an exception to raise.

    ``eval_ms_per_token`` and ``prompt_ms`` make durations proportional to the text, so cost
    gradients can be tested without a model; ``sleep=True`` also spends that time for real.
    ``model`` is the model name answers report (default: ``name``).
    """

    def __init__(
        self,
        reply: Callable[[CompletionRequest], Reply] | str,
        *,
        name: str = "scripted",
        model: str | None = None,
        prompt_ms: float = 1.0,
        eval_ms_per_token: float = 1.0,
        sleep: bool = False,
    ) -> None:
        self._reply = reply if callable(reply) else (lambda _request, text=reply: text)
        self.name = name
        self.model = model if model is not None else name
        self.prompt_ms = prompt_ms
        self.eval_ms_per_token = eval_ms_per_token
        self.sleep = sleep
        self.requests: list[CompletionRequest] = []

    def warm_up(self) -> float:
        """Nothing to load: 0.0."""
        return 0.0

    def complete(self, request: CompletionRequest) -> Completion:
        self.requests.append(request)
        reply = self._reply(request)
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, Completion):
            return reply
        tokens = max(1, len(reply.split()))
        eval_ms = tokens * self.eval_ms_per_token
        total_ms = self.prompt_ms + eval_ms
        if request.timeout_s is not None and total_ms / 1e3 > request.timeout_s:
            if self.sleep:
                time.sleep(request.timeout_s)
            raise BackendTimeout(f"{self.name}: no answer within {request.timeout_s:g} s",
                                 elapsed_ms=request.timeout_s * 1e3)
        if request.cancel is not None:  # sleep token by token so a cancellation stops it part-way
            started = time.perf_counter()
            if request.cancel.wait(self.prompt_ms / 1e3 if self.sleep else 0.0):
                raise BackendCancelled(f"{self.name}: cancelled", elapsed_ms=(time.perf_counter() - started) * 1e3)
            for done in range(tokens):
                if request.cancel.wait(self.eval_ms_per_token / 1e3 if self.sleep else 0.0):
                    raise BackendCancelled(f"{self.name}: cancelled after {done} tokens", completion_tokens=done,
                                           elapsed_ms=(time.perf_counter() - started) * 1e3)
        elif self.sleep:
            time.sleep(total_ms / 1e3)
        prompt_tokens = sum(len(m.content.split()) for m in request.messages)
        return Completion(
            text=reply,
            prompt_tokens=prompt_tokens,
            completion_tokens=tokens,
            prompt_eval_ms=self.prompt_ms,
            eval_ms=eval_ms,
            total_ms=total_ms,
            ttft_ms=self.prompt_ms,
            model=self.model,
        )

    def close(self) -> None:
        """Nothing to release."""


def scripted_error(kind: str, name: str, request: CompletionRequest, prompt_ms: float = 0.0) -> BackendError:
    """The backend error of ``kind`` (one of :data:`ERROR_KINDS`) a scripted call raises."""
    message = f"{name}: scripted {kind} (tier option `error`)"
    if kind == "timeout":
        elapsed_ms = request.timeout_s * 1e3 if request.timeout_s is not None else prompt_ms
        return BackendTimeout(message, elapsed_ms=elapsed_ms)
    if kind in _HTTP_STATUS:
        return BackendHTTPError(message, status=_HTTP_STATUS[kind])
    return {"connect_error": BackendConnectError, "malformed_response": BackendMalformedResponse,
            "stream_interrupted": BackendStreamInterrupted, "backend_error": BackendError}[kind](message)


def from_tier_spec(tier: TierSpec) -> ScriptedBackend:
    """The registry's ``scripted`` factory: a :class:`ScriptedBackend` whose behaviour is ``tier.options``."""
    options = dict(tier.options)
    where = f"tiers.{tier.name}.options"
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise SpecError(f"{where}: unknown scripted-backend option(s) {unknown}; known: {sorted(_OPTIONS)}.")
    default = options.get("reply", DEFAULT_REPLY)
    if not isinstance(default, str):
        raise SpecError(f"{where}.reply must be a text; got {type(default).__name__} {default!r}.")
    replies = options.get("replies", {})
    if not isinstance(replies, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in replies.items()):
        raise SpecError(f"{where}.replies must map prompt substrings to answer texts, e.g. "
                        f"{{'JSON': '{{\"a\": 1}}'}}; got {replies!r}.")
    timing = {}
    for key in ("prompt_ms", "eval_ms_per_token"):
        if key in options:
            value = options[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise SpecError(f"{where}.{key} must be a number of ms >= 0; got {value!r}.")
            timing[key] = float(value)
    sleep = options.get("sleep", False)
    if not isinstance(sleep, bool):
        raise SpecError(f"{where}.sleep must be true or false; got {sleep!r}.")
    error = options.get("error")
    if error is not None and error not in ERROR_KINDS:
        raise SpecError(f"{where}.error must be one of {list(ERROR_KINDS)}; got {error!r}.")
    name = f"scripted:{tier.name}"
    prompt_ms = timing.get("prompt_ms", 1.0)

    def reply(request: CompletionRequest) -> Reply:
        if error is not None:
            if error == "timeout" and sleep and request.timeout_s is not None:
                time.sleep(request.timeout_s)
            return scripted_error(error, name, request, prompt_ms)
        prompt = next((m.content for m in request.messages if m.role == "user"), "")
        return next((answer for key, answer in replies.items() if key in prompt), default)

    return ScriptedBackend(reply, name=name, model=tier.model, sleep=sleep, **timing)
