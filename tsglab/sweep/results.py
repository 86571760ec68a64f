"""The results of a sweep: one table of every point × arm, comparisons across points, publication tables.

Everything here reads the sweep directory (``sweep.json``, ``points/<dirname>/`` run directories and their
``point.json``) and asks :mod:`tsglab.report` for every number: each row's metrics and CIs are the point's
own report (:func:`tsglab.report.build_report` with the point's report settings), and a comparison across
points is the report of one point's arm against the reference point's same arm, paired by prompt
(:func:`tsglab.report.load_arm_pair` with ``vs=``). Nothing is recomputed another way.

Multiplicity across points: the p-values of each test (Family A quality, Family B P95 per view) are adjusted
over the compared points with the report's FDR procedure (:func:`tsglab.stats.benjamini_hochberg`, or
Benjamini–Yekutieli when the settings say ``fdr_method="by"``) at the settings' ``fdr_q``. tsglab.stats has
no Holm procedure, so the family-wise error rate is controlled only when no point truly differs (there
FDR = FWER); ``tests/test_sweep_results.py`` measures that rate by Monte Carlo.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from tsglab.errors import DegenerateStatisticWarning, InvalidArgument, RunError, TsglabError

__all__ = [
    "CI_METRICS",
    "METRICS",
    "SweepResult",
    "adjust_across_points",
    "compare_points",
    "sweep_table",
    "write_sweep_results",
]

SWEEP_FILE = "sweep.json"
POINTS_DIR = "points"
POINT_FILE = "point.json"
RUN_FILE = "run.json"
RESULTS_FILES = ("results.parquet", "results.csv", "comparison.parquet", "comparison.csv")

#: the headline metrics of a row, as :func:`tsglab.report.tables.arm_metrics` names them
METRICS: tuple[str, ...] = ("p50_e2e_warm_ms", "p95_co_overall_ms", "avg_eval_ms", "r_costly", "json_fail_rate",
                            "mean_quality", "retry_rate", "timeouts_rate", "error_rate")
#: the metrics that carry a bootstrap CI (``<metric>_ci_low`` / ``<metric>_ci_high``)
CI_METRICS: tuple[str, ...] = ("p50_e2e_warm_ms", "p95_co_overall_ms")
VERDICTS: tuple[str, ...] = ("family_A", "family_B", "family_C", "overall")
#: the paired tests a comparison across points reports: (name, report table, Family B view)
TESTS: tuple[tuple[str, str, str], ...] = (("A quality", "family_a", ""), ("B P95", "family_b", "Overall"),
                                           ("B P95 warm", "family_b", "Warm-only"))
ANALYSIS_VARIANT = "analysis variant: same requests"
IDENTICAL_ROUTING = "identical routing"


# ---- reading the sweep directory ----------------------------------------------------------------


@dataclass(frozen=True)
class _Point:
    """One point as the results read it: its plan entry, its state and the run directory holding its events."""

    point_id: str
    dirname: str
    key: str
    params: dict[str, Any]
    replicate: int
    seed: int
    report: dict[str, Any]
    status: str
    error: str
    run_dir: Path | None  # None: no run directory holds this point's events yet


@dataclass(frozen=True)
class _Sweep:
    root: Path
    name: str
    points: tuple[_Point, ...]
    varied: tuple[str, ...]
    baseline_arm: str
    gateway_arm: str | None
    reference: str | None


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: cannot read ({exc}); re-run the sweep to rewrite it.") from exc
    if not isinstance(value, dict):
        raise RunError(f"{path}: expected a JSON object; re-run the sweep to rewrite it.")
    return value


def _run_status(run_dir: Path) -> str | None:
    path = run_dir / RUN_FILE
    return str(_read_json(path).get("status", "incomplete")) if path.is_file() else None


def _compare_settings(root: Path, meta: dict) -> dict:
    """``compare`` of sweep.json, else of the sweep file it names (its plan), else empty (the defaults)."""
    if isinstance(meta.get("compare"), dict):
        return dict(meta["compare"])
    source = meta.get("source")
    if source and Path(source).is_file():
        try:
            from tsglab.sweep.plan import load_sweep  # the sweep file's owner; absent in a results-only install
        except ImportError:
            return {}
        try:
            plan = load_sweep(source)
        except TsglabError:  # the file changed since the sweep ran: fall back to the defaults
            return {}
        return {"baseline_arm": plan.baseline_arm, "gateway_arm": plan.gateway_arm, "reference": plan.reference,
                "varied": list(plan.varied)}
    return {}


def _read_sweep(root: str | os.PathLike) -> _Sweep:
    root = Path(root)
    meta_path = root / SWEEP_FILE
    if not meta_path.is_file():
        raise RunError(f"{root}: no {SWEEP_FILE}; not a sweep directory. Pass the folder `tsglab sweep FILE` wrote "
                       "(runs/sweeps/<name>).")
    meta = _read_json(meta_path)
    compare = _compare_settings(root, meta)
    entries = meta.get("points") or []
    run_dirs: dict[str, Path] = {}  # key -> a run directory with events of that key (points may share a run)
    for entry in entries:
        candidate = root / POINTS_DIR / str(entry.get("dirname", ""))
        if entry.get("dirname") and (candidate / RUN_FILE).is_file():
            run_dirs.setdefault(str(entry.get("key")), candidate)
    points = []
    for entry in entries:
        # the folder of the point's run (sweep.json's run_dirname: a point differing only in report settings
        # shares the first such point's run), else its own folder
        own = root / POINTS_DIR / str(entry.get("run_dirname") or entry.get("dirname", ""))
        state = _read_json(own / POINT_FILE) if (own / POINT_FILE).is_file() else {}
        run_dir = own if (own / RUN_FILE).is_file() else run_dirs.get(str(entry.get("key")))
        status = str(state.get("status") or "")
        if not status or status in ("pending", "running"):
            run_status = _run_status(run_dir) if run_dir is not None else None
            status = status or ("pending" if run_status is None else
                                "complete" if run_status == "complete" else "incomplete")
        points.append(_Point(point_id=str(entry["point_id"]), dirname=str(entry.get("dirname", "")),
                             key=str(entry.get("key", "")), params=dict(entry.get("params") or {}),
                             replicate=int(entry.get("replicate", 0)), seed=int(entry.get("seed", 0)),
                             report=dict(entry.get("report") or {}), status=status,
                             error=str(state.get("error") or ""), run_dir=run_dir))
    varied = tuple(compare.get("varied") or meta.get("varied") or
                   dict.fromkeys(k for p in points for k in p.params))
    return _Sweep(root=root, name=str(meta.get("name") or root.name), points=tuple(points), varied=varied,
                  baseline_arm=str(compare.get("baseline_arm") or "baseline"),
                  gateway_arm=compare.get("gateway_arm"), reference=compare.get("reference"))


def _settings(point: _Point):
    from tsglab.report import ProtocolSettings

    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in point.report.items()}
    try:
        return ProtocolSettings(**values)
    except TypeError as exc:
        raise InvalidArgument(f"point {point.point_id}: report settings {sorted(point.report)} are not all "
                              f"ProtocolSettings fields ({exc}); fix the sweep file's report: section.") from None


def _param_value(value: Any) -> Any:
    """A parameter as a table cell: scalars as they are, lists and mappings as JSON text (parquet-safe)."""
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _arms_of(point: _Point, root: Path) -> list[str]:
    """The point's arms: from its run's manifest, else from the spec the driver wrote, else none known."""
    if point.run_dir is not None:
        arms = _read_json(point.run_dir / RUN_FILE).get("arms")
        if arms:
            return list(arms)
    spec_path = root / POINTS_DIR / point.dirname / "spec.yaml"
    if spec_path.is_file():
        from tsglab.config import load_yaml

        raw = load_yaml(spec_path.read_text(encoding="utf-8"), str(spec_path))
        if isinstance(raw, dict) and isinstance(raw.get("arms"), dict):
            return list(raw["arms"])
    return []


# ---- the table ----------------------------------------------------------------------------------


def _quiet_report(run_dir: Path, settings, baseline_arm: str, gateway_arm: str):
    from tsglab.report import build_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateStatisticWarning)
        return build_report(run_dir, settings=settings, baseline_arm=baseline_arm, gateway_arm=gateway_arm,
                            write=False)


def _point_rows(sweep: _Sweep, point: _Point) -> list[dict[str, Any]]:
    head = {"point_id": point.point_id, "replicate": point.replicate, "seed": point.seed,
            **{key: _param_value(point.params.get(key)) for key in sweep.varied}}
    arms = _arms_of(point, sweep.root)
    empty = {"status": point.status, "error": point.error, "run_id": point.run_dir.name if point.run_dir else ""}
    if point.status != "complete" or point.run_dir is None:
        return [{**head, "arm": arm, **empty} for arm in (arms or [""])]
    baseline = sweep.baseline_arm
    others = [arm for arm in arms if arm != baseline]
    gateway = sweep.gateway_arm if sweep.gateway_arm in others else (others[0] if others else None)
    if baseline not in arms or gateway is None:
        why = f"no arm {baseline!r} to report against (arms: {arms})" if baseline not in arms else "one arm only"
        return [{**head, "arm": arm, **empty, "error": f"not reported: {why}"} for arm in arms]
    settings = _settings(point)
    # the gateway's report first: it gives the baseline's figures too (every arm ran the same prompts)
    order = [gateway, *[arm for arm in others if arm != gateway]]
    reports = {}
    for arm in order:
        try:
            reports[arm] = _quiet_report(point.run_dir, settings, baseline, arm)
        except TsglabError as exc:
            reports[arm] = exc
    rows = []
    for arm in arms:
        report = reports[gateway] if arm == baseline else reports[arm]
        row: dict[str, Any] = {**head, "arm": arm, **empty}
        if isinstance(report, Exception):
            row["error"] = f"not reported: {report}"
            rows.append(row)
            continue
        figures = report.figures[baseline if arm == baseline else arm]
        row["n"] = figures["n"]
        for metric in METRICS:
            row[metric] = figures[metric]
            if metric in CI_METRICS:
                row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = (figures[f"{metric}_ci_low"],
                                                                       figures[f"{metric}_ci_high"])
        if arm != baseline:
            row["verdict_vs"] = baseline
            row.update({name: bool(report.verdict[name]) for name in VERDICTS})
            row["underpowered"] = bool(report.verdict.get("underpowered"))
            # the run's routing replay (tsglab.load.dry_route): this arm routes like the arm it is reported against
            same = [w for w in report.routing_warnings if f"{arm!r}" in w and f"{baseline!r}" in w]
            row["flag"] = IDENTICAL_ROUTING if same else ""
        rows.append(row)
    return rows


_COLUMN_ORDER = ("point_id", "replicate", "seed")
_TAIL = ("arm", "status", "n", *(c for m in METRICS for c in ((m, f"{m}_ci_low", f"{m}_ci_high") if m in CI_METRICS
                                                               else (m,))),
         "verdict_vs", *VERDICTS, "underpowered", "flag", "run_id", "error")


def _frame(rows: list[dict[str, Any]], varied: Sequence[str]) -> pd.DataFrame:
    columns = [*_COLUMN_ORDER, *varied, *_TAIL]
    frame = pd.DataFrame(rows, columns=columns)
    for name in (*VERDICTS, "underpowered"):
        frame[name] = frame[name].astype("boolean")
    frame["n"] = frame["n"].astype("Int64")
    for name in ("arm", "status", "verdict_vs", "flag", "run_id", "error"):
        frame[name] = frame[name].fillna("").astype(str)
    return frame


def sweep_table(root: str | os.PathLike) -> pd.DataFrame:
    """One row per point × arm of the sweep in ``root``.

    Columns: ``point_id``, ``replicate``, ``seed``, one column per varied parameter (named by its dotted key,
    ``report.*`` keys included), ``arm``, ``status``, ``n``, the headline metrics of
    :func:`tsglab.report.tables.arm_metrics` (:data:`METRICS`; the latency quantiles with ``_ci_low`` /
    ``_ci_high``), and for every arm but the baseline its verdict against the baseline arm (``verdict_vs``,
    ``family_A``, ``family_B``, ``family_C``, ``overall``, ``underpowered``, and ``flag`` = :data:`IDENTICAL_ROUTING`
    when the run's routing replay found the two arms route every prompt alike) — the point's gateway arm's row
    carries the point's own gateway-vs-baseline verdict. Each arm's figures come from the point's report
    (``build_report(run, settings=ProtocolSettings(**point.report), gateway_arm=arm, write=False)``).

    A point that is not complete (pending, running, incomplete, failed) keeps its rows, one per arm of its spec
    (or one with an empty arm), with its status and error and empty metrics.
    """
    sweep = _read_sweep(root)
    rows = [row for point in sweep.points for row in _point_rows(sweep, point)]
    return _frame(rows, sweep.varied)


# ---- comparisons across points ------------------------------------------------------------------


def _identical_routing(point: _Point, ref: _Point, arm: str) -> str:
    """The dry-route message when the two points' runs differ only in ``arm``'s routing parameters and route
    every prompt alike (:mod:`tsglab.load.dry_route`), else ""."""
    from tsglab.config import PolicyConfig, PromptSelection
    from tsglab.load.dry_route import replay_routing
    from tsglab.load.schedule import select_prompts
    from tsglab.suite import bundled_suite_path, load_suite

    if point.run_dir is None or ref.run_dir is None:
        return ""
    manifest, manifest_ref = _read_json(point.run_dir / RUN_FILE), _read_json(ref.run_dir / RUN_FILE)
    raw, raw_ref = manifest.get("spec") or {}, manifest_ref.get("spec") or {}
    rest, rest_ref = ({k: v for k, v in r.items() if k != "arms"} for r in (raw, raw_ref))
    arms, arms_ref = raw.get("arms") or {}, raw_ref.get("arms") or {}
    if (rest != rest_ref or arm not in arms or arm not in arms_ref
            or {k: v for k, v in arms.items() if k != arm} != {k: v for k, v in arms_ref.items() if k != arm}):
        return ""  # something besides the arm's policy differs: the runs differ whatever the routes
    # run.json keeps the resolved spec as plain data: the arm's PolicyConfig fields and the prompt selection
    try:
        config, config_ref = PolicyConfig.from_dict(arms[arm]), PolicyConfig.from_dict(arms_ref[arm])
        prompts: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                   for k, v in (raw.get("prompts") or {}).items()}
        selection = PromptSelection(**prompts)
        suite = raw.get("suite", "bundled")
        items = select_prompts(load_suite(bundled_suite_path() if suite == "bundled" else Path(suite)), selection)
    except (TsglabError, TypeError, OSError):
        return ""  # not replayable (a run from an older tsglab, a suite moved): no flag rather than a wrong one
    replay = replay_routing({ref.point_id: config_ref, point.point_id: config}, items,
                            ladder=tuple(manifest.get("ladder") or ()) or tuple(raw.get("tiers") or ()))
    return " ".join(replay.warnings())


def _test_rows(report, test: str, table: str, view: str) -> dict[str, Any]:
    frame = getattr(report, table)
    rows = frame[frame["stratum"] == "overall"]
    if view:
        rows = rows[rows["view"] == view]
    if not len(rows):
        return {}
    row = rows.iloc[0]
    if table == "family_a":
        values = {"reference_value": row["quality_baseline"], "point_value": row["quality_gateway"],
                  "estimate": row["mean_diff"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
                  "statistic": "mean quality difference"}
    else:
        values = {"reference_value": row["p95_baseline"], "point_value": row["p95_gateway"],
                  "estimate": row["ratio"], "ci_low": math.nan, "ci_high": row["ratio_ci_high"],
                  "statistic": f"P95 ratio ({row['latency']})"}
    return {"test": test, "n_pairs": int(row["n_pairs"]), **values, "p_value": float(row["p_value"]),
            "p_fail": float(row["p_fail"]), "report_decision": str(row["decision"]), "note": str(row["note"])}


def _adjust(p_values: pd.Series, settings) -> pd.Series:
    from tsglab.stats import benjamini_hochberg, benjamini_yekutieli

    adjust = benjamini_hochberg if settings.fdr_method == "bh" else benjamini_yekutieli
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateStatisticWarning)
        result = adjust(p_values.to_numpy(float), q=settings.fdr_q)
    return pd.Series(result.adjusted, index=p_values.index)


def _decide(row: pd.Series, q: float) -> str:
    if row["q_fail"] < q:
        return "worse"
    if row["q_value"] < q:
        return "not worse"
    if row["report_decision"] in ("underpowered", "not identifiable"):
        return str(row["report_decision"])
    return "inconclusive" if math.isfinite(row["p_value"]) else "not computed"


def adjust_across_points(comparison: pd.DataFrame, settings) -> pd.DataFrame:
    """``comparison`` (rows of :func:`compare_points`: ``test``, ``p_value``, ``p_fail``, ``report_decision``,
    ``status``, ``flag``) with ``q_value`` and ``q_fail`` — each test's p-values adjusted across points by
    the report's FDR procedure (``settings.fdr_method`` at ``settings.fdr_q``) — and ``decision``.

    Rows flagged as the reference's own requests (:data:`ANALYSIS_VARIANT`) and missing p-values stay out of
    the family. Under no true difference anywhere the chance of any ``worse`` decision is at most ``fdr_q``
    (FDR equals the family-wise rate there); with some true differences only the FDR is controlled."""
    frame = comparison.copy()
    frame["q_value"], frame["q_fail"] = math.nan, math.nan
    tested = ~frame["flag"].isin([ANALYSIS_VARIANT, "same run"])
    for test in dict.fromkeys(frame["test"]):
        rows_of_test = tested & (frame["test"] == test)
        if rows_of_test.any():
            frame.loc[rows_of_test, "q_value"] = _adjust(frame.loc[rows_of_test, "p_value"], settings)
            frame.loc[rows_of_test, "q_fail"] = _adjust(frame.loc[rows_of_test, "p_fail"], settings)
    frame["q_value"] = frame["q_value"].astype(float)
    frame["q_fail"] = frame["q_fail"].astype(float)
    frame["report_decision"] = frame["report_decision"].fillna("")
    frame["decision"] = [_decide(row, settings.fdr_q) if row["status"] == "complete" and tested[i] else ""
                         for i, row in frame.iterrows()]
    return frame


def compare_points(root: str | os.PathLike, *, reference: str | None = None, arm: str | None = None) -> pd.DataFrame:
    """Each point's ``arm`` against the ``reference`` point's same arm, with the report's paired tests.

    Parameters
    ----------
    root : path
        The sweep directory.
    reference : str, optional
        The point id compared with (default: the sweep's ``compare.reference``, else its first point).
    arm : str, optional
        The arm compared (default: the sweep's gateway arm).

    Returns
    -------
    DataFrame
        Long format, one row per (point, test) for every point but the reference: the varied parameters,
        ``test`` (``A quality``: mean quality difference, non-inferiority at the report's margin; ``B P95`` /
        ``B P95 warm``: the P95 ratio point/reference against 1 + δ, Overall / Warm-only view), ``n_pairs``, the two
        values, ``estimate`` with ``ci_low``/``ci_high``, ``p_value`` (H0: the point is worse by the margin)
        and ``p_fail`` (H0: it is not) from the report, their adjustments across points ``q_value`` and
        ``q_fail`` (the report's FDR procedure at ``fdr_q``, per test), ``decision`` (``worse``: ``q_fail``
        below q; ``not worse``: ``q_value`` below q; else inconclusive, underpowered, not identifiable or
        not computed), and ``flag``: :data:`IDENTICAL_ROUTING` when the point differs from the reference only
        in parameters that route every prompt alike (it measures noise), :data:`ANALYSIS_VARIANT` when it is
        the same run analysed with other report settings (nothing to test: same requests).

    Notes
    -----
    Requests are paired by prompt across the two runs (:func:`tsglab.report.load_arm_pair` with ``vs=``),
    and the tests are :func:`tsglab.report.compute_report`'s, with the point's report settings. The
    reference's settings choose the multiplicity procedure. Points that are not complete stay in the table
    with their status and no statistics; they, analysis variants and tests without a p-value are left out of
    the adjustment (the family is the tests that exist).
    """
    from tsglab.report import compute_report, load_arm_pair

    sweep = _read_sweep(root)
    by_id = {p.point_id: p for p in sweep.points}
    if not by_id:
        raise RunError(f"{sweep.root}: the sweep has no points; nothing to compare.")
    ref_id = reference or sweep.reference or sweep.points[0].point_id
    if ref_id not in by_id:
        raise InvalidArgument(f"reference={ref_id!r} is not a point of {sweep.root}; points: {', '.join(by_id)}.")
    ref = by_id[ref_id]
    if ref.status != "complete" or ref.run_dir is None:
        raise RunError(f"reference point {ref_id} is {ref.status}, so nothing can be compared with it; pass "
                       "reference= a complete point, or resume the sweep.")
    ref_arms = _arms_of(ref, sweep.root)
    arm = arm or (sweep.gateway_arm if sweep.gateway_arm in ref_arms else
                  next((a for a in ref_arms if a != sweep.baseline_arm), None))
    if arm is None or arm not in ref_arms:
        raise InvalidArgument(f"arm={arm!r} is not an arm of the reference point {ref_id}; arms: {ref_arms}.")
    ref_settings = _settings(ref)
    rows: list[dict[str, Any]] = []
    for point in sweep.points:
        if point.point_id == ref_id:
            continue
        head = {"point_id": point.point_id, **{k: _param_value(point.params.get(k)) for k in sweep.varied},
                "reference": ref_id, "arm": arm, "status": point.status, "flag": ""}
        blank = [{**head, "test": test} for test, _, _ in TESTS]
        if point.key and point.key == ref.key:
            same = ANALYSIS_VARIANT if point.report != ref.report else "same run"
            rows += [{**row, "flag": same, "note": "the same requests as the reference: only the report settings "
                      "differ, compare the rows of the sweep table"} for row in blank]
            continue
        if point.status != "complete" or point.run_dir is None:
            rows += [{**row, "note": point.error or f"point {point.status}"} for row in blank]
            continue
        flag = _identical_routing(point, ref, arm)
        try:
            pair = load_arm_pair(point.run_dir, vs=ref.run_dir, baseline_arm=arm, gateway_arm=arm)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DegenerateStatisticWarning)
                report = compute_report(pair, _settings(point))
        except TsglabError as exc:
            rows += [{**row, "note": f"not compared: {exc}"} for row in blank]
            continue
        for test, table, view in TESTS:
            values = _test_rows(report, test, table, view)
            rows.append({**head, "test": test, **values,
                         "flag": IDENTICAL_ROUTING if flag else "",
                         **({"note": f"{flag} {values.get('note', '')}".strip()} if flag else {})})
    columns = ["point_id", *sweep.varied, "reference", "arm", "status", "test", "statistic", "n_pairs",
               "reference_value", "point_value", "estimate", "ci_low", "ci_high", "p_value", "q_value", "p_fail",
               "q_fail", "decision", "report_decision", "flag", "note"]
    frame = pd.DataFrame(rows, columns=columns)
    for name in ("reference_value", "point_value", "estimate", "ci_low", "ci_high", "p_value", "p_fail"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    frame["n_pairs"] = frame["n_pairs"].astype("Int64")
    frame = adjust_across_points(frame, ref_settings)
    for name in ("statistic", "flag", "note"):
        frame[name] = frame[name].fillna("").astype(str)
    return frame


# ---- publication tables and files ---------------------------------------------------------------


def _setting_text(row: Mapping[str, Any], varied: Sequence[str]) -> str:
    """The point's parameters as one wrapped cell: ``tsg.thr_std = 0.3; light.max_tokens = 64``."""
    parts = []
    for key in varied:
        value = row.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        shown = key.split(".", 1)[1] if key.startswith(("arms.", "tiers.")) else key
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # an integer parameter in a column that also holds missing values
        parts.append(f"{shown} = {value}")
    return "; ".join(parts) or "(base)"


def _verdict_text(row: Mapping[str, Any]) -> str:
    overall = row.get("overall")
    if overall is None or overall is pd.NA:
        return ""
    failed = [name.removeprefix("family_") for name in VERDICTS[:3] if row.get(name) is False]
    return "pass" if overall else "fail " + "".join(failed)


def publication_table(table: pd.DataFrame, varied: Sequence[str]) -> pd.DataFrame:
    """The sweep table as a paper shows it: a wrapped ``setting`` column instead of one per parameter."""
    keep = ["point_id", "setting", "arm", "status", "n", "p50_e2e_warm_ms", "p50_e2e_warm_ms_ci_low",
            "p50_e2e_warm_ms_ci_high", "p95_co_overall_ms", "p95_co_overall_ms_ci_low", "p95_co_overall_ms_ci_high",
            "avg_eval_ms", "r_costly", "mean_quality", "json_fail_rate", "verdict"]
    records = table.to_dict("records")
    # an empty cell of a point that did not complete says why (the publication tables read "note")
    notes = [f"point {r['status']}" + (f": {r['error']}" if r["error"] else "") if r["status"] != "complete"
             else str(r["error"]) for r in records]
    shown = table.assign(setting=[_setting_text(r, varied) for r in records],
                         verdict=[_verdict_text(r) for r in records], note=notes)
    shown["n"] = shown["n"].astype(float)
    return shown[[*keep, "note"]].reset_index(drop=True)


def publication_comparison(comparison: pd.DataFrame, varied: Sequence[str]) -> pd.DataFrame:
    keep = ["point_id", "setting", "test", "n_pairs", "estimate", "ci_low", "ci_high", "p_value", "q_value",
            "p_fail", "q_fail", "decision", "flag", "note"]
    records = comparison.to_dict("records")
    shown = comparison.assign(setting=[_setting_text(r, varied) for r in records])
    shown["n_pairs"] = shown["n_pairs"].astype(float)
    return shown[keep].reset_index(drop=True)


TABLE_NOTE = ("P50 warm: Harrell–Davis on raw latency without warm-up; P95 CO: on CO latency; 95 % bootstrap CIs "
              "from each point's report. Verdict: the arm against the baseline arm (A quality, B P95 guardrail, "
              "C JSON gate); 'fail AB' names the families that fail.")
COMPARISON_NOTE = ("Each point's arm against the reference point's same arm, paired by prompt; A: mean quality "
                   "difference (non-inferiority margin), B: P95 ratio point/reference (guardrail 1 + δ, no lower "
                   "bound). q: p adjusted across points per test by the report's FDR procedure (Benjamini–Hochberg "
                   "unless set to BY; Holm is not available). Decision 'worse' when q (worse) is below the FDR level, "
                   "'not worse' when q is.")


def _write_frame(frame: pd.DataFrame, stem: Path) -> list[Path]:
    import pyarrow as pa  # type: ignore[import-untyped]

    parquet, csv = stem.with_suffix(".parquet"), stem.with_suffix(".csv")
    frame = frame.copy()
    for name in [c for c in frame.columns if frame[c].dtype == "object"]:
        try:
            pa.array(frame[name])
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # a parameter given as a number in one point, text in another
            frame[name] = [None if v is None else str(v) for v in frame[name]]
    frame.to_parquet(parquet, index=False)
    frame.to_csv(csv, index=False)
    return [parquet, csv]


def write_sweep_results(root: str | os.PathLike) -> list[Path]:
    """Write ``results.parquet``/``.csv`` (:func:`sweep_table`), ``comparison.parquet``/``.csv``
    (:func:`compare_points` with the sweep's defaults; absent while no reference point is complete) and the
    publication tables under ``tables/`` (``sweep`` and ``sweep_comparison`` as ``.tex``, ``.narrow.tex``,
    ``.html``, ``.md``, plus ``preamble.tex`` and ``report.html``). Returns the files written."""
    from tsglab.report.publish import label_prefix_for, write_tables

    sweep = _read_sweep(root)
    table = sweep_table(sweep.root)
    written = _write_frame(table, sweep.root / "results")
    tables: dict[str, tuple[str, pd.DataFrame]] = {
        "sweep": (f"Sweep {sweep.name}: every point and arm", publication_table(table, sweep.varied))}
    notes = {"sweep": TABLE_NOTE}
    try:
        comparison = compare_points(sweep.root)
    except (RunError, InvalidArgument) as exc:
        comparison = None
        stale = [sweep.root / name for name in ("comparison.parquet", "comparison.csv")]
        for path in stale:
            path.unlink(missing_ok=True)
        notes["sweep"] += f" No comparison across points: {exc}"
    if comparison is not None:
        written += _write_frame(comparison, sweep.root / "comparison")
        reference = comparison["reference"].iloc[0] if len(comparison) else sweep.reference
        tables["sweep_comparison"] = (f"Sweep {sweep.name}: each point against {reference}",
                                      publication_comparison(comparison, sweep.varied))
        notes["sweep_comparison"] = COMPARISON_NOTE
    written += write_tables(sweep.root / "tables", tables, notes=notes, label_prefix=label_prefix_for(sweep.name),
                            page_title=f"Sweep {sweep.name}")
    return written


# ---- the result object --------------------------------------------------------------------------


def _newest_input(sweep: _Sweep) -> float:
    paths = [sweep.root / SWEEP_FILE]
    for point in sweep.points:
        paths.append(sweep.root / POINTS_DIR / point.dirname / POINT_FILE)
        if point.run_dir is not None:
            paths.append(point.run_dir / RUN_FILE)
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


@dataclass(frozen=True)
class SweepResult:
    """A sweep's results: ``table`` (:func:`sweep_table`), ``comparison`` (:func:`compare_points`; empty when
    no reference point is complete), the sweep ``directory`` and each point's status; renders itself in a
    notebook and plots a metric against a varied parameter."""

    name: str
    directory: Path
    table: pd.DataFrame = field(repr=False)
    comparison: pd.DataFrame = field(repr=False)
    statuses: dict[str, str] = field(default_factory=dict)
    varied: tuple[str, ...] = ()

    @classmethod
    def open(cls, root: str | os.PathLike) -> SweepResult:
        """The results of the sweep in ``root``: the files :func:`write_sweep_results` wrote when they are newer
        than every point's state, else computed now (nothing is written)."""
        sweep = _read_sweep(root)
        results, comparison_file = sweep.root / "results.parquet", sweep.root / "comparison.parquet"
        fresh = results.is_file() and results.stat().st_mtime >= _newest_input(sweep)
        if fresh:
            table = pd.read_parquet(results)
            comparison = pd.read_parquet(comparison_file) if comparison_file.is_file() else pd.DataFrame()
        else:
            table = sweep_table(sweep.root)
            try:
                comparison = compare_points(sweep.root)
            except (RunError, InvalidArgument):
                comparison = pd.DataFrame()
        return cls(name=sweep.name, directory=sweep.root, table=table, comparison=comparison,
                   statuses={p.point_id: p.status for p in sweep.points}, varied=sweep.varied)

    @property
    def title(self) -> str:
        return f"Sweep {self.name}"

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status in self.statuses.values():
            counts[status] = counts.get(status, 0) + 1
        return counts

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in self.status_counts().items()) or "no points"
        return (f"SweepResult({self.name}: {len(self.statuses)} point(s) — {counts}; {len(self.table)} row(s) → "
                f"{self.directory})")

    def __str__(self) -> str:
        return self.to_markdown()

    def to_markdown(self) -> str:
        from tsglab.report.publish import to_markdown

        text = to_markdown("sweep", publication_table(self.table, self.varied), title=self.title, note=TABLE_NOTE)
        if len(self.comparison):
            text += "\n" + to_markdown("sweep_comparison", publication_comparison(self.comparison, self.varied),
                                       title=f"{self.title}: against the reference point", note=COMPARISON_NOTE)
        return text

    def to_latex(self, path: str | os.PathLike | None = None, *,
                 layout: Literal["table", "table*", "narrow"] = "table*") -> str:
        """The sweep table (and the comparison, when there is one) as LaTeX floats labelled
        ``tab:<sweep-name>:sweep`` / ``...:sweep_comparison``; written to ``path`` when given. The preamble:
        :func:`tsglab.report.publish.latex_preamble`."""
        from tsglab.report.publish import label_prefix_for, to_latex

        if layout not in ("table", "table*", "narrow"):
            raise InvalidArgument(f"layout must be 'table', 'table*' or 'narrow'; got {layout!r}.")
        prefix = label_prefix_for(self.name)
        text = to_latex("sweep", publication_table(self.table, self.varied), title=self.title, note=TABLE_NOTE,
                        label_prefix=prefix, layout=layout)
        if len(self.comparison):
            text += to_latex("sweep_comparison", publication_comparison(self.comparison, self.varied),
                             title=f"{self.title}: against the reference point", note=COMPARISON_NOTE,
                             label_prefix=prefix, layout=layout)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def _repr_html_(self) -> str:
        import html

        from tsglab.report.publish import to_html

        counts = ", ".join(f"{n} {html.escape(status)}" for status, n in self.status_counts().items())
        parts = [f"<div class='tsglab-sweep'><h3>{html.escape(self.title)}</h3>",
                 (f"<p class='tsglab-sweep-status'>{len(self.statuses)} point(s): {counts} — "
                  f"<code>{html.escape(str(self.directory))}</code></p>"),
                 to_html("sweep", publication_table(self.table, self.varied), title=self.title, note=TABLE_NOTE)]
        if len(self.comparison):
            parts.append(to_html("sweep_comparison", publication_comparison(self.comparison, self.varied),
                                 title=f"{self.title}: against the reference point", note=COMPARISON_NOTE))
        parts.append("</div>")
        return "\n".join(parts)

    def plot(self, kind: str = "p95_co_overall_ms", *, x: str | None = None,
             size: Literal["column", "page"] = "column"):
        """``kind`` (a metric of :data:`METRICS`) against the varied parameter ``x`` (default: the first varied
        parameter with numbers), one line per arm and value of the other varied parameters, with the
        report's 95 % CI as error bars where the metric has one. Returns a matplotlib ``Figure``."""
        from matplotlib.figure import Figure

        from tsglab.report.figures import OKABE_ITO, WIDTH_IN

        if kind not in METRICS:
            raise InvalidArgument(f"no metric {kind!r} to plot; the metrics: {', '.join(METRICS)}.")
        if size not in WIDTH_IN:
            raise InvalidArgument(f"size must be 'column' or 'page'; got {size!r}.")
        done = self.table[self.table["status"] == "complete"]
        numeric = [k for k in self.varied if pd.to_numeric(done[k], errors="coerce").notna().any()] if len(done) else []
        x = x or (numeric[0] if numeric else None)
        if x is None or x not in self.varied:
            raise InvalidArgument(f"x={x!r} is not a varied parameter of sweep {self.name}; varied: "
                                  f"{', '.join(self.varied) or 'none'}. Pass x= one of them.")
        others = [k for k in self.varied if k != x]
        # the palette without black first (black ends it): arms stay distinct on white
        colours = [*list(OKABE_ITO.values())[1:], OKABE_ITO["black"]]
        markers = ("o", "s", "^", "D", "v", "P", "X", "*")
        figure = Figure(figsize=(WIDTH_IN[size], 2.4), layout="constrained")
        ax = figure.subplots()
        groups = done.groupby(["arm", *others], sort=False, dropna=False) if len(done) else []
        for i, (key, part) in enumerate(groups):
            key = key if isinstance(key, tuple) else (key,)
            part = part.assign(_x=pd.to_numeric(part[x], errors="coerce")).sort_values("_x")
            label = ", ".join([str(key[0]), *(f"{k.split('.')[-1]}={v}" for k, v in zip(others, key[1:],
                                                                                       strict=True))])
            y = part[kind].to_numpy(float)
            style: dict[str, Any] = {"color": colours[i % len(colours)], "marker": markers[i % len(markers)],
                                     "label": label,
                     "linewidth": 1.0, "markersize": 3.5, "capsize": 1.5}
            if kind in CI_METRICS:
                low = (y - part[f"{kind}_ci_low"].to_numpy(float)).clip(min=0)
                high = (part[f"{kind}_ci_high"].to_numpy(float) - y).clip(min=0)
                ax.errorbar(part["_x"], y, yerr=[low, high], **style)
            else:
                style.pop("capsize")
                ax.plot(part["_x"], y, **style)
        ax.set_xlabel(x, fontsize=8)
        ax.set_ylabel(kind, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, frameon=False)
        return figure
