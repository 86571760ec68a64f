"""The paced dispatcher: sequential, one request every ``period_ms`` on a fixed schedule (as in the paper).

A slow request delays the next dispatch; the CO latency (completed − intended start) shows the delay
while the raw latency (completed − dispatched) hides it. A switchback block starts its own schedule
once the previous block has drained. When the run ends, :attr:`PacedDispatcher.load_generator` holds
the planned and achieved rates and the dispatch-lag percentiles with their delivery verdict
(:mod:`tsglab.load.delivery`): a backend slower than the period shows up there, not only in CO latency.
"""

from __future__ import annotations

import time

import numpy as np

from tsglab.config import ExperimentSpec
from tsglab.load.delivery import check_delivery
from tsglab.load.recorder import Recorder
from tsglab.load.schedule import WarmupWindow, WorkItem

__all__ = ["PacedDispatcher"]


class PacedDispatcher:
    """Sends ``work`` one request at a time on the paced schedule through ``recorder``."""

    def __init__(self, spec: ExperimentSpec, work: list[WorkItem], recorder: Recorder) -> None:
        self.spec, self.work, self.recorder = spec, work, recorder
        self.load_generator: dict | None = None  # the summary for run.json, set when run() ends
        self._sent: list[tuple[int, int, int]] = []  # (block, intended, dispatched) of each request sent

    def run(self) -> None:
        period_ns = int(self.spec.load.period_ms * 1e6)
        t0 = time.monotonic_ns()
        in_warmup = WarmupWindow(self.spec.load, t0)
        slot, block = 0, self.work[0].block if self.work else 0
        try:
            for item in self.work:
                now = time.monotonic_ns()
                if item.block != block:  # a new switchback block starts its schedule once the last one drained
                    block, t0, slot = item.block, max(now, t0 + slot * period_ns), 0
                intended = t0 + slot * period_ns if period_ns > 0 else now
                slot += 1
                if intended > now:
                    time.sleep((intended - now) / 1e9)
                dispatched, _written = self.recorder.record(item, intended, in_warmup(item.arm, intended))
                self._sent.append((block, intended, dispatched))
        finally:
            self.recorder.close()
            self.load_generator = self.summary()

    def summary(self) -> dict:
        """Planned rate (one request per period), achieved rate while sending (the drains between switchback
        blocks left out), dispatch-lag percentiles, and the delivery verdict."""
        load = self.spec.load
        lag_ms = np.array([d - i for _b, i, d in self._sent], dtype=np.int64) / 1e6
        spans: dict[int, list[int]] = {}  # block -> [first dispatch, last dispatch, count]
        for block, _intended, dispatched in self._sent:
            span = spans.setdefault(block, [dispatched, dispatched, 0])
            span[1], span[2] = dispatched, span[2] + 1
        sending_ns = sum(last - first for first, last, _n in spans.values())
        gaps = sum(n - 1 for _f, _l, n in spans.values())

        def pct(q: float) -> float | None:
            return round(float(np.percentile(lag_ms, q)), 4) if lag_ms.size else None

        summary = {
            "mode": "paced",
            "period_ms": load.period_ms,
            "planned_rate_per_s": round(1e3 / load.period_ms, 3) if load.period_ms > 0 else None,
            "achieved_rate_per_s": round(gaps / (sending_ns / 1e9), 3) if sending_ns > 0 else None,
            "n_planned": len(self.work),
            "n_dispatched": len(self._sent),
            "dispatch_lag_ms": {"p50": pct(50), "p99": pct(99),
                                "max": round(float(lag_ms.max()), 4) if lag_ms.size else None},
            "n_lag_over_1ms": int((lag_ms > 1.0).sum()),
        }
        summary["delivery"] = check_delivery(summary)
        return summary
