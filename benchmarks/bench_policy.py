"""Planner + router overhead per request (target: p99 <= 100 µs).

Builds 200 varied prompts: 40 short requests (English and Chinese; JSON, code and general) in three
spellings each (as written, upper case, full-width), and 80 documents of 200–4 000 characters (English
or Chinese filler around one or two of those requests; about 40 % of all prompts have >= 1 500
characters). Warms up, then times ``route(plan(prompt, config), config)`` for 20 000 calls drawn at
random, with ``time.perf_counter_ns``, and prints p50, p99 and max in microseconds, overall and for the
long prompts (English, Chinese). The process is pinned to one CPU; the garbage collector stays on.

Run: ``python benchmarks/bench_policy.py [--calls 20000] [--seed 0] [--breakdown]``; ``--quick`` times
1 000 calls and the per-stage breakdown once (about a second; CI runs it).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsglab.config import PolicyConfig
from tsglab.policy.planner import plan
from tsglab.policy.router import route

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
        length = rng.randint(200, 4000)
        body = (filler * (length // len(filler) + 1))[:length]
        if rng.random() < 0.5:
            body = body.replace("。" if chinese else ". ", "。\n" if chinese else ".\n", rng.randint(0, 20))
        question = rng.choice(tails)
        document = f"{question}\n\n{body}\n\n{rng.choice(tails)}" if rng.random() < 0.5 else body + question
        prompts.append(document)
    long_ascii = sum(len(p) >= 1500 and p.isascii() for p in prompts)
    long_other = sum(len(p) >= 1500 and not p.isascii() for p in prompts)
    if long_ascii < 10 or long_other < 10:
        raise RuntimeError(
            f"expected >= 10 long English and >= 10 long Chinese prompts; got {long_ascii}, {long_other}"
        )
    return prompts


def bench(
    calls: int = 20_000, seed: int = 0, config: PolicyConfig | None = None, prompts: list[str] | None = None
) -> dict[str, float]:
    config = config or PolicyConfig()
    prompts = prompts or build_prompts(seed)
    rng = random.Random(seed + 1)
    order = [rng.randrange(len(prompts)) for _ in range(calls)]
    for prompt in prompts * 5:  # warm-up: regex caches, allocator, branch predictors
        route(plan(prompt, config), config)
    gc.collect()  # start from a clean heap; the collector stays on, as in a server
    elapsed = [0] * calls
    clock = time.perf_counter_ns
    for i, index in enumerate(order):
        prompt = prompts[index]
        start = clock()
        route(plan(prompt, config), config)
        elapsed[i] = clock() - start
    micros = [ns / 1000.0 for ns in elapsed]
    timed = list(zip(micros, (prompts[index] for index in order), strict=True))
    short_micros = [us for us, prompt in timed if len(prompt) < 1500]
    long_micros = [us for us, prompt in timed if len(prompt) >= 1500]
    long_chinese = [us for us, prompt in timed if len(prompt) >= 1500 and not prompt.isascii()]
    return {
        "prompts": len(prompts),
        "long_prompts": sum(len(p) >= 1500 for p in prompts),
        "long_chinese": sum(len(p) >= 1500 and not p.isascii() for p in prompts),
        "max_chars": max(len(p) for p in prompts),
        "calls": calls,
        "p50_us": percentile(micros, 50),
        "p99_us": percentile(micros, 99),
        "max_us": max(micros),
        "short_p50_us": percentile(short_micros, 50),
        "short_p99_us": percentile(short_micros, 99),
        "long_p50_us": percentile(long_micros, 50),
        "long_p99_us": percentile(long_micros, 99),
        "long_chinese_p50_us": percentile(long_chinese, 50),
        "long_chinese_p99_us": percentile(long_chinese, 99),
    }


def breakdown(seed: int = 0, repeats: int = 7, number: int = 20) -> list[tuple[str, float]]:
    """Per-stage cost (µs, best of ``repeats``) averaged over the long prompts: where the time goes."""
    import timeit
    import unicodedata

    from tsglab.policy import detect, planner

    config = PolicyConfig()
    prompts = [p for p in build_prompts(seed) if len(p) >= 1500]
    vocabulary = planner._PLANNER_VOCABULARY
    folded = [detect._fold_width(p) for p in prompts]
    scan = planner._PLANNER_ZH_SCAN
    analysed = [detect.analyse(p, vocabulary, scan) for p in prompts]
    stages = {
        "NFKC (reference, not used)": lambda: [unicodedata.normalize("NFKC", p) for p in prompts],
        "width folding": lambda: [detect._fold_width(p) for p in prompts],
        "word bytes (encode+translate)": lambda: [
            f.encode("ascii", "replace").translate(detect._WORD_BYTES) for f in folded
        ],
        "words (split+intersect)": lambda: [vocabulary.intersection(a.word_bytes.split()) for a in analysed],
        "chinese keyword scan (whole text)": lambda: [
            detect._chinese_keywords(f, None) for f in folded if not f.isascii()
        ],
        "analyse (all of the above)": lambda: [detect.analyse(p, vocabulary, scan) for p in prompts],
        "json detection": lambda: [detect._asks_for_json_word(a) for a in analysed],
        "code detection": lambda: [detect._asks_for_code(a) for a in analysed],
        "task detection (all)": lambda: [detect.detect_analysed(a, has_schema=False) for a in analysed],
        "heavy keywords": lambda: [planner._heavy_keywords(a) for a in analysed],
        "marks": lambda: [a.plain.encode("ascii", "ignore").translate(None, planner._NOT_MARKS) for a in analysed],
        "plan": lambda: [plan(p, config) for p in prompts],
        "plan + route": lambda: [route(plan(p, config), config) for p in prompts],
    }
    per_call = []
    for name, stage in stages.items():
        best = min(timeit.repeat(stage, number=number, repeat=repeats)) / number
        per_call.append((name, best / len(prompts) * 1e6))
    return per_call


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default); plain Python so the script needs no numpy."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--breakdown", action="store_true", help="also time each stage on the long prompts")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    parser.add_argument("--quick", action="store_true",
                        help="1000 calls and a one-pass --breakdown (about a second; for CI)")
    args = parser.parse_args(argv)
    breakdown_repeats, breakdown_number = 7, 20
    if args.quick:
        args.calls, args.breakdown = min(args.calls, 1_000), True
        breakdown_repeats, breakdown_number = 1, 1
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        # One CPU: no migrations between cores in the middle of a measurement.
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    print(f"python {platform.python_version()} on {platform.machine()} ({platform.processor() or 'cpu'})")
    from tsglab.suite import load_suite

    suite = bench(args.calls, args.seed, prompts=[item.prompt for item in load_suite()])
    print(
        f"bundled suite ({suite['prompts']} prompts, longest {suite['max_chars']} chars): "
        f"p50 {suite['p50_us']:.1f} µs, p99 {suite['p99_us']:.1f} µs, max {suite['max_us']:.1f} µs"
    )
    result = bench(args.calls, args.seed)
    print("stress mix:")
    print(
        f"prompts: {result['prompts']} ({result['long_prompts']} with >= 1500 chars, "
        f"{result['long_chinese']} of them with Chinese text; longest {result['max_chars']}); "
        f"calls: {result['calls']}"
    )
    print(
        f"planner+router per request: p50 {result['p50_us']:.1f} µs, p99 {result['p99_us']:.1f} µs, "
        f"max {result['max_us']:.1f} µs"
    )
    print(f"prompts < 1500 chars: p50 {result['short_p50_us']:.1f} µs, p99 {result['short_p99_us']:.1f} µs")
    print(f"prompts >= 1500 chars: p50 {result['long_p50_us']:.1f} µs, p99 {result['long_p99_us']:.1f} µs")
    print(
        f"prompts >= 1500 chars with Chinese: p50 {result['long_chinese_p50_us']:.1f} µs, "
        f"p99 {result['long_chinese_p99_us']:.1f} µs"
    )
    verdict = "yes" if result["p99_us"] <= TARGET_P99_US else "NO"
    print(f"p99 <= {TARGET_P99_US:.0f} µs target: {verdict}")
    if args.breakdown:
        print(f"stage costs on the long prompts (µs per prompt, best of {breakdown_repeats}):")
        for name, micros in breakdown(args.seed, repeats=breakdown_repeats, number=breakdown_number):
            print(f"  {name:32s} {micros:7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
