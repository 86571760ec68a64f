"""The replay frontier and calibration against naive readable implementations: per-configuration means equal the
summary kernel's, the band equals the one built by replaying every resample with the same prompt weights for
every configuration (an unpaired resample cannot match it), the curve kernel equals its plain twin and
hand-computed APGR/CPT/AIQ, the calibration's choice and test equal a brute-force recomputation."""

from __future__ import annotations

import numpy as np
import pytest

from tsglab.config import PolicyConfig
from tsglab.errors import InvalidArgument, SpecError
from tsglab.replay import (
    SUMMARY_COLUMNS,
    ConfigGrid,
    calibrate,
    default_grid,
    frontier,
    load_grid,
    replay,
    replay_summary,
    simulate_replay,
)
from tsglab.replay.frontier import _curve_row_py, _pareto, curve_statistics, outcomes, prompt_weights
from tsglab.stats import ResamplePlan, quality_noninferiority, resample_indices

LADDER = ("light", "std", "enh")


@pytest.fixture(scope="module")
def data():
    return simulate_replay(120, seed=11)


@pytest.fixture(scope="module")
def grid():
    return ConfigGrid.product(PolicyConfig(), {"thr_std": [0.0, 0.3, 0.6, 0.9, 1.2], "thr_enh": [0.6, 0.9, 1.2, 1.6],
                                               "json_floor": ["light", "std"], "max_upgrades": [0, 1, 2],
                                               "same_tier_repair": [False, True]}, LADDER)


@pytest.fixture(scope="module")
def result(data, grid):
    return frontier(data, grid, n_resamples=200, seed=5)


def test_points_equal_the_summary_kernel(data, grid, result):
    combined = result.grid
    summary = replay_summary(data, combined)
    column = dict(zip(SUMMARY_COLUMNS, summary.T, strict=True))
    for name, kernel in (("quality", "quality"), ("cost_ms", "cost_ms"), ("latency_ms", "latency_ms"),
                         ("r_costly", "r_costly"), ("missing", "missing")):
        np.testing.assert_allclose(result.points[name].to_numpy(), column[kernel], atol=1e-9)
    assert len(result.points) == len(grid) + 3
    assert list(result.points["label"].iloc[-3:]) == ["light alone", "enh alone", "default"]
    assert result.config(len(grid) + 2) == PolicyConfig()


def test_band_equals_a_naive_paired_replay_of_every_resample(data, result):
    """Replay every configuration under each resample's prompt counts (the same counts for all of them) and take
    the best quality at cost <= level: the band must be exactly these quantiles. A band built from independent
    resamples per configuration (unpaired) is wider above and fails this comparison."""
    plan = ResamplePlan(data.n_prompts, "iid", None, 200, 5)
    levels = result.band["cost_ms"].to_numpy()
    best = []
    for indices in resample_indices(plan):
        for row in indices:
            weights = np.bincount(row, minlength=data.n_prompts).astype(float)
            summary = replay_summary(data, result.grid, weights)
            quality, cost = summary[:, 0], summary[:, 1]
            best.append([quality[cost <= level].max() if (cost <= level).any() else np.nan for level in levels])
    best = np.array(best)
    np.testing.assert_allclose(result.band["high"], np.nanquantile(best, 0.975, axis=0), atol=1e-9)
    np.testing.assert_allclose(result.band["low"], np.nanquantile(best, 0.025, axis=0), atol=1e-9)
    # the same comparison fails for an unpaired band (each configuration its own resample)
    rng = np.random.default_rng(0)
    unpaired = []
    for _ in range(60):
        own = rng.integers(0, data.n_prompts, size=(len(result.grid), data.n_prompts))
        per = replay(data, result.grid)
        quality = np.take_along_axis(per.quality, own, axis=1).mean(axis=1)
        cost = np.take_along_axis(per.cost_ms, own, axis=1).mean(axis=1)
        unpaired.append([quality[cost <= level].max() if (cost <= level).any() else np.nan for level in levels])
    top = result.band["cost_ms"] > result.band["cost_ms"].median()
    assert np.nanmedian(np.array(unpaired), axis=0)[top].mean() > np.nanmedian(best, axis=0)[top].mean()


def test_per_configuration_intervals_are_percentiles_of_the_paired_draws(data, result):
    row = result.points.iloc[-1]  # the default
    plan = ResamplePlan(data.n_prompts, "iid", None, 200, 5)
    per = replay(data, ConfigGrid.from_configs([PolicyConfig()], LADDER))
    draws = [prompt_weights(ix, data.n_prompts) @ per.quality[0] / data.n_prompts for ix in resample_indices(plan)]
    low, high = np.quantile(np.concatenate(draws), [0.025, 0.975])
    assert row["quality_ci_low"] == pytest.approx(low, abs=1e-6)
    assert row["quality_ci_high"] == pytest.approx(high, abs=1e-6)
    assert row["quality_ci_low"] < row["quality"] < row["quality_ci_high"]


