"""tsglab.legacy: the paper's bench estimators reproduced, its files converted, and tsglab beside them."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from tsglab.cli import main
from tsglab.errors import RunError, TsglabWarning
from tsglab.events import read_events, read_manifest
from tsglab.legacy import LegacyFormatError, LegacyMismatchError, import_legacy, read_legacy_dir
from tsglab.legacy._convert import (
    legacy_attempts,
    legacy_avg_eval_ms,
    legacy_event_eval_ms,
    legacy_metrics,
    legacy_r_costly_pct,
)
from tsglab.legacy._estimators import legacy_binomial_hd, legacy_co_fill, legacy_km_quantile
from tsglab.legacy._reader import SUMMARY_METRICS
from tsglab.report import build_report
from tsglab.stats import backfill_co, co_latency_ms, harrell_davis, km_quantile, raw_latency_ms

FIXTURE = Path(__file__).parent / "fixtures" / "legacy"
BASE = "baseline_20250314_101500"
TSG = "tsg_20250314_102130"


@pytest.fixture
def legacy_dir(tmp_path: Path) -> Path:
    """A writable copy of the fixture's data files."""
    out = tmp_path / "legacy"
    out.mkdir()
    for path in FIXTURE.glob("*_*_*.json*"):
        shutil.copy(path, out / path.name)
    return out


def _rewrite_line(path: Path, lineno: int, edit) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[lineno - 1] = edit(lines[lineno - 1])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- legacy estimators: hand-computed n = 5 cases -----------------------------------------------

def test_legacy_binomial_hd_hand_case_and_it_is_not_harrell_davis():
    x = [4.0, 1.0, 10.0, 2.0, 3.0]
    # weights C(4, i-1) / 16 = [1, 4, 6, 4, 1] / 16 on 1, 2, 3, 4, 10
    assert legacy_binomial_hd(x, 0.5) == pytest.approx(53 / 16, abs=1e-12)
    # q = 0.95: C(4,k) .95^k .05^(4-k), k = 0..4
    assert legacy_binomial_hd(x, 0.95) == pytest.approx(8.87253125, abs=1e-12)
    # true HD: Beta(3, 3) increments on [0, .2, ..., 1] = .05792, .25952, .36512, .25952, .05792
    assert harrell_davis(x, 0.5) == pytest.approx(3.2896, abs=1e-12)
    assert abs(legacy_binomial_hd(x, 0.5) - harrell_davis(x, 0.5)) > 0.02


def test_legacy_co_fill_hand_case_and_values_below_period_lower_the_p95():
    x = [100.0, 250.0, 600.0, 1000.0, 50.0]
    # 600 → 300, then 0 stops; 1000 → 700, 400, 100. HdrHistogram keeps only values >= P = 300.
    assert legacy_co_fill(x, 300.0).tolist() == [*x, 300.0, 700.0, 400.0, 100.0]
    assert backfill_co(x, 300.0).tolist() == [*x, 300.0, 700.0, 400.0]
    assert len(legacy_co_fill([1000.0], 1.0)) == 1 + 120  # the legacy cap of 120 per value
    for sample in (x, [e["e2e_ms"] for e in _fixture_events(BASE)], [e["e2e_ms"] for e in _fixture_events(TSG)]):
        assert harrell_davis(legacy_co_fill(sample, 300.0), 0.95) < harrell_davis(backfill_co(sample, 300.0), 0.95)


def test_legacy_km_hand_cases_differ_from_kaplan_meier():
    # A censored 3 ahead of a tied event leaves the risk set too early: legacy S = 1·3/4·2/3 = .5 at t=5.
    times, censored = [5.0, 3.0, 8.0, 3.0, 9.0], [False, True, False, False, False]
    assert legacy_km_quantile(times, censored, 0.5) == 5.0
    assert km_quantile(times, censored, 0.5).estimate == 8.0  # S = .8, .533, .267
    # Never reaches .95 (2 of 5 censored at the top): legacy reports the largest time, tsglab NaN.
    times, censored = [1.0, 2.0, 3.0, 4.0, 5.0], [False, False, False, True, True]
    assert legacy_km_quantile(times, censored, 0.95) == 5.0
    with pytest.warns(TsglabWarning):
        assert math.isnan(km_quantile(times, censored, 0.95).estimate)
    # Exact float compare: with n = 180, 1 - S(x_171) = 0.95 only up to rounding.
    times, flags = np.arange(1.0, 181.0), np.zeros(180, dtype=bool)
    assert legacy_km_quantile(times, flags, 0.95) == 172.0
    assert km_quantile(times, flags, 0.95).estimate == 171.0


