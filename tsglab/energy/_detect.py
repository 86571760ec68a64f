"""Pick the energy source an :class:`~tsglab.config.EnergySpec` asks for."""

from __future__ import annotations

import os
import time
from typing import Any

from tsglab.energy._errors import EnergyError, MeterUnavailable
from tsglab.energy._nvml import open_nvml
from tsglab.energy._rapl import POWERCAP_ROOT, RaplCounter
from tsglab.energy._source import Meter

METERS = ("auto", "nvml", "rapl", "none")


def detect(energy_spec: Any, *, nvml: Any = None,
           powercap_root: str | os.PathLike = POWERCAP_ROOT, clock=time.monotonic_ns) -> tuple[Meter | None, str]:
    """Open the meter ``energy_spec.meter`` names; returns ``(meter, reason)``.

    ``auto`` takes NVML if a GPU answers, else RAPL if readable. When nothing can be opened the meter is
    None and the reason says why, e.g. "no NVIDIA GPU (NVML: library not found) and RAPL not readable
    (/sys/class/powercap missing)". ``nvml`` injects a pynvml-like module (tests); ``powercap_root``
    a sysfs tree; ``clock`` the time stamps' clock (tests).
    """
    kind = getattr(energy_spec, "meter", None)
    if kind not in METERS:
        raise EnergyError(f"`energy.meter` must be one of {METERS}; got {kind!r}.")
    gpu_index = int(getattr(energy_spec, "gpu_index", 0))
    if kind == "none":
        return None, "energy.meter is 'none' (energy not measured)"
    nvml_reason = ""
    if kind in ("auto", "nvml"):
        try:
            return open_nvml(gpu_index, nvml=nvml, clock=clock)
        except MeterUnavailable as exc:
            nvml_reason = exc.reason
        if kind == "nvml":
            return None, f"no usable NVIDIA GPU ({nvml_reason})"
    try:
        meter = RaplCounter.open(powercap_root, clock=clock)
    except MeterUnavailable as exc:
        if kind == "rapl":
            return None, exc.reason
        return None, f"no NVIDIA GPU ({nvml_reason}) and {exc.reason}"
    return meter, f"RAPL package counters ({meter.domain})"
