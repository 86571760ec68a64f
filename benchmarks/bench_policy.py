"""Planner + router overhead per request (target: p99 <= 100 µs).

Builds ~200 varied prompts (English and Chinese, JSON / code / general, short and >= 1500 characters,
full-width spellings), warms up, then times ``route(plan(prompt, config), config)`` for 20 000 calls
with ``time.perf_counter_ns`` and prints p50, p99 and max in microseconds.

Run: ``python benchmarks/bench_policy.py [--calls 20000] [--seed 0]``
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsglab.policy.config import PolicyConfig  # noqa: E402
from tsglab.policy.planner import plan  # noqa: E402
from tsglab.policy.router import route  # noqa: E402

TARGET_P99_US = 100.0

EN_SHORT = [
    "Hi there",
    "What is the capital of France?",
    "Return JSON with the keys name and age for Ada Lovelace.",
    "Respond ONLY with JSON: list three primary colors.",
    "Write a Python function that reverses a linked list.",
    "Implement quicksort in Rust.",
    "Explain why the sky is blue.",
    "Compare TCP and UDP in two sentences.",
    "Is it legal to record a phone call in California?",
    "Give me a regex that matches ISO dates.",
    "What is JSON?",
    "Summarize: the meeting moved to Tuesday.",
    'Reply with {"city": ..., "country": ...} for the Eiffel Tower.',
    "Sort these numbers: 5, 3, 9, 1",
    "Tell me a joke about databases.",
    "Translate 'good morning' into Spanish.",
]
ZH_SHORT = [
    "你好",
    "只输出JSON：列出三种水果",
    "请用ＪＳＯＮ格式输出北京的人口",
    "写一个函数计算斐波那契数列",
    "用Python实现二分查找",
    "解释为什么天空是蓝色的",
    "比较一下TCP和UDP",
    "这个合同在法律上有效吗？",
    "什么是JSON格式？",
    "用三句话介绍长城",
    "SQL 查询：找出工资最高的员工",
    "以 JSON 返回今天的天气",
]
EN_FILLER = (
    "The quarterly report covers revenue, operating costs and the outlook for the next fiscal year. "
    "Each department submitted figures that the finance team reconciled against the ledger. "
    "Several line items changed after the audit, and the notes explain the adjustments in detail. "
)
ZH_FILLER = (
    "季度报告涵盖了收入、运营成本以及下一财年的展望。各部门提交的数据已由团队与总账核对。"
    "审计后若干项目有所调整，附注中详细说明了这些调整。"
)


def build_prompts(seed: int = 0) -> list[str]:
    """About 200 prompts: short ones, their full-width twins, and long (>= 1500 chars) documents."""
    rng = random.Random(seed)
    prompts: list[str] = []
    for base in EN_SHORT + ZH_SHORT:
        prompts.append(base)
        prompts.append(base.upper())
        # NFKC has real work to do on full-width text
        prompts.append("".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in base))
    tails = EN_SHORT + ZH_SHORT
    while len(prompts) < 200:
        chinese = rng.random() < 0.4
        filler = ZH_FILLER if chinese else EN_FILLER
        repeats = rng.randint(1, 12)
        body = (filler * repeats)[: rng.randint(200, 4000)]
        if rng.random() < 0.5:
            body = body.replace(". ", ".\n", rng.randint(0, 20))
        question = rng.choice(tails)
        document = f"{question}\n\n{body}\n\n{rng.choice(tails)}" if rng.random() < 0.5 else body + question
        prompts.append(document)
    long_count = sum(len(p) >= 1500 for p in prompts)
    if long_count < 20:
        raise RuntimeError(f"expected >= 20 long prompts; built {long_count}")
    return prompts


def bench(calls: int = 20_000, seed: int = 0, config: PolicyConfig | None = None) -> dict[str, float]:
    config = config or PolicyConfig()
    prompts = build_prompts(seed)
    rng = random.Random(seed + 1)
    order = [rng.randrange(len(prompts)) for _ in range(calls)]
    for prompt in prompts * 5:  # warm-up: regex caches, allocator, branch predictors
        route(plan(prompt, config), config)
    elapsed = [0] * calls
    clock = time.perf_counter_ns
    for i, index in enumerate(order):
        prompt = prompts[index]
        start = clock()
        route(plan(prompt, config), config)
        elapsed[i] = clock() - start
    micros = [ns / 1000.0 for ns in elapsed]
    long_micros = [us for us, index in zip(micros, order, strict=True) if len(prompts[index]) >= 1500]
    return {
        "prompts": len(prompts),
        "long_prompts": sum(len(p) >= 1500 for p in prompts),
        "max_chars": max(len(p) for p in prompts),
        "calls": calls,
        "p50_us": percentile(micros, 50),
        "p99_us": percentile(micros, 99),
        "max_us": max(micros),
        "long_p50_us": percentile(long_micros, 50),
        "long_p99_us": percentile(long_micros, 99),
    }


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default); plain Python so the script needs no numpy."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = bench(args.calls, args.seed)
    print(f"python {platform.python_version()} on {platform.machine()} ({platform.processor() or 'cpu'})")
    print(
        f"prompts: {result['prompts']} ({result['long_prompts']} with >= 1500 chars, "
        f"longest {result['max_chars']}); calls: {result['calls']}"
    )
    print(
        f"planner+router per request: p50 {result['p50_us']:.1f} µs, p99 {result['p99_us']:.1f} µs, "
        f"max {result['max_us']:.1f} µs"
    )
    print(f"long prompts only: p50 {result['long_p50_us']:.1f} µs, p99 {result['long_p99_us']:.1f} µs")
    verdict = "yes" if result["p99_us"] <= TARGET_P99_US else "NO"
    print(f"p99 <= {TARGET_P99_US:.0f} µs target: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