# --- fixture ---------------------------------------------------------------------------------------

def _fixture_events(stem: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURE / f"{stem}_events.jsonl").read_text().splitlines()]


def test_fixture_generator_is_seeded_and_byte_identical(tmp_path: Path):
    spec = importlib.util.spec_from_file_location("make_fixture", FIXTURE / "make_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for path in FIXTURE.glob("*_*_*.json*"):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
    events = _fixture_events(BASE) + _fixture_events(TSG)
    assert len(events) == 80
    assert any(e["in_warmup"] for e in events)
    assert sum(e["right_censored"] for e in events) == 3
    for stem in (BASE, TSG):  # like the legacy bench, the warm-up re-sends prompts: ids repeat
        ids = [e["prompt_id"] for e in _fixture_events(stem)]
        assert len(set(ids)) == 36
        assert ids[:4] == ids[4:8] == ["p000", "p001", "p002", "p003"]


# --- warm-only cost metrics ------------------------------------------------------------------------

def _all_rows_avg_eval_ms(events: list[dict]) -> float:
    """The formula tsglab used to assume (and the old fixture encoded): every row, warm-up included."""
    return float(np.mean([legacy_event_eval_ms(e) for e in events]))


def _all_rows_r_costly_pct(events: list[dict]) -> float:
    return 100.0 * float(np.mean([e["final_path"] == "enh" for e in events]))


def test_cost_metrics_are_over_warm_rows_hand_case():
    events = [{"in_warmup": True, "eval_ms": 1000.0, "e2e_ms": 1100.0, "final_path": "enh"},
              {"in_warmup": False, "eval_ms": 100.0, "e2e_ms": 150.0, "final_path": "light"},
              {"in_warmup": False, "e2e_ms": 400.0, "final_path": "enh"},  # no eval_ms: e2e is the proxy
              {"in_warmup": False, "eval_ms": 200.0, "e2e_ms": 260.0, "final_path": "std"}]
    assert legacy_avg_eval_ms(events) == pytest.approx((100 + 400 + 200) / 3, abs=1e-12)
    assert legacy_r_costly_pct(events) == pytest.approx(100 / 3, abs=1e-12)
    assert _all_rows_avg_eval_ms(events) == pytest.approx(425.0)
    assert _all_rows_r_costly_pct(events) == 50.0
    warmup_only = [{**e, "in_warmup": True} for e in events]
    assert math.isnan(legacy_avg_eval_ms(warmup_only))
    assert math.isnan(legacy_r_costly_pct(warmup_only))


@pytest.mark.parametrize(("stem", "key", "all_rows"), [
    (BASE, "avg_eval_ms", _all_rows_avg_eval_ms),
    (TSG, "avg_eval_ms", _all_rows_avg_eval_ms),
    (TSG, "r_costly_pct", _all_rows_r_costly_pct),
])
def test_fixture_cost_metrics_are_warm_only_not_all_rows(stem, key, all_rows):
    [session] = read_legacy_dir(FIXTURE)
    [arm] = [a for a in session if stem.startswith(a.mode)]
    wrong = all_rows(arm.events)
    # the fixture separates the two formulas by far more than the import's tolerance ...
    assert abs(wrong - arm.summary[key]) > 1.0
    # ... so reproducing the summary means the import computes the warm-only formula
    assert legacy_metrics(arm)[key] != pytest.approx(wrong, abs=1e-3)
    assert abs(legacy_metrics(arm)[key] - arm.summary[key]) <= 1e-6


@pytest.mark.parametrize(("stem", "key", "all_rows"), [
    (BASE, "avg_eval_ms", _all_rows_avg_eval_ms),
    (TSG, "r_costly_pct", _all_rows_r_costly_pct),
])
def test_summary_written_with_all_rows_formula_is_refused(legacy_dir: Path, stem, key, all_rows):
    path = legacy_dir / f"{stem}_summary.json"
    summary = json.loads(path.read_text())
    path.write_text(json.dumps({**summary, key: all_rows(_fixture_events(stem))}))
    with pytest.raises(LegacyMismatchError, match=rf"{stem}_summary\.json: field '{key}' is .* but the legacy "):
        import_legacy(legacy_dir, runs_dir=legacy_dir / "runs")


def test_fixture_summaries_reproduced_to_1e6():
    [session] = read_legacy_dir(FIXTURE)
    assert [a.mode for a in session] == ["baseline", "tsg"]
    for arm in session:
        ours = legacy_metrics(arm)
        for key in SUMMARY_METRICS:
            assert abs(ours[key] - arm.summary[key]) <= 1e-6, (arm.mode, key)


def test_import_round_trip(tmp_path: Path):
    [result] = import_legacy(FIXTURE, runs_dir=tmp_path)
    assert result.run_id == "legacy-20250314-101500"
    assert result.arms == ("baseline", "tsg")
    events = read_events(result.run_dir)
    assert len(events) == 80
    assert {e.arm for e in events} == {"baseline", "tsg"}
    manifest = read_manifest(result.run_dir)
    assert manifest["source"] == "legacy"
    assert manifest["status"] == "complete"
    files = {f["events"]: f["events_sha256"] for f in manifest["legacy_files"]}
    expected = hashlib.sha256((FIXTURE / f"{BASE}_events.jsonl").read_bytes()).hexdigest()
    assert files[f"{BASE}_events.jsonl"] == expected
    # schedule: raw = CO = e2e (ns rounding only)
    legacy_e2e = [e["e2e_ms"] for e in sorted(_fixture_events(TSG), key=lambda e: e["idx"])]
    tsg = [e for e in events if e.arm == "tsg"]
    stamps = {k: np.array([getattr(e.schedule, k) for e in tsg]) for k in ("intended_start_ns", "dispatched_ns",
                                                                            "completed_ns")}
    co = co_latency_ms(stamps["intended_start_ns"], stamps["completed_ns"])
    np.testing.assert_allclose(co, legacy_e2e, atol=1e-6)
    np.testing.assert_allclose(raw_latency_ms(stamps["dispatched_ns"], stamps["completed_ns"]), legacy_e2e, atol=1e-6)
    assert np.all(np.diff(stamps["intended_start_ns"]) == 400_000_000)
    assert [e.latency.co_ms for e in tsg] == legacy_e2e
    assert sum(e.censoring.timeout for e in events) == 3
    assert all(isinstance(e.attempts, tuple) and e.attempts for e in events)
    assert all(e.schema_version == 2 and e.fingerprint.source == "legacy" for e in events)
    assert {e.fingerprint.ladder for e in events} == {("light", "std", "enh")}
    assert all(e.latency.cost_ms == sum(a.cost_ms for a in e.attempts) for e in events)
    assert all(e.route.final == e.attempts[-1].tier for e in events)
    # prompt ids repeat; request ids stay unique through the occurrence
    assert len({e.request_id for e in events}) == 80
    assert [e.request_id for e in tsg[:5]] == [f"legacy-20250314-101500/tsg/p00{i}#0" for i in range(4)] + [
        "legacy-20250314-101500/tsg/p000#1"]
    assert "| tsg      | warm_p95_ms_co" in (result.run_dir / "tables" / "legacy_vs_tsglab.md").read_text()
    assert r"warm\_p95\_ms\_co" in (result.run_dir / "tables" / "legacy_vs_tsglab.tex").read_text()


# legacy runs repeat prompt ids (warm-up prompts are sent again): the report pairs them by occurrence
def test_report_on_imported_legacy_run(tmp_path: Path):
    [result] = import_legacy(FIXTURE, runs_dir=tmp_path)
    report = build_report(result.run_dir)
    assert report.baseline == "baseline"
    assert report.gateway == "tsg"
    assert set(report.headline.columns) >= {"baseline", "tsg"}
    # every request is paired by (prompt id, occurrence): 40, not 36 unique ids nor 44 cross pairs
    [n_pairs] = report.family_a.loc[report.family_a["stratum"] == "overall", "n_pairs"]
    assert n_pairs == 40


def test_table_puts_corrected_estimators_beside_legacy(tmp_path: Path):
    [result] = import_legacy(FIXTURE, runs_dir=tmp_path)
    table = result.table.set_index(["arm", "metric"])
    assert (table["summary_check"] == "ok").all()
    for arm in ("baseline", "tsg"):
        assert table.loc[(arm, "warm_p50_ms"), "legacy"] != pytest.approx(table.loc[(arm, "warm_p50_ms"), "tsglab"],
                                                                          abs=1e-3)
        for key in ("warm_p95_ms_co", "overall_p95_ms_co"):
            assert table.loc[(arm, key), "legacy"] < table.loc[(arm, key), "tsglab"]
    assert table.loc[("baseline", "warm_p95_ms_km"), "legacy"] == 3000.0  # never reached: legacy reports max
    assert math.isnan(table.loc[("baseline", "warm_p95_ms_km"), "tsglab"])  # 2/36 censored > 5 %
    # the bench counted only the last attempt's eval ms
    assert table.loc[("tsg", "avg_eval_ms"), "legacy"] < table.loc[("tsg", "avg_eval_ms"), "tsglab"]


def test_attempts_as_a_count_are_reconstructed():
    event = {"final_path": "enh", "attempts": 3, "upgrades": 1, "repaired": True, "eval_tokens": 50,
             "e2e_ms": 900.0, "eval_ms": 400.0}
    attempts = legacy_attempts(event)
    assert [(a.tier, a.kind) for a in attempts] == [("std", "initial"), ("std", "repair"), ("enh", "upgrade")]
    assert [a.eval_ms for a in attempts] == [0.0, 0.0, 400.0]
    assert [a.completion_tokens for a in attempts] == [0, 0, 50]
    assert [a.tier for a in legacy_attempts({"final_path": "light", "e2e_ms": 5.0})] == ["light"]


# --- errors ----------------------------------------------------------------------------------------

def test_error_missing_summary(legacy_dir: Path):
    (legacy_dir / f"{TSG}_summary.json").unlink()
    with pytest.raises(LegacyFormatError, match=rf"{TSG}_events\.jsonl: no matching summary {TSG}_summary\.json; copy"):
        import_legacy(legacy_dir, runs_dir=legacy_dir / "runs")


def test_error_missing_events(legacy_dir: Path):
    (legacy_dir / f"{BASE}_events.jsonl").unlink()
    with pytest.raises(LegacyFormatError, match=rf"{BASE}_summary\.json: no matching events {BASE}_events\.jsonl"):
        read_legacy_dir(legacy_dir)


def test_error_bad_json_line(legacy_dir: Path):
    _rewrite_line(legacy_dir / f"{BASE}_events.jsonl", 7, lambda line: line[:-5])
    with pytest.raises(LegacyFormatError, match=rf"{BASE}_events\.jsonl:7: not valid JSON .*fix or delete the line"):
        read_legacy_dir(legacy_dir)


def test_error_missing_event_key(legacy_dir: Path):
    def drop(line: str) -> str:
        event = json.loads(line)
        del event["e2e_ms"]
        return json.dumps(event)

    _rewrite_line(legacy_dir / f"{TSG}_events.jsonl", 3, drop)
    with pytest.raises(LegacyFormatError, match=rf"{TSG}_events\.jsonl:3: missing key 'e2e_ms'; every legacy event"):
        read_legacy_dir(legacy_dir)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("e2e_ms", "slow", r":2: field 'e2e_ms' must be a finite number >= 0 \(ms\); got 'slow'"),
    ("in_warmup", 1, r":2: field 'in_warmup' must be true or false; got 1"),
    ("eval_ms", None, r":2: field 'eval_ms' must be a finite number \(ms\); got None"),
])
def test_error_bad_event_value(legacy_dir: Path, key, value, message):
    _rewrite_line(legacy_dir / f"{BASE}_events.jsonl", 2, lambda line: json.dumps({**json.loads(line), key: value}))
    with pytest.raises(LegacyFormatError, match=message):
        read_legacy_dir(legacy_dir)


