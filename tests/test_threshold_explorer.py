"""The threshold explorer: the values shown are replay_summary's for the configuration the controls say, its
CIs are the frontier's, thresholds never cross, a stale result is never shown, ``%tsg frontier`` parses and
completes, the snippet is a spec's arm, and notebooks/frontier.ipynb executes."""

from __future__ import annotations

import dataclasses
import json
import statistics
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from tsglab.config import BASELINE, PAPER_TSG, PolicyConfig
from tsglab.jupyter import threshold_explorer
from tsglab.jupyter.magics import complete, tsg
from tsglab.jupyter.threshold_explorer import CONTROLS, ThresholdExplorer, spec_snippet
from tsglab.replay import SUMMARY_COLUMNS, ConfigGrid, frontier, replay, replay_summary, simulate_replay

REPO = Path(__file__).resolve().parents[1]
B = 200


@pytest.fixture(scope="module")
def data():
    return simulate_replay(240, seed=3)


@pytest.fixture(scope="module")
def small_frontier(data):
    grid = ConfigGrid.product(PAPER_TSG, {"thr_std": [0.0, 0.3, 0.6, 0.9], "thr_enh": [0.6, 0.9, 1.2],
                                          "same_tier_repair": [0, 1]}, data.ladder)
    return frontier(data, grid, n_resamples=B, seed=5)


def _explorer(data, small_frontier, **options):
    return ThresholdExplorer(data, frontier=small_frontier, background=False, **options)


def _summary(data, config):
    row = replay_summary(data, ConfigGrid.from_configs([config], data.ladder))[0]
    return dict(zip(SUMMARY_COLUMNS, row, strict=True))


def test_the_values_shown_are_replay_summary_of_the_controls_configuration(data, small_frontier):
    explorer = _explorer(data, small_frontier)
    changes = {"thr_std": 0.25, "thr_enh": 1.1, "force_light_len": 60, "force_light_score": 0.5,
               "json_floor": "light", "code_floor": "enh", "def_floor": "std", "same_tier_repair": False,
               "max_upgrades": 1}
    assert set(changes) == set(CONTROLS)
    for name, value in changes.items():
        explorer.controls[name].value = value
        expected_config = dataclasses.replace(PAPER_TSG, **{k: changes[k] for k in list(changes)[:list(changes).index(
            name) + 1]})
        assert explorer.current_config() == expected_config
        expected = _summary(data, expected_config)
        assert explorer.point.summary == pytest.approx(expected, rel=1e-12)
        assert f"{expected['cost_ms']:.1f}" in explorer.output.value
        assert f"{expected['quality']:.3f}" in explorer.output.value
    assert explorer.point.summary != pytest.approx(_summary(data, PAPER_TSG))  # the controls reached the replay
    assert explorer.plot.value[:4] == b"\x89PNG"  # the frontier figure with the point was drawn


def test_the_intervals_are_the_frontiers_and_the_comparisons_are_paired(data, small_frontier):
    explorer = _explorer(data, small_frontier)
    points = small_frontier.points
    for index in (0, 7, 13):  # configurations of the frontier's grid, set through the controls
        config = small_frontier.config(index)
        for name in CONTROLS:
            explorer.controls[name].value = getattr(config, name)
        assert explorer.current_config() == dataclasses.replace(config, label="explored")
        row = points[points["config"] == index].iloc[0]
        point = explorer.point
        assert point.quality_ci == pytest.approx((row.quality_ci_low, row.quality_ci_high), rel=1e-5)
        assert point.cost_ci == pytest.approx((row.cost_ci_low, row.cost_ci_high), rel=1e-5)
    # comparisons against a naive computation over the same resamples
    per_prompt = replay(data, ConfigGrid.from_configs([explorer.current_config(), PAPER_TSG,
                                                       dataclasses.replace(BASELINE, baseline_tier="enh")],
                                                      data.ladder))
    w = explorer.weights
    assert w.shape == (B, data.n_prompts)
    assert (w.sum(axis=1) == data.n_prompts).all()
    for c, comparison in enumerate(explorer.point.comparisons, start=1):
        diff = per_prompt.quality[0] - per_prompt.quality[c]
        draws = w @ diff / data.n_prompts
        assert comparison.quality_diff[0] == pytest.approx(diff.mean())
        assert comparison.quality_diff[1:] == pytest.approx(tuple(np.quantile(draws, [0.025, 0.975])))
        ratio = (w @ per_prompt.cost_ms[0]) / (w @ per_prompt.cost_ms[c])
        assert comparison.cost_ratio[0] == pytest.approx(per_prompt.cost_ms[0].mean() / per_prompt.cost_ms[c].mean())
        assert comparison.cost_ratio[1:] == pytest.approx(tuple(np.quantile(ratio, [0.025, 0.975])))
    assert [c.reference for c in explorer.point.comparisons] == ["paper default", "all top tier"]


