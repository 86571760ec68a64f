"""The report explorer: a change of settings recomputes the report (as compute_report would), identical
settings come from the cache, stale results are dropped; resampling "auto" is today's report."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from tsglab.events import EventWriter, synthetic_event, write_manifest
from tsglab.jupyter import explore
from tsglab.jupyter.explorer import ReportExplorer
from tsglab.report import ProtocolSettings, build_report, compute_report
from tsglab.report.pairing import load_arm_pair
from tsglab.report.tables import four_view_table

N_PER_ARM = 220  # enough pairs for the P95 guardrail (n >= 200) to be tested
FAST = ProtocolSettings(n_resamples=200)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Two arms of serially correlated latencies (AR(1)), so the resampling scheme matters."""
    run_dir = tmp_path_factory.mktemp("explorer") / "run"
    rng = np.random.default_rng(7)
    seq = 0
    with EventWriter(run_dir) as writer:
        for arm, scale in (("baseline", 100.0), ("tsg", 90.0)):
            level = 0.0
            for i in range(N_PER_ARM):
                level = 0.8 * level + float(rng.normal(0, 0.3))
                raw = scale * float(np.exp(level))
                task = ("general", "json", "code")[i % 3]
                writer.write(synthetic_event(f"p{i}", arm=arm, seq=seq, task=task, raw_ms=raw, co_ms=raw + 3.0,
                                             quality=float(rng.random() < 0.8), run_id="explorer",
                                             json_ok=True if task == "json" else None))
                seq += 1
    write_manifest(run_dir, {"run_id": "explorer", "status": "complete", "seed": 1,
                             "spec": {"load": {"timeout_s": 60, "warmup_count": 0}}})
    return run_dir


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_default_resampling_is_todays_report(run_dir):
    """ProtocolSettings.resampling = "auto" gives byte-identical tables to the tables' own defaults."""
    pair = load_arm_pair(run_dir)
    report = compute_report(pair, FAST)
    today = four_view_table(pair.frames, n_resamples=FAST.n_resamples, seed=FAST.seed)
    assert report.p95_views.to_csv() == today.to_csv()
    assert compute_report(pair, FAST).family_b.to_csv() == report.family_b.to_csv()
    assert set(report.family_b["resampling"]) != {"none"}  # the guardrail was tested, so resampling was used


def test_a_change_of_view_or_resampling_recomputes(run_dir):
    explorer = ReportExplorer(run_dir, settings=FAST, figures=False, background=False)
    pair = explorer.pair
    assert explorer.computations == 1
    _same(explorer.report.family_b, compute_report(pair, FAST).family_b)

    explorer.controls["resampling"].value = "moving-block"
    forced = ProtocolSettings(n_resamples=200, resampling="moving-block")
    assert explorer.current_settings() == forced
    expected = compute_report(pair, forced)
    _same(explorer.report.family_b, expected.family_b)
    _same(explorer.report.p95_views, expected.p95_views)
    assert not explorer.report.p95_views.equals(compute_report(pair, FAST).p95_views)  # the CIs moved
    assert all("moving-block" in r for r in explorer.report.family_b["resampling"] if r != "none")

    explorer.controls["view"].value = "Raw / Warm-only"
    raw = ProtocolSettings(n_resamples=200, resampling="moving-block", co_correction=False)
    _same(explorer.report.family_b, compute_report(pair, raw).family_b)
    assert set(explorer.report.family_b["latency"]) == {"raw_ms"}
    assert "Raw / Warm-only" in explorer.output.value
    assert explorer.computations == 3


def test_identical_settings_come_from_the_cache(run_dir):
    explorer = ReportExplorer(run_dir, settings=FAST, figures=False, background=False)
    first = explorer.report
    explorer.controls["delta"].value = 0.25
    assert explorer.computations == 2
    explorer.controls["delta"].value = FAST.p95_delta  # back to a combination already computed
    assert explorer.computations == 2
    assert explorer.report is first
    explorer.controls["strata"].value = ("task", "lang")
    explorer.controls["strata"].value = ("task",)
    assert explorer.computations == 3


def test_a_stale_result_is_not_shown(run_dir, monkeypatch):
    """The user changes the settings while a recompute runs: the older result is cached, never shown."""
    import tsglab.jupyter.explorer as module

    explorer = ReportExplorer(run_dir, settings=FAST, figures=False, background=True)
    explorer.wait()
    release = threading.Event()
    real = module.compute_report

    def slow_for_delta(pair, settings):
        if settings.p95_delta == 0.3:
            release.wait(30)
        return real(pair, settings)

    monkeypatch.setattr(module, "compute_report", slow_for_delta)
    explorer.controls["delta"].value = 0.3  # slow
    assert "computing" in explorer.busy.value
    explorer.controls["delta"].value = 0.2  # fast, asked later
    slow, fast = explorer._workers[-2:]
    fast.join(30)  # the later request finished first and is shown; the slow one is still blocked
    assert slow.is_alive()
    assert explorer.report.family_b["bound"].iloc[0] == pytest.approx(1.2)
    release.set()
    explorer.wait()
    assert explorer.report.family_b["bound"].iloc[0] == pytest.approx(1.2)
    assert ProtocolSettings(n_resamples=200, p95_delta=0.3) in explorer.cache
    assert explorer.busy.value == ""


def test_explore_takes_a_run_directory_or_a_report(run_dir):
    report = build_report(run_dir, settings=FAST, write=False)
    explorer = ReportExplorer(report, background=False)
    assert explorer.computations == 0  # the report given is the cached result of its own settings
    assert explorer.report is report
    assert "class='tsglab-verdict tsglab-verdict-" in explorer.output.value
    assert "tsglab-explorer" in explorer.widget._dom_classes
    assert "tsglab-explorer-resampling" in explorer.controls["resampling"]._dom_classes
    assert "<img" in explorer.output.value  # the report's figures are drawn
    by_dir = explore(run_dir, settings=FAST, figures=False, background=False)
    _same(by_dir.report.headline, report.headline)
