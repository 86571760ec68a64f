"""Smoke test of benchmarks/calibration.py: every calibration runs small, and a broken procedure fails.

The real (long) calibration run is recorded in benchmarks/results/calibration.md.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "calibration.py"


@pytest.fixture(scope="module")
def calibration():
    spec = importlib.util.spec_from_file_location("tsglab_calibration", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ignores_data(x: np.ndarray, seed: int) -> tuple[float, float, None]:
    return 0.0, 1.0, None  # a fixed "CI" far below the true P95 (≈ 338 ms)


ROW_KEYS = {"label", "reps", "coverage", "coverage_se", "mean_width", "miss_below", "miss_above", "verdict"}


def test_verdict_rules(calibration):
    assert calibration.verdict(0.95, 0.003, low=0.94, high=0.96) == "met"
    assert calibration.verdict(0.937, 0.003, low=0.94, high=0.96) == "met within MC error"
    assert calibration.verdict(0.90, 0.003, low=0.94, high=0.96) == "MISSED"
    assert calibration.verdict(0.07, 0.003, high=0.05) == "MISSED"
    assert calibration.verdict(float("nan"), 0.0, high=0.05).startswith("MISSED")


def test_true_p95_is_the_lognormal_quantile(calibration):
    from scipy import stats

    expected = stats.lognorm(s=calibration.SIGMA, scale=np.exp(calibration.MU)).ppf(0.95)
    assert calibration.true_lognormal_quantile() == pytest.approx(expected, rel=1e-12)


def test_iid_coverage_structure(calibration):
    res = calibration.iid_p95_coverage(sizes=(200,), reps=12, n_resamples=100, seed=1)
    assert res["name"] == "iid_p95_coverage"
    assert res["truth"] == pytest.approx(calibration.true_lognormal_quantile())
    assert [r["label"] for r in res["rows"]] == ["iid percentile", "iid bca"]
    for row in res["rows"]:
        assert row.keys() >= ROW_KEYS
        assert row["n"] == 200
        assert row["reps"] == 12
        assert 0.0 <= row["coverage"] <= 1.0
        assert row["mean_width"] > 0.0
        assert row["miss_below"] + row["miss_above"] == pytest.approx(1.0 - row["coverage"])
    again = calibration.iid_p95_coverage(sizes=(200,), reps=12, n_resamples=100, seed=1)
    assert [r["coverage"] for r in again["rows"]] == [r["coverage"] for r in res["rows"]]  # seeded


def test_interval_that_ignores_the_data_is_flagged(calibration):
    res = calibration.iid_p95_coverage(sizes=(100,), reps=20, seed=2, intervals={"ignores data": _ignores_data})
    (row,) = res["rows"]
    assert row["coverage"] == 0.0
    assert row["miss_below"] == 1.0
    assert row["verdict"] == "MISSED"


def test_ar1_simulator_has_the_stated_marginal_and_correlation(calibration):
    x = calibration.simulate_ar1_lognormal(np.random.default_rng(3), 40_000, 0.7)
    z = (np.log(x) - calibration.MU) / calibration.SIGMA
    assert abs(z.mean()) < 0.05
    assert abs(z.std() - 1.0) < 0.03
    assert np.corrcoef(z[:-1], z[1:])[0, 1] == pytest.approx(0.7, abs=0.02)


def test_ar1_coverage_structure_and_broken_interval(calibration):
    res = calibration.ar1_p95_coverage(n=300, reps=4, n_resamples=100, seed=4)
    labels = [r["label"] for r in res["rows"]]
    assert len(labels) == 3
    assert labels[-1].startswith("iid")
    assert all(r["mean_block_length"] >= 1 for r in res["rows"][:2])
    assert res["rows"][2]["mean_block_length"] is None
    assert 0.0 <= res["detection_rate"] <= 1.0
    broken = calibration.ar1_p95_coverage(n=300, reps=5, seed=4, intervals={"block ignores data": _ignores_data})
    assert broken["rows"][0]["coverage"] == 0.0
    assert broken["rows"][0]["verdict"] == "MISSED"


def test_noninferiority_structure_and_always_rejecting_test(calibration):
    res = calibration.noninferiority_type1(n=60, reps=10, n_resamples=100, seed=5)
    assert {(r["scenario"], r["label"]) for r in res["rows"]} == {
        (s, t) for s in calibration.SCENARIOS for t in ("paired bootstrap", "paired t")
    }
    for row in res["rows"]:
        assert 0.0 <= row["rejection_rate"] <= 1.0
        assert row["n_nan"] == 0
        assert row["reps"] == 10
    always = calibration.noninferiority_type1(n=60, reps=10, seed=5, tests={"always rejects": lambda g, b, s: 0.0})
    assert all(r["rejection_rate"] == 1.0 and r["verdict"] == "MISSED" for r in always["rows"])


def test_binary_scenario_scores_are_pass_fail_at_the_margin(calibration):
    gateway, baseline = calibration._paired_binary(np.random.default_rng(6), 200_000, 0.05)
    assert set(np.unique(gateway)) <= {0.0, 1.0}
    assert set(np.unique(baseline)) <= {0.0, 1.0}
    assert np.mean(gateway - baseline) == pytest.approx(-0.05, abs=0.003)


def test_bh_structure_and_reject_everything(calibration):
    res = calibration.bh_fdr(null_counts=(20, 10), reps=200, seed=7)
    assert [r["m0"] for r in res["rows"]] == [20, 10]
    for row in res["rows"]:
        assert 0.0 <= row["fdr"] <= 1.0
        assert row["bound"] == pytest.approx(row["m0"] / 20 * 0.10)
    broken = calibration.bh_fdr(null_counts=(10,), reps=50, seed=7, reject=lambda p: np.ones(p.size, dtype=bool))
    (row,) = broken["rows"]
    assert row["fdr"] == pytest.approx(0.5)
    assert row["verdict"] == "MISSED"


def test_main_prints_the_markdown_report(calibration, capsys):
    calibration.main(["--reps-scale", "0.001", "--seed", "11"])
    out = capsys.readouterr().out
    for heading in ("## 1.", "## 2.", "## 3.", "## 4.", "## Summary"):
        assert heading in out
    assert "seed: 11" in out
    assert "± " in out


def test_main_rejects_a_nonpositive_scale(calibration, capsys):
    with pytest.raises(SystemExit):
        calibration.main(["--reps-scale", "0"])
    assert "--reps-scale must be > 0; got 0.0" in capsys.readouterr().err
