"""All statistics benchmarks of issue 3 in one run: quantiles (HD, t-digest), bootstraps, full protocol.

Each part prints measured figures and ratios against the reference library measured in the same run.
Run: ``python benchmarks/bench_stats.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ("bench_quantiles.py", "bench_bootstrap.py", "bench_protocol.py")

if __name__ == "__main__":
    for part in PARTS:
        print(f"\n=== {part} ===", flush=True)
        sys.argv = [str(HERE / part)]
        try:
            runpy.run_path(str(HERE / part), run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
