"""The one resampling layer: aligned rows, block structure, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from tsglab.stats import ResamplePlan, resample_indices


def _all(plan: ResamplePlan, **kwargs) -> np.ndarray:
    return np.concatenate(list(resample_indices(plan, **kwargs)))


@pytest.mark.parametrize("method", ["iid", "moving-block", "circular-block", "stationary"])
def test_rows_are_valid_indices_and_reproducible(method):
    plan = ResamplePlan(n=57, method=method, block_length=None if method == "iid" else 5, n_resamples=300, seed=4)
    first, again = _all(plan), _all(plan)
    assert first.shape == (300, 57)
    assert first.min() >= 0
    assert first.max() < 57
    assert np.array_equal(first, again)
    other = _all(ResamplePlan(57, method, plan.block_length, 300, seed=5))
    assert not np.array_equal(first, other)


def test_chunking_does_not_change_the_draw_count_or_alignment():
    plan = ResamplePlan(n=1000, method="stationary", block_length=7, n_resamples=50, seed=1)
    chunks = list(resample_indices(plan, chunk_elements=7_000))
    assert sum(c.shape[0] for c in chunks) == 50
    assert max(c.shape[0] for c in chunks) == 7
    a = np.arange(1000.0)
    b = 3 * a + 1
    for idx in chunks:  # gathering two arrays with the same rows keeps every pair together
        assert np.array_equal(b[idx], 3 * a[idx] + 1)


def test_moving_blocks_are_contiguous_runs_that_never_wrap():
    idx = _all(ResamplePlan(n=40, method="moving-block", block_length=8, n_resamples=200, seed=2))
    blocks = idx.reshape(200, 5, 8)
    assert np.all(np.diff(blocks, axis=2) == 1)  # each block is consecutive, no wrap past n - 1
    assert blocks[:, :, 0].max() <= 40 - 8


def test_circular_blocks_wrap_around():
    idx = _all(ResamplePlan(n=10, method="circular-block", block_length=4, n_resamples=500, seed=3))
    steps = np.diff(idx.reshape(500, -1)[:, :8].reshape(500, 2, 4), axis=2)
    assert set(np.unique(steps)) <= {1, -9}
    assert (steps == -9).any()


def test_stationary_blocks_have_the_mean_length_asked_for():
    idx = _all(ResamplePlan(n=2000, method="stationary", block_length=10, n_resamples=50, seed=4))
    continues = np.diff(idx, axis=1) % 2000 == 1
    breaks = (~continues).sum() + idx.shape[0]
    assert 2000 * 50 / breaks == pytest.approx(10, rel=0.08)


def test_iid_draws_are_uniform():
    counts = np.bincount(_all(ResamplePlan(n=20, n_resamples=5000, seed=6)).ravel(), minlength=20)
    assert counts.min() > 0.9 * 5000
    assert counts.max() < 1.1 * 5000


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n": 10, "method": "jackknife"}, "`method` must be one of"),
    ({"n": 10, "method": "iid", "block_length": 3}, "must be None for iid"),
    ({"n": 10, "method": "stationary", "block_length": 0}, r"must be in \[1, 10\]"),
    ({"n": 0}, "positive number of rows"),
    ({"n": 10, "n_resamples": 0}, "`n_resamples` must be >= 1"),
])
def test_plan_errors_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResamplePlan(**kwargs)
