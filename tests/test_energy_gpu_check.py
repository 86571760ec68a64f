"""The non-GPU parts of benchmarks/energy_gpu_check.py (the GPU run itself needs an NVIDIA GPU)."""

from __future__ import annotations

import importlib.util
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tsglab.energy import Samples

REPO = Path(__file__).resolve().parents[1]
S = 1_000_000_000


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("energy_gpu_check", REPO / "benchmarks" / "energy_gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fails_loudly_without_nvml(check, capsys, monkeypatch):
    from tsglab.energy import MeterUnavailable, NvmlCounter

    def no_library(*args, **kwargs):
        raise MeterUnavailable("NVML: library not found")

    monkeypatch.setattr(NvmlCounter, "open", classmethod(no_library))
    with pytest.raises(SystemExit) as exc:
        check.main(["--out", "/nonexistent/never-written.md"])
    assert exc.value.code == 2
    assert "FAILED: NVML energy counter unavailable: NVML: library not found" in capsys.readouterr().err


def test_missing_pynvml_says_to_carry_the_wheel(check, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(SystemExit) as exc:
        check.require_pynvml()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "pynvml is not installed" in err
    assert "Carry the nvidia-ml-py wheel" in err


def test_window_errors_against_boundary_reads(check):
    t = 10 * S + np.arange(0, 101) * (S // 20)  # 20 Hz for 5 s at 200 W
    trace = Samples.from_arrays(t, 200.0 * (t - t[0]) / S)
    bounds = [(10 * S + k * S, 200.0 * k + 7.0) for k in range(6)]  # another origin: only deltas matter
    exact = check.window_errors(trace, bounds, 1)
    assert exact["n"] == 5
    assert exact["max"] == pytest.approx(0.0, abs=1e-12)
    off = [(tb, e * 1.02 if i == 2 else e) for i, (tb, e) in enumerate(bounds)]
    rows = check.window_errors(trace, off, 1)
    # window 1->2: reference 200 + 0.02 * 407 = 208.14 vs 200; window 2->3: 191.86 vs 200
    assert rows["max"] == pytest.approx(8.14 / 191.86, rel=1e-9)
    assert check.window_errors(trace, bounds[:1], 1)["n"] == 0


def test_counter_cadence_sees_100ms_steps(check):
    t = np.arange(0, 41) * (S // 20)
    steps = 50.0 * (t // (S // 10))  # value changes every 100 ms, sampled every 50 ms
    cadence = check.counter_cadence(Samples.from_arrays(t, steps))
    assert cadence["update_ms"] == pytest.approx(100.0)
    assert cadence["unchanged_fraction"] == pytest.approx(0.5)


def test_report_marks_met_and_missed(check):
    row = {"n": 3, "median": 0.002, "p95": 0.004, "max": 0.005, "bias": 0.0, "window_s": 1, "window_j": 120.0,
           "n_refs": 4, "n_coincident": 0, "min_gap_ms": 12.0, "n_exact": 0}
    results = {
        "gpu_name": "Fake H100", "gpu_index": 0, "driver": "1", "pynvml_version": "13", "torch_version": "2",
        "transformers_version": "5", "python": "3.12", "date": "today", "model": "m", "phases": "p", "hz": 20,
        "step_j": 12.0, "step_median_j": 15.0, "reference": "random offsets", "request_rows": [],
        "hz_achieved": 20.0, "hz_achieved_instant": 20.0, "hz_achieved_average": math.nan, "missed_deadlines": 0,
        "read_errors": 0, "cpu_us_per_sample": 30.0, "us_counter": 5.0, "us_instant": 4.0, "us_average": 1.0,
        "instant_supported": "supported", "idle_seconds": 3.0, "idle_w": 70.0, "update_ms": 100.0,
        "unchanged_fraction": 0.5,
        "window_rows": [dict(row, trace="counter trace"), dict(row, trace="instant", median=0.05)],
        "n_requests": 2, "n_windows": 5, "unattributed_windows": 1, "clipped_windows": 0, "gross_j": 10.0,
        "idle_j": 2.0, "net_j": 8.0, "attributed_j": 7.0, "unattributed_j": 1.0, "conservation_error_j": 0.0,
        "conservation_ok": True, "apportion_ms": 1.0,
        "phase_rows": [{"phase": "light", "n": 2, "tokens": 10, "joules": 7.0, "j_per_request": 3.5,
                        "mwh_per_1k": 194.4, "tok_per_j": 1.43}],
        "phase_bounds": [("idle", 0.0, 3.0)],
    }
    text = check.render_report(results)
    assert ("| counter trace | 1 s | 3 | 0.200 % | 0.400 % | 0.500 % | 0.000 % | 10.000 % | "
            "random offsets, >= 12.0 ms from samples | met |") in text
    assert "| instant | 1 s | 3 | 5.000 % |" in text
    assert "MISSED" in text
    assert "conservation error 0.000e+00 J (ok)" in text
    assert "20.00 Hz (instant power), n/a Hz" in text


def test_energy_loads_even_when_the_tsglab_package_init_cannot(check, tmp_path):
    fake_repo = tmp_path / "repo"
    shutil.copytree(REPO / "tsglab" / "energy", fake_repo / "tsglab" / "energy")
    shutil.copy(REPO / "tsglab" / "errors.py", fake_repo / "tsglab" / "errors.py")
    (fake_repo / "tsglab" / "__init__.py").write_text("import pandas_is_not_installed_here\n")
    script = REPO / "benchmarks" / "energy_gpu_check.py"
    code = (f"import importlib.util, sys; spec = importlib.util.spec_from_file_location('c', {str(script)!r}); "
            f"m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            f"e = m.load_energy_package(__import__('pathlib').Path({str(fake_repo)!r})); "
            f"print(e.apportion.__module__, e.Samples.__module__, sys.modules['tsglab'].__path__[0])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["tsglab.energy._apportion", "tsglab.energy._source", str(fake_repo / "tsglab")]
    assert "loading tsglab.energy alone" in proc.stderr


# -- the reference reads must be able to fail --------------------------------------------------------


def stepped_trace(seconds: int = 6, hz: int = 20, watts: float = 200.0):
    """A 20 Hz trace of a counter that moves only every 100 ms (as NVML's does), at constant power."""
    t = 10 * S + np.arange(seconds * hz + 1) * (S // hz)
    steps = (t - t[0]) // (S // 10)
    return Samples.from_arrays(t, watts * steps / 10.0, sample_hz_target=hz)


def test_random_offsets_stay_inside_the_guarded_band(check):
    import random

    period = S // 20
    offsets = check.random_offsets(5000, period, random.Random(1))
    guard = period * check.GUARD_FRACTION
    assert min(offsets) >= guard
    assert max(offsets) <= period - guard
    assert max(offsets) - min(offsets) > 0.9 * (period - 2 * guard)  # spread over the band, not one value
    # placed on a sampler's grid, no read lands within the coincidence distance of a sample
    grid = [k * period for k in range(200)]
    reads = [k * period + off for k, off in zip(range(190), offsets, strict=False)]
    assert min(check.nearest_gaps_ns(reads, grid)) > check.COINCIDE_NS
    with pytest.raises(ValueError, match="guard_fraction"):
        check.random_offsets(1, period, random.Random(1), guard_fraction=0.5)


def test_heldout_reference_never_uses_a_sample_of_the_thinned_trace(check):
    import random

    trace = stepped_trace()
    for k in (2, 4):
        thin = Samples.from_arrays(trace.t_ns[::k], trace.energy_j[::k])
        reference = check.heldout_reference(trace, k, random.Random(3))
        assert len(reference) >= 5
        assert min(check.nearest_gaps_ns([t for t, _ in reference], thin.t_ns)) >= S // 20
    with pytest.raises(ValueError, match="k"):
        check.heldout_reference(trace, 1, random.Random(3))


def test_a_trace_compared_with_its_own_samples_is_flagged(check):
    trace = stepped_trace()
    row, passed = check.selftest(trace, "stepped")
    assert passed
    assert row["max"] == 0.0
    assert row["n"] > 0
    assert check.reference_note(row) == check.COINCIDES
    assert check.coincides(row)


def test_reads_off_the_samples_that_return_the_samples_values_are_flagged(check):
    # the failure seen on an H200: reads 25 ms after a sample, in the half of the refresh interval where
    # the counter has not moved, return the sample's value: zero error, though never close in time
    trace = stepped_trace()
    t, e = trace.t_ns, trace.energy_j
    reference = [(int(t[i]) + S // 40, float(e[i])) for i in range(0, len(t) - 1, 20)]
    row = check.window_errors(trace, reference, 1, sample_t_ns=t)
    assert row["n_coincident"] == 0
    assert row["max"] == 0.0
    assert check.coincides(row)
    assert "measures nothing" in check.reference_note(row)


def test_a_real_comparison_is_not_flagged_and_sees_the_step(check):
    import random

    trace = stepped_trace()
    thin = Samples.from_arrays(trace.t_ns[::4], trace.energy_j[::4])
    row = check.window_errors(thin, check.heldout_reference(trace, 4, random.Random(5)), 1, sample_t_ns=thin.t_ns)
    assert not check.coincides(row)
    assert row["max"] > 0.0
    step = check.counter_cadence(trace)["step_j"]
    assert step == pytest.approx(20.0)
    assert row["max"] * row["window_j"] <= 2 * step + 1e-9  # off by at most a step at each end


def test_the_check_fails_when_the_self_test_is_not_flagged(check, monkeypatch):
    results = {"conservation_ok": True, "selftest_passed": True, "window_rows": []}
    assert check.verdict_problems(results) == []
    monkeypatch.setattr(check, "COINCIDE_NS", 0)  # a check blind to reads that land on samples
    _, passed = check.selftest(stepped_trace(), "stepped")
    assert not passed
    problems = check.verdict_problems(dict(results, selftest_passed=passed))
    assert problems
    assert "self-test failed" in problems[0]


def test_quick_replay_rows_are_real_comparisons(check):
    csv = min((REPO / "benchmarks" / "results").glob("energy_nvml_*_samples.csv"))
    results = check.replay_check(csv, csv.with_name(csv.name.replace("_samples.csv", ".md")))
    assert check.verdict_problems(results) == []
    real = [row for row in results["window_rows"] if not row["trace"].startswith("self-test")]
    assert real
    assert all(not check.coincides(row) and row["max"] > 0 for row in real)
    assert {row["phase"] for row in results["request_rows"]} == {"light", "heavy"}


def test_request_boundary_rows_compare_apportioned_with_direct_reads(check):
    from tsglab.energy import RequestSpan, apportion

    trace = stepped_trace(seconds=6)
    t, e = trace.t_ns.tolist(), trace.energy_j.tolist()
    spans, reads, phase_of = [], {}, {}
    for n, (a, b) in enumerate([(5, 25), (31, 71), (81, 111)]):
        spans.append(RequestSpan(f"r{n}", t[a], t[b], 10.0))
        reads[f"r{n}"] = ((t[a], e[a]), (t[b], e[b]))
        phase_of[f"r{n}"] = "busy"
    result = apportion(trace, spans, window_s=1.0, idle_w=0.0)
    (row,) = check.request_boundary_rows(result, reads, phase_of, 0.0, trace)
    assert row["n"] == 3
    assert row["step_j"] == pytest.approx(20.0)
    direct = sum(e1 - e0 for (_, e0), (_, e1) in reads.values())
    assert row["direct_net_j"] == pytest.approx(direct)
    assert row["apportioned_j"] == pytest.approx(float(np.nansum(result.joules)))
    assert row["abs_j"]["max"] > 0  # the 1-s windows smear energy across the gaps: a real difference


# -- energy per token ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def per_token():
    spec = importlib.util.spec_from_file_location("energy_per_token", REPO / "benchmarks" / "energy_per_token.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["energy_per_token"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("energy_per_token", None)


def test_per_token_csv_round_trip_and_figures(per_token, tmp_path):
    m = per_token.synthetic_measurement()
    per_token.write_csv(m, tmp_path / "rows.csv")
    assert per_token.read_csv(tmp_path / "rows.csv") == m
    rows = per_token.summarize(m)
    by_batch = {r["batch"]: r for r in rows}
    calls = [c for c in m.calls if c.batch == 8]
    expected = sum(c.gross_j for c in calls) / sum(c.batch * c.new_tokens for c in calls)
    assert by_batch[8]["j_per_token"] == pytest.approx(expected)
    assert by_batch[8]["mwh_per_1k"] == pytest.approx(expected / 3.6 * 1e3)
    (tmp_path / "bad.csv").write_text("t,e\n")
    with pytest.raises(SystemExit, match="line 1"):
        per_token.read_csv(tmp_path / "bad.csv")


def test_per_token_verdicts(per_token):
    import dataclasses

    m = per_token.synthetic_measurement()
    floor = m.floor_j_per_token
    assert floor == pytest.approx(m.flop_per_token * (m.matmul_gross_j - m.idle_w * m.matmul_seconds)
                                  / m.matmul_flop)
    verdicts = {v["figure"]: v["verdict"] for v in per_token.verdicts(m, per_token.summarize(m))}
    assert verdicts["claim: vLLM"].startswith("refuted")  # 0.0018 J/token is below the ~0.011 floor
    # a cheap enough GPU (floor 100x lower) moves the claims above the floor: no longer refuted
    cheap = dataclasses.replace(m, matmul_gross_j=m.idle_w * m.matmul_seconds + m.matmul_flop * 1e-15)
    verdicts = {v["figure"]: v["verdict"] for v in per_token.verdicts(cheap, per_token.summarize(cheap))}
    assert verdicts["claim: vLLM"].startswith("not reached")
