"""The one API behind the command line, the ``%tsg`` magics and the notebooks.

(The report function is ``build_report``, not ``report``: ``tsglab.report`` is the report package.)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsglab.config import ExperimentSpec, load_spec
from tsglab.errors import InvalidArgument

if TYPE_CHECKING:  # the runner and the report pull in pandas and the suite: import them when used
    from tsglab.report import RunReport
    from tsglab.report.results import RunResult


def run(
    spec: str | os.PathLike | ExperimentSpec,
    *,
    runs_dir: str | os.PathLike = "runs",
    run_id: str | None = None,
    resume: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool | Callable[..., Any] = True,
) -> RunResult:
    """Run an experiment spec (a YAML path or an :class:`ExperimentSpec`); returns a
    :class:`~tsglab.report.RunResult` (where it landed, its events, its report, its notebook views).

    ``overrides`` are dotted keys applied to the YAML (``{"prompts.limit": 20}``).
    ``resume`` continues an incomplete run directory without repeating finished requests.
    ``progress``: True shows the live monitor in a notebook (after ``%load_ext tsglab`` or
    ``import tsglab.jupyter``) and tqdm's bar elsewhere, False nothing, or a factory
    ``(run_dir, total, already_done) -> display`` (:data:`tsglab.load.session.ProgressFactory`).
    """
    from tsglab.load.runner import run_experiment

    if not isinstance(spec, ExperimentSpec):
        spec = load_spec(spec, overrides)
    elif overrides:
        raise InvalidArgument("overrides apply to a YAML spec path; edit the ExperimentSpec directly instead.")
    from tsglab.report.results import RunResult

    record = run_experiment(spec, runs_dir=runs_dir, run_id=run_id, resume=resume, progress=progress,
                            overrides=overrides)  # recorded in run.json: the resume hint repeats them
    return RunResult.from_record(record)


def build_report(
    run_dir: str | os.PathLike,
    *,
    vs: str | os.PathLike | None = None,
    baseline_arm: str = "baseline",
    gateway_arm: str | None = None,
    settings=None,
    write: bool = True,
    allow_suite_change: bool = False,
) -> RunReport:
    """Build (and by default write) the report of a run: tables, family tests, metadata.

    ``write=False`` computes and returns the report without creating or changing any file. When the
    files cannot be written (a read-only place, a full disk) the report is still returned, with a
    :class:`~tsglab.errors.TsglabWarning` and its ``write_error`` line saying where and why.

    ``settings`` is a :class:`tsglab.report.ProtocolSettings` (strata, margins, B, seed, FDR method).
    ``vs`` takes the baseline arm from another run; the report is then written to a comparison directory
    of its own (``<run>--vs--<other>``), never into either run. Both runs must have run the same suite
    unless ``allow_suite_change`` (then only prompts with identical texts pair).
    """
    from tsglab.report import build_report as _build

    return _build(Path(run_dir), vs=vs, baseline_arm=baseline_arm, gateway_arm=gateway_arm, settings=settings,
                  write=write, allow_suite_change=allow_suite_change)


def compare(
    path: str | os.PathLike,
    *,
    runs_dir: str | os.PathLike = "runs",
    comparison_id: str | None = None,
    overrides: dict[str, Any] | None = None,
    variants: list[str] | None = None,
    progress: bool = True,
):
    """Run a framework comparison file (e.g. ``experiments/backends.yaml``): the same suite and
    policy on each variant's backend, local servers started and stopped as needed. Returns a
    :class:`~tsglab.comparison.ComparisonResult` (the side-by-side table, ``.to_frame()``, ``.plot()``,
    ``.to_latex()``), also written to ``<runs_dir>/<id>/comparison.*``."""
    from tsglab.comparison import run_comparison

    return run_comparison(path, runs_dir=runs_dir, comparison_id=comparison_id, overrides=overrides,
                          variants=variants, progress=progress)


def sweep(
    path: str | os.PathLike,
    *,
    sweeps_dir: str | os.PathLike = "runs/sweeps",
    executor: str = "seq",
    workers: int | None = None,
    dask: Any = None,
    retry_failed: bool = False,
    progress: bool | Callable[..., Any] = True,
):
    """Run a sweep file (e.g. ``experiments/thresholds.sweep.yaml``): every point of its grid, zip or list that
    is not done yet, into ``<sweeps_dir>/<name>/``. Finished points are skipped, incomplete ones resumed,
    failed ones retried only with ``retry_failed``. ``executor``: ``seq``, ``pool`` (``workers`` processes) or
    ``dask`` (``dask``: None for a LocalCluster, a ``tcp://`` address or a ``distributed.Client``). Returns the
    combined result (:class:`tsglab.sweep.SweepResult`)."""
    from tsglab.sweep import run_sweep

    return run_sweep(path, sweeps_dir=sweeps_dir, executor=executor, workers=workers, dask=dask,
                     retry_failed=retry_failed, progress=progress)


def sweep_report(directory: str | os.PathLike):
    """Rebuild the combined results of a sweep directory (``runs/sweeps/<name>``) from its points' runs."""
    from tsglab.sweep.driver import rebuild_results

    return rebuild_results(directory)
