"""What every energy source looks like, and the sample trace a sampler records from one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from tsglab.energy._errors import EnergyError

_CSV_MAGIC = "# tsglab energy samples"


@runtime_checkable
class Meter(Protocol):
    """An energy source: ``read()`` returns ``(t_ns, joules)``, a ``time.monotonic_ns()`` stamp and the
    energy accumulated since the source was opened (non-decreasing). ``name`` is the meter kind written
    into events (``nvml``, ``nvml-power-integration``, ``rapl``); ``domain`` says what is metered."""

    name: str
    domain: str

    def read(self) -> tuple[int, float]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, eq=False, repr=False)
class Samples:
    """A trace of cumulative energy: ``t_ns`` (monotonic ns, strictly increasing, int64) and
    ``energy_j`` (cumulative joules, float64), with the meter that produced it."""

    t_ns: np.ndarray
    energy_j: np.ndarray
    meter: str = "unknown"
    domain: str = ""
    sample_hz_target: float = float("nan")

    @classmethod
    def from_arrays(cls, t_ns, energy_j, *, meter: str = "unknown", domain: str = "",
                    sample_hz_target: float = float("nan")) -> Samples:
        """Validate and wrap two equal-length sequences."""
        t = np.asarray(t_ns, dtype=np.int64).reshape(-1)
        e = np.asarray(energy_j, dtype=np.float64).reshape(-1)
        _validate_trace(t, e)
        t.setflags(write=False)
        e.setflags(write=False)
        return cls(t, e, meter, domain, float(sample_hz_target))

    def __len__(self) -> int:
        return int(self.t_ns.size)

    @property
    def duration_s(self) -> float:
        return float(self.t_ns[-1] - self.t_ns[0]) / 1e9 if self.t_ns.size else 0.0

    @property
    def sample_hz_achieved(self) -> float:
        """Samples per second over the trace ((n - 1) intervals over its span); NaN below two samples."""
        if self.t_ns.size < 2 or self.t_ns[-1] == self.t_ns[0]:
            return float("nan")
        return (self.t_ns.size - 1) / self.duration_s

    def energy_at(self, t_ns) -> np.ndarray:
        """Cumulative energy linearly interpolated at ``t_ns`` (clamped to the trace's ends)."""
        return np.interp(np.asarray(t_ns, dtype=np.float64), self.t_ns.astype(np.float64), self.energy_j)

    def to_csv(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(csv_header(self.meter, self.domain, self.sample_hz_target))
            fh.writelines(f"{t},{e!r}\n" for t, e in zip(self.t_ns.tolist(), self.energy_j.tolist(), strict=True))

    @classmethod
    def read_csv(cls, path: str | os.PathLike) -> Samples:
        """Read a trace written by :class:`~tsglab.energy.Sampler` (or :meth:`to_csv`); a torn last line
        (the process died mid-write) is skipped."""
        meta: dict[str, str] = {}
        t_list: list[int] = []
        e_list: list[float] = []
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        for lineno, line in enumerate(lines, start=1):
            if line.startswith("#"):
                for part in line[1:].split("\t")[1:]:
                    key, _, value = part.partition("=")
                    meta[key.strip()] = value.strip()
                continue
            if not line or line == "t_ns,energy_j":
                continue
            t_text, _, e_text = line.partition(",")
            try:
                t_val, e_val = int(t_text), float(e_text)
            except ValueError:
                if lineno >= len(lines) - 1:  # torn final line
                    break
                raise EnergyError(f"{path}, line {lineno}: expected 't_ns,energy_j'; got {line!r}.") from None
            t_list.append(t_val)
            e_list.append(e_val)
        return cls.from_arrays(t_list, e_list, meter=meta.get("meter", "unknown"), domain=meta.get("domain", ""),
                               sample_hz_target=float(meta.get("sample_hz", "nan")))

    def __repr__(self) -> str:
        return (f"Samples(n={len(self)}, meter={self.meter!r}, domain={self.domain!r}, "
                f"duration_s={self.duration_s:.3f}, sample_hz_achieved={self.sample_hz_achieved:.2f})")


def csv_header(meter: str, domain: str, sample_hz: float) -> str:
    clean = domain.replace("\t", " ").replace("\n", " ")
    return f"{_CSV_MAGIC}\tmeter={meter}\tdomain={clean}\tsample_hz={sample_hz}\nt_ns,energy_j\n"


def _validate_trace(t: np.ndarray, e: np.ndarray) -> None:
    if t.size != e.size:
        raise EnergyError(f"`t_ns` and `energy_j` must have the same length; got {t.size} and {e.size}.")
    if t.size and np.any(np.diff(t) <= 0):
        bad = int(np.flatnonzero(np.diff(t) <= 0)[0]) + 1
        raise EnergyError(f"`t_ns` must be strictly increasing; sample {bad} is at {int(t[bad])} ns after "
                          f"{int(t[bad - 1])} ns. Record samples with time.monotonic_ns().")
    if not np.all(np.isfinite(e)):
        raise EnergyError("`energy_j` must be finite; drop failed reads before building Samples.")