def test_pareto_set_equals_brute_force(result):
    points = result.points.drop_duplicates("outcome")
    cost, quality = points["cost_ms"].to_numpy(), points["quality"].to_numpy()
    dominated = [((cost <= c) & (quality >= q) & ((cost < c) | (quality > q))).any() for c, q in zip(cost, quality,
                                                                                                    strict=True)]
    assert set(points["outcome"][~np.array(dominated)]) == set(result.frontier["outcome"])
    assert (np.diff(result.frontier["cost_ms"]) >= 0).all()
    assert (np.diff(result.frontier["quality"]) > 0).all()
    assert result.points["on_frontier"].sum() == result.frontier["n_equivalent"].sum()


def _twin(cost, quality, share, levels, weak, strong, default):
    band, metrics = np.empty(len(levels)), np.empty(5)
    _curve_row_py(np.asarray(cost, float), np.asarray(quality, float), np.asarray(share, float),
                  np.asarray(levels, float), weak, strong, default, band, metrics)
    return band, metrics


def test_metrics_by_hand():
    # weak (share 0, cost 1, q 0), strong (share 1, cost 10, q 1), a router (share 0.5, cost 4, q 0.8)
    cost, quality, share = [1.0, 10.0, 4.0], [0.0, 1.0, 0.8], [0.0, 1.0, 0.5]
    band, metrics = _twin(cost, quality, share, [0.5, 1.0, 5.0, 10.0], 0, 1, 2)
    np.testing.assert_allclose(band, [np.nan, 0.0, 0.8, 1.0])
    apgr, cpt50, cpt80, aiq, gap = metrics
    assert apgr == pytest.approx(0.5 * 0.8)  # PGR 0 on [0, .5), 0.8 on [.5, 1)
    assert cpt50 == cpt80 == 0.5
    # hull (1,0) → (4,0.8) → (10,1): area 0.5·0.8·3 + 0.5·1.8·6 = 1.2 + 5.4 over the range 9
    assert aiq == pytest.approx(6.6 / 9)
    assert gap == 0.0
    # a point below the hull does not change AIQ; a decreasing tail is flattened
    _, more = _twin([1.0, 10.0, 4.0, 6.0, 12.0], [0.0, 1.0, 0.8, 0.7, 0.5], [0.0, 1.0, 0.5, 0.6, 1.0], [5.0], 0, 1, 3)
    assert more[3] == pytest.approx((6.6 + 1.0 * 2) / 11)
    assert more[4] == pytest.approx(0.8 - 0.7)


def test_curve_kernel_equals_its_plain_twin():
    rng = np.random.default_rng(3)
    cost, quality, share = rng.random((3, 40, 25))
    levels = np.linspace(0, 1, 9)
    band, metrics = curve_statistics(cost, quality, share, levels, weak=0, strong=1, default=2)
    for b in range(40):
        twin_band, twin_metrics = _twin(cost[b], quality[b], share[b], levels, 0, 1, 2)
        np.testing.assert_allclose(band[b], twin_band)
        np.testing.assert_allclose(metrics[b], twin_metrics)


def test_metric_intervals_cover_their_estimates_and_repeat_with_the_seed(data, grid, result):
    metrics = result.metrics.set_index("metric")
    for name in ("APGR", "AIQ"):
        assert metrics.loc[name, "ci_low"] <= metrics.loc[name, "estimate"] <= metrics.loc[name, "ci_high"]
    again = frontier(data, grid, n_resamples=200, seed=5)
    assert again.band.equals(result.band)
    assert again.metrics.equals(result.metrics)
    other = frontier(data, grid, n_resamples=200, seed=6)
    assert not other.band.equals(result.band)
    assert result.default["gap"].iloc[0] >= 0


def test_serial_logged_data_are_block_resampled():
    serial = simulate_replay(300, seed=2, serial=0.9)
    grid = ConfigGrid.product(PolicyConfig(), {"thr_std": [0.2, 0.4]}, LADDER)
    assert frontier(serial, grid, n_resamples=50).resampling == "stationary"
    assert frontier(serial, grid, n_resamples=50, resampling="iid").resampling == "iid"
    assert frontier(simulate_replay(300, seed=2), grid, n_resamples=50).resampling == "iid"


