"""Replay kernel throughput against the Python policy, and agreement with the live gateway.

1. Agreement: a scripted ladder (deterministic answers per prompt, tier and repair turn, a mix that
   passes and fails the checks) answers every bundled prompt; :func:`tsglab.replay.collect` records the
   replay data set; the live gateway (:func:`tsglab.policy.handle`) then runs every prompt under each of
   the policies below, and its initial tier, final tier, attempts and summed cost are compared with the
   replay's (:func:`tsglab.replay.replay_python`, and the numba kernel against that twin).
2. Throughput, in the same run: prompt-policy evaluations per second of
   - the numba summary kernel (:func:`tsglab.replay.replay_summary`) over a grid of configurations
     (thresholds × floors × fast lane × repair × upgrades; 10⁵ configurations by default);
   - the plain-Python twin;
   - the live Python policy (planner + router + executor over the scripted ladder), which is what the
     kernel replaces.
   Medians of 5 timed runs after a warm-up (JIT compilation excluded and reported separately).

    python benchmarks/bench_replay.py            # ~1 min on 2 cores
    python benchmarks/bench_replay.py --quick    # CI: 2,000 configurations, a sample for agreement

Target (issue 15): ≥ 10⁷ prompt-policy evaluations per second (10⁵ configurations × the bundled prompts
in under 3 s). Exit 1 when the agreement is not complete or (full mode) the target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from tsglab.backends.base import CompletionRequest
from tsglab.backends.scripted import ScriptedBackend
from tsglab.config import ABLATIONS, BASELINE, PAPER_TSG, PolicyConfig, TierSpec
from tsglab.policy import TierLadder, handle
from tsglab.replay import ConfigGrid, collect, replay, replay_python, replay_summary
from tsglab.suite import load_suite

LADDER = ("light", "std", "enh")
ANSWERS = ("A clear and complete answer to the request, with the reasoning spelled out.", "ok", "",
           "I'm sorry, but I can't help with that.", '{"answer": "yes", "items": [1, 2, 3]}', "not json at all",
           "def solve(x):\n    return x")
POLICIES = [PAPER_TSG, BASELINE, *(PolicyConfig(label=k, **v) for k, v in ABLATIONS.items()),
            PolicyConfig(label="low", thr_std=0.1, thr_enh=0.3, json_floor="light", code_floor="light"),
            PolicyConfig(label="no-upgrades", same_tier_repair=False, max_upgrades=0, check_refusal=False)]


def scripted_ladder() -> TierLadder:
    def reply_for(tier: str):
        def reply(request: CompletionRequest) -> str:
            prompt = next(m.content for m in request.messages if m.role == "user")
            repair = any(m.role == "assistant" for m in request.messages)
            return ANSWERS[hashlib.sha256(f"{tier}|{repair}|{prompt}".encode()).digest()[0] % len(ANSWERS)]
        return reply

    backends = {t: ScriptedBackend(reply_for(t), name=f"scripted:{t}", eval_ms_per_token=1.0 + 3 * i,
                                   prompt_ms=0.5 + i) for i, t in enumerate(LADDER)}
    return TierLadder({t: TierSpec(name=t, backend="scripted") for t in LADDER}, backends)


class _Length:
    def __init__(self, text: str) -> None:
        self.score = (len(text) % 7) / 6


def collect_scripted(items, ladder):
    import tsglab.replay.data as replay_data

    original = replay_data.score_answer  # quality scoring runs code sandboxes: not what is measured here
    replay_data.score_answer = lambda item, text: _Length(text)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return collect(items, ladder, tmp, timeout_s=30)
    finally:
        replay_data.score_answer = original


def agreement(items, data, ladder) -> tuple[int, int, int]:
    """(live gateway = twin, pairs compared, kernel = twin) over every item × policy."""
    agree = total = 0
    for config in POLICIES:
        for p, item in enumerate(items):
            handled = handle(ladder, config, item.prompt, json_schema=item.json_schema, timeout_s=30)
            ex = handled.execution
            _q, cost, _lat, initial, final, attempts, _flags = replay_python(data, config, p)
            live = (LADDER.index(handled.decision.tier), LADDER.index(ex.final_tier), len(ex.attempts))
            agree += live == (initial, final, attempts) and abs(sum(a.cost_ms for a in ex.attempts) - cost) < 1e-9
            total += 1
    result = replay(data, ConfigGrid.from_configs(POLICIES, LADDER))
    kernel_agree = sum(
        (result.initial[c, p], result.final[c, p], result.attempts[c, p]) == replay_python(data, config, p)[3:6]
        and abs(result.cost_ms[c, p] - replay_python(data, config, p)[1]) < 1e-9
        for c, config in enumerate(POLICIES) for p in range(data.n_prompts))
    return agree, total, kernel_agree


def grid_of(size: int) -> ConfigGrid:
    """About ``size`` configurations: a threshold lattice × floors × fast lane × repair × upgrades."""
    fixed = 3 * 2 * 2 * 2 * 3  # json_floor, def_floor, fast lane, repair, max_upgrades
    side = max(2, int(np.sqrt(2 * size / fixed)))
    thresholds = np.round(np.linspace(0.0, 1.6, side), 4)
    return ConfigGrid.product(PAPER_TSG, {"thr_std": thresholds, "thr_enh": thresholds,
                                          "json_floor": ["light", "std", "enh"], "def_floor": ["light", "std"],
                                          "force_light_len": [0, 120], "same_tier_repair": [0, 1],
                                          "max_upgrades": [0, 1, 2]}, LADDER)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--configs", type=int, default=100_000)
    args = parser.parse_args(argv)
    items = load_suite()
    ladder = scripted_ladder()
    if args.quick:
        items = items[::6]
    data = collect_scripted(items, ladder)
    agree, total, kernel_agree = agreement(items, data, ladder)
    print(f"agreement with the live gateway: {agree}/{total} prompt-policy pairs (initial tier, final tier, "
          f"attempts, cost); kernel = twin: {kernel_agree}/{total}")

    grid = grid_of(2_000 if args.quick else args.configs)
    n_evals = len(grid) * data.n_prompts
    started = time.perf_counter()
    replay_summary(data, ConfigGrid.from_configs([PAPER_TSG], LADDER))
    compile_s = time.perf_counter() - started
    kernel_s = timed(lambda: replay_summary(data, grid), 3 if args.quick else 5)
    sample = [grid.config(i) for i in range(0, len(grid), max(1, len(grid) // 40))]
    twin_s = timed(lambda: [replay_python(data, c, p) for c in sample for p in range(data.n_prompts)], 1)
    twin_evals = len(sample) * data.n_prompts
    live_configs = POLICIES[:3]
    live_s = timed(lambda: [handle(ladder, c, item.prompt, json_schema=item.json_schema, timeout_s=30)
                            for c in live_configs for item in items], 1)
    live_evals = len(live_configs) * len(items)
    kernel_rate, twin_rate, live_rate = n_evals / kernel_s, twin_evals / twin_s, live_evals / live_s
    print(f"prompts: {data.n_prompts}; configurations: {len(grid):,}; prompt-policy evaluations: {n_evals:,}")
    print(f"numba summary kernel: {kernel_s:.3f} s (median) = {kernel_rate:,.0f} evaluations/s "
          f"(first call incl. compilation or cache load: {compile_s:.2f} s)")
    print(f"plain-Python twin:    {twin_rate:,.0f} evaluations/s ({1e6 / twin_rate:.1f} µs each)")
    print(f"live Python policy:   {live_rate:,.0f} evaluations/s ({1e6 / live_rate:.1f} µs each: planner, router, "
          "executor over scripted tiers)")
    print(f"kernel / live policy: {kernel_rate / live_rate:,.0f}x; kernel / twin: {kernel_rate / twin_rate:,.0f}x")
    ok = agree == total and kernel_agree == total
    if not args.quick:
        target = kernel_rate >= 1e7
        print(f"target >= 1e7 evaluations/s: {'met' if target else 'MISSED'}")
        ok &= target
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
