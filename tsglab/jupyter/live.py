"""The display both live monitors use (runs: :mod:`tsglab.jupyter.monitor`; sweeps:
:mod:`tsglab.jupyter.sweep_monitor`): one ipywidgets ``HTML`` under a display id, updated from one owner
thread.

- **One widget, one message.** The live view is a single ``HTML`` widget whose value is the monitor's
  ``to_html()``: each update is one comm message, and the live view is the very HTML of the final summary.
- **Papermill and nbclient.** The displayed bundle also carries ``text/plain`` and ``text/html``; a
  throttled ``update_display`` refreshes them, so an executed notebook keeps the latest text (no frontend
  renders the widget there). The final update drops the widget view and closes the widgets: a saved or
  reopened notebook shows the static summary, not a dead view.
- **ipykernel 7's threads.** Output from a thread goes to the cell whose parent header that thread holds:
  :func:`thread_parent` pins the cell's parent (taken in the cell's thread by :meth:`LiveHTML.show`) in
  the owner thread for its whole life, and only the owner updates the display.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from typing import Any

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def ending_status(exc: BaseException | None = None) -> str:
    """How a monitored job ended, from the exception being handled (``sys.exc_info()`` when not given):
    ``complete``, ``interrupted`` (Ctrl-C) or ``failed: <class>: <message>``."""
    exc = exc if exc is not None else sys.exc_info()[1]
    if exc is None:
        return "complete"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"failed: {type(exc).__name__}: {exc}"


@contextlib.contextmanager
def thread_parent(parent: dict | None) -> Iterator[None]:
    """Pin ``parent`` (a cell's parent header) as this thread's parent while the block runs (ipykernel 7's
    ``set_thread_parent``); a no-op outside a kernel or when ``parent`` is None."""
    shell, tokens = None, None
    if parent is not None:
        from IPython import get_ipython

        shell = get_ipython()
        if hasattr(shell, "set_thread_parent"):
            tokens = shell.set_thread_parent(parent)
    try:
        yield
    finally:
        if tokens is not None and shell is not None:
            shell.reset_thread_parent(tokens)


class LiveHTML:
    """One live HTML display (see the module docstring). ``show=False`` counts updates without displaying
    anything (outside a kernel, and in tests)."""

    def __init__(self, name: str, *, show: bool = True) -> None:
        self.shown = show
        self.renders = 0  # updates made (the throttle tests count them)
        self.display_updates = 0  # update_display messages sent
        self._display_id = f"{name}-{uuid.uuid4().hex}"
        self._widget: Any = None

    def show(self, text: str, html: str) -> dict | None:
        """Build the widget and display it (call in the cell's thread); returns the cell's parent header for
        :func:`thread_parent` (None outside a kernel or without display)."""
        if not self.shown:
            return None
        import ipywidgets as w  # type: ignore[import-untyped]
        from IPython import get_ipython
        from IPython.display import display

        self._widget = w.HTML(html)
        display(self._bundle(text, html, final=False), raw=True, display_id=self._display_id)
        shell = get_ipython()
        return shell.get_parent() if hasattr(shell, "get_parent") else None

    def update(self, text: str, html: str, *, send_text: bool, final: bool = False) -> None:
        """Owner thread only: the widget's value, and (``send_text``) the text summaries; ``final`` replaces
        the view with the static summary and closes the widgets."""
        self.renders += 1
        if not self.shown or self._widget is None:
            return
        from IPython.display import update_display

        self._widget.value = html
        if send_text:
            update_display(self._bundle(text, html, final=final), raw=True, display_id=self._display_id)
            self.display_updates += 1
        if final:
            for name in ("layout", "style"):  # the saved notebook then holds no state of a dead view
                held = getattr(self._widget, name, None)
                if held is not None and hasattr(held, "close"):
                    held.close()
            self._widget.close()

    def _bundle(self, text: str, html: str, *, final: bool) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": text, "text/html": html}
        if not final and self._widget is not None:
            bundle[WIDGET_MIME] = self._widget._repr_mimebundle_()[WIDGET_MIME]
        return bundle
