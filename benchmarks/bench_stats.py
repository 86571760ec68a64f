"""All statistics benchmarks of issue 3 in one run: quantiles (HD, t-digest), bootstraps, full protocol.

Each part prints measured figures and ratios against the reference library measured in the same run.
Run: ``python benchmarks/bench_stats.py`` (about a minute on 2 cores); ``--quick`` passes ``--quick``
to every part (seconds; CI runs it). Every part runs even when an earlier one fails; the exit status
is non-zero when any part failed, and the failed parts are named at the end.
"""

from __future__ import annotations

import argparse
import runpy
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ("bench_quantiles.py", "bench_bootstrap.py", "bench_protocol.py")


def run_part(part: str, args: list[str]) -> bool:
    """Run one part as ``__main__`` with ``args``; True when it finished with status 0."""
    saved_argv = sys.argv
    sys.argv = [str(HERE / part), *args]
    try:
        runpy.run_path(str(HERE / part), run_name="__main__")
    except SystemExit as exc:
        return exc.code in (0, None)
    except Exception:  # noqa: BLE001 (a part that crashes is reported as failed; the other parts still run)
        traceback.print_exc()
        return False
    finally:
        sys.argv = saved_argv
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="run every part with --quick (seconds; for CI)")
    args = parser.parse_args(argv)
    failed = []
    for part in PARTS:
        print(f"\n=== {part} ===", flush=True)
        if not run_part(part, ["--quick"] if args.quick else []):
            failed.append(part)
    if failed:
        print(f"\nFAILED parts: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
