"""The backend registry: built-ins by name, user registrations, entry points, the scripted backend's options."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import httpx
import pytest

from tsglab.backends import (
    ENTRY_POINT_GROUP,
    Backend,
    CompletionRequest,
    Message,
    backend_names,
    build_backend,
    build_backends,
    register_backend,
)
from tsglab.backends import registry as registry_module
from tsglab.backends.scripted import DEFAULT_REPLY, ERROR_KINDS, ScriptedBackend
from tsglab.config import TierSpec
from tsglab.errors import BackendError, BackendTimeout, SpecError


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """Each test starts with no user registrations and entry points not yet read."""
    monkeypatch.setattr(registry_module, "_registered", {})
    monkeypatch.setattr(registry_module, "_entry_points", None)


def ask(prompt: str, timeout_s: float | None = None) -> CompletionRequest:
    return CompletionRequest(messages=(Message("system", "Be brief."), Message("user", prompt)), max_tokens=16,
                             timeout_s=timeout_s)


def scripted(name="light", **options) -> TierSpec:
    return TierSpec(name=name, backend="scripted", model=f"model-{name}", options=options)


# --------------------------------------------------------------------------------------------------
# Built-ins


def test_built_in_names_are_listed():
    assert {"embedded", "ollama", "openai", "scripted"} <= set(backend_names())
    assert list(backend_names()) == sorted(backend_names())


def test_importing_the_backends_package_loads_no_optional_dependency():
    code = ("import sys, tsglab.backends as b; b.backend_names(); "
            "print([m for m in ('httpx', 'ollama', 'llama_cpp', 'tsglab.backends.embedded', "
            "'tsglab.backends.ollama_api', 'tsglab.backends.openai_compat') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_built_in_backend_class_has_the_whole_protocol():
    from tsglab.backends.embedded import EmbeddedBackend
    from tsglab.backends.ollama_api import OllamaBackend
    from tsglab.backends.openai_compat import OpenAICompatBackend

    for cls in (EmbeddedBackend, OllamaBackend, OpenAICompatBackend, ScriptedBackend):
        for method in ("complete", "warm_up", "close"):
            assert callable(getattr(cls, method, None)), f"{cls.__name__}.{method}"


def refusing_transport(seen: list[str]) -> dict:
    """Tier options that route a server backend's HTTP calls to a handler answering 503."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(503, text="busy")

    return {"client_kwargs": {"transport": httpx.MockTransport(handler)}}


@pytest.mark.parametrize(("backend_name", "endpoint", "url", "shown"), [
    ("openai", "http://10.1.2.3:8123/v1", "http://10.1.2.3:8123/v1/chat/completions", "openai:m@10.1.2.3:8123"),
    ("ollama", "http://10.9.8.7:11434", "http://10.9.8.7:11434/api/chat", "ollama:m@10.9.8.7:11434"),
])
def test_server_backends_built_from_a_tier_spec_use_its_endpoint_and_have_nothing_to_warm_up(
        backend_name, endpoint, url, shown):
    if backend_name == "ollama":
        pytest.importorskip("ollama")
    seen: list[str] = []
    backend = build_backend(TierSpec(name="std", backend=backend_name, model="m", endpoint=endpoint,
                                     options=refusing_transport(seen)))
    try:
        assert isinstance(backend, Backend)
        assert backend.warm_up() == 0.0
        assert backend.name == shown
        with pytest.raises(BackendError):
            backend.complete(ask("2+2?"))
        assert seen == [url]
    finally:
        backend.close()


def test_an_option_a_backend_does_not_take_names_the_tier_and_the_option():
    spec = TierSpec(name="light", backend="embedded", options={"n_thread": 2})
    with pytest.raises(SpecError, match=r"tiers.light: backend 'embedded' rejected the tier's settings "
                                        r"\(options \['n_thread'\]\).*n_thread"):
        build_backend(spec)


# --------------------------------------------------------------------------------------------------
# The scripted backend named in a spec


def test_scripted_reply_and_durations_come_from_options():
    backend = build_backend(scripted(reply="four words in here", prompt_ms=5, eval_ms_per_token=2.5))
    assert isinstance(backend, ScriptedBackend)
    assert backend.warm_up() == 0.0
    answer = backend.complete(ask("anything"))
    assert answer.text == "four words in here"
    assert (answer.prompt_eval_ms, answer.eval_ms, answer.total_ms) == (5.0, 10.0, 15.0)
    assert answer.model == "model-light"
    assert backend.name == "scripted:light"


