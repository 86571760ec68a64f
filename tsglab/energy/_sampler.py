"""A background thread that reads an energy source at a fixed rate and keeps the trace.

The loop sleeps to absolute deadlines (``start + k / sample_hz``), so the rate does not drift with the
time each read takes; a deadline already missed is skipped rather than bunched (counted in
``missed_deadlines``). Samples stay in memory and are appended to a CSV, flushed about once a second
so a crash keeps all but the last second. The thread's own CPU time is measured per sample
(``cpu_s_per_sample``) so a latency run can show the meter did not disturb it.
"""

from __future__ import annotations

import math
import os
import threading
import time
from array import array
from typing import IO

from tsglab.energy._errors import EnergyError
from tsglab.energy._source import Meter, Samples, csv_header


class Sampler:
    """Sample ``meter`` at ``sample_hz`` in a daemon thread (``start()``/``stop()`` or ``with``).

    Parameters
    ----------
    meter : a source with ``read() -> (t_ns, cumulative_joules)``, ``name`` and ``domain``.
    sample_hz : reads per second, >= 10.
    csv_path : where to append ``t_ns,energy_j`` rows (None: memory only).
    flush_s : how often the CSV is flushed.
    """

    def __init__(self, meter: Meter, *, sample_hz: float = 20.0, csv_path: str | os.PathLike | None = None,
                 flush_s: float = 1.0) -> None:
        if not (isinstance(sample_hz, (int, float)) and math.isfinite(sample_hz) and sample_hz >= 10):
            raise EnergyError(f"`sample_hz` must be >= 10 (windows need several samples); got {sample_hz!r}.")
        if not flush_s > 0:
            raise EnergyError(f"`flush_s` must be > 0 seconds; got {flush_s!r}.")
        self.meter = meter
        self.sample_hz = float(sample_hz)
        self.csv_path = None if csv_path is None else os.fspath(csv_path)
        self.flush_s = float(flush_s)
        self._t_ns = array("q")
        self._energy_j = array("d")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._csv: IO[str] | None = None
        self._pending: list[str] = []
        self.read_errors = 0
        self.last_error = ""
        self.missed_deadlines = 0
        self._cpu_ns = 0
        self._reads = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Sampler:
        if self._thread is not None:
            raise EnergyError("this Sampler was already started; create a new Sampler for another trace.")
        if self.csv_path is not None:
            new = not os.path.exists(self.csv_path) or os.path.getsize(self.csv_path) == 0
            self._csv = open(self.csv_path, "a", encoding="utf-8")  # noqa: SIM115 (open from start() to stop())
            if new:
                self._csv.write(csv_header(self.meter.name, self.meter.domain, self.sample_hz))
                self._csv.flush()
        self._thread = threading.Thread(target=self._run, name="tsglab-energy-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Samples:
        """Stop the thread, flush and close the CSV; returns the trace."""
        if self._thread is not None and self._thread.is_alive():
            self._stop.set()
            self._thread.join()
        if self._csv is not None:
            self._flush_csv()
            self._csv.close()
            self._csv = None
        return self.samples()

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the loop --------------------------------------------------------------------------------
    def _run(self) -> None:
        period_ns = round(1e9 / self.sample_hz)
        flush_ns = round(self.flush_s * 1e9)
        start = time.monotonic_ns()
        next_flush = start + flush_ns
        k = 0
        while True:
            cpu0 = time.thread_time_ns()
            self._sample_once()
            now = time.monotonic_ns()
            if self._csv is not None and now >= next_flush:
                self._flush_csv()
                next_flush = now + flush_ns
            self._cpu_ns += time.thread_time_ns() - cpu0
            k += 1
            deadline = start + k * period_ns
            if deadline <= now:  # fell behind (a stall): skip the missed slots instead of bunching reads
                skipped = (now - deadline) // period_ns + 1
                self.missed_deadlines += int(skipped)
                k += int(skipped)
                deadline = start + k * period_ns
            if self._stop.wait((deadline - now) / 1e9):
                break
        self._sample_once()  # a last sample at stop, so the trace covers everything before stop()

    def _sample_once(self) -> None:
        try:
            t_ns, energy_j = self.meter.read()
        except Exception as exc:  # noqa: BLE001 (a failed read is a gap in the trace, not a dead sampler)
            self.read_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            if self._t_ns and t_ns <= self._t_ns[-1]:
                return
            self._t_ns.append(int(t_ns))
            self._energy_j.append(float(energy_j))
        self._reads += 1
        if self._csv is not None:
            self._pending.append(f"{int(t_ns)},{float(energy_j)!r}\n")

    def _flush_csv(self) -> None:
        lines, self._pending = self._pending, []
        if lines and self._csv is not None:
            self._csv.write("".join(lines))
            self._csv.flush()

    # -- results ---------------------------------------------------------------------------------
    def samples(self) -> Samples:
        """A copy of the trace so far (safe while running)."""
        with self._lock:
            t_ns, energy_j = self._t_ns.tolist(), self._energy_j.tolist()
        return Samples.from_arrays(t_ns, energy_j, meter=self.meter.name, domain=self.meter.domain,
                                   sample_hz_target=self.sample_hz)

    @property
    def n_samples(self) -> int:
        return len(self._t_ns)

    @property
    def sample_hz_achieved(self) -> float:
        with self._lock:
            n = len(self._t_ns)
            span = (self._t_ns[-1] - self._t_ns[0]) if n >= 2 else 0
        return (n - 1) / (span / 1e9) if span > 0 else float("nan")

    @property
    def cpu_s_per_sample(self) -> float:
        """Sampler-thread CPU seconds per loop iteration (read + bookkeeping + CSV flushes)."""
        return self._cpu_ns / 1e9 / self._reads if self._reads else float("nan")

    def measure_idle(self, seconds: float) -> float:
        """Idle power in watts: energy over ``seconds`` of reads at ``sample_hz``, before :meth:`start`.

        The estimate is (E_last - E_first) / (t_last - t_first) over the idle reads, which for a counter
        is exact whatever the read jitter. Call it while nothing else runs on the metered device.
        """
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
            raise EnergyError(f"`seconds` must be a positive number of idle seconds; got {seconds!r}.")
        if self._thread is not None:
            raise EnergyError("measure_idle() must run before start() (it reads the meter itself).")
        period = 1.0 / self.sample_hz
        first = self.meter.read()
        last = first
        deadline = time.monotonic() + period
        end = time.monotonic() + seconds
        while True:
            time.sleep(max(0.0, min(deadline, end) - time.monotonic()))
            last = self.meter.read()
            if time.monotonic() >= end:
                break
            deadline += period
        span_s = (last[0] - first[0]) / 1e9
        if span_s <= 0:
            raise EnergyError("measure_idle(): the meter's clock did not advance; check the source's read().")
        return max(0.0, (last[1] - first[1]) / span_s)

    def __repr__(self) -> str:
        return (f"Sampler(meter={self.meter.name!r}, domain={self.meter.domain!r}, sample_hz={self.sample_hz}, "
                f"n_samples={self.n_samples}, running={self.running})")
