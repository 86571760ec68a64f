"""The embedded backend's deadline during prompt processing and its context overflow (issue 10, item 2).

llama.cpp cannot run on every build machine, so these tests drive :class:`EmbeddedBackend` with a fake
``llama_cpp`` module that behaves as llama-cpp-python 0.3 does: ``llama_set_abort_callback`` registers
a ctypes-style callback that llama.cpp asks between the steps of a decode, an aborted decode raises
``RuntimeError("llama_decode returned 2")``, and a prompt longer than the context raises ``ValueError``.
The real thing is exercised by the integration tests (``test_integration_embedded.py``).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from tsglab.backends import CompletionRequest, Message, embedded
from tsglab.errors import BackendContextOverflow, BackendError, BackendTimeout


class FakeLlama:
    """Prompt processing takes ``prompt_s`` (asking the abort callback every 5 ms), then one token."""

    def __init__(self, prompt_s: float, n_ctx: int = 2048) -> None:
        self.prompt_s, self.n_ctx_value, self.ctx, self.n_tokens = prompt_s, n_ctx, object(), 0
        self.abort = None
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def create_chat_completion(self, messages, max_tokens, **_kwargs):
        n_prompt = sum(len(m["content"].split()) for m in messages)
        if n_prompt + max_tokens > self.n_ctx_value:
            raise ValueError(f"Requested tokens ({n_prompt + max_tokens}) exceed context window of {self.n_ctx_value}")

        def stream():
            end = time.perf_counter() + self.prompt_s
            while time.perf_counter() < end:
                if self.abort is not None and self.abort(None):
                    raise RuntimeError("llama_decode returned 2")
                time.sleep(0.005)
            yield {"choices": [{"delta": {"content": "hi"}, "finish_reason": None}]}
            yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}

        return stream()


def _fake_module(llama: FakeLlama, *, with_abort: bool = True, callback_type=None) -> SimpleNamespace:
    def set_abort(ctx, callback, data):
        assert ctx is llama.ctx
        llama.abort = callback

    module = SimpleNamespace(Llama=lambda **_kw: llama, llama_perf_context_reset=lambda ctx: None,
                             llama_perf_context=lambda ctx: SimpleNamespace(n_eval=1, n_p_eval=3))
    if with_abort:
        module.llama_set_abort_callback = set_abort
        module.ggml_abort_callback = callback_type or (lambda function: function)
    return module


@pytest.fixture
def backend_with(monkeypatch, tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")

    def make(llama: FakeLlama, **module_options) -> embedded.EmbeddedBackend:
        monkeypatch.setattr(embedded, "_CACHE", {})
        monkeypatch.setattr(embedded, "_import_llama_cpp", lambda: _fake_module(llama, **module_options))
        return embedded.EmbeddedBackend("fake", model_path=model, n_ctx=2048, n_threads=1)

    return make


def _request(words: int = 3, timeout_s: float | None = 0.3) -> CompletionRequest:
    return CompletionRequest(messages=(Message("user", "word " * words),), max_tokens=8, timeout_s=timeout_s)


def test_a_long_prompt_stops_at_the_deadline_during_prompt_processing(backend_with):
    llama = FakeLlama(prompt_s=5.0)
    backend = backend_with(llama)
    started = time.monotonic()
    with pytest.raises(BackendTimeout, match=r"no answer within 0.3 s \(llama.cpp stopped by the deadline"):
        backend.complete(_request(timeout_s=0.3))
    assert time.monotonic() - started < 0.6
    assert llama.resets >= 2  # before the call, and after the abort (the context was half filled)


def test_the_deadline_is_cleared_after_each_call(backend_with):
    llama = FakeLlama(prompt_s=0.05)
    backend = backend_with(llama)
    with pytest.raises(BackendTimeout):
        backend.complete(_request(timeout_s=0.01))
    assert backend.complete(_request(timeout_s=None)).text == "hi"  # no stale deadline aborts it


def test_a_prompt_longer_than_the_context_is_a_documented_kind(backend_with):
    backend = backend_with(FakeLlama(prompt_s=0.0))
    with pytest.raises(BackendContextOverflow, match=r"does not fit the context window .* raise the tier option "
                                                     r"`n_ctx` \(now 2048\)") as caught:
        backend.complete(_request(words=3000))
    assert caught.value.error_kind == "context_overflow"


def test_other_llama_failures_stay_backend_errors(backend_with):
    class Broken(FakeLlama):
        def create_chat_completion(self, messages, max_tokens, **_kwargs):
            raise RuntimeError("llama_decode returned -1")

    backend = backend_with(Broken(prompt_s=0.0))
    with pytest.raises(BackendError, match=r"llama\.cpp failed: llama_decode returned -1") as caught:
        backend.complete(_request())
    assert caught.value.error_kind == "backend_error"


def test_preflight_names_a_missing_model_file(tmp_path):
    backend = embedded.EmbeddedBackend("fake", model_path=tmp_path / "missing.gguf")
    with pytest.raises(BackendError, match=r"the model file .*missing.gguf does not exist; install the model"):
        backend.preflight()


def test_a_ctrl_c_inside_llama_cpp_stops_the_call_instead_of_being_swallowed(backend_with, monkeypatch):
    """A Ctrl-C (or the runner's SIGTERM) that lands while llama.cpp decodes runs its Python handler inside
    the abort callback; ctypes cannot raise out of a callback and used to drop it, so a run with embedded
    models could only be stopped with SIGKILL. Here the callbacks are real ctypes thunks: one raises
    KeyboardInterrupt as the signal handler would, and the decode must stop with it, not run to the end."""
    import ctypes
    import sys

    callback_type = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p)

    def interrupted(_data):
        raise KeyboardInterrupt("SIGTERM")

    signal_in_callback = callback_type(interrupted)

    class Interrupted(FakeLlama):
        def create_chat_completion(self, messages, max_tokens, **_kwargs):
            def stream():
                for step in range(1000):  # 5 s of prompt processing unless aborted
                    if step == 3:
                        signal_in_callback(None)  # the handler's KeyboardInterrupt, inside a ctypes callback
                    if self.abort(None):
                        raise RuntimeError("llama_decode returned 2")
                    time.sleep(0.005)
                yield {"choices": [{"delta": {"content": "hi"}, "finish_reason": "stop"}]}

            return stream()

    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # restored after the test
    llama = Interrupted(prompt_s=5.0)
    backend = backend_with(llama, callback_type=callback_type)
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        backend.complete(_request(timeout_s=None))
    assert time.perf_counter() - started < 1.0
    assert llama.resets >= 1  # the half-filled context is cleared
    assert embedded._PENDING_INTERRUPTS == []
