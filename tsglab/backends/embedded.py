"""In-process llama.cpp backend (llama-cpp-python), the default: real inference with no server.

Each request is computed from an empty context by default: llama.cpp's prompt-prefix cache changes
the arithmetic of prompt processing (batch splits), and with it, now and then, a greedy answer, so an
answer would depend on which request ran before. ``reuse_prefix_cache=True`` trades that for speed.

Durations are measured here by streaming: ``prompt_eval_ms`` is the time to the first token (prompt
processing plus one decode step), ``eval_ms`` the rest of the generation. Token counts come from
llama.cpp's per-context counters, reset before each call. One model instance is shared per process
and guarded by a lock (a llama.cpp context is not thread-safe).

The request's ``timeout_s`` holds during prompt processing too: an abort callback registered with
llama.cpp (``llama_set_abort_callback``) is asked between the steps of every decode, the prompt's
included, and stops it once the deadline has passed; the call then ends as a ``timeout`` and the
context is reset. During generation the deadline is also checked after each token. A prompt that
does not fit the context window (with the answer's ``max_tokens``) ends as ``context_overflow``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tsglab.backends._http import chunk_timing
from tsglab.backends.base import Completion, CompletionRequest
from tsglab.backends.models import MODELS, resolve_model
from tsglab.errors import BackendCancelled, BackendContextOverflow, BackendError, BackendTimeout, MissingDependencyError

_CACHE: dict[tuple, tuple] = {}
_CACHE_LOCK = threading.Lock()

if TYPE_CHECKING:
    from tsglab.config import TierSpec


def _import_llama_cpp():
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependencyError(
            "the embedded backend needs llama-cpp-python: run `make setup` or "
            "`pip install 'tsglab[embedded]'` (it builds from source, ~6 min on 2 cores)."
        ) from exc
    return llama_cpp


# A Ctrl-C (or the runner's SIGTERM, raised as KeyboardInterrupt) that arrives while llama.cpp runs a decode
# is delivered inside the abort callback, the only Python code running then. ctypes cannot raise out of a
# callback: it hands the exception to sys.unraisablehook and lets llama.cpp go on, so the interrupt was lost
# and a run could not be stopped short of SIGKILL. The hook below keeps it here instead; the next call of
# the callback aborts the decode, and ``complete`` raises it once llama.cpp has returned.
_PENDING_INTERRUPTS: list[BaseException] = []
_HOOK_LOCK = threading.Lock()


def _keep_interrupts(unraisable) -> None:
    if isinstance(unraisable.exc_value, (KeyboardInterrupt, SystemExit)):
        _PENDING_INTERRUPTS.append(unraisable.exc_value)
    else:
        _previous_unraisablehook(unraisable)


_previous_unraisablehook = sys.unraisablehook


def _install_interrupt_hook() -> None:
    global _previous_unraisablehook
    with _HOOK_LOCK:
        if sys.unraisablehook is not _keep_interrupts:
            _previous_unraisablehook, sys.unraisablehook = sys.unraisablehook, _keep_interrupts


def _raise_pending_interrupt() -> None:
    if _PENDING_INTERRUPTS:
        interrupt = _PENDING_INTERRUPTS.pop(0)
        _PENDING_INTERRUPTS.clear()
        raise interrupt


class _Deadline:
    """The deadline of the call running on one llama.cpp context, asked by its abort callback."""

    def __init__(self) -> None:
        self.deadline_ns: int | None = None
        self.fired = False
        self.callback: object = None  # the ctypes callback: referenced here so it outlives the context's use

    def should_abort(self, _data: object = None) -> bool:
        if _PENDING_INTERRUPTS:  # a Ctrl-C or SIGTERM delivered inside an earlier call of this callback
            return True
        if self.deadline_ns is not None and time.perf_counter_ns() > self.deadline_ns:
            self.fired = True
            return True
        return False


def _register_abort(llama_cpp, llama) -> _Deadline | None:
    """An abort callback on ``llama``'s context (None when this llama-cpp-python has no such binding)."""
    setter = getattr(llama_cpp, "llama_set_abort_callback", None)
    callback_type = getattr(llama_cpp, "ggml_abort_callback", None)
    if setter is None or callback_type is None:
        return None
    _install_interrupt_hook()
    deadline = _Deadline()
    deadline.callback = callback_type(deadline.should_abort)
    setter(llama.ctx, deadline.callback, None)
    return deadline


