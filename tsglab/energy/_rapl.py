"""CPU package energy from Linux powercap (RAPL): ``/sys/class/powercap/intel-rapl:N/energy_uj``.

Only package zones (``intel-rapl:N``, not their ``intel-rapl:N:M`` sub-zones, which the package
already contains) are summed. Each counter wraps at ``max_energy_range_uj``; a read that went
backwards adds one range. Since Linux 5.10 ``energy_uj`` is readable by root only, so "permission
denied" is the usual reason RAPL is unavailable.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from tsglab.energy._errors import MeterUnavailable

POWERCAP_ROOT = "/sys/class/powercap"
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")


class _Zone:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.energy_file = path / "energy_uj"
        try:
            self.name = (path / "name").read_text().strip() or path.name
        except OSError:
            self.name = path.name
        self.max_range_uj = int((path / "max_energy_range_uj").read_text().strip())
        self.last_raw = self.read_raw()
        self.total_uj = 0

    def read_raw(self) -> int:
        with open(self.energy_file, "rb") as fh:  # unbuffered-ish: one small read per sample
            return int(fh.read().strip())

    def advance(self) -> None:
        raw = self.read_raw()
        delta = raw - self.last_raw
        if delta < 0:  # the counter wrapped past max_energy_range_uj
            delta += self.max_range_uj
        self.total_uj += delta
        self.last_raw = raw


class RaplCounter:
    """Sum of the RAPL package counters, as joules since this source was opened."""

    name = "rapl"

    def __init__(self, zones: list[_Zone], clock=time.monotonic_ns) -> None:
        self._zones = zones
        self._clock = clock
        self.domain = "+".join(zone.name for zone in zones)

    @classmethod
    def open(cls, root: str | os.PathLike = POWERCAP_ROOT, *, clock=time.monotonic_ns) -> RaplCounter:
        root = Path(root)
        if not root.is_dir():
            raise MeterUnavailable(f"RAPL not readable ({root} missing)")
        paths = sorted((p for p in root.iterdir() if _PACKAGE_ZONE.match(p.name)),
                       key=lambda p: int(p.name.split(":")[1]))
        if not paths:
            raise MeterUnavailable(f"RAPL not readable (no intel-rapl:N package zones under {root})")
        zones = []
        for path in paths:
            try:
                zones.append(_Zone(path))
            except PermissionError:
                raise MeterUnavailable(f"RAPL not readable (permission denied on {path / 'energy_uj'}; "
                                       f"root only since Linux 5.10)") from None
            except (OSError, ValueError) as exc:
                raise MeterUnavailable(f"RAPL not readable ({path}: {exc})") from None
        return cls(zones, clock)

    def read(self) -> tuple[int, float]:
        before = self._clock()
        for zone in self._zones:
            zone.advance()
        after = self._clock()
        return (before + after) // 2, sum(zone.total_uj for zone in self._zones) / 1e6

    def close(self) -> None:
        """Nothing to release (files are opened per read)."""
