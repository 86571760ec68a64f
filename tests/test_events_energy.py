"""Energy attached to a run's events after the segment ends, through the energy sidecar (fake meters; the GPU
check is in benchmarks/)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import scripted_ladder

from tsglab.config import EnergySpec, spec_from_dict
from tsglab.energy import Samples
from tsglab.events import ENERGY_FILE, EVENTS_FILE, Energy, read_energy, read_events, read_manifest
from tsglab.events import energy as events_energy
from tsglab.events.energy import PENDING, EnergyRecording, attach_energy
from tsglab.load.runner import run_experiment


def make_run(tmp_path):
    spec = spec_from_dict({"name": "e", "prompts": {"limit": 4, "seed": 1}, "arms": {"tsg": {}},
                           "tiers": {t: {"max_tokens": 16} for t in ("light", "std", "enh")},
                           "load": {"mode": "paced", "period_ms": 0, "timeout_s": 5}, "energy": {"meter": "none"}})
    ladder = scripted_ladder("The answer is forty two.", sleep=True, eval_ms_per_token=20.0)
    return run_experiment(spec, runs_dir=tmp_path, run_id="r", ladder=ladder, progress=False).run_dir


def test_attach_energy_gives_every_request_its_share_and_conserves_the_total(tmp_path):
    run_dir = make_run(tmp_path)
    events = read_events(run_dir)
    assert all(e.energy == Energy(False, "energy.meter is 'none' (energy not measured)") for e in events)
    start = min(e.schedule.dispatched_ns for e in events) - 2_000_000_000
    end = max(e.schedule.completed_ns for e in events) + 2_000_000_000
    t = np.arange(start, end, 50_000_000, dtype=np.int64)
    watts = 60.0
    samples = Samples.from_arrays(t, watts * (t - start) / 1e9, meter="fake", domain="test", sample_hz_target=20)
    written = (run_dir / EVENTS_FILE).read_bytes()
    summary = attach_energy(run_dir, samples, segment=0, idle_w=10.0, window_s=1.0)
    assert (run_dir / EVENTS_FILE).read_bytes() == written  # the event log is append-only: energy goes beside it
    events = read_events(run_dir)
    joules = [e.energy.joules for e in events]
    assert all(e.energy.available for e in events)
    assert all(j > 0 for j in joules)
    totals = summary["totals"]
    assert sum(joules) + totals["unattributed_j"] == pytest.approx(totals["net_j"], rel=1e-9)
    assert totals["net_j"] / totals["gross_j"] == pytest.approx((watts - 10.0) / watts)  # idle 10 W subtracted
    assert summary["available"]
    assert summary["meter"] == "fake"
    assert set(read_energy(run_dir)) == {e.request_id for e in events}
    # attaching again (other settings) appends; the last entry of a request wins
    attach_energy(run_dir, samples, segment=0, idle_w=30.0, window_s=1.0)
    assert (run_dir / ENERGY_FILE).read_text().count("\n") == 2 * len(events)
    again = [e.energy.joules for e in read_events(run_dir)]
    assert all(a < j for a, j in zip(again, joules, strict=True))  # 30 W idle leaves less than 10 W did


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
    assert recording.measuring
    assert recording.idle_w == pytest.approx(25.0, rel=0.05)
    assert recording.event_field() == Energy(False, PENDING)
    (tmp_path / "events.jsonl").write_text("")
    time.sleep(0.3)
    summary = recording.finish()
    assert summary["available"]
    assert summary["n_samples"] >= 5
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
    assert all(e.energy.available and e.energy.joules > 0 for e in events)
    assert all(e.fingerprint.retry["max_retries"] == 0 for e in events)
    manifest = read_manifest(result.run_dir)
    assert manifest["energy"]["available"]
    assert manifest["energy"]["idle_w"] == 5.0
    assert (result.run_dir / "energy_samples-0.csv").exists()


def test_no_meter_means_a_reason_not_a_zero(tmp_path):
    recording = EnergyRecording(EnergySpec(meter="none"), tmp_path, 0).start()
    assert not recording.measuring
    assert recording.event_field() == Energy(False, "energy.meter is 'none' (energy not measured)")
    assert recording.finish() == {"available": False, "reason": "energy.meter is 'none' (energy not measured)"}


def test_finish_leaves_the_event_log_untouched_and_reading_joins_the_sidecar(tmp_path, monkeypatch):
    """A segment with a fake meter: events are written "pending", finish() appends energy.jsonl, and
    the bytes of events.jsonl are the same before and after finish()."""
    before_finish = {}
    original_finish = EnergyRecording.finish

    def finish_and_watch(self):
        before_finish["bytes"] = (self.run_dir / EVENTS_FILE).read_bytes()
        return original_finish(self)

    monkeypatch.setattr(events_energy.EnergyRecording, "finish", finish_and_watch)
    spec = spec_from_dict({"name": "e", "prompts": {"limit": 3, "seed": 1}, "arms": {"tsg": {}},
                           "tiers": {t: {"max_tokens": 16} for t in ("light", "std", "enh")},
                           "load": {"mode": "paced", "period_ms": 300, "timeout_s": 5},
                           "energy": {"sample_hz": 50, "idle_w": 5.0}})
    ladder = scripted_ladder("The answer is forty two.", sleep=True, eval_ms_per_token=40.0)
    run_dir = run_experiment(spec, runs_dir=tmp_path, run_id="s", ladder=ladder, progress=False,
                             energy_meter=SlowRampMeter(watts=30.0)).run_dir
    written = (run_dir / EVENTS_FILE).read_bytes()
    assert written == before_finish["bytes"]
    assert written.count(b"\n") == 3
    assert written.count(PENDING.encode()) == 3  # what the events were written with
    events = read_events(run_dir)
    assert all(e.energy.available and e.energy.joules > 0 and e.energy.meter == "fake" for e in events)
    assert (run_dir / ENERGY_FILE).read_text().count("\n") == 3


def test_an_event_without_a_sidecar_entry_keeps_what_it_was_written_with(tmp_path):
    run_dir = make_run(tmp_path)
    first, *rest = read_events(run_dir)
    from tsglab.events import EnergyEntry, append_energy

    append_energy(run_dir, [EnergyEntry(first.request_id, Energy(True, meter="fake", joules=2.5, tokens=10.0))])
    joined = read_events(run_dir)
    assert joined[0].energy.joules == 2.5
    assert [e.energy for e in joined[1:]] == [e.energy for e in rest]
    assert not rest[0].energy.available


def test_a_bad_sidecar_line_names_the_file_line_and_field(tmp_path):
    import re

    from tsglab.errors import RunError

    run_dir = make_run(tmp_path)
    sidecar = run_dir / ENERGY_FILE
    sidecar.write_text('{"request_id": "x", "energy": {"available": true}}\n'
                       '{"request_id": "y", "energy": {"available": "yes"}}\n')
    with pytest.raises(RunError, match=rf"^{re.escape(str(sidecar))}:2: field 'energy\.available' expected `bool`, "
                                       r"got `str`; the energy sidecar entry"):
        read_events(run_dir)