def _load(path: Path, chat_format: str | None, n_ctx: int, n_threads: int):
    """Load (once per process) a llama.cpp model; returns (llama, lock, load_ms of the first load, deadline)."""
    key = (str(path), chat_format, n_ctx, n_threads)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        llama_cpp = _import_llama_cpp()
        started = time.perf_counter_ns()
        llama = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            chat_format=chat_format,
            seed=0,
            verbose=False,
        )
        load_ms = (time.perf_counter_ns() - started) / 1e6
        _CACHE[key] = (llama, threading.Lock(), load_ms, _register_abort(llama_cpp, llama))
        return _CACHE[key]


class EmbeddedBackend:
    """A GGUF model run in-process by llama.cpp.

    Parameters
    ----------
    model : a name from :data:`tsglab.backends.models.MODELS` (e.g. ``"smollm2-135m"``).
    model_path : an explicit GGUF path instead of a named model.
    chat_format : llama-cpp-python chat format; default: the model's (Gemma, a base model: ``"gemma"``).
    n_ctx, n_threads : context length and CPU threads (default: all cores).
    reuse_prefix_cache : reuse the KV cache of a shared prompt prefix (faster, but answers then
        depend on the previous request; off by default so every answer is reproducible alone).
    """

    def __init__(
        self,
        model: str = "smollm2-135m",
        *,
        model_path: str | os.PathLike | None = None,
        chat_format: str | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        reuse_prefix_cache: bool = False,
    ) -> None:
        self.model = model
        self.path = Path(model_path) if model_path else resolve_model(model)
        if chat_format is None and model in MODELS:
            chat_format = MODELS[model].chat_format
        self.chat_format = chat_format
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self.reuse_prefix_cache = reuse_prefix_cache
        self.name = f"embedded:{model}"
        self._cold = True

    def warm_up(self) -> float:
        """Load the model now; returns the load time in ms (0 when it was already loaded)."""
        _, _, load_ms, _ = _load(self.path, self.chat_format, self.n_ctx, self.n_threads)
        first, self._cold = self._cold, False
        return load_ms if first else 0.0

    def complete(self, request: CompletionRequest) -> Completion:
        llama, lock, load_ms, deadline = _load(self.path, self.chat_format, self.n_ctx, self.n_threads)
        load_ms = load_ms if self._cold else 0.0
        self._cold = False
        llama_cpp = _import_llama_cpp()
        kwargs: dict = {}
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        with lock:
            started = time.perf_counter_ns()
            if request.cancelled():  # cancelled while waiting for the model: nothing was generated
                raise BackendCancelled(f"{self.name}: cancelled before it started", elapsed_ms=0.0)
            first_token_ns = None
            pieces: list[str] = []
            piece_ns: list[int] = []
            finish_reason = "stop"
            llama_cpp.llama_perf_context_reset(llama.ctx)
            if not self.reuse_prefix_cache:
                llama.reset()
            if deadline is not None:
                deadline.fired = False
                deadline.deadline_ns = None if request.timeout_s is None else started + int(request.timeout_s * 1e9)
            try:
                stream = llama.create_chat_completion(
                    messages=messages,
                    max_tokens=request.max_tokens,
                    temperature=request.temperature,
                    seed=request.seed,
                    stream=True,
                    **kwargs,
                )
                for chunk in stream:
                    choice = chunk["choices"][0]
                    piece = choice.get("delta", {}).get("content") or ""
                    if piece:
                        piece_ns.append(time.perf_counter_ns())
                        if first_token_ns is None:
                            first_token_ns = piece_ns[-1]
                    pieces.append(piece)
                    if choice.get("finish_reason"):
                        finish_reason = choice["finish_reason"]
                    elapsed_s = (time.perf_counter_ns() - started) / 1e9
                    if request.cancelled():
                        stream.close()
                        raise BackendCancelled(f"{self.name}: cancelled after {len(piece_ns)} tokens",
                                               elapsed_ms=elapsed_s * 1e3, completion_tokens=len(piece_ns))
                    if request.timeout_s is not None and elapsed_s > request.timeout_s:
                        stream.close()
                        raise BackendTimeout(
                            f"{self.name}: no answer within {request.timeout_s:g} s",
                            elapsed_ms=elapsed_s * 1e3,
                        )
            except (BackendTimeout, BackendCancelled):
                raise
            except (RuntimeError, ValueError) as exc:
                if _PENDING_INTERRUPTS:  # the decode was aborted for a Ctrl-C or SIGTERM, not for an error
                    llama.reset()
                    _raise_pending_interrupt()
                raise self._failure(exc, deadline, request, started, llama) from exc
            finally:
                if deadline is not None:
                    deadline.deadline_ns = None
            _raise_pending_interrupt()  # delivered during the last step: the answer is complete, the run stops
            ended = time.perf_counter_ns()
            perf = llama_cpp.llama_perf_context(llama.ctx)
            context_tokens = int(llama.n_tokens)
        total_ms = (ended - started) / 1e6
        ttft_ms = (first_token_ns - started) / 1e6 if first_token_ns is not None else total_ms
        return Completion(
            text="".join(pieces),
            # llama.cpp reuses a cached prompt prefix: n_p_eval counts only the new prompt tokens
            prompt_tokens=max(context_tokens - int(perf.n_eval), int(perf.n_p_eval)),
            completion_tokens=int(perf.n_eval),
            prompt_eval_ms=ttft_ms,
            eval_ms=total_ms - ttft_ms,
            total_ms=total_ms,
            ttft_ms=ttft_ms,
            load_ms=load_ms,
            finish_reason=finish_reason,
            model=self.model,
            extra={"constrained": request.json_schema is not None, "prompt_tokens_evaluated": int(perf.n_p_eval),
                   **chunk_timing(piece_ns)},
        )

    def _failure(self, exc: Exception, deadline: _Deadline | None, request: CompletionRequest, started: int,
                 llama) -> BackendError:
        elapsed_ms = (time.perf_counter_ns() - started) / 1e6
        if deadline is not None and deadline.fired:
            llama.reset()  # the aborted decode left the context half-filled
            return BackendTimeout(f"{self.name}: no answer within {request.timeout_s:g} s (llama.cpp stopped by the "
                                  f"deadline after {elapsed_ms:.0f} ms); raise `load.timeout_s`, shorten the prompt "
                                  "or lower `max_tokens`.", elapsed_ms=elapsed_ms)
        text = str(exc)
        if "context window" in text or "exceed context" in text:
            return BackendContextOverflow(f"{self.name}: the prompt does not fit the context window ({text}); raise "
                                          f"the tier option `n_ctx` (now {self.n_ctx}) or shorten the prompt.")
        return BackendError(f"{self.name}: llama.cpp failed: {text}")

    def preflight(self) -> None:
        """The model file is there and llama-cpp-python is installed (nothing is loaded)."""
        if not self.path.is_file():
            raise BackendError(f"{self.name}: the model file {self.path} does not exist; install the model "
                               "(`make setup`) or fix `model_path` in the tier's options.")
        _import_llama_cpp()

    def close(self) -> None:
        """Models stay cached for the process; nothing to release per backend object."""


def from_tier_spec(tier: TierSpec) -> EmbeddedBackend:
    """The registry's ``embedded`` factory: ``tier.model`` run in-process, ``tier.options`` as keywords."""
    return EmbeddedBackend(tier.model, **tier.options)