def test_error_empty_events(legacy_dir: Path):
    (legacy_dir / f"{BASE}_events.jsonl").write_text("\n")
    with pytest.raises(LegacyFormatError, match=r"_events\.jsonl: no events"):
        read_legacy_dir(legacy_dir)


def test_error_summary_missing_key_bad_json_bad_value(legacy_dir: Path):
    path = legacy_dir / f"{TSG}_summary.json"
    summary = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in summary.items() if k != "warm_p95_ms_km"}))
    with pytest.raises(LegacyFormatError, match=rf"{TSG}_summary\.json: missing key 'warm_p95_ms_km'; a legacy"):
        read_legacy_dir(legacy_dir)
    path.write_text(json.dumps({**summary, "period_ms": 0}))
    with pytest.raises(LegacyFormatError, match=r"field 'period_ms' must be > 0"):
        read_legacy_dir(legacy_dir)
    path.write_text(json.dumps({**summary, "avg_eval_ms": "n/a"}))
    with pytest.raises(LegacyFormatError, match=r"field 'avg_eval_ms' must be a number; got 'n/a'"):
        read_legacy_dir(legacy_dir)
    path.write_text("{not json")
    with pytest.raises(LegacyFormatError, match=rf"{TSG}_summary\.json: not valid JSON"):
        read_legacy_dir(legacy_dir)


