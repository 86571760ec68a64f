"""Notebook integration: the ``%tsg`` magics, the live run and sweep monitors, the report explorer and the
threshold explorer.

Importing this package is cheap (ipywidgets loads when a widget is made) and registers the live monitors
as what a run and a sweep show inside a Jupyter kernel (``%load_ext tsglab`` imports it).
"""

from __future__ import annotations

import os
from typing import Any

from tsglab.load.session import set_notebook_progress
from tsglab.sweep.driver import set_sweep_progress

__all__ = ["explore", "monitor_factory", "sweep_monitor_factory", "threshold_explorer"]


def monitor_factory(run_dir: Any, total: int, initial: int) -> Any:
    """Make and start a :class:`~tsglab.jupyter.monitor.RunMonitor` (the session's progress factory)."""
    from tsglab.jupyter.monitor import monitor_factory as make

    return make(run_dir, total, initial)


def sweep_monitor_factory() -> Any:
    """Make a :class:`~tsglab.jupyter.sweep_monitor.SweepMonitor` (the sweep driver's progress factory; the
    driver starts it)."""
    from tsglab.jupyter.sweep_monitor import sweep_monitor_factory as make

    return make()


def explore(run_dir: str | os.PathLike, **options: Any) -> Any:
    """A :class:`~tsglab.jupyter.explorer.ReportExplorer` of ``run_dir`` (options: ``vs``, ``settings``, ...)."""
    from tsglab.jupyter.explorer import ReportExplorer

    return ReportExplorer(run_dir, **options)


def threshold_explorer(data_or_path: Any, **options: Any) -> Any:
    """A :class:`~tsglab.jupyter.threshold_explorer.ThresholdExplorer` of a replay data set, replay folder or run
    directory (options: ``frontier``, ``grid``, ``n_resamples``, ``seed``, ``resampling``, ``base``)."""
    from tsglab.jupyter.threshold_explorer import ThresholdExplorer

    return ThresholdExplorer(data_or_path, **options)


def _figure_png(figure: Any) -> bytes | None:
    from IPython.core.pylabtools import print_figure

    return print_figure(figure, "png", bbox_inches="tight")


def show_figures_inline() -> None:
    """In a kernel, display matplotlib figures as PNG unless something already does (the inline backend,
    once pyplot is imported): ``report.plot(...)`` returns a plain ``Figure``, made without pyplot so that
    nothing is shown or kept open by accident, and the last line of a cell should still show it. Registered
    by the class's name, so nothing imports matplotlib until a figure is displayed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return
    png = shell.display_formatter.formatters["image/png"]
    known = ("matplotlib.figure", "Figure") in png.deferred_printers or any(
        f"{t.__module__}.{t.__name__}" == "matplotlib.figure.Figure" for t in png.type_printers)
    if not known:
        png.for_type_by_name("matplotlib.figure", "Figure", _figure_png)


set_notebook_progress(monitor_factory)
set_sweep_progress(sweep_monitor_factory)
show_figures_inline()
