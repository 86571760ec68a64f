"""Serving backends behind one protocol and a registry.

A tier spec names a backend (``backend: ollama``); :func:`build_backend` builds it. Built in:
``embedded`` (llama.cpp in-process), ``ollama``, ``openai`` (OpenAI-compatible servers) and
``scripted`` (answers written in the spec, no model). More come from :func:`register_backend` or a
package's ``tsglab.backends`` entry points. Importing this package loads no optional dependency:
each backend module is imported when a tier uses it.
"""

from __future__ import annotations

from tsglab.backends.base import Backend, Completion, CompletionRequest, Message, SupportsPreflight, preflight
from tsglab.backends.registry import (
    ENTRY_POINT_GROUP,
    BackendFactory,
    backend_names,
    build_backend,
    build_backends,
    register_backend,
)

__all__ = [
    "Backend",
    "BackendFactory",
    "Completion",
    "CompletionRequest",
    "ENTRY_POINT_GROUP",
    "Message",
    "SupportsPreflight",
    "backend_names",
    "build_backend",
    "build_backends",
    "preflight",
    "register_backend",
]
