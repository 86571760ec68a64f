"""A real report for the publication-table tests: a scripted run (no model) whose baseline arm never
answers (its only tier raises an error whose message holds LaTeX/HTML-hostile characters), so the
tables carry not-computed cells with their reasons, and whose gateway arm answers on the lower tiers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from conftest import scripted_ladder

from tsglab.config import spec_from_dict
from tsglab.errors import BackendError
from tsglab.load.runner import run_experiment
from tsglab.report import ProtocolSettings, RunReport, build_report

HOSTILE = "enh <down> −1 α & 100% my_model"
TIERS = {"light": {"max_tokens": 16}, "std": {"max_tokens": 64}, "enh": {"max_tokens": 128}}


def answer(request) -> str:
    return '{"answer": 42}' if "json" in request.messages[-1].content.lower() else "The answer is 42, positive."


def hostile_report(runs_dir: Path, *, n: int = 12, run_id: str = "pub-run_1", write: bool = False) -> RunReport:
    """The report of a scripted run (with ``write``, written as build_report does: figures too, slow)."""
    spec = spec_from_dict({"name": "pub", "prompts": {"tasks": ["json", "open"], "limit": n, "seed": 1},
                           "arms": {"baseline": {"kind": "baseline"}, "tsg": {}}, "tiers": TIERS,
                           "energy": {"meter": "none"},
                           "load": {"mode": "paced", "period_ms": 0, "timeout_s": 5, "warmup_count": 1}})
    ladder = scripted_ladder({"light": answer, "std": answer, "enh": BackendError(HOSTILE)})
    run_dir = run_experiment(spec, runs_dir=runs_dir, run_id=run_id, ladder=ladder, progress=False).run_dir
    return build_report(run_dir, settings=ProtocolSettings(n_resamples=100, seed=1), write=write)


LONGEST_MS = 98_765.4  # the widest latency a table must hold: five digits of milliseconds


def stretched(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its latencies scaled so the largest is :data:`LONGEST_MS`: the widest numbers a
    real run prints (a timeout of 100 s), in the same proportions."""
    frame = frame.copy()

    def scale(columns, rows=slice(None)):
        largest = frame.loc[rows, columns].abs().max().max()
        if largest and largest == largest:
            frame.loc[rows, columns] = frame.loc[rows, columns] * (LONGEST_MS / largest)

    for column in frame.columns:
        text = str(column)
        if pd.api.types.is_float_dtype(frame[column]) and (
                text.endswith(("_ms", "_ci_low", "_ci_high")) or text.startswith(("p95_", "p50_", "lag_"))):
            scale([column])
    if name == "headline":
        numbers = [c for c in frame.columns if c not in ("metric", "change_%")]
        scale(numbers, frame["metric"].str.contains("ms"))
    return frame
