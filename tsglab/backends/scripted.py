"""A scripted in-memory backend: deterministic answers and durations for tests and dry runs."""

from __future__ import annotations

import time
from collections.abc import Callable

from tsglab.backends.base import Completion, CompletionRequest
from tsglab.errors import BackendTimeout

Reply = str | Completion | BaseException


class ScriptedBackend:
    """Answers with ``reply(request)``: a text, a full :class:`Completion`, or an exception to raise.

    ``eval_ms_per_token`` and ``prompt_ms`` make durations proportional to the text, so cost
    gradients can be tested without a model; ``sleep=True`` also spends that time for real.
    """

    def __init__(
        self,
        reply: Callable[[CompletionRequest], Reply] | str,
        *,
        name: str = "scripted",
        prompt_ms: float = 1.0,
        eval_ms_per_token: float = 1.0,
        sleep: bool = False,
    ) -> None:
        self._reply = reply if callable(reply) else (lambda _request, text=reply: text)
        self.name = name
        self.prompt_ms = prompt_ms
        self.eval_ms_per_token = eval_ms_per_token
        self.sleep = sleep
        self.requests: list[CompletionRequest] = []

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
        if self.sleep:
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
            model=self.name,
        )

    def close(self) -> None:
        """Nothing to release."""
