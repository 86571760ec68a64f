"""The paced dispatcher: sequential, one request every ``period_ms`` on a fixed schedule (as in the paper).

A slow request delays the next dispatch; the CO latency (completed − intended start) shows the delay
while the raw latency (completed − dispatched) hides it. A switchback block starts its own schedule
once the previous block has drained.
"""

from __future__ import annotations

import time

from tsglab.config import ExperimentSpec
from tsglab.load.recorder import Recorder
from tsglab.load.schedule import WarmupWindow, WorkItem

__all__ = ["PacedDispatcher"]


class PacedDispatcher:
    """Sends ``work`` one request at a time on the paced schedule through ``recorder``."""

    load_generator: dict | None = None  # the paced schedule has no load-generator summary

    def __init__(self, spec: ExperimentSpec, work: list[WorkItem], recorder: Recorder) -> None:
        self.spec, self.work, self.recorder = spec, work, recorder

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
                self.recorder.record(item, intended, in_warmup(item.arm, intended))
        finally:
            self.recorder.close()
