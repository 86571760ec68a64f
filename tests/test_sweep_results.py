"""Sweep results: the combined table (one row per point × arm, the point's own report's numbers), comparisons
across points (a planted difference found, none found where there is none, adjusted across points; identical
routing and analysis variants flagged), the publication tables compile, SweepResult's views, and a Monte
Carlo of the cross-point adjustment under no true difference.

The sweep directory is laid out as tsglab.sweep.store lays it out (sweep.json, points/<dirname>/ run
directories and point.json), the runs made by the runner on the scripted backend over a small suite whose
items are scored exactly, so quality is 1 for the reference reply and 0 for the planted one."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tsglab.config import apply_overrides, spec_from_dict
from tsglab.errors import InvalidArgument, RunError
from tsglab.events import synthetic_event
from tsglab.load.runner import run_experiment
from tsglab.report import ProtocolSettings, build_report
from tsglab.report.frame import events_frame
from tsglab.report.protocol import family_a
from tsglab.sweep.results import (
    ANALYSIS_VARIANT,
    IDENTICAL_ROUTING,
    SweepResult,
    adjust_across_points,
    compare_points,
    sweep_table,
    write_sweep_results,
)

REPORT = {"n_resamples": 200, "seed": 3}
GOOD, BAD = "B12", "C7"
PROMPTS = [  # lengths and marks spread the planner's scores over the three tiers
    "Which room? B12 or C7?",
    "The meeting is in room B12. Which room is it in?",
    "Explain why the meeting is in room B12: which room? Answer with the room only.",
    "Room B12 hosts the meeting. Question: which room hosts it? Reply: the room.",
    "Compare the rooms and explain why: the meeting moved from C7 to B12. Where is it now? Which room?",
    "Where is the meeting?",
    "Retrieval task: from the note 'meeting in B12', which room? Multi-step: read, then answer.",
    "The meeting is in B12.\nWhich room?\nAnswer only the room.",
    "Room?",
    "Which room is the meeting in, given that the note says B12?",
    "Legal and compliance: the meeting is in room B12. Which room?",
    "Sort the facts: meeting, room B12. Which room?",
]


def _tiers(reply: str) -> dict:
    return {tier: {"backend": "scripted", "options": {"reply": reply}} for tier in ("light", "std", "enh")}


def base_spec(suite: Path) -> dict:
    return {"name": "sw", "suite": str(suite), "seed": 0, "prompts": {"limit": len(PROMPTS), "seed": 1},
            "arms": {"baseline": {"kind": "baseline"}, "tsg": {}}, "energy": {"meter": "none"},
            "load": {"mode": "paced", "period_ms": 0, "timeout_s": 5, "warmup_count": 1},
            "tiers": _tiers(GOOD)}


def write_suite(directory: Path) -> Path:
    path = directory / "suite.jsonl"
    lines = [json.dumps({"id": f"room-{i}", "prompt": text, "task": "factual",
                         "check": {"kind": "exact", "answer": GOOD}}) for i, text in enumerate(PROMPTS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_sweep(root: Path, base: dict, points: list[dict], *, failed: dict[int, str] | None = None,
               compare: dict | None = None, name: str = "sw") -> Path:
    """A sweep directory as the driver writes it: each point's spec keyed by its content, points with the same
    key sharing one run (the first point's), ``failed`` points with a point.json and no run."""
    failed = failed or {}
    entries, runs = [], {}
    for i, params in enumerate(points):
        spec_params = {k: v for k, v in params.items() if not k.startswith("report.")}
        report = {**REPORT, **{k.removeprefix("report."): v for k, v in params.items() if k.startswith("report.")}}
        raw = apply_overrides(json.loads(json.dumps(base)), spec_params, where="test") if spec_params else base
        key = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()
        dirname = f"p{i:03d}-{key[:10]}"
        entries.append({"point_id": f"p{i:03d}", "dirname": dirname, "key": key, "params": params, "replicate": 0,
                        "seed": 0, "report": report})
        point_dir = root / "points" / dirname
        point_dir.mkdir(parents=True)
        (point_dir / "spec.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
        if i in failed:
            (point_dir / "point.json").write_text(json.dumps({"status": "failed", "error": failed[i]}))
            continue
        if key not in runs:
            runs[key] = run_experiment(spec_from_dict(raw), runs_dir=root / "points", run_id=dirname,
                                       progress=False).run_dir
            (point_dir / "point.json").write_text(json.dumps({"status": "complete", "error": ""}))
    (root / "sweep.json").write_text(json.dumps({"name": name, "points": entries,
                                                 **({"compare": compare} if compare else {})}))
    return root


POINTS = [
    {"arms.tsg.force_light_len": 120},  # p000: the reference (the paper's default)
    {"arms.tsg.force_light_len": 0},  # p001: no fast lane — routes exactly like p000 on these prompts
    {"arms.tsg.force_light_len": 120, **{f"tiers.{t}.options": {"reply": BAD} for t in ("light", "std", "enh")}},
    {"arms.tsg.force_light_len": 120, "report.co_correction": False},  # p003: p000's run, analysed otherwise
    {"arms.tsg.force_light_len": 120, "tiers.light.max_tokens": 16},  # p004: a different run, the same answers
    {"arms.tsg.force_light_len": 7},  # p005: failed
]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    suite = write_suite(root)
    return make_sweep(root / "sw", base_spec(suite), POINTS, failed={5: "BackendError: light tier unreachable"},
                      compare={"baseline_arm": "baseline", "gateway_arm": "tsg", "reference": "p000"})


@pytest.fixture(scope="module")
def table(sweep_dir) -> pd.DataFrame:
    return sweep_table(sweep_dir)


@pytest.fixture(scope="module")
def comparison(sweep_dir) -> pd.DataFrame:
    return compare_points(sweep_dir)


# ---- the table ------------------------------------------------------------------------------------------


def test_one_row_per_point_and_arm_with_the_parameter_columns(table):
    assert list(table.groupby("point_id").size()) == [2] * len(POINTS)
    assert set(table["arm"]) == {"baseline", "tsg"}
    for key in ("arms.tsg.force_light_len", "tiers.light.options", "report.co_correction", "tiers.light.max_tokens"):
        assert key in table.columns
    assert list(table.loc[table["arm"] == "tsg", "arms.tsg.force_light_len"]) == [120, 0, 120, 120, 120, 7]
    assert table.loc[table["point_id"] == "p003", "report.co_correction"].iloc[0] == False  # noqa: E712


def test_metrics_and_cis_are_the_points_own_report(sweep_dir, table):
    entries = {e["point_id"]: e for e in json.loads((sweep_dir / "sweep.json").read_text())["points"]}
    for point_id in ("p000", "p002", "p004"):
        entry = entries[point_id]
        run_dir = sweep_dir / "points" / entry["dirname"]
        report = build_report(run_dir, settings=ProtocolSettings(**entry["report"]), write=False)
        rows = table[table["point_id"] == point_id].set_index("arm")
        for arm in ("baseline", "tsg"):
            for metric in ("p50_e2e_warm_ms", "p50_e2e_warm_ms_ci_low", "p95_co_overall_ms_ci_high", "avg_eval_ms",
                           "mean_quality", "r_costly"):
                assert rows.at[arm, metric] == pytest.approx(report.figures[arm][metric], nan_ok=True)
        assert rows.at["tsg", "overall"] == report.verdict["overall"]
        assert rows.at["tsg", "family_A"] == report.verdict["family_A"]
        assert pd.isna(rows.at["baseline", "overall"])
        assert rows.at["tsg", "verdict_vs"] == "baseline"
    planted = table[(table["point_id"] == "p002")]
    assert (planted["mean_quality"] == 0).all()
    assert (table.loc[table["point_id"] == "p000", "mean_quality"] == 1).all()


def test_a_failed_point_keeps_its_rows_with_status_and_error(table):
    failed = table[table["point_id"] == "p005"]
    assert len(failed) >= 1
    assert set(failed["status"]) == {"failed"}
    assert failed["error"].str.contains("light tier unreachable").all()
    assert failed["p95_co_overall_ms"].isna().all()
    assert failed["overall"].isna().all()


def test_a_shared_run_gives_both_points_rows(table):
    """p003 reuses p000's run (same key): its own rows, with its own settings (no CO correction)."""
    rows = table[table["point_id"] == "p003"]
    assert set(rows["status"]) == {"complete"}
    assert rows["run_id"].iloc[0].startswith("p000-")


# ---- comparisons across points -------------------------------------------------------------------------


def test_a_planted_difference_is_found_after_adjustment(comparison):
    planted = comparison[(comparison["point_id"] == "p002") & (comparison["test"] == "A quality")].iloc[0]
    assert planted["estimate"] == pytest.approx(-1.0)
    assert planted["q_fail"] < 0.10
    assert planted["q_fail"] >= planted["p_fail"]
    assert planted["decision"] == "worse"


def test_a_point_without_difference_is_not_found(comparison):
    same_answers = comparison[(comparison["point_id"] == "p004") & (comparison["test"] == "A quality")].iloc[0]
    assert same_answers["estimate"] == pytest.approx(0.0)
    assert same_answers["decision"] != "worse"
    assert not (comparison.loc[comparison["point_id"] != "p002", "decision"] == "worse").any()


def test_identical_routing_and_analysis_variants_are_flagged(comparison):
    flags = comparison.groupby("point_id")["flag"].first()
    assert flags["p001"] == IDENTICAL_ROUTING
    assert "route every one of the" in comparison.loc[comparison["point_id"] == "p001", "note"].iloc[0]
    assert flags["p003"] == ANALYSIS_VARIANT
    assert flags["p002"] == ""
    assert flags["p004"] == ""
    variant = comparison[comparison["point_id"] == "p003"]
    assert variant["p_value"].isna().all()
    assert variant["q_value"].isna().all()
    assert set(comparison.loc[comparison["point_id"] == "p005", "status"]) == {"failed"}
    assert "p000" not in set(comparison["point_id"])


def test_adjustment_spans_points_per_test(comparison):
    """q-values are BH over the points compared, per test: recomputing the procedure on the raw p-values."""
    from tsglab.stats import benjamini_hochberg

    rows = comparison[(comparison["test"] == "A quality") & comparison["p_fail"].notna()]
    assert len(rows) >= 3
    expected = benjamini_hochberg(rows["p_fail"].to_numpy(float), q=0.10).adjusted
    np.testing.assert_allclose(rows["q_fail"].to_numpy(float), expected)


def test_compare_errors_name_the_choices(sweep_dir):
    with pytest.raises(InvalidArgument, match=r"reference='p999' is not a point of .*; points: p000, p001"):
        compare_points(sweep_dir, reference="p999")
    with pytest.raises(RunError, match=r"reference point p005 is failed"):
        compare_points(sweep_dir, reference="p005")
    with pytest.raises(InvalidArgument, match=r"arm='tgs' is not an arm of the reference point p000; arms: "):
        compare_points(sweep_dir, arm="tgs")
    with pytest.raises(RunError, match=r"no sweep\.json; not a sweep directory"):
        sweep_table(sweep_dir / "points")


# ---- files, publication tables and the result object ---------------------------------------------------


@pytest.fixture(scope="module")
def written(sweep_dir) -> list[Path]:
    return write_sweep_results(sweep_dir)


def test_write_sweep_results_writes_the_tables(sweep_dir, written, table):
    names = {p.relative_to(sweep_dir).as_posix() for p in written}
    assert {"results.parquet", "results.csv", "comparison.parquet", "comparison.csv", "tables/sweep.tex",
            "tables/sweep.narrow.tex", "tables/sweep_comparison.tex", "tables/sweep.md", "tables/sweep.html",
            "tables/preamble.tex", "tables/report.html"} <= names
    back = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(back) == len(table)
    assert list(back.columns) == list(table.columns)
    tex = (sweep_dir / "tables" / "sweep.tex").read_text()
    assert r"\label{tab:sw:sweep}" in tex
    assert "p002" in tex
    markdown = (sweep_dir / "tables" / "sweep.md").read_text()
    assert "point failed: BackendError: light tier unreachable" in markdown
    assert "max_tokens = 16 " in markdown


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex (TeX Live)")
@pytest.mark.parametrize("layout", ["onecolumn", "twocolumn"])
def test_the_sweep_tables_compile(sweep_dir, written, layout, tmp_path):
    from test_publication_latex import LAYOUTS, compile_problems, document

    shutil.copytree(sweep_dir / "tables", tmp_path / "tables")
    files = [Path("tables") / name for name in ("sweep.tex", "sweep.narrow.tex", "sweep_comparison.tex",
                                                "sweep_comparison.narrow.tex")]
    assert compile_problems(tmp_path, "pdflatex", document(LAYOUTS[layout], files), f"sweep-{layout}") == []


def test_sweep_result_views(sweep_dir, written, table):
    result = SweepResult.open(sweep_dir)
    assert result.statuses["p005"] == "failed"
    assert result.status_counts() == {"complete": 5, "failed": 1}
    assert "\n" not in repr(result)
    assert "6 point(s)" in repr(result)
    assert "1 failed" in repr(result)
    pd.testing.assert_frame_equal(result.to_frame(), pd.read_parquet(sweep_dir / "results.parquet"))
    page = result._repr_html_()
    assert "5 complete" in page
    assert "1 failed" in page
    assert "tsglab-table" in page
    assert "p002" in page
    assert "| p005" in result.to_markdown()
    latex = result.to_latex(sweep_dir / "out.tex", layout="narrow")
    assert r"\label{tab:sw:sweep:narrow}" in latex
    assert (sweep_dir / "out.tex").read_text() == latex
    figure = result.plot("p95_co_overall_ms", x="arms.tsg.force_light_len")
    (axes,) = figure.axes
    assert axes.get_xlabel() == "arms.tsg.force_light_len"
    assert len(axes.get_legend().get_texts()) >= 2
    with pytest.raises(InvalidArgument, match=r"no metric 'p99' to plot; the metrics: p50_e2e_warm_ms"):
        result.plot("p99")
    with pytest.raises(InvalidArgument, match=r"x='seed' is not a varied parameter of sweep sw"):
        result.plot("mean_quality", x="seed")


def test_open_recomputes_when_a_point_changed_after_the_results(sweep_dir, written):
    import os
    import time

    results = sweep_dir / "results.parquet"
    old = time.time() - 100
    os.utime(results, (old, old))
    result = SweepResult.open(sweep_dir)  # stale: computed again, not read
    assert len(result.table) == len(pd.read_parquet(results))


# ---- calibration: the cross-point adjustment under no true difference ----------------------------------


@pytest.mark.slow
def test_no_true_difference_keeps_the_family_wise_rate_at_q():
    """Five points, each the reference's arm with the same success probability per prompt (no difference),
    paired by prompt with the one reference (so the points' p-values are dependent), tested as the report's
    Family A tests its overall row (tsglab.stats.quality_noninferiority, exact for pass/fail scores) at margin
    0 — the null's boundary, the tightest case — and adjusted across points: the chance that any point is
    called worse must stay at most q = 0.10 (Monte-Carlo s.e. printed; fixed seed). Measured: 0.080 ± 0.022
    (about 55 s of CPU)."""
    from tsglab.stats import quality_noninferiority

    settings = ProtocolSettings(quality_margin=0.0)
    rng = np.random.default_rng(20240613)
    n_points, n_prompts, n_sims = 5, 40, 150
    any_worse = 0
    for _ in range(n_sims):
        prompt_p = rng.uniform(0.3, 0.9, n_prompts)  # prompts differ in difficulty; the points do not
        reference = (rng.random(n_prompts) < prompt_p).astype(float)
        rows = []
        for j in range(n_points):
            point = (rng.random(n_prompts) < prompt_p).astype(float)
            result = quality_noninferiority(point, reference, margin=settings.quality_margin, alpha=settings.alpha,
                                            method=settings.quality_method, seed=settings.seed)
            rows.append({"point_id": f"p{j}", "test": "A quality", "status": "complete", "flag": "",
                         "p_value": result.p_value, "p_fail": result.p_fail, "report_decision": ""})
        adjusted = adjust_across_points(pd.DataFrame(rows), settings)
        any_worse += bool((adjusted["decision"] == "worse").any())
    rate = any_worse / n_sims
    se = math.sqrt(max(rate * (1 - rate), 1e-9) / n_sims)
    print(f"family-wise 'worse' rate under no difference: {rate:.3f} ± {se:.3f} (q = 0.10, {n_sims} sweeps)")
    assert rate <= 0.10 + 2 * se


def test_the_report_family_a_gives_the_p_values_the_calibration_adjusts():
    """The calibration above calls the statistic Family A calls: on synthetic frames the report's overall row
    carries the same p-values."""
    from tsglab.stats import quality_noninferiority

    rng = np.random.default_rng(5)
    settings = ProtocolSettings(quality_margin=0.0)
    quality = {arm: (rng.random(30) < 0.6).astype(float) for arm in ("ref", "point")}
    frames = {arm: events_frame([synthetic_event(f"q{k}", quality=float(q), arm="tsg", seq=k, run_id=arm)
                                 for k, q in enumerate(values)]) for arm, values in quality.items()}
    overall = family_a(frames["ref"], frames["point"], settings).iloc[0]
    direct = quality_noninferiority(quality["point"], quality["ref"], margin=0.0, alpha=settings.alpha,
                                    method=settings.quality_method, seed=settings.seed)
    assert overall["p_fail"] == pytest.approx(direct.p_fail)
    assert overall["p_value"] == pytest.approx(direct.p_value)


def test_the_adjustment_is_what_lets_the_rate_hold():
    """The same family unadjusted (each point at q on its own) calls some point worse far more often: the
    check above can fail on code that skips the adjustment."""
    p_fail = np.random.default_rng(1).uniform(size=(200, 5))
    frames = [pd.DataFrame({"point_id": [f"p{j}" for j in range(5)], "test": "A quality", "status": "complete",
                            "flag": "", "p_value": 1 - row, "p_fail": row, "report_decision": "inconclusive"})
              for row in p_fail]
    settings = ProtocolSettings()
    adjusted_rate = np.mean([(adjust_across_points(f, settings)["decision"] == "worse").any() for f in frames])
    raw_rate = np.mean((p_fail < settings.fdr_q).any(axis=1))
    assert adjusted_rate <= 0.15 < 0.3 < raw_rate


# ---- through the real driver ---------------------------------------------------------------------------


def test_the_driver_returns_these_results(tmp_path):
    """run_sweep writes the results with this module and returns SweepResult: one row per point × arm, the
    report-only point sharing the first point's run, the no-fast-lane point flagged identical routing."""
    from tsglab.sweep import run_sweep

    suite = write_suite(tmp_path)
    sweep_file = tmp_path / "lanes.sweep.yaml"
    sweep_file.write_text(yaml.safe_dump({
        "name": "lanes", "spec": base_spec(suite), "report": REPORT,
        "points": [{"arms.tsg.force_light_len": 120}, {"arms.tsg.force_light_len": 0},
                   {"arms.tsg.force_light_len": 120, "report.co_correction": False}]}, sort_keys=False),
        encoding="utf-8")
    result = run_sweep(sweep_file, sweeps_dir=tmp_path / "sweeps", progress=False)
    assert isinstance(result, SweepResult)
    assert result.status_counts() == {"complete": 3}
    assert len(result.table) == 6
    assert (result.directory / "tables" / "sweep.tex").is_file()
    flags = result.comparison.groupby("point_id")["flag"].first()
    assert flags["p001"] == IDENTICAL_ROUTING
    assert flags["p002"] == ANALYSIS_VARIANT
