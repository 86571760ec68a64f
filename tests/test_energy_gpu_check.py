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
    row = {"n": 3, "median": 0.002, "p95": 0.004, "max": 0.005, "bias": 0.0, "window_s": 1}
    results = {
        "gpu_name": "Fake H100", "gpu_index": 0, "driver": "1", "pynvml_version": "13", "torch_version": "2",
        "transformers_version": "5", "python": "3.12", "date": "today", "model": "m", "phases": "p", "hz": 20,
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
    assert "| counter trace | 1 s | 3 | 0.200 % | 0.400 % | 0.500 % | 0.000 % | met |" in text
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