def test_scripted_replies_match_a_prompt_substring_first_key_first():
    backend = build_backend(scripted(reply="fallback", replies={"JSON": '{"a": 1}', "JSON please": "never"}))
    assert backend.complete(ask("Only JSON please")).text == '{"a": 1}'
    assert backend.complete(ask("plain text")).text == "fallback"
    assert build_backend(scripted()).complete(ask("x")).text == DEFAULT_REPLY


def test_scripted_replies_look_at_the_prompt_not_the_system_message():
    backend = build_backend(scripted(reply="no", replies={"brief": "matched the system message"}))
    assert backend.complete(ask("hello")).text == "no"


@pytest.mark.parametrize("kind", ERROR_KINDS)
def test_scripted_error_option_raises_that_kind(kind):
    backend = build_backend(scripted(error=kind))
    with pytest.raises(BackendError, match=f"scripted:light: scripted {kind}") as caught:
        backend.complete(ask("x", timeout_s=2.0))
    assert caught.value.error_kind == kind
    if kind == "timeout":
        assert isinstance(caught.value, BackendTimeout)
        assert caught.value.elapsed_ms == 2000.0


def test_scripted_sleep_spends_the_reported_time():
    import time

    backend = build_backend(scripted(reply="one two", prompt_ms=20, eval_ms_per_token=15, sleep=True))
    started = time.perf_counter()
    backend.complete(ask("x"))
    assert time.perf_counter() - started >= 0.045


@pytest.mark.parametrize(("options", "match"), [
    ({"replys": {}}, r"tiers.light.options: unknown scripted-backend option\(s\) \['replys'\]; known: "),
    ({"reply": 3}, r"tiers.light.options.reply must be a text; got int 3"),
    ({"replies": ["a"]}, r"tiers.light.options.replies must map prompt substrings to answer texts"),
    ({"replies": {"a": 1}}, r"tiers.light.options.replies must map prompt substrings"),
    ({"prompt_ms": -1}, r"tiers.light.options.prompt_ms must be a number of ms >= 0; got -1"),
    ({"eval_ms_per_token": "fast"}, r"tiers.light.options.eval_ms_per_token must be a number"),
    ({"sleep": "yes"}, r"tiers.light.options.sleep must be true or false; got 'yes'"),
    ({"error": "http_418"}, r"tiers.light.options.error must be one of \['timeout', .*got 'http_418'"),
])
def test_scripted_options_are_validated_naming_tier_and_option(options, match):
    with pytest.raises(SpecError, match=match):
        build_backend(scripted(**options))


# --------------------------------------------------------------------------------------------------
# Unknown names, registration, entry points


def test_an_unknown_backend_names_the_tier_the_name_and_the_known_names():
    register_backend("mine", lambda spec: ScriptedBackend("x"))
    with pytest.raises(SpecError, match=r"tiers.enh.backend: unknown backend 'vllm'; known: \['embedded', 'mine', "
                                        r"'ollama', 'openai', 'scripted'\]. Register one with "
                                        r"tsglab.backends.register_backend"):
        build_backend(TierSpec(name="enh", backend="vllm"))


def test_a_registered_factory_gets_the_tier_spec():
    received = []

    def factory(spec: TierSpec) -> ScriptedBackend:
        received.append(spec)
        return ScriptedBackend(f"{spec.model} says hi", name=f"mine:{spec.name}")

    register_backend("mine", factory)
    spec = TierSpec(name="std", backend="mine", model="m1")
    backend = build_backend(spec)
    assert received == [spec]
    assert backend.complete(ask("x")).text == "m1 says hi"
    assert "mine" in backend_names()


def test_registering_a_taken_name_needs_replace():
    with pytest.raises(SpecError, match=r"a backend named 'scripted' exists already; pass replace=True"):
        register_backend("scripted", lambda spec: ScriptedBackend("x"))
    register_backend("scripted", lambda spec: ScriptedBackend("replaced"), replace=True)
    assert build_backend(scripted()).complete(ask("x")).text == "replaced"