def test_thr_std_never_passes_thr_enh(data, small_frontier):
    explorer = _explorer(data, small_frontier)
    explorer.controls["thr_std"].value = 1.3  # above thr_enh = 0.85: thr_enh follows
    assert explorer.controls["thr_enh"].value == pytest.approx(1.3)
    assert "thr_enh raised to 1.3" in explorer.notice.value
    assert explorer.current_config().thr_std <= explorer.current_config().thr_enh
    explorer.controls["thr_enh"].value = 0.2  # below thr_std: thr_std follows
    assert explorer.controls["thr_std"].value == pytest.approx(0.2)
    assert "thr_std lowered to 0.2" in explorer.notice.value
    config = explorer.current_config()
    assert (config.thr_std, config.thr_enh) == (0.2, 0.2)
    assert explorer.point.summary == pytest.approx(_summary(data, config))
    explorer.controls["max_upgrades"].value = 0
    assert explorer.notice.value == ""


def test_a_stale_result_is_never_shown(data, small_frontier, monkeypatch):
    """A change arrives while a slow replay runs: the slow result is cached, never shown."""
    explorer = ThresholdExplorer(data, frontier=small_frontier, figure=False)
    explorer.wait()
    release = threading.Event()
    real = ThresholdExplorer.evaluate

    def slow_for_low_threshold(self, config):
        if config.thr_std == 0.1:
            release.wait(30)
        return real(self, config)

    monkeypatch.setattr(ThresholdExplorer, "evaluate", slow_for_low_threshold)
    explorer.controls["thr_std"].value = 0.1  # slow
    assert "replaying" in explorer.busy.value
    explorer.controls["thr_std"].value = 0.3  # fast, asked later
    slow, fast = explorer._workers[-2:]
    fast.join(30)
    assert slow.is_alive()
    shown = explorer.output.value
    assert explorer.point.config.thr_std == 0.3
    release.set()
    explorer.wait()
    assert explorer.point.config.thr_std == 0.3  # the late, older result did not replace it
    assert explorer.output.value == shown
    assert dataclasses.replace(explorer.current_config(), thr_std=0.1) in explorer.cache
    assert explorer.busy.value == ""


def test_a_change_is_replayed_well_under_100_ms(data, small_frontier):
    explorer = _explorer(data, small_frontier, n_resamples=1000)
    explorer.figure = False  # the figure is drawn after the numbers; its time is not the replay's
    steps = [k for k in range(1, 52) if k != 40]  # 50 distinct values, none the starting 0.40: none cached
    for step in np.random.default_rng(0).permutation(steps):
        explorer.controls["thr_std"].value = round(0.01 * float(step), 2)
    assert len(explorer.change_ms) == 51  # the first point and the 50 changes
    median = statistics.median(explorer.change_ms[1:])
    print(f"median replay time of 50 changes: {median:.2f} ms (max {max(explorer.change_ms[1:]):.2f} ms)")
    assert median < 100


def test_the_snippet_is_a_spec_arm_of_the_same_configuration(data, small_frontier):
    explorer = _explorer(data, small_frontier)
    explorer.controls["thr_std"].value = 0.33
    explorer.controls["same_tier_repair"].value = False
    explorer.controls["json_floor"].value = "enh"
    explorer.copy.click()
    text = explorer.snippet.value
    arm = yaml.safe_load(text)["arms"]["explored"]
    assert PolicyConfig.from_dict(arm) == explorer.current_config()
    assert "same_tier_repair: false" in text
    custom = PolicyConfig(scorer="length", thr_std=0.2)
    assert PolicyConfig.from_dict(yaml.safe_load(spec_snippet(custom, "x"))["arms"]["x"]) == custom


