"""The sweep file: a base spec plus the values to vary, read, validated and expanded into points.

A sweep file (``experiments/*.sweep.yaml``) names a base spec (``base:`` a path, or ``spec:`` inline), the
``overrides`` every point gets, and what varies: a ``grid`` (cartesian product), a ``zip`` (equal-length
lists varied together, crossed with the grid) and explicit ``points`` (each run as written). Every dotted
key is checked against the spec's schema before anything runs: the arm or tier must exist in the base spec
and the field must be a field of that section (``arms.tgs.thr_std`` is an error listing the arms, never a
new arm); ``report.<field>`` keys are :class:`~tsglab.report.protocol.ProtocolSettings` fields and change
only the analysis. Each point's values are then validated by building its spec with :mod:`tsglab.config`.

Each point carries a key: the sha256 of canonical JSON of its resolved spec, the suite file's sha256, the
tsglab version, the execution mode and the notebook's sha256. Equal keys mean the same run, so a point that
differs only in ``report.*`` settings reads the run of the first point with its key.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tsglab._version import __version__
from tsglab.config import (
    EnergySpec,
    ExperimentSpec,
    LoadSpec,
    PolicyConfig,
    PromptSelection,
    RetryPolicy,
    TierSpec,
    apply_overrides,
    load_yaml,
    spec_from_dict,
)
from tsglab.config.names import check_name
from tsglab.errors import SpecError
from tsglab.suite import bundled_suite_path

__all__ = ["MODES", "Sweep", "SweepPoint", "load_sweep"]

MODES = ("in-process", "notebook")
_TOP_KEYS = ("name", "description", "base", "spec", "overrides", "grid", "zip", "points", "replicates", "mode",
             "notebook", "report", "compare")
_COMPARE_KEYS = ("baseline_arm", "gateway_arm", "reference")
# the sections of a spec whose fields a dotted key may set, and the dataclass that owns each
_SECTIONS: dict[str, type] = {"prompts": PromptSelection, "load": LoadSpec, "retry": RetryPolicy,
                              "energy": EnergySpec}
_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(ExperimentSpec) if f.name != "source")
_POLICY_FIELDS = tuple(f.name for f in dataclasses.fields(PolicyConfig))
_TIER_FIELDS = tuple(f.name for f in dataclasses.fields(TierSpec) if f.name != "name")


@functools.cache
def _report_fields() -> dict[str, dataclasses.Field]:
    """ProtocolSettings' fields, imported when a sweep is read: the report package is heavy, and a kernel
    imports this module (through the sweep monitor's registration) on ``import tsglab``."""
    from tsglab.report.protocol import ProtocolSettings

    return {f.name: f for f in dataclasses.fields(ProtocolSettings)}


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: the values it varies, its seed, its resolved spec and report settings, its key."""

    point_id: str  # "p003" (index in plan order) + "-r1" when replicates > 1: stable for the same file
    params: dict[str, Any]  # the dotted keys this point varies (spec and report.* keys)
    replicate: int
    seed: int
    spec: dict[str, Any]  # the resolved spec as plain data (YAML-able), seed set
    report: dict[str, Any]  # ProtocolSettings overrides for this point's report
    key: str  # sha256 hex: what makes two points the same run (report settings are not in it)

    @property
    def dirname(self) -> str:
        """The point's folder under ``points/``: its id and the key's start, so a changed value gets a new one."""
        return f"{self.point_id}-{self.key[:10]}"


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file: every point resolved, what the report compares, the parameter columns."""

    name: str
    source: Path
    mode: Literal["in-process", "notebook"]
    notebook: Path | None
    points: tuple[SweepPoint, ...]
    baseline_arm: str
    gateway_arm: str | None
    reference: str | None
    varied: tuple[str, ...]

    def run_dirname(self, point: SweepPoint) -> str:
        """The folder holding ``point``'s run: its own, or that of the first point with the same key (points
        that differ only in ``report.*`` settings share one run)."""
        return next(p.dirname for p in self.points if p.key == point.key)


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and validate a sweep file; every error is one line naming the file, the key and the fix."""
    path = Path(path)
    where = str(path)
    raw = _read_mapping(path, what="sweep file")
    unknown = sorted(set(raw) - set(_TOP_KEYS))
    if unknown:
        raise SpecError(f"{where}: unknown top-level key(s) {unknown}; known: {sorted(_TOP_KEYS)}.")
    name = check_name(raw.get("name", path.name.split(".")[0]), key="name", where=where)
    base_raw, base_dir = _base(raw, path)
    overrides = _mapping(raw, "overrides", where)
    base_report = _mapping(raw, "report", where)
    for key in base_report:
        _check_report_key(f"report.{key}", where, "report")
    spec_overrides = {k: v for k, v in overrides.items() if not k.startswith("report.")}
    base_spec = _build_spec(base_raw, where, base_dir, what="the base spec")
    for key in overrides:
        _check_key(key, base_spec, where, "overrides")
    base_raw = apply_overrides(base_raw, spec_overrides, where=where)
    base_spec = _build_spec(base_raw, where, base_dir, what="the base spec with `overrides`")
    base_report = {**base_report, **{k.removeprefix("report."): v for k, v in overrides.items()
                                     if k.startswith("report.")}}
    combos, varied = _combinations(raw, base_spec, where)
    replicates = raw.get("replicates", 1)
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        raise SpecError(f"{where}: replicates must be a whole number >= 1; got {replicates!r}. Write replicates: 3 "
                        "to run each point three times with seeds seed, seed+1, seed+2.")
    mode = raw.get("mode", "in-process")
    if mode not in MODES:
        raise SpecError(f"{where}: mode must be one of {list(MODES)}; got {mode!r}.")
    notebook = _notebook(raw, path, mode)
    fixed = {"suite": _suite_sha256(base_spec, where), "tsglab": __version__, "mode": mode,
             "notebook": _sha256(notebook) if notebook is not None else None}
    width = max(3, len(str(len(combos) - 1)))
    points = []
    for index, params in enumerate(combos):
        for replicate in range(replicates):
            point_id = f"p{index:0{width}d}" + (f"-r{replicate}" if replicates > 1 else "")
            points.append(_point(point_id, params, replicate, base_raw, base_report, base_dir, fixed,
                                 where))
    baseline_arm, gateway_arm, reference = _compare(raw, base_spec, points, where)
    return Sweep(name=name, source=path, mode=mode, notebook=notebook, points=tuple(points),
                 baseline_arm=baseline_arm, gateway_arm=gateway_arm, reference=reference, varied=varied)


def _read_mapping(path: Path, *, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise SpecError(f"{what} {path} does not exist; sweep files live in experiments/ "
                        "(e.g. experiments/thresholds.sweep.yaml).")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the {what} ({exc}); check the path and that it is UTF-8.") from None
    raw = load_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a {what} is a mapping of keys (name: ..., base: ..., grid: ...); got "
                        f"{type(raw).__name__}.")
    return raw


def _mapping(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{where}: {key} must be a mapping of dotted keys to values, e.g. {key}: {{prompts.limit: "
                        f"12}}; got {type(value).__name__}.")
    return value


def _base(raw: dict[str, Any], path: Path) -> tuple[dict[str, Any], Path]:
    """The base spec as plain data and the folder its relative paths (the suite) are read from."""
    where = str(path)
    if ("base" in raw) == ("spec" in raw):
        raise SpecError(f"{where}: write exactly one of base (the path of a spec, relative to this file's folder) "
                        "or spec (the spec inline); got " + ("both." if "base" in raw else "neither."))
    if "spec" in raw:
        if not isinstance(raw["spec"], dict):
            raise SpecError(f"{where}: spec must be a mapping (the spec inline); got {type(raw['spec']).__name__}. "
                            "To name a spec file, write base: FILE instead.")
        return raw["spec"], path.parent
    if not isinstance(raw["base"], str) or not raw["base"].strip():
        raise SpecError(f"{where}: base must be the path of a spec file, e.g. base: quickstart.yaml; got "
                        f"{raw['base']!r}.")
    base_path = path.parent / raw["base"]
    if not base_path.is_file():
        raise SpecError(f"{where}: base: {base_path} does not exist; the path is read relative to the sweep "
                        "file's folder.")
    return _read_mapping(base_path, what="base spec"), base_path.parent


def _build_spec(raw: dict[str, Any], where: str, base_dir: Path, *, what: str) -> ExperimentSpec:
    try:
        return spec_from_dict(raw, where=where, base_dir=base_dir)
    except SpecError as exc:
        message = str(exc).removeprefix(f"{where}: ")
        raise SpecError(f"{where}: {what}: {message}") from None


def _check_key(key: Any, base: ExperimentSpec, where: str, section: str) -> None:
    """Refuse a dotted key that names no field of the spec (or of the report settings)."""
    if not isinstance(key, str) or not key or not all(part.strip() for part in key.split(".")):
        raise SpecError(f"{where}: {section}: {key!r} is not a dotted key; write e.g. arms.tsg.thr_std or "
                        "prompts.limit.")
    parts = key.split(".")
    head = parts[0]
    if head == "report":
        _check_report_key(key, where, section)
        return
    if head not in _SPEC_FIELDS:
        raise SpecError(f"{where}: {section}: {key}: {head!r} is not a spec key; known: {sorted(_SPEC_FIELDS)} "
                        "(and report.<setting> for the analysis).")
    if head in ("arms", "tiers"):
        names = list(base.arms if head == "arms" else base.tiers)
        kind = head[:-1]
        if len(parts) >= 2 and parts[1] not in names:
            raise SpecError(f"{where}: {section}: {key}: no {kind} {parts[1]!r} in the base spec; {head}: "
                            f"{', '.join(names)}. Fix the name (a sweep never adds a {kind}).")
        fields = _POLICY_FIELDS if head == "arms" else _TIER_FIELDS
        if len(parts) >= 3 and parts[2] not in fields:
            what = "a policy parameter" if head == "arms" else "a tier setting"
            raise SpecError(f"{where}: {section}: {key}: {parts[2]!r} is not {what}; known: {sorted(fields)}.")
        if len(parts) > 3 and not (head == "tiers" and parts[2] == "options"):
            raise SpecError(f"{where}: {section}: {key}: {head}.{parts[1]}.{parts[2]} holds a value, not a mapping; "
                            f"write {head}.{parts[1]}.{parts[2]}.")
        return
    if head in _SECTIONS:
        fields = tuple(f.name for f in dataclasses.fields(_SECTIONS[head]))
        if len(parts) >= 2 and parts[1] not in fields:
            raise SpecError(f"{where}: {section}: {key}: {parts[1]!r} is not a {head} setting; known: "
                            f"{sorted(fields)}.")
        if len(parts) > 2:
            raise SpecError(f"{where}: {section}: {key}: {head}.{parts[1]} holds a value, not a mapping; write "
                            f"{head}.{parts[1]}.")
        return
    if len(parts) > 1:
        raise SpecError(f"{where}: {section}: {key}: {head} holds a value, not a mapping; write {head}.")


def _check_report_key(key: str, where: str, section: str) -> None:
    field = key.removeprefix("report.")
    if field not in _report_fields():
        raise SpecError(f"{where}: {section}: {key}: {field!r} is not a report setting; known: "
                        f"{sorted(_report_fields())}.")


def _combinations(raw: dict[str, Any], base: ExperimentSpec,
                  where: str) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The parameter sets in plan order (grid × zip, then the explicit points) and the keys varied."""
    grid = _mapping(raw, "grid", where)
    zipped = _mapping(raw, "zip", where)
    for section, values in (("grid", grid), ("zip", zipped)):
        for key, options in values.items():
            _check_key(key, base, where, section)
            if not isinstance(options, list) or not options:
                raise SpecError(f"{where}: {section}: {key} must be a non-empty list of values, e.g. {key}: [a, b]; "
                                f"got {options!r}.")
    both = sorted(set(grid) & set(zipped))
    if both:
        raise SpecError(f"{where}: {both} appear in both grid and zip; vary each key in one of them.")
    lengths = {key: len(options) for key, options in zipped.items()}
    if len(set(lengths.values())) > 1:
        raise SpecError(f"{where}: zip: the lists must have equal lengths (they are varied together); got "
                        f"{lengths}.")
    points_raw = raw.get("points")
    if points_raw is not None and (not isinstance(points_raw, list) or not points_raw):
        raise SpecError(f"{where}: points must be a non-empty list of mappings, e.g. points: [{{arms.tsg.thr_std: "
                        "0.3}, {load.period_ms: 50}]; remove it if no point is listed.")
    combos: list[dict[str, Any]] = []
    if grid or zipped or not points_raw:
        zip_rows = [dict(zip(zipped, row, strict=True)) for row in zip(*zipped.values(), strict=True)] or [{}]
        combos = [{**dict(zip(grid, grid_row, strict=True)), **zip_row}
                  for grid_row in itertools.product(*grid.values()) for zip_row in zip_rows]
    varied = [*grid, *zipped]
    for index, point in enumerate(points_raw or []):
        if not isinstance(point, dict):
            raise SpecError(f"{where}: points[{index}] must be a mapping of dotted keys to values; got "
                            f"{type(point).__name__}.")
        for key in point:
            _check_key(key, base, where, f"points[{index}]")
            if key not in varied:
                varied.append(key)
        combos.append(dict(point))
    return combos, tuple(varied)


def _notebook(raw: dict[str, Any], path: Path, mode: str) -> Path | None:
    where = str(path)
    value = raw.get("notebook")
    if mode != "notebook":
        if value is not None:
            raise SpecError(f"{where}: notebook is set but mode is {mode!r}; write mode: notebook to run the "
                            "notebook per point, or remove notebook.")
        return None
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where}: mode notebook needs notebook: PATH (the parameterised notebook, relative to the "
                        "sweep file's folder), e.g. notebook: ../notebooks/quickstart.ipynb.")
    notebook = (path.parent / value).resolve()
    if not notebook.is_file():
        raise SpecError(f"{where}: notebook: {notebook} does not exist; the path is read relative to the sweep "
                        "file's folder.")
    return notebook


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _suite_sha256(spec: ExperimentSpec, where: str) -> str:
    suite = bundled_suite_path() if spec.suite == "bundled" else Path(spec.suite)
    try:
        return _sha256(suite)
    except OSError as exc:
        raise SpecError(f"{where}: suite: cannot read {suite} ({exc.strerror or exc}); write suite: bundled or the "
                        "path of a JSONL suite file, relative to the base spec's folder.") from None


