"""Every benchmark runs in CI (the ``bench`` stage of ``make test``): each ``benchmarks/*.py`` script
with a ``__main__`` block must accept ``--quick`` (the same code paths at tiny sizes, a few seconds)
and finish with status 0.

Scripts are discovered by glob, so a new benchmark is checked as soon as it lands; one without
``--quick`` fails here. Private helpers (``benchmarks/_*.py``) and modules without a ``__main__`` block
are not scripts. Quick runs must leave the committed results in ``benchmarks/results/`` alone.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

# CI stage 7 (`make ci-bench`, `-m bench`): the unit stage leaves these out
pytestmark = pytest.mark.bench

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RESULTS = BENCHMARKS / "results"
# a quick run takes seconds (about 12 s at most on 2 cores); the limit only stops a hung one
TIMEOUT_S = 180


def benchmark_scripts() -> list[Path]:
    return sorted(
        path
        for path in BENCHMARKS.glob("*.py")
        if not path.name.startswith("_") and 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")
    )


def results_snapshot() -> dict[str, str]:
    return {
        str(path.relative_to(RESULTS)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(RESULTS.rglob("*"))
        if path.is_file()
    }


def test_the_benchmarks_are_found():
    names = {path.name for path in benchmark_scripts()}
    assert {"bench_policy.py", "bench_load.py", "bench_stats.py", "calibration.py"} <= names


@pytest.mark.parametrize("script", benchmark_scripts(), ids=lambda path: path.name)
def test_quick_mode_runs(script: Path, tmp_path: Path):
    assert '"--quick"' in script.read_text(encoding="utf-8"), (
        f"{script.name} has no --quick flag: give it one (argparse, the same code paths at tiny sizes, "
        f"seconds on 2 cores) so that CI runs it"
    )
    before = results_snapshot()
    started = time.monotonic()
    try:
        # cwd is an empty directory: a quick run must not depend on, or write into, the working directory
        proc = subprocess.run(
            [sys.executable, str(script), "--quick"], capture_output=True, text=True, cwd=tmp_path, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{script.name} --quick ran past {TIMEOUT_S} s; output so far:\n{exc.stdout}\n{exc.stderr}")
    seconds = time.monotonic() - started
    assert proc.returncode == 0, (
        f"{script.name} --quick exited {proc.returncode} after {seconds:.1f} s\n"
        f"--- stdout (tail)\n{proc.stdout[-4000:]}\n--- stderr (tail)\n{proc.stderr[-4000:]}"
    )
    printed = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(printed) >= 3, f"{script.name} --quick printed almost nothing:\n{proc.stdout}\n{proc.stderr}"
    assert results_snapshot() == before, f"{script.name} --quick changed files in {RESULTS}"
    assert list(tmp_path.iterdir()) == [], f"{script.name} --quick wrote into its working directory"