def test_error_not_a_dir_and_no_files(tmp_path: Path):
    with pytest.raises(LegacyFormatError, match=r"nowhere: not a directory; pass the folder"):
        read_legacy_dir(tmp_path / "nowhere")
    with pytest.raises(LegacyFormatError, match=r"no legacy run files \(expected names like"):
        read_legacy_dir(tmp_path)


def test_summary_mismatch_raises_or_is_flagged(legacy_dir: Path):
    path = legacy_dir / f"{BASE}_summary.json"
    summary = json.loads(path.read_text())
    path.write_text(json.dumps({**summary, "warm_p95_ms_co": summary["warm_p95_ms_co"] + 1e-5}))
    with pytest.raises(LegacyMismatchError, match=r"field 'warm_p95_ms_co' is .* but the legacy estimator gives"):
        import_legacy(legacy_dir, runs_dir=legacy_dir / "runs")
    assert not (legacy_dir / "runs").exists()  # nothing written before every summary checks out
    with pytest.warns(TsglabWarning, match="--allow-mismatch"):
        [result] = import_legacy(legacy_dir, runs_dir=legacy_dir / "runs", strict=False)
    flagged = result.table[result.table["summary_check"] != "ok"]
    assert flagged["metric"].tolist() == ["warm_p95_ms_co"]
    assert "MISMATCH" in flagged["summary_check"].iloc[0]


