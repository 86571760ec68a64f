"""Make the example figures of docs/figures.md: a small scripted run (no model; the tiers sleep for
their scripted durations, so the gateway's cheaper tiers are really faster) and its report's figures at
column size. Run from the repository root: ``.venv/bin/python docs/figures/make_examples.py``."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from tsglab.config import spec_from_dict
from tsglab.load.runner import run_experiment
from tsglab.report import ProtocolSettings, build_report
from tsglab.report.figures import FIGURES, save_figure

HERE = Path(__file__).resolve().parent


def tier(prompt_ms: float, ms_per_token: float) -> dict:
    return {"backend": "scripted", "options": {"prompt_ms": prompt_ms, "eval_ms_per_token": ms_per_token,
                                                "sleep": True, "reply": "The answer is 42 and it is positive."}}


SPEC = {"name": "figures-example", "prompts": {"limit": 60, "seed": 2}, "energy": {"meter": "none"},
        "arms": {"baseline": {"kind": "baseline"}, "tsg": {}},
        "load": {"mode": "open_loop", "arrival": "poisson", "rate_per_s": 40, "concurrency": 2, "timeout_s": 5,
                 "warmup_count": 3},
        "tiers": {"light": tier(3, 0.2), "std": tier(8, 0.5), "enh": tier(20, 1.5)}}


def main() -> None:
    with tempfile.TemporaryDirectory() as runs:
        result = run_experiment(spec_from_dict(SPEC), runs_dir=runs, run_id="example", progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = build_report(result.run_dir, settings=ProtocolSettings(seed=0), write=False)
        for name, draw in FIGURES.items():
            figure = draw(report, size="column")
            if figure is not None:
                save_figure(figure, HERE / name, formats=("png",))


if __name__ == "__main__":
    main()
