"""The parameters of the shipped notebooks: one rule per name, checked right after papermill injects them.

Every notebook in ``notebooks/`` has a flat ``parameters`` cell (``spec``, ``run_id``, ``runs_dir``,
``resume``, ``prompts_limit``, ``seed``, ...) so that ``papermill -p prompts_limit 8`` works; the next
cell calls :func:`notebook_params`, which

- checks each value and stops at the first bad one with one line: the name, the value received and a
  papermill command that sets it right;
- resolves paths against the project root (:func:`tsglab.paths.resolve_path`), so the notebook runs the
  same from ``notebooks/`` (JupyterLab) and from the repository root (``make demo``);
- maps the flat names onto the API: ``prompts_limit`` becomes the spec override ``prompts.limit`` and
  ``seed`` the override ``seed`` (:attr:`NotebookParams.overrides`).

A name without a rule here is refused, so a typo in a parameters cell or a ``-p`` flag is caught.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tsglab.config.names import check_name
from tsglab.errors import InvalidArgument, SpecError
from tsglab.errors import ParameterComplaint as _Bad  # a rule's complaint: what the value must be
from tsglab.events import MANIFEST_FILE, read_manifest
from tsglab.paths import resolve_path
from tsglab.sweep.executors import EXECUTORS

__all__ = ["LATENCY_COLUMNS", "NotebookParams", "notebook_params"]

#: the latency columns of a run's events a notebook may analyse (``tsglab.report.frame.FRAME_COLUMNS``)
LATENCY_COLUMNS = ("raw_ms", "co_ms")
_MIN_RESAMPLES = 100  # tsglab.stats.bootstrap_quantile_ci refuses fewer draws


@dataclass(frozen=True)
class NotebookParams:
    """Validated notebook parameters; paths are absolute. A parameter the notebook does not have is None."""

    spec: Path | None = None
    run_id: str | None = None
    runs_dir: Path | None = None
    resume: Path | None = None
    prompts_limit: int | None = None
    seed: int | None = None
    extra_overrides: Mapping[str, Any] = field(default_factory=dict)
    variants: list[str] | None = None
    run_dir: Path | None = None
    arm: str | None = None
    column: str | None = None
    n_resamples: int | None = None
    sweep_file: Path | None = None
    executor: str | None = None
    workers: int | None = None
    dask: str | None = None
    sweeps_dir: Path | None = None
    retry_failed: bool | None = None
    replay_dir: Path | None = None
    grid_file: Path | None = None

    @property
    def overrides(self) -> dict[str, Any]:
        """The dotted spec overrides for ``tsglab.run`` / ``tsglab.compare``: ``extra_overrides`` plus
        ``prompts.limit`` and ``seed`` from the flat parameters that are set."""
        result = dict(self.extra_overrides)
        if self.prompts_limit is not None:
            result["prompts.limit"] = self.prompts_limit
        if self.seed is not None:
            result["seed"] = self.seed
        return result

    def __repr__(self) -> str:
        shown = [f"  {f.name} = {getattr(self, f.name)!r}" for f in fields(self)
                 if f.name != "extra_overrides" and getattr(self, f.name) is not None]
        if self.spec is not None and self.overrides:  # a notebook that runs a spec
            shown.append(f"  overrides = {self.overrides!r}")
        return "NotebookParams(\n" + ",\n".join(shown) + "\n)"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _path(value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise _Bad("a path (text)")
    return resolve_path(value)


def _spec(value: Any) -> Path:
    path = _path(value)
    if not path.is_file():
        raise _Bad(f"an existing YAML file (relative paths are read from the project root; {path} is not a file)")
    return path


def _run_directory(value: Any) -> Path:
    path = _path(value)
    if not (path / MANIFEST_FILE).is_file():
        raise _Bad(f"a run directory holding {MANIFEST_FILE} ({path} holds none)")
    return path


def _optional(rule: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else rule(value)


def _run_id(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad("a plain name (text) or None")
    try:
        return check_name(value, key="run_id", where="notebook parameters")
    except SpecError as exc:  # its message says which rule of names the value breaks
        raise _Bad(f"a plain name ({exc})") from None


def _positive_int(value: Any) -> int:
    if not _is_int(value) or value < 1:
        raise _Bad("a positive integer or None")
    return int(value)


def _seed(value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise _Bad("a non-negative integer")
    return int(value)


def _extra_overrides(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and k for k in value):
        raise _Bad("a mapping of dotted spec keys to values")
    return dict(value)


def _variants(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise _Bad("a non-empty list of variant names or None")
    return list(value)


def _arm(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _Bad("an arm name (text) or None")
    return value


def _column(value: Any) -> str:
    if value not in LATENCY_COLUMNS:
        raise _Bad(f"one of {', '.join(LATENCY_COLUMNS)}")
    return str(value)


def _n_resamples(value: Any) -> int:
    if not _is_int(value) or value < _MIN_RESAMPLES:
        raise _Bad(f"an integer ≥ {_MIN_RESAMPLES}")
    return int(value)


def _sweep_file(value: Any) -> Path:
    path = _path(value)
    if not path.is_file():
        raise _Bad(f"an existing sweep file (YAML; relative paths are read from the project root; {path} is not a "
                   "file)")
    return path


def _executor(value: Any) -> str:
    if value not in EXECUTORS:
        raise _Bad(f"one of {', '.join(EXECUTORS)}")
    return str(value)


def _dask_address(value: Any) -> str:
    if not isinstance(value, str) or "://" not in value:
        raise _Bad("a scheduler address such as tcp://127.0.0.1:8786, or None for a local cluster")
    return value


def _replay_dir(value: Any) -> Path:
    path = _path(value)
    if not (path.is_file() and path.suffix == ".npz") and not any(
            (path / name).is_file() for name in ("replay.npz", "replay.jsonl", MANIFEST_FILE)):
        raise _Bad(f"a replay folder (replay.npz or replay.jsonl) or a run directory ({MANIFEST_FILE}); {path} is "
                   "neither")
    return path


def _grid_file(value: Any) -> Path:
    path = _path(value)
    if not path.is_file():
        raise _Bad(f"an existing grid file (YAML with base: and grid:; {path} is not a file)")
    return path


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad("True or False")
    return value


@dataclass(frozen=True)
class _Rule:
    check: Callable[[Any], Any]  # the value as the notebook uses it, or _Bad
    target: str  # the NotebookParams field it fills
    fix: str  # the papermill arguments that set a good value


# one rule per parameter name; None passes the optional ones unchecked
_RULES: dict[str, _Rule] = {
    "spec": _Rule(_spec, "spec", "-p spec experiments/quickstart.yaml"),
    "run_id": _Rule(_optional(_run_id), "run_id", "-p run_id my-run"),
    "runs_dir": _Rule(_path, "runs_dir", "-p runs_dir runs"),
    "resume": _Rule(_optional(_run_directory), "resume", "-p resume runs/<run_id>"),
    "prompts_limit": _Rule(_optional(_positive_int), "prompts_limit", "-p prompts_limit 8"),
    "seed": _Rule(_optional(_seed), "seed", "-p seed 0"),
    "overrides": _Rule(_optional(_extra_overrides), "extra_overrides", "-y '{overrides: {load.period_ms: 0}}'"),
    "variants": _Rule(_optional(_variants), "variants", "-y '{variants: [embedded-llama.cpp]}'"),
    "run_dir": _Rule(_run_directory, "run_dir", "-p run_dir runs/<run_id>"),
    "arm": _Rule(_optional(_arm), "arm", "-p arm tsg"),
    "column": _Rule(_column, "column", "-p column co_ms"),
    "n_resamples": _Rule(_n_resamples, "n_resamples", "-p n_resamples 2000"),
    "sweep_file": _Rule(_sweep_file, "sweep_file", "-p sweep_file experiments/thresholds.sweep.yaml"),
    "executor": _Rule(_executor, "executor", "-p executor pool"),
    "workers": _Rule(_optional(_positive_int), "workers", "-p workers 2"),
    "dask": _Rule(_optional(_dask_address), "dask", "-p dask tcp://127.0.0.1:8786"),
    "sweeps_dir": _Rule(_path, "sweeps_dir", "-p sweeps_dir runs/sweeps"),
    "retry_failed": _Rule(_flag, "retry_failed", "-p retry_failed True"),
    "replay_dir": _Rule(_optional(_replay_dir), "replay_dir", "-p replay_dir runs/replay"),
    "grid_file": _Rule(_optional(_grid_file), "grid_file", "-p grid_file experiments/grid.yaml"),
}
# flat parameters that set a spec key; the same key in `overrides` would say two things at once
_FLAT_OVERRIDES = {"prompts_limit": "prompts.limit", "seed": "seed"}


def notebook_params(*, required: Collection[str] = (), **params: Any) -> NotebookParams:
    """Check a notebook's parameters and resolve its paths; the first bad value raises one line.

    Parameters
    ----------
    required : collection of str, keyword-only
        Names that must not be None (``run_dir`` of the bootstrap notebook, whose other parameters have
        defaults).
    **params
        The notebook's parameters by name: ``spec``, ``run_id``, ``runs_dir``, ``resume``,
        ``prompts_limit``, ``seed``, ``overrides`` (dotted spec keys), ``variants``, ``run_dir``, ``arm``,
        ``column``, ``n_resamples``, and a sweep's ``sweep_file``, ``executor``, ``workers``, ``dask``,
        ``sweeps_dir``, ``retry_failed``, and a frontier's ``replay_dir`` and ``grid_file``.

    Returns
    -------
    NotebookParams
        Absolute paths; ``.overrides`` holds the spec overrides the flat parameters stand for.

    Raises
    ------
    InvalidArgument
        ``"prompts_limit must be a positive integer or None; got 'abc' (papermill -p prompts_limit 8)"``.
    """
    unknown = sorted(set(params) - set(_RULES))
    if unknown:
        raise InvalidArgument(f"unknown notebook parameter(s) {unknown}; known: {sorted(_RULES)}. Check the "
                              "spelling in the parameters cell or the papermill -p flag.")
    values: dict[str, Any] = {}
    for name, value in params.items():
        rule = _RULES[name]
        try:
            if value is None and name in required:
                raise _Bad("given (this notebook has no default for it)")
            values[rule.target] = rule.check(value)
        except _Bad as bad:
            raise InvalidArgument(f"{name} must be {bad}; got {value!r} (papermill {rule.fix})") from None
    result = NotebookParams(**values)
    for flat, dotted in _FLAT_OVERRIDES.items():
        if params.get(flat) is not None and dotted in result.extra_overrides:
            raise InvalidArgument(f"overrides sets {dotted!r} and {flat} is given too; drop {dotted!r} from "
                                  f"overrides (papermill -p {flat} {params[flat]})")
    if result.arm is not None and result.run_dir is not None:
        arms = list(read_manifest(result.run_dir).get("arms") or [])
        if arms and result.arm not in arms:
            raise InvalidArgument(f"arm must be one of the run's arms {arms}; got {result.arm!r} "
                                  f"(papermill -p arm {arms[0]})")
    return result