def test_calibration_equals_brute_force(data, grid):
    result = calibrate(data, grid, margin=0.05, seed=4, n_resamples=100)
    out = outcomes(data, grid)
    rng = np.random.default_rng(4)  # the split: a seeded half of each task stratum
    strata = np.array(data.strata)
    calibration = np.zeros(data.n_prompts, bool)
    for stratum in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == stratum))
        calibration[members[:round(0.5 * members.size)]] = True
    summary = replay_summary(data, out.grid, calibration.astype(float))
    top = summary[out.strong, 0]
    candidates = [i for i in [*range(len(grid)), out.strong] if summary[i, 0] >= top - 0.05 - 1e-12]
    cheapest = min(candidates, key=lambda i: (summary[i, 1], -summary[i, 0]))
    assert summary[result.config_index, 1] == pytest.approx(summary[cheapest, 1])
    held = ~calibration
    per = replay(data, ConfigGrid(out.grid.matrix[[result.config_index, out.strong]], LADDER))
    expected = quality_noninferiority(per.quality[0, held], per.quality[1, held], margin=0.05, alpha=0.05, seed=4)
    assert result.test == expected
    assert result.quality == pytest.approx(per.quality[0, held].mean())
    assert result.cost_ms == pytest.approx(per.cost_ms[0, held].mean())
    assert result.quality_ci_low <= result.quality <= result.quality_ci_high
    assert result.n_heldout == held.sum()
    frame = result.to_frame()
    assert frame.loc[0, "decision"] == expected.decision
    assert frame.loc[0, "p_value"] == expected.p_value


def test_cross_fitted_calibration_holds_out_every_prompt(data, grid):
    result = calibrate(data, grid, folds=4, seed=1, n_resamples=50)
    assert result.n_heldout == data.n_prompts
    assert "4-fold" in result.scheme
    assert 0 <= result.under_escalation <= result.under_escalation_upper <= 1


def test_default_grid_size():
    assert len(default_grid(LADDER)) == 153 * 3 * 2 * 2 * 2 * 3


def test_plot_draws_the_parts(result):
    from matplotlib.figure import Figure

    fig = result.plot(current=(100.0, 0.7))
    assert isinstance(fig, Figure)
    gids = {artist.get_gid() for artist in fig.axes[0].get_children()}
    assert {"points", "band", "frontier", "current"} <= gids
    assert {"points", "band", "frontier"} <= {a.get_gid() for a in result.plot(ax=Figure().subplots()).axes[0]
                                              .get_children()}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"resampling": "bootstrap"}, "`resampling` must be one of"),
    ({"n_resamples": 3}, "`n_resamples` must be an integer >= 10"),
    ({"confidence": 1.5}, "`confidence` must be in"),
])
def test_bad_arguments(data, grid, kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        frontier(data, grid, **kwargs)


def test_bad_calibration_arguments(data, grid):
    with pytest.raises(InvalidArgument, match="`objective` must be one of"):
        calibrate(data, grid, objective="cheapest")
    with pytest.raises(InvalidArgument, match="`split` must be in"):
        calibrate(data, grid, split=1.0)
    with pytest.raises(InvalidArgument, match="`folds` must be an integer"):
        calibrate(data, grid, folds=1)
    with pytest.raises(InvalidArgument, match="the grid's ladder"):
        frontier(data, ConfigGrid.product(PolicyConfig(json_floor="a", code_floor="a", def_floor="a",
                                                       baseline_tier="b"), {"thr_std": [0.1]}, ("a", "b")))


@pytest.mark.parametrize(("text", "match"), [
    ("grid: {thr_std: [0.2]}\nextra: 1\n", r"grid.yaml: unknown key\(s\) \['extra'\]"),
    ("base: {thr: 1}\ngrid: {thr_std: [0.2]}\n", r"base.thr: not a policy parameter"),
    ("grid: {threshold: [0.2]}\n", r"grid.threshold: not a parameter a grid may vary"),
    ("grid: {thr_std: 0.2}\n", r"grid.thr_std: must be a non-empty list"),
    ("grid: {json_floor: [top]}\n", r"grid.json_floor: 'top' is not a rung of the ladder"),
    ("grid: {thr_std: [high]}\n", r"grid.thr_std: 'high' is not a number"),
    ("grid: {thr_std: [1.5], thr_enh: [0.5]}\n", r"every combination has thr_std > thr_enh"),
    ("base: {thr_std: 2.0, thr_enh: 1.0}\ngrid: {max_upgrades: [1]}\n", r"grid.yaml: base: policy thresholds"),
    ("- 1\n", r"a grid file is a mapping"),
])
def test_grid_file_errors_name_file_key_and_fix(tmp_path, text, match):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=match):
        load_grid(path, LADDER)


def test_grid_file(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("base: {max_upgrades: 1}\ngrid: {thr_std: [0.2, 0.4], json_floor: [light, enh]}\n")
    grid = load_grid(path, LADDER)
    assert len(grid) == 4
    assert {grid.config(i).json_floor for i in range(4)} == {"light", "enh"}
    assert all(grid.config(i).max_upgrades == 1 for i in range(4))
    with pytest.raises(SpecError, match="cannot read the grid file"):
        load_grid(tmp_path / "none.yaml", LADDER)


def test_pareto_helper_keeps_the_first_of_ties():
    np.testing.assert_array_equal(_pareto(np.array([1.0, 1.0, 2.0, 3.0]), np.array([0.5, 0.5, 0.4, 0.9])), [0, 3])
