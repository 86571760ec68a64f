"""Writing a report: Markdown, LaTeX and HTML tables, figures, the long-format metrics, the family tests,
the bootstrap metadata and the seed manifest — all under the report's ``out_dir``.

``out_dir`` is the run directory for a report of one run's arms, and a comparison directory of its own
for a report against another run (``--vs``): a paper that ``\\input``s a run's tables never sees them
change because that run served as someone else's baseline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from tsglab._version import __version__
from tsglab.report.publish import footnotes_from_verdict, label_prefix_for, write_tables
from tsglab.report.run_report import RunReport, metrics_summary
from tsglab.report.tables import ablation_table

__all__ = ["build_ablation", "seed_manifest", "write_figures", "write_report"]


def write_report(report: RunReport) -> Path:
    """Write every table and artefact of ``report`` under ``report.out_dir``; return its ``tables/`` folder."""
    root = report.out_dir or report.run_dir
    out = root / "tables"
    # labels tab:<run-id-slug>:<name>, so the tables of two reports can sit in one paper
    write_tables(out, report.tables(), notes=report.notes, label_prefix=label_prefix_for(root.name),
                 footnotes=footnotes_from_verdict(report.verdict),
                 page_title=f"tsglab report — {root.name}: {report.gateway} vs {report.baseline}")
    write_figures(report, root / "figures")
    metrics_summary(report).to_parquet(root / "metrics_summary.parquet", index=False)
    for name, table in (("A", report.family_a), ("B", report.family_b), ("C", report.family_c)):
        table.to_csv(root / f"tests_family_{name}.csv", index=False)
    meta = {**report.meta, "verdict": report.verdict}
    (root / "bootstrap_meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    (root / "seed_manifest.txt").write_text(seed_manifest(report))
    return out


def write_figures(report: RunReport, folder: Path) -> list[Path]:
    """Every figure of :data:`tsglab.report.figures.FIGURES` as ``<name>.{pdf,svg,png}`` (one column wide)
    and ``<name>-page.{pdf,svg,png}`` (a two-column page wide). A figure with nothing to draw (no
    answered request) is not written; the report's head says why. Returns the files written."""
    from tsglab.report.figures import FIGURES, save_figure

    written: list[Path] = []
    for name, draw in FIGURES.items():
        for size, suffix in (("column", ""), ("page", "-page")):
            figure = draw(report, size=size)
            if figure is None:
                break
            written += save_figure(figure, folder / f"{name}{suffix}")
            figure.clear()  # a plain Figure (not pyplot's): clearing frees its artists now, not at GC time
    return written


def seed_manifest(report: RunReport) -> str:
    """Every seed and version that makes the run(s) and the report reproducible."""
    import platform

    import numba
    import numpy
    import scipy

    lines = []
    for manifest in report.manifests:
        spec = manifest.get("spec", {})
        lines += [
            f"run_id: {manifest.get('run_id')}",
            f"spec_hash: {manifest.get('spec_hash')}",
            f"spec_seed: {manifest.get('seed')}",
            f"prompt_selection_seed: {spec.get('prompts', {}).get('seed')}",
            f"load_seed: {spec.get('load', {}).get('seed')}",
            f"suite: {manifest.get('suite')} sha256[:16]={manifest.get('suite_sha256')}",
        ]
        for tier, tier_spec in spec.get("tiers", {}).items():
            lines.append(f"tier {tier}: backend={tier_spec.get('backend')} model={tier_spec.get('model')} "
                         f"max_tokens={tier_spec.get('max_tokens')} "
                         f"constrained_json={tier_spec.get('constrained_json')} temperature=0")
    lines += [
        f"protocol_seed: {report.meta.get('seed')}",
        f"n_resamples: {report.meta.get('n_resamples')}",
        f"tsglab: {__version__}",
        f"python: {platform.python_version()}",
        f"numpy: {numpy.__version__}",
        f"scipy: {scipy.__version__}",
        f"numba: {numba.__version__}",
        f"pandas: {pd.__version__}",
    ]
    try:
        import llama_cpp

        lines.append(f"llama_cpp_python: {llama_cpp.__version__}")
    except ImportError:
        lines.append("llama_cpp_python: not installed")
    return "\n".join(lines) + "\n"


def build_ablation(run_dirs: list[str | os.PathLike], *, write_to: str | os.PathLike | None = None) -> pd.DataFrame:
    """The ablation table over every arm of the given runs (rows named ``run:arm`` when several runs);
    with ``write_to``, also written as ``<write_to>/tables/ablation.{tex,narrow.tex,html,md}``."""
    from tsglab.events import read_events
    from tsglab.report.frame import events_frame

    frames: dict[str, pd.DataFrame] = {}
    for run_dir in map(Path, run_dirs):
        frame = events_frame(read_events(run_dir, check_run=True))
        for arm, part in frame.groupby("arm", sort=False):
            frames[f"{run_dir.name}:{arm}" if len(run_dirs) > 1 else str(arm)] = part
    table = ablation_table(frames)
    if write_to is not None:
        title = "Ablations: cost, routing and latency per arm"
        note = ("Cost: prompt + generation ms summed over all attempts; P50: Harrell–Davis, warm raw E2E; "
                f"P95 CO: HD (KM/SLO-cap under censoring); tsglab {__version__}")
        write_tables(Path(write_to) / "tables", {"ablation": (title, table)}, notes={"ablation": note},
                     label_prefix=label_prefix_for(Path(write_to).resolve().name))
    return table
