from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tsglab.config import LoadSpec
from tsglab.errors import SpecError
from tsglab.load.arrivals import build_arrivals

N = 20_000


def load(**options) -> LoadSpec:
    return LoadSpec(**{"mode": "open_loop", "rate_per_s": 100.0, "seed": 7, **options})


def gaps_s(arrivals) -> np.ndarray:
    return np.diff(arrivals.offsets_ns) / 1e9


def test_constant_arrivals_are_evenly_spaced_from_zero():
    arrivals = build_arrivals(5, load(rate_per_s=4.0))
    assert arrivals.offsets_ns.tolist() == [0, 250_000_000, 500_000_000, 750_000_000, 1_000_000_000]
    assert arrivals.offsets_ns.dtype == np.int64
    assert not arrivals.offsets_ns.flags.writeable
    assert arrivals.planned_rate_per_s == pytest.approx(4.0)
    assert "constant" in repr(arrivals)
    assert len(arrivals.to_frame()) == 5


@pytest.mark.parametrize(("kind", "cv"), [("constant", 0.0), ("poisson", 1.0), ("gamma", 0.5), ("gamma", 2.0)])
def test_mean_rate_and_gap_cv(kind, cv):
    arrivals = build_arrivals(N, load(arrival=kind, burstiness=cv if kind == "gamma" else 2.0))
    gaps = gaps_s(arrivals)
    # mean gap: standard error cv/sqrt(N) (<= 1.4 % for cv = 2); 5 % is > 3.5 standard errors
    assert arrivals.planned_rate_per_s == pytest.approx(100.0, rel=0.05)
    # sample cv: relative sd ~ sqrt((kurtosis - 1) / 4N) = 1.8 % for gamma cv = 2; 10 % is > 5 sd
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.1, abs=1e-9)
    assert (gaps >= 0).all()


def test_poisson_gaps_pass_a_ks_test_against_the_exponential_and_constant_gaps_fail_it():
    poisson = gaps_s(build_arrivals(5_000, load(arrival="poisson"))) * 100.0
    assert stats.kstest(poisson, "expon").pvalue > 0.01
    gamma = gaps_s(build_arrivals(5_000, load(arrival="gamma", burstiness=2.0))) * 100.0
    assert stats.kstest(gamma, stats.gamma(a=0.25, scale=4.0).cdf).pvalue > 0.01
    assert stats.kstest(gamma, "expon").pvalue < 1e-6  # a bursty schedule is not Poisson
    constant = gaps_s(build_arrivals(5_000, load())) * 100.0
    assert stats.kstest(constant, "expon").pvalue < 1e-6


def test_constant_ramp_follows_the_integrated_rate_second_by_second():
    arrivals = build_arrivals(3_000, load(rate_per_s=100.0, ramp_seconds=5.0, ramp_start_fraction=0.1))
    offsets_s = arrivals.offsets_ns / 1e9
    for second in range(8):
        count = ((offsets_s >= second) & (offsets_s < second + 1)).sum()
        expected = arrivals.expected_count(second + 1.0) - arrivals.expected_count(float(second))
        assert abs(count - expected) <= 1.0
    # first ramp second: rate rises 10 -> 28 req/s, i.e. 19 arrivals (plus-minus one at the edges)
    assert arrivals.expected_count(1.0) == pytest.approx(19.0)
    assert arrivals.expected_count(5.0) == pytest.approx(275.0)  # 5 s × mean rate 55
    assert arrivals.expected_count(6.0) == pytest.approx(375.0)  # full rate after the ramp


def test_poisson_ramp_counts_in_the_first_second_match_on_average():
    spec = load(arrival="poisson", rate_per_s=1_000.0, ramp_seconds=5.0, ramp_start_fraction=0.1)
    counts = [(build_arrivals(2_000, spec, seed=s).offsets_ns < 1e9).sum() for s in range(20)]
    # Poisson(190) per seed: sd 13.8, so the mean of 20 has sd 3.1; 12 is ~4 sd
    assert np.mean(counts) == pytest.approx(190.0, abs=12.0)


def test_schedules_are_reproducible_and_differ_between_seeds():
    spec = load(arrival="gamma", burstiness=1.5, ramp_seconds=2.0)
    first, second = build_arrivals(500, spec), build_arrivals(500, spec)
    assert np.array_equal(first.offsets_ns, second.offsets_ns)
    assert first.seed == 7
    assert not np.array_equal(first.offsets_ns, build_arrivals(500, spec, seed=8).offsets_ns)
    segment = build_arrivals(500, spec, seed=(7, 1))
    assert segment.seed == (7, 1)
    assert not np.array_equal(first.offsets_ns, segment.offsets_ns)
    assert np.all(np.diff(first.offsets_ns) >= 0)


def test_edge_counts():
    assert build_arrivals(0, load()).n == 0
    single = build_arrivals(1, load(arrival="poisson"))
    assert single.offsets_ns.tolist() == [0]
    assert np.isnan(single.planned_rate_per_s)


def test_validation_errors_name_the_parameter_and_the_fix():
    with pytest.raises(SpecError, match=r"`n` must be an integer >= 0; got -1"):
        build_arrivals(-1, load())
    with pytest.raises(SpecError, match=r"`n` must be an integer >= 0; got 2.5"):
        build_arrivals(2.5, load())
    with pytest.raises(SpecError, match=r"`load` must be a tsglab.config.LoadSpec; got dict"):
        build_arrivals(3, {"rate_per_s": 1})
    with pytest.raises(SpecError, match=r"beyond the 1e\+08 s a schedule may last"):
        build_arrivals(10**6, load(rate_per_s=1e-3))
    with pytest.raises(SpecError, match=r"load.burstiness .* must be > 0; got 0"):
        load(arrival="gamma", burstiness=0)
    with pytest.raises(SpecError, match=r"ramp_start_fraction in \(0, 1\]"):
        load(ramp_seconds=1, ramp_start_fraction=0)
    with pytest.raises(SpecError, match=r"load.arrival must be one of"):
        load(arrival="uniform")