def test_existing_run_dir(tmp_path: Path):
    import_legacy(FIXTURE, runs_dir=tmp_path)
    with pytest.raises(RunError, match=r"legacy-20250314-101500: already exists; delete it, pass --force"):
        import_legacy(FIXTURE, runs_dir=tmp_path)
    [result] = import_legacy(FIXTURE, runs_dir=tmp_path, overwrite=True)
    assert len(read_events(result.run_dir)) == 80


def test_two_sessions_in_one_dir(legacy_dir: Path):
    for stem in (BASE, TSG):
        for suffix in ("_events.jsonl", "_summary.json"):
            later = stem.replace("20250314_10", "20250315_10")
            shutil.copy(legacy_dir / f"{stem}{suffix}", legacy_dir / f"{later}{suffix}")
    results = import_legacy(legacy_dir, runs_dir=legacy_dir / "runs")
    assert [r.run_id for r in results] == ["legacy-20250314-101500", "legacy-20250315-101500"]


# --- CLI -------------------------------------------------------------------------------------------

def test_cli_import_legacy(tmp_path: Path, capsys):
    assert main(["import-legacy", str(FIXTURE), "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "run legacy-20250314-101500: arms baseline, tsg (80 events)" in out
    assert "| baseline | warm_p95_ms_co" in out
    assert "Tsglab estimator" in out  # the table's column tsglab_estimator, its header humanised
    assert main(["import-legacy", str(FIXTURE), "--runs-dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["import-legacy", str(FIXTURE), "--runs-dir", str(tmp_path), "--force"]) == 0


def test_cli_errors_exit_2(legacy_dir: Path, capsys):
    path = legacy_dir / f"{TSG}_summary.json"
    summary = json.loads(path.read_text())
    path.write_text(json.dumps({**summary, "r_costly_pct": 12.0}))
    assert main(["import-legacy", str(legacy_dir), "--runs-dir", str(legacy_dir / "runs")]) == 2
    assert "tsglab: error:" in capsys.readouterr().err
    with pytest.warns(TsglabWarning):
        assert main(["import-legacy", str(legacy_dir), "--runs-dir", str(legacy_dir / "runs"),
                     "--allow-mismatch"]) == 0
    (legacy_dir / f"{BASE}_summary.json").unlink()
    assert main(["import-legacy", str(legacy_dir), "--runs-dir", str(legacy_dir / "runs2")]) == 2
    assert "no matching summary" in capsys.readouterr().err


def test_public_names_sorted():
    import tsglab.legacy

    assert tsglab.legacy.__all__ == sorted(tsglab.legacy.__all__)
    assert all(hasattr(tsglab.legacy, name) for name in tsglab.legacy.__all__)
