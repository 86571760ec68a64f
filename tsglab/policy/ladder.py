"""The tier ladder: which backend, model and decoding settings serve each rung, lowest first.

The ladder's rungs and their order are the spec's (``tiers:``, any names). The ladder does not build
backends (that is :func:`tsglab.backends.build_backends`, called by the runner): it is handed them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from tsglab.backends.base import Backend, Completion, CompletionRequest, Message
from tsglab.config import TierSpec
from tsglab.errors import SpecError

__all__ = ["JSON_HINT", "TierLadder", "TierSpec"]  # TierSpec: re-exported for code that imported it from here

JSON_HINT = "Answer with JSON only."


class TierLadder:
    """Maps tier names to (spec, backend) and turns a request into backend calls.

    ``specs`` is the ladder in order, lowest rung first (an ``ExperimentSpec.tiers``); ``backends`` has
    one backend per tier (``build_backends(specs)``, or scripted ones in tests).
    """

    def __init__(self, specs: Mapping[str, TierSpec], backends: Mapping[str, Backend]) -> None:
        if not specs:
            raise SpecError("TierLadder: `specs` is empty; a ladder needs at least one tier (lowest rung first).")
        missing = [t for t in specs if t not in backends]
        extra = [t for t in backends if t not in specs]
        if missing or extra:
            raise SpecError(f"TierLadder: `backends` must have one backend per tier {list(specs)}; missing "
                            f"{missing}, not on the ladder {extra}. Build them with "
                            "tsglab.backends.build_backends(specs).")
        self.specs = dict(specs)
        self.backends = {t: backends[t] for t in specs}

    @property
    def tiers(self) -> tuple[str, ...]:
        """The tier names, lowest rung first."""
        return tuple(self.specs)

    def warm_up(self) -> dict[str, float]:
        """Load every model before the timed schedule starts; returns load ms per tier."""
        return {t: b.warm_up() for t, b in self.backends.items()}

    def generate(
        self,
        tier: str,
        prompt: str,
        *,
        task: str,
        json_schema: dict | None,
        timeout_s: float | None,
        repair_of: tuple[str, str] | None = None,
        seed: int = 0,
        constrain: bool | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion:
        """One attempt at ``tier``. ``repair_of=(previous_answer, failure_detail)`` makes it a repair turn.

        ``constrain`` overrides the tier's ``constrained_json`` for a json task (an arm's
        ``guard.json_decoding``); ``cancel`` lets the caller stop a speculative attempt (see
        :class:`~tsglab.backends.base.CompletionRequest`)."""
        spec = self.specs[tier]
        messages: list[Message] = []
        if spec.system_prompt:
            messages.append(Message("system", spec.system_prompt))
        messages.append(Message("user", prompt))
        if repair_of is not None:
            previous, detail = repair_of
            fix = f" {JSON_HINT}" if task == "json" else ""
            messages.append(Message("assistant", previous))
            messages.append(Message("user", f"That answer failed a check ({detail}). Answer again.{fix}"))
        constrained = (spec.constrained_json if constrain is None else constrain) and task == "json"
        schema = (json_schema or {"type": "object"}) if constrained else None
        request = CompletionRequest(
            messages=tuple(messages),
            max_tokens=spec.max_tokens,
            json_schema=schema,
            timeout_s=timeout_s,
            seed=seed,
            cancel=cancel,
        )
        return self.backends[tier].complete(request)

    def close(self) -> None:
        for backend in self.backends.values():
            backend.close()
