"""Which request runs when: prompt selection and arm order (interleaved or switchback)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass

from tsglab.config import ExperimentSpec, LoadSpec, PromptSelection
from tsglab.errors import SpecError
from tsglab.suite import SuiteItem


@dataclass(frozen=True)
class WorkItem:
    seq: int  # position in the full schedule (stable across resumes)
    arm: str
    item: SuiteItem
    block: int = 0  # paced runs re-anchor their schedule when the block changes (switchback)

    @property
    def key(self) -> tuple[str, str]:
        return (self.arm, self.item.id)


def select_prompts(items: list[SuiteItem], selection: PromptSelection) -> list[SuiteItem]:
    """Apply ids/tasks filters, then take ``limit`` items round-robin across tasks after a seeded
    shuffle, so a small run still covers every task kind."""
    chosen = list(items)
    if selection.ids:
        by_id = {it.id: it for it in items}
        unknown = [i for i in selection.ids if i not in by_id]
        if unknown:
            raise SpecError(f"prompts.ids: {unknown[:5]} not in the suite.")
        chosen = [by_id[i] for i in selection.ids]
    if selection.tasks:
        known = {it.task for it in items}
        unknown = sorted(set(selection.tasks) - known)
        if unknown:
            raise SpecError(f"prompts.tasks: {unknown} not in the suite; it has {sorted(known)}.")
        chosen = [it for it in chosen if it.task in selection.tasks]
    if selection.limit is None or selection.limit >= len(chosen):
        return chosen
    if selection.limit < 1:
        raise SpecError(f"prompts.limit must be >= 1; got {selection.limit}.")
    rng = random.Random(selection.seed)
    by_task: dict[str, list[SuiteItem]] = defaultdict(list)
    for it in chosen:
        by_task[it.task].append(it)
    queues = []
    for task in sorted(by_task):
        group = by_task[task][:]
        rng.shuffle(group)
        queues.append(group)
    picked: list[SuiteItem] = []
    while len(picked) < selection.limit:
        for queue in queues:
            if queue and len(picked) < selection.limit:
                picked.append(queue.pop(0))
    return picked


def build_schedule(spec: ExperimentSpec, items: list[SuiteItem]) -> list[WorkItem]:
    """Every arm runs the same prompts. ``interleaved`` alternates which arm goes first per prompt
    (ABBA), all on one schedule; ``switchback`` runs blocks of prompts per arm, alternating the arm
    order per block, each block on its own schedule so one arm's backlog never delays the other."""
    arms = list(spec.arms)
    order: list[tuple[str, SuiteItem, int]] = []
    if spec.load.arm_order == "interleaved":
        for i, item in enumerate(items):
            order.extend((arm, item, 0) for arm in (arms if i % 2 == 0 else arms[::-1]))
    else:
        size = spec.load.switchback_block
        for b, start in enumerate(range(0, len(items), size)):
            chunk = items[start : start + size]
            for a, arm in enumerate(arms if b % 2 == 0 else arms[::-1]):
                order.extend((arm, item, b * len(arms) + a) for item in chunk)
    return [WorkItem(seq, arm, item, block) for seq, (arm, item, block) in enumerate(order)]


class WarmupWindow:
    """Whether a request is in the warm-up: the first ``warmup_count`` requests *of each arm* (so paired
    arms lose the same number), and everything scheduled within ``warmup_seconds`` of the segment's start
    (``start_ns``). Call it once per request, in dispatch order."""

    def __init__(self, load: LoadSpec, start_ns: int) -> None:
        self.count, self.seconds, self.start_ns = load.warmup_count, load.warmup_seconds, start_ns
        self.seen: Counter[str] = Counter()

    def __call__(self, arm: str, intended_ns: int) -> bool:
        self.seen[arm] += 1
        return self.seen[arm] <= self.count or (intended_ns - self.start_ns) < self.seconds * 1e9
