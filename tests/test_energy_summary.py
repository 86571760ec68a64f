"""Event fields, the per-arm summary (never zeros for unmeasured arms) and the cheap, lazy package."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import tsglab.energy as energy_pkg
from tsglab.energy import (
    EnergyError,
    RequestSpan,
    Samples,
    apportion,
    energy_fields,
    summarize_energy,
    unavailable,
)

S = 1_000_000_000


def result_for_two_requests():
    t = 5 * S + np.arange(31) * (S // 10)
    trace = Samples.from_arrays(t, 100.0 * (t - t[0]) / S, meter="nvml", domain="gpu0:Fake H100",
                                sample_hz_target=10)
    requests = [RequestSpan("r/a/1", 5 * S, 6 * S, 10), RequestSpan("r/b/1", 6 * S, 8 * S, 40),
                RequestSpan("r/b/2", 20 * S, 21 * S, 5)]
    return apportion(trace, requests, window_s=1.0, idle_w=20.0)


def test_energy_fields_for_a_measured_request():
    fields = energy_fields(result_for_two_requests(), "r/a/1")
    assert fields == {
        "available": True, "meter": "nvml", "domain": "gpu0:Fake H100", "joules": pytest.approx(80.0),
        "tokens": 10.0, "mwh_per_1k_tokens": pytest.approx(80.0 / 3.6 / 10 * 1e3),
        "tokens_per_s_per_w": pytest.approx(10 / 80.0), "coverage": 1.0, "idle_w": 20.0, "window_s": 1.0,
        "sample_hz_achieved": pytest.approx(10.0),
    }


def test_energy_fields_outside_the_trace_is_unavailable_not_zero():
    fields = energy_fields(result_for_two_requests(), "r/b/2")
    assert fields == {"available": False, "reason": "request lies outside the sampled energy trace"}


def test_unavailable_needs_a_reason():
    assert unavailable("no NVIDIA GPU") == {"available": False, "reason": "no NVIDIA GPU"}
    with pytest.raises(EnergyError, match=r"`reason` must say why energy is unavailable; got ''"):
        unavailable("")


def _event(arm: str, energy: dict, tokens: tuple[int, int] = (10, 30)) -> dict:
    return {"arm": arm, "attempts": [{"prompt_tokens": tokens[0], "completion_tokens": tokens[1]}],
            "energy": energy}


def test_summarize_energy_ratio_of_sums_and_unmeasured_arms():
    events = [
        _event("a", {"available": True, "meter": "nvml", "joules": 36.0, "tokens": 40.0}),
        _event("a", {"available": True, "meter": "nvml", "joules": 72.0}, tokens=(20, 60)),  # tokens from attempts
        _event("a", unavailable("request lies outside the sampled energy trace")),
        _event("b", unavailable("no NVIDIA GPU (NVML: library not found) and RAPL not readable")),
        _event("b", unavailable("no NVIDIA GPU (NVML: library not found) and RAPL not readable")),
        {"arm": "c", "attempts": []},
    ]
    summary = summarize_energy(events)
    a = summary["a"]
    assert (a["available"], a["meter"], a["n_events"], a["n_measured"]) == (True, "nvml", 3, 2)
    assert (a["total_j"], a["j_per_request_mean"], a["total_tokens"]) == (108.0, 54.0, 120.0)
    assert a["mwh_per_1k_tokens"] == pytest.approx(108 / 3.6 / 120 * 1e3)
    assert a["tokens_per_s_per_w"] == pytest.approx(120 / 108)
    assert a["unmeasured_reasons"] == {"request lies outside the sampled energy trace": 1}
    assert summary["b"] == {"available": False, "n_events": 2, "n_measured": 0,
                            "reason": "no NVIDIA GPU (NVML: library not found) and RAPL not readable"}
    assert summary["c"]["available"] is False
    assert summary["c"]["reason"] == "no energy field in the event"
    for arm in ("b", "c"):  # unmeasured arms carry no energy figures at all, so none can read as zero
        assert not {"total_j", "j_per_request_mean", "mwh_per_1k_tokens", "tokens_per_s_per_w"} & set(summary[arm])


def test_summarize_energy_from_energy_fields_roundtrip():
    result = result_for_two_requests()
    events = [{"arm": "x", "attempts": [], "energy": energy_fields(result, rid)} for rid in result.request_ids]
    summary = summarize_energy(events)["x"]
    assert summary["n_measured"] == 2
    assert summary["total_j"] == pytest.approx(float(np.nansum(result.joules)))
    assert math.isfinite(summary["tokens_per_s_per_w"])


def test_all_is_sorted_and_every_name_resolves():
    assert energy_pkg.__all__ == sorted(energy_pkg.__all__) == sorted(energy_pkg._LAZY)
    for name in energy_pkg.__all__:
        assert getattr(energy_pkg, name) is not None
    with pytest.raises(AttributeError, match=r"has no attribute 'nope'"):
        energy_pkg.nope  # noqa: B018


def test_import_is_cheap_and_lazy():
    code = ("import sys, tsglab; before = set(sys.modules); import tsglab.energy; "
            "new = sorted(set(sys.modules) - before); print(','.join(new))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    new = set(out.split(",")) if out else set()
    assert new == {"tsglab.energy"}, new  # no numpy, no pynvml, no submodule until a name is used
