"""A real JupyterLab server and a Debian chromium driven by Playwright, for the browser tests of the widgets.

The server runs from this venv on 127.0.0.1 (a free port, a random token, no browser, no news, no update
check, no PyPI extension manager: the CI machine has no network) with every Jupyter directory in a
temporary folder, so neither the user's settings nor their kernels leak in. ``window.jupyterapp`` is
exposed so a test drives JupyterLab through its own commands (as JupyterLab's Galata tests do) instead of
guessing at keyboard focus.

Every wait has a deadline; when one passes, the error says what was awaited, what the page showed
(the notebook's cell outputs as text) and the end of the server's log.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# what a closed network and a root user need; Playwright adds its own automation flags
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
SERVER_START_S = 90.0
LOG_TAIL_CHARS = 4000
# JupyterLab asks the kernel for a subshell (on the control channel) when the first widget comm opens; the
# kernel answers with busy/idle statuses whose parent is that request, and a server whose untracked message
# types do not list it takes that idle as the kernel's state while a cell still runs (docs/widgets.md,
# "Kernel status"). The tests' server lists them, as the docs tell users to, so a status the monitor itself
# caused would still show.
SUBSHELL_CONTROL_MESSAGES = ("create_subshell_request", "create_subshell_reply", "delete_subshell_request",
                             "delete_subshell_reply", "list_subshell_request", "list_subshell_reply")


def free_port() -> int:
    """A port nobody listens on now (the server is told not to try others, so a race fails loudly)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook of code cells on the ``python3`` kernel (the venv's kernelspec)."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, str(path))
    return path


@dataclass
class JupyterLab:
    """A running ``jupyter lab``: where it serves, its token, its root folder and its log."""

    process: subprocess.Popen
    base_url: str
    token: str
    root: Path
    log_path: Path

    def url(self, notebook: str) -> str:
        """The notebook in a workspace of its own, so JupyterLab does not reopen the previous tests' tabs."""
        workspace = Path(notebook).stem
        return f"{self.base_url}lab/workspaces/{workspace}/tree/{notebook}?token={self.token}"

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
        return text[-chars:]

    def status(self) -> dict[str, Any] | None:
        """``/api/status`` as JSON, or ``None`` while the server does not answer."""
        request = urllib.request.Request(f"{self.base_url}api/status",
                                         headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return dict(json.load(response))
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return None

    def stop(self) -> None:
        """SIGTERM (the server shuts its kernels down), then SIGKILL what is left of its process group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        # kernels the server started share its group; none may outlive the tests
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def start_jupyterlab(root: Path, state: Path) -> JupyterLab:
    """Start JupyterLab serving ``root``; Jupyter's config, data and runtime folders live under ``state``.

    Returns once ``/api/status`` answers; raises with the server's log if it exits or is not up in time.
    """
    for folder in ("config", "data", "runtime", "ipython", "settings", "workspaces"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    # the server-side switches stop the requests, but the page still asks about news in a toast
    # (which covers the widgets in screenshots) unless the user's settings answer "never"
    notification = state / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8")
    _write_server_config(state / "config")
    port, token = free_port(), secrets.token_hex(24)
    env = dict(os.environ)
    # the venv's python3 kernelspec (installed with --sys-prefix) is the only one found: a user-level
    # kernel named python3 would come first in Jupyter's search path otherwise
    env.update(JUPYTER_CONFIG_DIR=str(state / "config"), JUPYTER_DATA_DIR=str(state / "data"),
               JUPYTER_RUNTIME_DIR=str(state / "runtime"), IPYTHONDIR=str(state / "ipython"),
               JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
    env.pop("JUPYTER_PATH", None)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False", "--ServerApp.terminals_enabled=False",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to run JupyterLab's own commands
        "--LabApp.news_url=None",  # no announcements feed
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # the default one asks PyPI
        f"--LabApp.user_settings_dir={state / 'settings'}", f"--LabApp.workspaces_dir={state / 'workspaces'}",
    ]
    if os.geteuid() == 0:  # CI containers run as root; jupyter refuses that unless told
        command.append("--ServerApp.allow_root=True")
    log_path = state / "jupyterlab.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    lab = JupyterLab(process, f"http://127.0.0.1:{port}/", token, root, log_path)
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {process.returncode} before answering "
                               f"/api/status; its log ({log_path}):\n{lab.log_tail()}")
        if lab.status() is not None:
            return lab
        time.sleep(0.25)
    lab.stop()
    raise RuntimeError(f"jupyter lab did not answer {lab.base_url}api/status within {SERVER_START_S:g} s; "
                       f"its log ({log_path}):\n{lab.log_tail()}")


def untracked_message_types() -> list[str]:
    """jupyter_server's default untracked message types plus the subshell control messages."""
    from jupyter_server.services.kernels.kernelmanager import MappingKernelManager

    defaults = list(MappingKernelManager.class_traits()["untracked_message_types"].default())
    return defaults + [kind for kind in SUBSHELL_CONTROL_MESSAGES if kind not in defaults]


def _write_server_config(config_dir: Path) -> None:
    config = {"MappingKernelManager": {"untracked_message_types": untracked_message_types()}}
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")


# JavaScript run in the page; ``app`` is JupyterLab's application object
_NOTEBOOK_STATE_JS = """(name) => {
  const app = window.jupyterapp;
  if (!app) return {ready: false, why: 'window.jupyterapp not set yet'};
  const panel = app.shell.currentWidget;
  if (!panel || !panel.context || panel.context.path !== name)
    return {ready: false, why: 'current widget is ' + (panel ? panel.title.label : 'none')};
  const session = panel.sessionContext;
  const kernel = session && session.session && session.session.kernel;
  if (!panel.context.isReady || !session.isReady || !kernel)
    return {ready: false, why: 'notebook or kernel session not ready'};
  return {ready: kernel.status === 'idle', why: 'kernel ' + kernel.status};
}"""

_OPEN_NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
_KERNEL_STATUS_JS = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
      && panel.sessionContext.session.kernel;
  return kernel ? kernel.status : 'no kernel';
}"""


class NotebookPage:
    """One notebook open in JupyterLab in a Playwright page, with waits that explain themselves."""

    def __init__(self, page: Any, lab: JupyterLab, name: str) -> None:
        self.page, self.lab, self.name = page, lab, name
        self.console_errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console_errors.append(f"pageerror: {error}"))

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def open(self, timeout_s: float = 60.0) -> NotebookPage:
        """Load JupyterLab on the notebook and wait until its kernel is idle."""
        self.page.goto(self.lab.url(self.name), wait_until="domcontentloaded")
        self.wait_until(lambda: self.page.evaluate(_NOTEBOOK_STATE_JS, self.name)["ready"],
                        f"notebook {self.name} open with an idle kernel", timeout_s,
                        extra=lambda: str(self.page.evaluate(_NOTEBOOK_STATE_JS, self.name)))
        return self

    def command(self, command_id: str) -> None:
        """Run one of JupyterLab's commands (the ones its menus and shortcuts run)."""
        self.page.evaluate("(id) => { window.jupyterapp.commands.execute(id); }", command_id)

    def run_all(self) -> None:
        self.command("notebook:run-all-cells")

    def kernel_status(self) -> str:
        return str(self.page.evaluate(_KERNEL_STATUS_JS))

    def pending_cells(self) -> int:
        """Cells queued or running: their prompt shows ``[*]``."""
        prompts = self.page.locator(f"{_OPEN_NOTEBOOK} .jp-CodeCell .jp-InputPrompt").all_inner_texts()
        return sum("*" in prompt for prompt in prompts)

    def wait_idle(self, timeout_s: float = 60.0) -> None:
        """Wait until every cell ran: no ``[*]`` prompt left and the kernel idle."""
        # the kernel turns busy a moment after run-all; idle before that would end the wait too early
        self.page.wait_for_timeout(300)
        self.wait_until(lambda: self.pending_cells() == 0 and self.kernel_status() == "idle",
                        "every cell run and the kernel idle", timeout_s,
                        extra=lambda: f"{self.pending_cells()} cell(s) still [*]; kernel {self.kernel_status()}")

    def shutdown_kernel(self) -> None:
        """Stop this notebook's kernel (the machine has few cores; idle kernels of finished tests cost)."""
        self.page.evaluate("""async () => {
          const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
          if (panel && panel.sessionContext) await panel.sessionContext.shutdown();
        }""")

    def cell_error(self) -> str:
        """The text of the first error output (a traceback) in the notebook, or ``""``."""
        errors = self.page.locator(f"{_OPEN_NOTEBOOK} .jp-OutputArea-output[data-mime-type="
                                   '"application/vnd.jupyter.stderr"]')
        texts = [text for text in errors.all_inner_texts() if "Traceback" in text or "Error" in text]
        return texts[0] if texts else ""

    def outputs_text(self, chars: int = 3000) -> str:
        """The cells' output areas as text, for messages (what the user saw)."""
        texts = self.page.locator(f"{_OPEN_NOTEBOOK} .jp-Cell .jp-OutputArea").all_inner_texts()
        joined = "\n--- next cell ---\n".join(texts)
        return joined[-chars:]

    def wait_until(self, condition: Any, what: str, timeout_s: float, *, extra: Any = None) -> None:
        """Poll ``condition()`` until true; past ``timeout_s`` fail with what the page showed.

        A cell that raised ends the wait at once: what it waited for cannot come any more.
        """
        deadline, last_error = time.monotonic() + timeout_s, ""
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except Exception as exc:  # noqa: BLE001 - a page still loading raises; keep polling until the deadline
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                last_error = ""
            error = self.cell_error()
            if error:
                raise AssertionError(self.explain(f"a cell raised while waiting for {what}", extra=error[-1500:]))
            self.page.wait_for_timeout(200)
        raise AssertionError(self.explain(f"timed out after {timeout_s:g} s waiting for {what}",
                                          extra=(extra() if extra else last_error)))

    def wait_for(self, selector: str, what: str, timeout_s: float) -> Any:
        """The first element matching ``selector`` once visible."""
        locator = self.page.locator(selector).first
        self.wait_until(locator.is_visible, f"{what} ({selector} visible)", timeout_s)
        return locator

    def explain(self, headline: str, *, extra: str = "") -> str:
        """A failure message: what went wrong, the page's state, the cell outputs and the server log."""
        try:
            outputs, kernel = self.outputs_text(), self.kernel_status()
            html = self.page.content()
            body = html[html.find("<main"):][:1500] if "<main" in html else html[-1500:]
        except Exception as exc:  # noqa: BLE001 - the page may be gone; say so instead of hiding the cause
            outputs = kernel = body = f"(page unreadable: {exc})"
        return (f"{headline}\n{extra}\nkernel: {kernel}\nconsole errors: {self.console_errors[-5:]}\n"
                f"cell outputs:\n{outputs}\npage HTML (start of <main>):\n{body}\n"
                f"jupyter lab log ({self.lab.log_path}), last lines:\n{self.lab.log_tail(2000)}")

    def screenshot(self, folder: Path, name: str) -> Path:
        path = folder / name
        self.page.screenshot(path=str(path), full_page=True)
        return path
