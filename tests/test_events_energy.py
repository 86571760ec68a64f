"""Energy attached to a run's events after the segment ends (fake meters; the GPU check is in benchmarks/)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import scripted_ladder

from tsglab.energy import Samples
from tsglab.events import read_events, read_manifest
from tsglab.events.energy import PENDING, EnergyRecording, attach_energy
from tsglab.load.runner import run_experiment
from tsglab.spec import EnergySpec, spec_from_dict


def make_run(tmp_path):
    spec = spec_from_dict({"name": "e", "prompts": {"limit": 4, "seed": 1}, "arms": {"tsg": {}},
                           "tiers": {t: {"max_tokens": 16} for t in ("light", "std", "enh")},
                           "load": {"mode": "paced", "period_ms": 0, "timeout_s": 5}, "energy": {"meter": "none"}})
    ladder = scripted_ladder("The answer is forty two.", sleep=True, eval_ms_per_token=20.0)
    return run_experiment(spec, runs_dir=tmp_path, run_id="r", ladder=ladder, progress=False).run_dir


def test_attach_energy_gives_every_request_its_share_and_conserves_the_total(tmp_path):
    run_dir = make_run(tmp_path)
    events = read_events(run_dir)
    assert all(e["energy"] == {"available": False, "reason": "energy.meter is 'none' (energy not measured)"}
               for e in events)
    start = min(e["schedule"]["dispatched_ns"] for e in events) - 2_000_000_000
    end = max(e["schedule"]["completed_ns"] for e in events) + 2_000_000_000
    t = np.arange(start, end, 50_000_000, dtype=np.int64)
    watts = 60.0
    samples = Samples.from_arrays(t, watts * (t - start) / 1e9, meter="fake", domain="test", sample_hz_target=20)
    summary = attach_energy(run_dir, samples, segment=0, idle_w=10.0, window_s=1.0)
    events = read_events(run_dir)
    joules = [e["energy"]["joules"] for e in events]
    assert all(e["energy"]["available"] for e in events) and all(j > 0 for j in joules)
    totals = summary["totals"]
    assert sum(joules) + totals["unattributed_j"] == pytest.approx(totals["net_j"], rel=1e-9)
    assert totals["net_j"] / totals["gross_j"] == pytest.approx((watts - 10.0) / watts)  # idle 10 W subtracted
    assert summary["available"] and summary["meter"] == "fake"
    assert not (run_dir / "events.jsonl.tmp").exists()


class SlowRampMeter:
    name, domain = "fake", "fake-domain"

    def __init__(self, watts=25.0):
        self.watts, self.origin = watts, time.monotonic_ns()

    def read(self):
        t = time.monotonic_ns()
        return t, self.watts * (t - self.origin) / 1e9

    def close(self):
        pass


def test_recording_measures_idle_samples_to_csv_and_finishes(tmp_path):
    spec = EnergySpec(meter="auto", sample_hz=50, window_s=1.0, idle_seconds=0.2)
    recording = EnergyRecording(spec, tmp_path, 0, meter=SlowRampMeter()).start()
    assert recording.measuring and recording.idle_w == pytest.approx(25.0, rel=0.05)
    assert recording.event_field() == {"available": False, "reason": PENDING}
    (tmp_path / "events.jsonl").write_text("")
    time.sleep(0.3)
    summary = recording.finish()
    assert summary["available"] and summary["n_samples"] >= 5
    assert (tmp_path / "energy_samples-0.csv").read_text().count("\n") >= 5


def test_a_run_with_a_meter_writes_energy_into_its_events_and_manifest(tmp_path):
    spec = spec_from_dict({"name": "e", "prompts": {"limit": 3, "seed": 1}, "arms": {"tsg": {}},
                           "tiers": {t: {"max_tokens": 16} for t in ("light", "std", "enh")},
                           "load": {"mode": "paced", "period_ms": 400, "timeout_s": 5},
                           "energy": {"sample_hz": 50, "idle_w": 5.0}})
    ladder = scripted_ladder("The answer is forty two.", sleep=True, eval_ms_per_token=40.0)
    result = run_experiment(spec, runs_dir=tmp_path, run_id="m", ladder=ladder, progress=False,
                            energy_meter=SlowRampMeter(watts=30.0))
    events = read_events(result.run_dir)
    assert all(e["energy"]["available"] and e["energy"]["joules"] > 0 for e in events)
    assert all(e["fingerprint"]["retry"]["max_retries"] == 0 for e in events)
    manifest = read_manifest(result.run_dir)
    assert manifest["energy"]["available"] and manifest["energy"]["idle_w"] == 5.0
    assert (result.run_dir / "energy_samples-0.csv").exists()


def test_no_meter_means_a_reason_not_a_zero(tmp_path):
    recording = EnergyRecording(EnergySpec(meter="none"), tmp_path, 0).start()
    assert not recording.measuring
    assert recording.event_field() == {"available": False, "reason": "energy.meter is 'none' (energy not measured)"}
    assert recording.finish() == {"available": False, "reason": "energy.meter is 'none' (energy not measured)"}