def _point(point_id: str, params: dict[str, Any], replicate: int, base_raw: dict[str, Any],
           base_report: dict[str, Any], base_dir: Path, fixed: dict[str, Any], where: str) -> SweepPoint:
    spec_params = {k: v for k, v in params.items() if not k.startswith("report.")}
    shown = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in params.items()) or "no parameter"
    here = f"{where}: point {point_id} ({shown})"
    raw = apply_overrides(base_raw, spec_params, where=here)
    seed = _spec_seed(raw, here) + replicate
    raw["seed"] = seed
    try:
        spec = spec_from_dict(raw, where=here, base_dir=base_dir)
    except SpecError as exc:
        raise SpecError(str(exc) if str(exc).startswith(here) else f"{here}: {exc}") from None
    if spec.suite != "bundled":  # spec.yaml lives in the sweep directory: the suite path must not be relative
        raw["suite"] = str(Path(spec.suite).resolve())
    report = {**base_report, **{k.removeprefix("report."): v for k, v in params.items() if k.startswith("report.")}}
    _check_report(report, here)
    payload = spec.to_dict()
    payload.pop("suite")  # the file's content is in the key (its sha256), not where it lies
    payload["ladder"] = list(spec.ladder)  # sort_keys forgets the order of `tiers:`, which is the ladder's
    key = hashlib.sha256(_canonical({"spec": payload, **fixed}).encode()).hexdigest()
    return SweepPoint(point_id=point_id, params=dict(params), replicate=replicate, seed=seed, spec=raw,
                      report=report, key=key)


