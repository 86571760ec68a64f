"""tsglab — a research workbench for LLM routing experiments.

Importing tsglab is cheap: heavy and optional dependencies load where they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tsglab._version import __version__
from tsglab.api import build_report, compare, run
from tsglab.config import ExperimentSpec, PolicyConfig, load_spec
from tsglab.errors import (
    BackendConnectError,
    BackendError,
    BackendHTTPError,
    BackendMalformedResponse,
    BackendStreamInterrupted,
    BackendTimeout,
    DegenerateStatisticWarning,
    InvalidArgument,
    MissingDependencyError,
    ModelNotInstalledError,
    RunError,
    SpecError,
    SuiteError,
    TsglabError,
    TsglabWarning,
)
from tsglab.paths import project_root, resolve_path

if TYPE_CHECKING:  # the jupyter layer loads when notebook_params is called
    from tsglab.jupyter.params import NotebookParams

__all__ = [
    "BackendConnectError",
    "BackendError",
    "BackendHTTPError",
    "BackendMalformedResponse",
    "BackendStreamInterrupted",
    "BackendTimeout",
    "DegenerateStatisticWarning",
    "ExperimentSpec",
    "InvalidArgument",
    "MissingDependencyError",
    "ModelNotInstalledError",
    "PolicyConfig",
    "RunError",
    "SpecError",
    "SuiteError",
    "TsglabError",
    "TsglabWarning",
    "__version__",
    "build_report",
    "compare",
    "load_ipython_extension",
    "load_spec",
    "notebook_params",
    "project_root",
    "resolve_path",
    "run",
]


def load_ipython_extension(ipython) -> None:
    """``%load_ext tsglab`` registers the ``%tsg`` magic."""
    from tsglab.jupyter.magics import load_ipython_extension as _load

    _load(ipython)


def notebook_params(**params: Any) -> NotebookParams:
    """Check a notebook's papermill parameters and resolve its paths (:func:`tsglab.jupyter.params.notebook_params`).

    Imported when called: the jupyter layer registers the live run monitor, which ``import tsglab`` must not do.
    """
    from tsglab.jupyter.params import notebook_params as _check

    return _check(**params)


def _register_the_run_monitor_in_a_kernel() -> None:
    """Inside a Jupyter kernel ``tsglab.run`` shows the live run monitor. The runner may not import the
    notebook layer, so that layer registers the monitor when imported: here, and only inside a kernel
    (``import tsglab`` elsewhere stays cheap)."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if getattr(shell, "kernel", None) is not None:
        import tsglab.jupyter  # noqa: F401 (registers the monitor with tsglab.load.session)


_register_the_run_monitor_in_a_kernel()
