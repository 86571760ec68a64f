"""Notebook integration: the ``%tsg`` magics, the live run monitor.

Importing this package is cheap (ipywidgets loads when a widget is made) and registers the live monitor
as what a run shows inside a Jupyter kernel (``%load_ext tsglab`` imports it).
"""

from __future__ import annotations

from typing import Any

from tsglab.load.session import set_notebook_progress

__all__ = ["monitor_factory"]


def monitor_factory(run_dir: Any, total: int, initial: int) -> Any:
    """Make and start a :class:`~tsglab.jupyter.monitor.RunMonitor` (the session's progress factory)."""
    from tsglab.jupyter.monitor import monitor_factory as make

    return make(run_dir, total, initial)


set_notebook_progress(monitor_factory)
