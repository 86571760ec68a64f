"""Merging t-digest: kernels vs plain twins, error bounds vs numpy, merge, properties, reference, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsglab.errors import DegenerateStatisticWarning
from tsglab.stats._quantile_kernels import td_ingest_sorted_chunks, td_merge_sorted
from tsglab.stats.tdigest import TDigest


def _plain(kernel):
    return getattr(kernel, "py_func", kernel)


def naive_k1_compress(values, compression):
    """Readable twin of one merge pass over sorted unit-weight values: k1 size of each cluster <= 1."""
    total = len(values)
    k1 = lambda q: compression / (2 * math.pi) * math.asin(2 * q - 1)  # noqa: E731
    clusters, current, weight_so_far = [], [], 0
    for value in values:
        if current and k1(min(1.0, (weight_so_far + len(current) + 1) / total)) - k1(weight_so_far / total) > 1:
            clusters.append(current)
            weight_so_far += len(current)
            current = []
        current.append(value)
    clusters.append(current)
    return [float(np.mean(c)) for c in clusters], [float(len(c)) for c in clusters]


@pytest.fixture(scope="module")
def lognormal():
    return np.random.default_rng(20240611).lognormal(mean=0.0, sigma=1.0, size=1_000_000)


# --------------------------------------------------------------------------------------------------
# Kernels


def test_merge_kernel_matches_plain_twin_and_naive_compress():
    values = np.sort(np.random.default_rng(1).exponential(size=3_000))
    out_m, out_w = np.empty(values.size), np.empty(values.size)
    empty = np.empty(0)
    n = td_merge_sorted(empty, empty, values, empty, True, float(values.size), 50.0, out_m, out_w)
    plain_m, plain_w = np.empty(values.size), np.empty(values.size)
    n_plain = _plain(td_merge_sorted)(empty, empty, values, empty, True, float(values.size), 50.0, plain_m, plain_w)
    assert n == n_plain
    np.testing.assert_allclose(out_m[:n], plain_m[:n], rtol=1e-14)
    np.testing.assert_array_equal(out_w[:n], plain_w[:n])
    naive_m, _ = naive_k1_compress(values.tolist(), 50.0)
    # The naive twin checks the k1 criterion; rounding at a cluster edge may move one value.
    assert abs(n - len(naive_m)) <= 1
    assert out_w[:n].sum() == values.size
    if n == len(naive_m):
        np.testing.assert_allclose(out_m[:n], naive_m, rtol=1e-6)


def test_ingest_kernel_matches_plain_twin():
    rng = np.random.default_rng(2)
    chunks = np.sort(rng.normal(size=(4, 500)), axis=1)
    means, weights = td_ingest_sorted_chunks(chunks, np.empty(0), np.empty(0), 0.0, 40.0)
    plain_means, plain_weights = _plain(td_ingest_sorted_chunks)(chunks, np.empty(0), np.empty(0), 0.0, 40.0)
    np.testing.assert_allclose(means, plain_means, rtol=1e-14)
    np.testing.assert_array_equal(weights, plain_weights)
    assert weights.sum() == 2_000
    assert np.all(np.diff(means) >= 0)


# --------------------------------------------------------------------------------------------------
# Accuracy


def test_small_sample_is_exact_type5():
    x = np.random.default_rng(4).uniform(size=40)
    digest = TDigest()
    digest.update(x)
    qs = np.array([0.01, 0.1, 0.5, 0.9, 0.99])
    np.testing.assert_allclose(digest.quantile(qs), np.quantile(x, qs, method="hazen"), rtol=1e-12)
    assert digest.cdf(np.sort(x)[9]) == pytest.approx(9.5 / 40)


def test_lognormal_tail_error_at_compression_2000(lognormal):
    digest = TDigest(compression=2000)
    digest.update(lognormal)
    qs = np.array([0.95, 0.99])
    relative = np.abs(digest.quantile(qs) / np.quantile(lognormal, qs) - 1)
    assert np.all(relative <= 1e-3), relative
    assert digest.count == lognormal.size
    assert digest.n_centroids <= 2000


@pytest.mark.parametrize(("compression", "tolerance"), [(100, 0.05), (500, 0.01)])
def test_lognormal_error_shrinks_with_compression(lognormal, compression, tolerance):
    digest = TDigest(compression=compression)
    digest.update(lognormal)
    qs = np.array([0.5, 0.95, 0.99])
    relative = np.abs(digest.quantile(qs) / np.quantile(lognormal, qs) - 1)
    assert np.all(relative <= tolerance), relative


def test_uniform_quantile_and_cdf_errors():
    x = np.random.default_rng(6).uniform(size=200_000)
    digest = TDigest(compression=200)
    for chunk in np.array_split(x, 37):  # many small updates exercise the buffer
        digest.update(chunk)
    qs = np.array([0.001, 0.01, 0.25, 0.5, 0.75, 0.99, 0.999])
    np.testing.assert_allclose(digest.quantile(qs), np.quantile(x, qs), atol=2e-3)
    np.testing.assert_allclose(digest.cdf(np.quantile(x, qs)), qs, atol=2e-3)
    assert digest.cdf(-1.0) == 0.0
    assert digest.cdf(2.0) == 1.0


def test_merge_is_close_to_digest_of_union():
    rng = np.random.default_rng(7)
    first, second = rng.lognormal(size=150_000), rng.lognormal(mean=0.5, size=100_000)
    left, right, union = TDigest(500), TDigest(500), TDigest(500)
    left.update(first)
    right.update(second)
    union.update(np.concatenate([first, second]))
    merged = left.merge(right)
    assert merged.count == union.count == 250_000
    assert merged.min == union.min
    assert merged.max == union.max
    qs = np.array([0.1, 0.5, 0.95, 0.99])
    exact = np.quantile(np.concatenate([first, second]), qs)
    np.testing.assert_allclose(merged.quantile(qs), exact, rtol=1e-2)
    np.testing.assert_allclose(merged.quantile(qs), union.quantile(qs), rtol=1e-2)
    assert left.count == 150_000  # merge leaves its inputs alone


def test_agrees_with_pure_python_tdigest_package():
    reference_module = pytest.importorskip("tdigest")
    x = np.random.default_rng(8).lognormal(size=3_000)
    reference = reference_module.TDigest()
    reference.batch_update(x)
    ours = TDigest()
    ours.update(x)
    for q in (0.1, 0.5, 0.9, 0.95):
        assert ours.quantile(q) == pytest.approx(reference.percentile(100 * q), rel=0.03)
        assert ours.quantile(q) == pytest.approx(np.quantile(x, q), rel=0.03)


@settings(max_examples=60, deadline=None)
@given(
    x=st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=300),
    qs=st.lists(st.floats(min_value=1e-4, max_value=1 - 1e-4), min_size=2, max_size=8),
    compression=st.sampled_from([10, 20, 100]),
)
def test_quantiles_monotone_and_within_range(x, qs, compression):
    digest = TDigest(compression=compression)
    digest.update(x)
    estimates = digest.quantile(np.sort(qs))
    slack = 1e-9 * max(1.0, max(abs(v) for v in x))
    assert np.all(np.diff(estimates) >= -slack)
    assert np.all(estimates >= min(x) - slack)
    assert np.all(estimates <= max(x) + slack)
    cdf = digest.cdf(np.sort(x))
    assert np.all(np.diff(cdf) >= -1e-12)
    assert np.all((cdf >= 0) & (cdf <= 1))


# --------------------------------------------------------------------------------------------------
# Serialisation, metadata, errors


def test_to_dict_round_trip_through_json():
    digest = TDigest(compression=150)
    digest.update(np.random.default_rng(9).gamma(2.0, size=50_000))
    state = json.loads(json.dumps(digest.to_dict()))
    assert state["implementation"] == digest.implementation
    assert digest.implementation.startswith("tsglab-tdigest ")
    restored = TDigest.from_dict(state)
    assert restored.compression == 150
    assert restored.count == 50_000
    qs = [0.01, 0.5, 0.99]
    np.testing.assert_array_equal(restored.quantile(qs), digest.quantile(qs))
    assert list(restored.to_frame().columns) == ["mean", "weight", "cum_weight"]
    assert "count=50000" in repr(restored)


def test_empty_digest_is_nan_with_warning():
    digest = TDigest()
    digest.update([])
    with pytest.warns(DegenerateStatisticWarning, match="empty digest"):
        assert math.isnan(digest.quantile(0.5))
    with pytest.warns(DegenerateStatisticWarning, match="empty digest"):
        assert np.isnan(digest.cdf([1.0, 2.0])).all()
    assert TDigest.from_dict(digest.to_dict()).count == 0


@pytest.mark.parametrize("bad", [5, 0, -1, float("nan"), float("inf"), "100", True])
def test_bad_compression(bad):
    with pytest.raises(ValueError, match=r"`compression` must be a finite number >= 10; got .*Use 100"):
        TDigest(compression=bad)


def test_input_errors():
    digest = TDigest()
    with pytest.raises(ValueError, match=r"`values` contains 1 NaN value\(s\) out of 3"):
        digest.update([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match=r"`values` contains 1 infinite value\(s\)"):
        digest.update([1.0, np.inf])
    with pytest.raises(ValueError, match="`values` must be 1-D"):
        digest.update(np.ones((2, 2)))
    digest.update([1.0, 2.0])
    with pytest.raises(ValueError, match=r"`q` must lie strictly between 0 and 1; got 1\.5"):
        digest.quantile(1.5)
    with pytest.raises(ValueError, match="`x` contains NaN"):
        digest.cdf(np.nan)
    with pytest.raises(ValueError, match="`x` must be a number"):
        digest.cdf("abc")
    with pytest.raises(TypeError, match=r"`other` must be a TDigest; got dict.*from_dict"):
        digest.merge(digest.to_dict())


def test_from_dict_errors():
    digest = TDigest()
    digest.update(np.arange(100.0))
    good = digest.to_dict()
    with pytest.raises(TypeError, match="`state` must be a dict"):
        TDigest.from_dict([1, 2])
    with pytest.raises(ValueError, match=r"lacks key\(s\) \['means'\]"):
        TDigest.from_dict({k: v for k, v in good.items() if k != "means"})
    with pytest.raises(ValueError, match=r"must start with 'tsglab-tdigest'; got 'fastdigest 0\.12'"):
        TDigest.from_dict({**good, "implementation": "fastdigest 0.12"})
    with pytest.raises(ValueError, match=r"1-D lists of one length; got (\d+) and (?!\1)\d+"):
        TDigest.from_dict({**good, "weights": good["weights"][:-1]})
    with pytest.raises(ValueError, match="`state` is inconsistent: count=7"):
        TDigest.from_dict({**good, "count": 7})
    with pytest.raises(ValueError, match="`compression` must be a finite number"):
        TDigest.from_dict({**good, "compression": 1})
