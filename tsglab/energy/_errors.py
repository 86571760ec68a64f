"""Errors of the energy meter, re-exported from :mod:`tsglab.errors` where the whole exception tree lives."""

from __future__ import annotations

from tsglab.errors import EnergyError, MeterUnavailable

__all__ = ["EnergyError", "MeterUnavailable"]
