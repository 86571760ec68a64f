"""Energy meter: sources (NVML counter or power integration, RAPL), a sampler thread, and apportioning
of measured energy to requests.

Importing this package is cheap: numpy, pynvml and the submodules load on first use of a name.

>>> from tsglab.energy import detect, Sampler, apportion, spans_from_events, energy_fields
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tsglab.energy._apportion import EnergyApportionment, RequestSpan, apportion, spans_from_events
    from tsglab.energy._detect import detect
    from tsglab.energy._errors import EnergyError, MeterUnavailable
    from tsglab.energy._nvml import NvmlCounter, NvmlPowerIntegration
    from tsglab.energy._rapl import RaplCounter
    from tsglab.energy._sampler import Sampler
    from tsglab.energy._source import Meter, Samples
    from tsglab.energy._summary import energy_fields, summarize_energy, unavailable

_LAZY = {
    "EnergyApportionment": "tsglab.energy._apportion",
    "EnergyError": "tsglab.energy._errors",
    "Meter": "tsglab.energy._source",
    "MeterUnavailable": "tsglab.energy._errors",
    "NvmlCounter": "tsglab.energy._nvml",
    "NvmlPowerIntegration": "tsglab.energy._nvml",
    "RaplCounter": "tsglab.energy._rapl",
    "RequestSpan": "tsglab.energy._apportion",
    "Sampler": "tsglab.energy._sampler",
    "Samples": "tsglab.energy._source",
    "apportion": "tsglab.energy._apportion",
    "detect": "tsglab.energy._detect",
    "energy_fields": "tsglab.energy._summary",
    "spans_from_events": "tsglab.energy._apportion",
    "summarize_energy": "tsglab.energy._summary",
    "unavailable": "tsglab.energy._summary",
}

__all__ = [
    "EnergyApportionment",
    "EnergyError",
    "Meter",
    "MeterUnavailable",
    "NvmlCounter",
    "NvmlPowerIntegration",
    "RaplCounter",
    "RequestSpan",
    "Sampler",
    "Samples",
    "apportion",
    "detect",
    "energy_fields",
    "spans_from_events",
    "summarize_energy",
    "unavailable",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tsglab.energy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