def _spec_seed(raw: dict[str, Any], where: str) -> int:
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SpecError(f"{where}: seed must be a whole number; got {seed!r}.")
    return seed


def _check_report(report: dict[str, Any], where: str) -> None:
    """The report settings build a :class:`ProtocolSettings` and each value has its default's type."""
    for key, value in report.items():
        default = _report_fields()[key].default
        expected = type(default)
        ok = (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value) if expected is tuple
              else isinstance(value, (int, float)) and not isinstance(value, bool) if expected is float
              else isinstance(value, expected) and (expected is bool or not isinstance(value, bool)))
        if not ok:
            raise SpecError(f"{where}: report.{key} must be {expected.__name__} like its default {default!r}; got "
                            f"{value!r}.")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in report.items()}
    try:
        from tsglab.report.protocol import ProtocolSettings

        ProtocolSettings(**values)
    except SpecError as exc:
        raise SpecError(f"{where}: report: {exc}") from None


def _compare(raw: dict[str, Any], spec: ExperimentSpec, points: list[SweepPoint],
             where: str) -> tuple[str, str | None, str | None]:
    compare = _mapping(raw, "compare", where)
    unknown = sorted(set(compare) - set(_COMPARE_KEYS))
    if unknown:
        raise SpecError(f"{where}: compare: unknown key(s) {unknown}; known: {list(_COMPARE_KEYS)}.")
    arms = list(spec.arms)
    for key in ("baseline_arm", "gateway_arm"):
        if key in compare and compare[key] not in arms:
            raise SpecError(f"{where}: compare.{key}: no arm {compare[key]!r} in the base spec; arms: "
                            f"{', '.join(arms)}.")
    baseline = compare.get("baseline_arm", "baseline")
    gateway = compare.get("gateway_arm", next((arm for arm in arms if arm != baseline), None))
    ids = [p.point_id for p in points]
    reference = compare.get("reference", ids[0])
    if reference not in ids:
        shown = ", ".join(ids[:8]) + (", ..." if len(ids) > 8 else "")
        raise SpecError(f"{where}: compare.reference: no point {reference!r}; points: {shown}.")
    return baseline, gateway, reference


def _canonical(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
