"""Local servers for experiments and integration tests, started as subprocesses on 127.0.0.1.

Each launcher is a context manager: ``__enter__`` starts the process on a free port (or the one
given), waits until it answers HTTP, and ``__exit__`` stops it (SIGTERM, then SIGKILL), also when the
body raised. Output goes to ``<log_dir>/<name>-<port>.log``; a server that dies or does not answer in
time raises :class:`ServerStartError` naming that file and quoting its last lines. ``kill()`` sends
SIGKILL, to simulate a server crashing mid-run.

- :class:`LlamaCppServer`: ``python -m llama_cpp.server`` (OpenAI-compatible, ``.base_url`` ends in
  ``/v1``; extra ``llama-cpp-python[server]``).
- :class:`OllamaProxy`: ollama-proxy-plus serving Ollama's ``/api/*`` routes in front of an
  OpenAI-compatible upstream. It is configured through its environment: ``PROVIDERS_<NAME>_BASE_URL``
  and ``PROVIDERS_<NAME>_API_KEY`` register the upstream as provider ``<name>``, and Ollama model
  names ``<name>/<upstream model>`` route to it. It runs in the log directory with other providers'
  keys removed from its environment, so no stray ``.env`` / ``ollama-proxy.yaml`` or key leaks in.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from tsglab.errors import MissingDependencyError, ModelNotInstalledError, ServerStartError, SpecError

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, n_lines: int = 15) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(log unreadable)"
    return "\n".join(lines[-n_lines:]) or "(log empty)"


class _LocalServer:
    """Start, health-check and stop one subprocess bound to 127.0.0.1."""

    label = "server"
    health_path = "/"
    required_module = ""
    install_hint = ""

    def __init__(self, *, port: int | None, log_dir: str | os.PathLike | None, startup_timeout_s: float) -> None:
        if port is not None and not 0 < port < 65536:
            raise SpecError(f"`port` must be in [1, 65535]; got {port}. Leave it None for a free port.")
        if startup_timeout_s <= 0:
            raise SpecError(f"`startup_timeout_s` must be > 0; got {startup_timeout_s}.")
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self._log_dir_arg = Path(log_dir) if log_dir is not None else None
        self.log_dir: Path | None = None
        self.log_path: Path | None = None
        self._process: subprocess.Popen | None = None
        self._log_file: IO[bytes] | None = None

    # -- to override ---------------------------------------------------------------------------

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _environment(self) -> dict[str, str]:
        return dict(os.environ)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The process id while started, else None."""
        return self._process.pid if self._process is not None else None

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def start(self):
        """Start the process and wait until it answers ``health_path``; returns self."""
        if self._process is not None:
            raise ServerStartError(f"{self.label} is already running (pid {self.pid}, {self.url}).")
        self._check_installed()
        self.port = self.port or free_port()
        self.log_dir = self._log_dir_arg or Path(tempfile.mkdtemp(prefix=f"tsglab-{self.label}-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / f"{self.label}-{self.port}.log"
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            self._command(), stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.log_dir, env=self._environment(), start_new_session=True,
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _check_installed(self) -> None:
        import importlib.util

        if self.required_module and importlib.util.find_spec(self.required_module) is None:
            raise MissingDependencyError(f"{self.label} needs the `{self.required_module}` module: "
                                         f"{self.install_hint}")

    def _wait_until_ready(self) -> None:
        import httpx

        process, log_path = self._process, self.log_path
        assert process is not None
        assert log_path is not None
        deadline = time.monotonic() + self.startup_timeout_s
        last_error = "no answer yet"
        while True:
            code = process.poll()
            if code is not None:
                raise ServerStartError(
                    f"{self.label} exited with code {code} before answering on {self.url}; see its log "
                    f"{log_path}:\n{_tail(log_path)}"
                )
            try:
                response = httpx.get(self.url + self.health_path, timeout=1.0)
                if response.status_code < 500:
                    return
                last_error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last_error = type(exc).__name__
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.label} did not answer on {self.url}{self.health_path} within {self.startup_timeout_s:g} s"
                    f" (last: {last_error}); see its log {log_path}:\n{_tail(log_path)}"
                )
            time.sleep(0.1)  # polling interval while the server loads

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def kill(self) -> None:
        """SIGKILL the server now (simulates a crash); the launcher then counts as stopped."""
        process = self._process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        self.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self._process is not None else "stopped"
        return f"{type(self).__name__}({self.url if self.port else 'no port yet'}, {state}, log={self.log_path})"


