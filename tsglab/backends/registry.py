"""The backend registry: tier specs name a backend, the registry builds it.

Built in are ``embedded``, ``ollama``, ``openai`` and ``scripted``; each is imported only when a tier
uses it, so optional dependencies (llama-cpp-python, the ollama client, httpx) load only then. A user's
code adds one with :func:`register_backend`; a user's package adds one without any call by declaring
an entry point in the group ``tsglab.backends`` (name = the backend name, object = the factory), e.g.
in its ``pyproject.toml``::

    [project.entry-points."tsglab.backends"]
    mylab = "mylab.serving:make_backend"

A factory takes the tier's :class:`~tsglab.config.TierSpec` and returns a
:class:`~tsglab.backends.base.Backend`. Entry points are read on the first lookup of a name that is
neither built in nor registered (reading package metadata is not free, and most runs never need it).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from tsglab.backends.base import Backend
from tsglab.errors import SpecError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from tsglab.config import TierSpec

__all__ = ["ENTRY_POINT_GROUP", "BackendFactory", "backend_names", "build_backend", "build_backends",
           "register_backend"]

ENTRY_POINT_GROUP = "tsglab.backends"

BackendFactory = Callable[["TierSpec"], Backend]

# name -> "module:function"; imported on first use so `import tsglab.backends` stays cheap
_BUILTIN: dict[str, str] = {
    "embedded": "tsglab.backends.embedded:from_tier_spec",
    "ollama": "tsglab.backends.ollama_api:from_tier_spec",
    "openai": "tsglab.backends.openai_compat:from_tier_spec",
    "scripted": "tsglab.backends.scripted:from_tier_spec",
}

_lock = threading.Lock()
_registered: dict[str, BackendFactory] = {}
_entry_points: dict[str, EntryPoint] | None = None  # read once, on the first unknown name


def register_backend(name: str, factory: BackendFactory, *, replace: bool = False) -> None:
    """Make ``backend: <name>`` in a tier spec build ``factory(tier_spec)``.

    A name already built in or registered is refused unless ``replace=True`` (so two packages cannot
    silently take the same name); replacing a built-in name affects this process only.
    """
    if not isinstance(name, str) or not name:
        raise SpecError(f"register_backend: `name` must be a non-empty string; got {name!r}.")
    if not callable(factory):
        raise SpecError(f"register_backend({name!r}, ...): `factory` must be callable as factory(tier_spec) -> "
                        f"Backend; got {type(factory).__name__}.")
    with _lock:
        if not replace and (name in _registered or name in _BUILTIN):
            raise SpecError(f"register_backend: a backend named {name!r} exists already; pass replace=True to "
                            "replace it, or choose another name.")
        _registered[name] = factory


def backend_names() -> tuple[str, ...]:
    """Every backend name a tier may use: built in, registered, and declared by installed packages."""
    with _lock:
        names = set(_BUILTIN) | set(_registered) | set(_read_entry_points())
    return tuple(sorted(names))


def build_backend(tier_spec: TierSpec) -> Backend:
    """Build the backend ``tier_spec.backend`` names, configured by the tier spec.

    An unknown name raises :class:`SpecError` naming the tier, the name and the known names; so does a
    factory that rejects the tier's options or returns something that is not a :class:`Backend`.
    """
    name = tier_spec.backend
    factory = _factory(name, tier_spec.name)
    try:
        backend = factory(tier_spec)
    except TypeError as exc:  # most often an option the backend does not take, e.g. a misspelt keyword
        raise SpecError(f"tiers.{tier_spec.name}: backend {name!r} rejected the tier's settings "
                        f"(options {sorted(tier_spec.options)}): {exc}. Check tiers.{tier_spec.name}.options "
                        "against the backend's documented parameters.") from exc
    if not isinstance(backend, Backend):
        missing = [m for m in ("name", "complete", "warm_up", "close") if not hasattr(backend, m)]
        raise SpecError(f"tiers.{tier_spec.name}: the factory of backend {name!r} returned a "
                        f"{type(backend).__name__}, which lacks {missing}; a backend needs `name`, "
                        "`complete(request)`, `warm_up() -> float` and `close()`.")
    return backend


def build_backends(tiers: Mapping[str, TierSpec]) -> dict[str, Backend]:
    """One backend per tier, in the ladder's order. If one cannot be built, those already built are closed."""
    built: dict[str, Backend] = {}
    try:
        for tier, spec in tiers.items():
            built[tier] = build_backend(spec)
    except BaseException:
        for backend in built.values():
            # the build error is the one to report: a backend that also fails to close must not mask it
            with contextlib.suppress(Exception):
                backend.close()
        raise
    return built


def _factory(name: str, tier: str) -> BackendFactory:
    with _lock:
        if name in _registered:
            return _registered[name]
        if name in _BUILTIN:
            module, _, attribute = _BUILTIN[name].partition(":")
            return getattr(importlib.import_module(module), attribute)
        entry_point = _read_entry_points().get(name)
        if entry_point is None:
            known = sorted(set(_BUILTIN) | set(_registered) | set(_read_entry_points()))
            raise SpecError(f"tiers.{tier}.backend: unknown backend {name!r}; known: {known}. Register one with "
                            "tsglab.backends.register_backend(name, factory), or install a package that declares "
                            f"it in the entry-point group {ENTRY_POINT_GROUP!r}.")
        try:
            factory = entry_point.load()
        except Exception as exc:
            raise SpecError(f"tiers.{tier}.backend: backend {name!r} comes from the entry point "
                            f"{entry_point.value!r} (group {ENTRY_POINT_GROUP!r}), which failed to load: "
                            f"{type(exc).__name__}: {exc}. Reinstall the package that declares it.") from exc
        if not callable(factory):
            raise SpecError(f"tiers.{tier}.backend: the entry point {entry_point.value!r} for backend {name!r} is "
                            f"a {type(factory).__name__}, not a factory(tier_spec) -> Backend.")
        _registered[name] = factory
        return factory


def _read_entry_points() -> dict[str, EntryPoint]:
    """The group's entry points by name, read once per process (call with ``_lock`` held)."""
    global _entry_points
    if _entry_points is None:
        from importlib.metadata import entry_points

        _entry_points = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _entry_points
