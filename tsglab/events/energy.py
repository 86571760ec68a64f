"""Energy for a run: the meter runs beside the schedule, and each request gets its share at the end.

Apportioning needs whole windows (≥ 1 s) on both sides of a request, so it happens once the segment
ends: events are written as requests complete with ``energy`` unavailable, reason :data:`PENDING`,
and :meth:`EnergyRecording.finish` appends each request's measured share to the energy sidecar
``energy.jsonl`` (:func:`tsglab.events.log.append_energy`; flushed and fsync'ed), which
:func:`tsglab.events.read_events` joins onto the events. ``events.jsonl`` is never rewritten. The
samples are appended to ``energy_samples-<segment>.csv`` as they are taken, so a crashed run keeps
them and ``attach_energy`` can apportion later. With no meter, events say why — energy is never zero
because nothing measured it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from tsglab.events.log import append_energy, read_events
from tsglab.events.record import Energy, EnergyEntry

if TYPE_CHECKING:
    from tsglab.energy import Sampler

PENDING = "pending: apportioned when the run segment ends"


def samples_path(run_dir: str | os.PathLike, segment: int) -> Path:
    return Path(run_dir) / f"energy_samples-{segment}.csv"


class EnergyRecording:
    """Detect the meter an :class:`~tsglab.config.EnergySpec` asks for, measure the idle baseline, sample
    during the run, and attach per-request energy to the events of one segment."""

    def __init__(self, energy_spec, run_dir: str | os.PathLike, segment: int, *, meter=None) -> None:
        """``meter`` replaces detection (tests pass a fake source)."""
        self.spec, self.run_dir, self.segment = energy_spec, Path(run_dir), segment
        self.meter = meter
        self.sampler: Sampler | None = None
        self.idle_w: float | None = None
        self.reason = ""

    def start(self) -> EnergyRecording:
        """Open the meter (if any), measure idle power unless the spec gives it, start sampling."""
        from tsglab.energy import Sampler, detect

        meter, self.reason = (self.meter, "injected meter") if self.meter is not None else detect(self.spec)
        if meter is None:
            return self
        self.sampler = Sampler(meter, sample_hz=self.spec.sample_hz,
                               csv_path=samples_path(self.run_dir, self.segment))
        self.idle_w = self.spec.idle_w if self.spec.idle_w is not None else self.sampler.measure_idle(
            self.spec.idle_seconds)
        self.sampler.start()
        return self

    @property
    def measuring(self) -> bool:
        return self.sampler is not None

    def event_field(self) -> Energy:
        """The ``energy`` field an event gets when it is written."""
        return Energy.unavailable(PENDING if self.measuring else self.reason)

    def finish(self) -> dict[str, Any]:
        """Stop sampling and attach the energy; returns the summary for ``run.json``."""
        if self.sampler is None:
            return {"available": False, "reason": self.reason}
        samples = self.sampler.stop()
        summary = attach_energy(self.run_dir, samples, segment=self.segment, idle_w=float(self.idle_w or 0.0),
                                window_s=self.spec.window_s)
        return {**summary, "idle_measured": self.spec.idle_w is None,
                "sampler_cpu_ms_per_sample": round(self.sampler.cpu_s_per_sample * 1e3, 3)}


def attach_energy(run_dir: str | os.PathLike, samples=None, *, segment: int, idle_w: float,
                  window_s: float) -> dict[str, Any]:
    """Apportion ``samples`` (default: the segment's samples CSV) to the segment's events and append
    each request's ``energy`` to the sidecar ``energy.jsonl``; returns the totals for the manifest.
    Attaching again (e.g. with other settings) appends again: the last entry of a request wins."""
    from tsglab.energy import Samples, apportion, energy_fields, spans_from_events

    run_dir = Path(run_dir)
    if samples is None:
        samples = Samples.read_csv(samples_path(run_dir, segment))
    mine = [e for e in read_events(run_dir) if e.segment == segment]
    result = apportion(samples, spans_from_events(mine), window_s=window_s, idle_w=idle_w)
    append_energy(run_dir, [EnergyEntry(e.request_id, msgspec.convert(energy_fields(result, e.request_id), Energy))
                            for e in mine])
    totals = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in result.totals().items()}
    return {"available": True, "meter": samples.meter, "domain": samples.domain, "idle_w": round(idle_w, 3),
            "window_s": window_s, "sample_hz_achieved": round(samples.sample_hz_achieved, 2),
            "n_samples": len(samples), "totals": totals}
