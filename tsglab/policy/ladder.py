"""The tier ladder: which backend, model and decoding settings serve light, std and enh."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tsglab.backends.base import Backend, Completion, CompletionRequest, Message
from tsglab.errors import SpecError
from tsglab.policy.config import TIERS

JSON_HINT = "Answer with JSON only."
BACKENDS = ("embedded", "ollama", "openai")


@dataclass(frozen=True)
class TierSpec:
    """One rung of the ladder.

    ``backend``: ``embedded`` (llama.cpp in-process), ``ollama`` or ``openai`` (any OpenAI-compatible
    server). ``endpoint``: the server's URL (Ollama host, or the OpenAI base URL such as
    ``http://127.0.0.1:8000/v1``); empty means the environment (``OLLAMA_HOST``, ``OPENAI_BASE_URL``).
    ``api_key_env`` names the environment variable holding the key (default ``OPENAI_API_KEY``);
    an ``api_key`` written in the spec is used but never stored in events, manifests or logs.
    ``constrained_json`` decodes json tasks under their JSON Schema (grammar-constrained sampling);
    ``system_prompt`` is sent as a system message when non-empty. ``options`` go to the backend
    (e.g. Ollama's ``num_ctx``, ``keep_alive``; the embedded backend's ``n_threads``).
    """

    name: str
    backend: str = "embedded"
    model: str = "smollm2-135m"
    endpoint: str = ""
    api_key_env: str = ""
    api_key: str = field(default="", repr=False)
    max_tokens: int = 128
    constrained_json: bool = False
    system_prompt: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, values: dict[str, Any], where: str = "spec") -> TierSpec:
        known = {f.name for f in dataclasses.fields(cls)} - {"name"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SpecError(f"{where}: tiers.{name}: unknown key(s) {unknown}; known: {sorted(known)}.")
        spec = cls(name=name, **values)
        if spec.backend not in BACKENDS:
            raise SpecError(f"{where}: tiers.{name}.backend must be one of {list(BACKENDS)}; got {spec.backend!r}.")
        if spec.max_tokens < 1:
            raise SpecError(f"{where}: tiers.{name}.max_tokens must be >= 1; got {spec.max_tokens}.")
        return spec


def build_backend(spec: TierSpec) -> Backend:
    """Create the backend a tier names (imports are lazy: optional dependencies load only when used)."""
    if spec.backend == "embedded":
        from tsglab.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(spec.model, **spec.options)
    if spec.backend == "ollama":
        from tsglab.backends.ollama_api import OllamaBackend

        return OllamaBackend(spec.model, host=spec.endpoint or None, **spec.options)
    if spec.backend == "openai":
        from tsglab.backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(spec.model, base_url=spec.endpoint or None, api_key=spec.api_key or None,
                                   api_key_env=spec.api_key_env or None, **spec.options)
    raise SpecError(f"tiers.{spec.name}.backend must be one of {list(BACKENDS)}; got {spec.backend!r}.")


class TierLadder:
    """Maps tier names to (spec, backend) and turns a request into backend calls."""

    def __init__(self, specs: dict[str, TierSpec], backends: dict[str, Backend] | None = None) -> None:
        missing = [t for t in TIERS if t not in specs]
        if missing:
            raise SpecError(f"the tier ladder needs {list(TIERS)}; missing {missing}.")
        self.specs = specs
        self.backends = backends if backends is not None else {t: build_backend(specs[t]) for t in TIERS}

    def warm_up(self) -> dict[str, float]:
        """Load every model before the timed schedule starts; returns load ms per tier."""
        return {t: getattr(b, "warm_up", lambda: 0.0)() for t, b in self.backends.items()}

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
    ) -> Completion:
        """One attempt at ``tier``. ``repair_of=(previous_answer, failure_detail)`` makes it a repair turn."""
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
        constrain = spec.constrained_json and task == "json"
        schema = (json_schema or {"type": "object"}) if constrain else None
        request = CompletionRequest(
            messages=tuple(messages),
            max_tokens=spec.max_tokens,
            json_schema=schema,
            timeout_s=timeout_s,
            seed=seed,
        )
        return self.backends[tier].complete(request)

    def close(self) -> None:
        for backend in self.backends.values():
            backend.close()
