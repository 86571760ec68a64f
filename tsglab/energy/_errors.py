"""Errors of the energy meter (part of tsglab's exception tree)."""

from __future__ import annotations

from tsglab.errors import TsglabError


class EnergyError(TsglabError, ValueError):
    """Bad input to the energy meter: samples, request spans or options (the message names the fix)."""


class MeterUnavailable(TsglabError):
    """No energy source could be opened; ``reason`` says why in one line (it goes into the event)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
