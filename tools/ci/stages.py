"""Run CI stages in order, each a Makefile target ``ci-<name>``: name and time each one, stop at the
first that fails, and end with a one-line timing summary per stage.

Usage (what ``make test`` runs)::

    python tools/ci/stages.py --make make "lint=ruff over tsglab tests benchmarks tools" "unit=unit tests"

Each argument is ``name=title``; the stage runs ``make ci-<name>``. The commands live in the Makefile
so that each stage can also be run alone (``make ci-unit``); this script only orders and times them
(make itself would stop at the first failure but neither time stages nor summarise them).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class StageResult:
    name: str
    title: str
    status: str  # "passed", "FAILED" or "not run"
    seconds: float | None
    exit_code: int | None


def parse_stage(argument: str) -> tuple[str, str]:
    name, sep, title = argument.partition("=")
    if not sep or not name.strip() or not title.strip():
        raise SystemExit(f"stages.py: stage {argument!r} must read NAME=TITLE, e.g. 'unit=unit tests'.")
    return name.strip(), title.strip()


def run_stages(stages: list[tuple[str, str]], make: str) -> list[StageResult]:
    results: list[StageResult] = []
    failed = False
    for number, (name, title) in enumerate(stages, start=1):
        label = f"[{number}/{len(stages)}] {name}"
        if failed:
            results.append(StageResult(name, title, "not run", None, None))
            continue
        print(f"\n==> stage {label}: {title}  (make ci-{name})", flush=True)
        started = time.monotonic()
        exit_code = subprocess.run([make, "--no-print-directory", f"ci-{name}"], check=False).returncode
        seconds = time.monotonic() - started
        status = "passed" if exit_code == 0 else "FAILED"
        print(f"==> stage {label}: {status} in {seconds:.1f} s", flush=True)
        results.append(StageResult(name, title, status, seconds, exit_code))
        failed = exit_code != 0
    return results


def summary(results: list[StageResult]) -> str:
    width = max(len(r.name) for r in results)
    lines = ["", "==> CI summary (wall-clock time per stage)"]
    for number, result in enumerate(results, start=1):
        took = "" if result.seconds is None else f"{result.seconds:7.1f} s"
        code = "" if result.exit_code in (None, 0) else f"  (exit {result.exit_code})"
        lines.append(f"  {number}. {result.name:<{width}}  {result.status:<7} {took:>9}  {result.title}{code}")
    total = sum(r.seconds or 0.0 for r in results)
    lines.append(f"  total {total:.1f} s ({total / 60:.1f} min)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--make", default="make", help="the make program to call (the Makefile passes $(MAKE))")
    parser.add_argument("stages", nargs="+", metavar="NAME=TITLE")
    args = parser.parse_args(argv)
    results = run_stages([parse_stage(argument) for argument in args.stages], args.make)
    print(summary(results), flush=True)
    return 0 if all(r.status == "passed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