def test_a_replay_folder_or_a_bad_path(data, small_frontier, tmp_path):
    data.save(tmp_path)
    explorer = threshold_explorer(tmp_path, frontier=small_frontier, background=False)
    assert explorer.data.n_prompts == data.n_prompts
    assert explorer.point.summary == pytest.approx(_summary(data, PAPER_TSG))
    from tsglab.errors import RunError

    with pytest.raises(RunError, match="no replay data here"):
        threshold_explorer(tmp_path / "nowhere")


def test_the_magic_shows_the_explorer_over_the_commands_frontier(data, tmp_path):
    (tmp_path / "replay").mkdir()
    data.save(tmp_path / "replay")
    explorer = tsg(f"frontier {tmp_path / 'replay'} --resamples 100 --out {tmp_path / 'out'}")
    assert isinstance(explorer, ThresholdExplorer)
    assert explorer.frontier.n_resamples == 100
    assert explorer.n_resamples == 100
    assert (tmp_path / "out" / "points.csv").is_file()  # what `tsglab frontier DIR` writes
    assert explorer.point.summary == pytest.approx(_summary(data, PAPER_TSG))
    bundle = explorer._repr_mimebundle_()
    assert "ThresholdExplorer(240 prompts" in bundle["text/plain"]
    assert "tsglab-threshold-point" in bundle["text/html"]


def test_magic_errors_are_one_line(tmp_path):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="no replay data here") as caught:
        tsg(f"frontier {tmp_path / 'missing'}")
    assert "\n" not in str(caught.value)
    with pytest.raises(UsageError, match="invalid int value"):
        tsg(f"frontier {tmp_path} --resamples many")


def test_completion_offers_replay_folders_run_dirs_and_grid_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, marker in (("replay-a", "replay.npz"), ("replay-b", "replay.jsonl"), ("run-1", "run.json"),
                         ("scratch", None)):
        (tmp_path / "runs" / name).mkdir(parents=True)
        if marker:
            (tmp_path / "runs" / name / marker).write_text("")
    (tmp_path / "grids").mkdir()
    (tmp_path / "grids" / "small.yaml").write_text("grid: {thr_std: [0.2]}\n")
    assert "frontier" in complete("%tsg fr")
    assert complete("%tsg frontier runs/") == ["runs/replay-a", "runs/replay-b", "runs/run-1", "runs/scratch/"]
    assert complete("%tsg frontier runs/r") == ["runs/replay-a", "runs/replay-b", "runs/run-1"]
    assert complete("%tsg frontier co") == ["collect"]
    assert complete("%tsg frontier collect grids/") == ["grids/small.yaml"]
    assert complete("%tsg frontier runs/replay-a --grid grids/") == ["grids/small.yaml"]
    assert complete("%tsg frontier runs/replay-a --re") == ["--resamples"]


@pytest.mark.integration
def test_the_frontier_notebook_executes_on_simulated_data(tmp_path):
    import nbformat
    import papermill

    out = tmp_path / "frontier-out.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "frontier.ipynb"), str(out),
                               parameters={"n_resamples": 200, "seed": 1}, cwd=str(REPO / "notebooks"),
                               kernel_name="python3", progress_bar=False)
    outputs = "".join(json.dumps(c.get("outputs", [])) for c in nbformat.read(out, as_version=4).cells)
    assert "simulated replay data" in outputs
    for metric in ("APGR", "CPT(50%)", "CPT(80%)", "AIQ"):
        assert f"{metric}: " in outputs
    assert "Calibration(split 0.5" in outputs
    assert "image/png" in outputs  # the frontier with its band
    assert "tsglab-threshold-point" in outputs  # the explorer's table, kept for a notebook without frontend
    assert "arms:\\n  explored:" in outputs