@pytest.mark.parametrize(("name", "factory", "match"), [
    ("", lambda spec: None, r"`name` must be a non-empty string; got ''"),
    ("x", "not callable", r"`factory` must be callable as factory\(tier_spec\) -> Backend; got str"),
])
def test_register_backend_checks_its_arguments(name, factory, match):
    with pytest.raises(SpecError, match=match):
        register_backend(name, factory)


def test_a_factory_that_returns_no_backend_is_refused_naming_what_is_missing():
    class HalfBackend:
        name = "half"

        def complete(self, request):
            return None

    register_backend("half", lambda spec: HalfBackend())
    with pytest.raises(SpecError, match=r"tiers.light: the factory of backend 'half' returned a HalfBackend, which "
                                        r"lacks \['warm_up', 'close'\]"):
        build_backend(TierSpec(name="light", backend="half"))


def test_build_backends_keeps_the_ladder_order_and_closes_what_it_built_on_failure():
    closed = []

    class Closing(ScriptedBackend):
        def close(self) -> None:
            closed.append(self.name)

    register_backend("closing", lambda spec: Closing("x", name=spec.name))
    tiers = {t: TierSpec(name=t, backend="closing") for t in ("nano", "light", "std", "enh")}
    assert list(build_backends(tiers)) == ["nano", "light", "std", "enh"]
    broken = {"nano": tiers["nano"], "light": tiers["light"], "std": TierSpec(name="std", backend="nope")}
    with pytest.raises(SpecError, match=r"tiers\.std\.backend: unknown backend 'nope'"):
        build_backends(broken)
    assert closed == ["nano", "light"]


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A package declaring a backend in the entry-point group, installed on sys.path as a dist-info."""
    (tmp_path / "labplugin.py").write_text(textwrap.dedent("""
        from tsglab.backends.scripted import ScriptedBackend

        def make_backend(spec):
            return ScriptedBackend(f"plugin answer from {spec.model}", name="plugin:" + spec.name)

        broken = None
    """))
    dist = tmp_path / "labplugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: labplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nlabplug = labplugin:make_backend\n"
                                           "labbroken = labplugin:missing_function\nlabnone = labplugin:broken\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("labplugin", None)


def test_an_entry_point_adds_a_backend(installed_plugin):
    assert {"labplug", "labbroken", "labnone"} <= set(backend_names())
    backend = build_backend(TierSpec(name="enh", backend="labplug", model="big"))
    assert backend.complete(ask("x")).text == "plugin answer from big"
    assert backend.name == "plugin:enh"


def test_entry_points_are_read_only_when_a_name_is_not_known(installed_plugin, monkeypatch):
    import importlib.metadata

    reads = []
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: reads.append(kw) or real(**kw))
    build_backend(scripted())
    assert reads == []
    build_backend(TierSpec(name="enh", backend="labplug"))
    build_backend(TierSpec(name="std", backend="labplug"))
    assert reads == [{"group": ENTRY_POINT_GROUP}]  # once, then remembered


@pytest.mark.parametrize(("name", "match"), [
    ("labbroken", (r"tiers.enh.backend: backend 'labbroken' comes from the entry point "
                   r"'labplugin:missing_function' \(group 'tsglab.backends'\), which failed to load: AttributeError")),
    ("labnone", r"the entry point 'labplugin:broken' for backend 'labnone' is a NoneType, not a factory"),
])
def test_a_broken_entry_point_says_which_one(installed_plugin, name, match):
    with pytest.raises(SpecError, match=match):
        build_backend(TierSpec(name="enh", backend=name))


def test_a_spec_with_scripted_tiers_is_plain_data():
    from tsglab.config import spec_from_dict

    spec = spec_from_dict({"name": "dry", "tiers": {
        "light": {"backend": "scripted", "options": {"reply": "ok", "replies": {"JSON": "{}"}}},
        "std": {"backend": "scripted"}, "enh": {"backend": "scripted", "options": {"error": "http_5xx"}}}})
    json.dumps(spec.to_dict())  # goes into run.json as is
    backends = build_backends(spec.tiers)
    assert backends["light"].complete(ask("JSON now")).text == "{}"
    with pytest.raises(BackendError, match="scripted http_5xx"):
        backends["enh"].complete(ask("x"))