class LlamaCppServer(_LocalServer):
    """``python -m llama_cpp.server`` serving one GGUF model on 127.0.0.1.

    ``base_url`` (``http://127.0.0.1:<port>/v1``) and ``model_alias`` (default: the file's stem) are what
    :class:`~tsglab.backends.openai_compat.OpenAICompatBackend` needs; use ``json_mode="json_object_schema"``
    with it. ``extra_args`` go to the server's command line (e.g. ``("--n_batch", "256")``).
    """

    label = "llama-cpp-server"
    health_path = "/v1/models"
    required_module = "llama_cpp.server"
    install_hint = "pip install 'tsglab[server]' (or `make setup`)."

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        port: int | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        model_alias: str | None = None,
        log_dir: str | os.PathLike | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout_s: float = 60.0,
    ) -> None:
        super().__init__(port=port, log_dir=log_dir, startup_timeout_s=startup_timeout_s)
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelNotInstalledError(f"`model_path` {self.model_path} is not a file; pass a GGUF path "
                                    "(e.g. tsglab.backends.models.resolve_model('smollm2-135m')).")
        if n_ctx < 1:
            raise SpecError(f"`n_ctx` must be >= 1; got {n_ctx}.")
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.model_alias = model_alias or self.model_path.stem
        self.extra_args = tuple(extra_args)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def _command(self) -> list[str]:
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path),
                   "--model_alias", self.model_alias, "--host", LOCALHOST, "--port", str(self.port),
                   "--n_ctx", str(self.n_ctx)]
        if self.n_threads is not None:
            command += ["--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads)]
        return command + list(self.extra_args)


class OllamaProxy(_LocalServer):
    """ollama-proxy-plus on 127.0.0.1 speaking Ollama's API in front of an OpenAI-compatible server.

    ``host`` is what :class:`~tsglab.backends.ollama_api.OllamaBackend` needs and
    ``model_name(upstream_model)`` the model name to ask for (``<provider>/<upstream_model>``). The proxy
    counts words, not tokens, in ``eval_count``/``prompt_eval_count``, reports ``load_duration`` and
    ``prompt_eval_duration`` as 0, and turns a ``format`` JSON Schema into an OpenAI ``json_schema``
    ``response_format`` (which llama_cpp.server rejects).
    """

    label = "ollama-proxy"
    health_path = "/api/version"
    required_module = "ollama_proxy"
    install_hint = "pip install 'tsglab[server]' (or `make setup`)."

    def __init__(
        self,
        upstream_base_url: str,
        *,
        port: int | None = None,
        provider: str = "llama",
        log_dir: str | os.PathLike | None = None,
        startup_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(port=port, log_dir=log_dir, startup_timeout_s=startup_timeout_s)
        if not provider.isidentifier() or provider.lower() != provider:
            raise SpecError(f"`provider` must be a lowercase identifier (it names env variables); got {provider!r}.")
        self.upstream_base_url = upstream_base_url.rstrip("/")
        self.provider = provider

    @property
    def host(self) -> str:
        return self.url

    def model_name(self, upstream_model: str) -> str:
        """The Ollama model name that routes to ``upstream_model`` on the upstream server."""
        return f"{self.provider}/{upstream_model}"

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "ollama_proxy", "--host", LOCALHOST, "--port", str(self.port)]

    def _environment(self) -> dict[str, str]:
        # the proxy only needs our provider: drop other providers, its config knobs and every API key
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith(("PROVIDERS_", "PROXY_", "AZURE_OPENAI_", "AWS_")) or k.endswith("_API_KEY")
                       or k == "EXTRA_MODELS")}
        prefix = f"PROVIDERS_{self.provider.upper()}"
        env[f"{prefix}_BASE_URL"] = self.upstream_base_url
        env[f"{prefix}_API_KEY"] = "EMPTY"  # llama_cpp.server without --api_key accepts any key
        return env
