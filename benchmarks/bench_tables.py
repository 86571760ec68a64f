"""Which generator writes the report's tables? pandas ``Styler``, great_tables, or tsglab's own.

On the tables of one real report (a scripted run, no model: its baseline arm never answers, so cells
are not computed, and an error message holds ``< > − α & % _``), each candidate writes every table's
LaTeX; each engine (pdflatex, xelatex, lualatex) compiles all of them, one document per table, in a
two-column ``article`` (the harder layout: a table float is one column wide there, a ``table*``
both). Counted per candidate and engine: documents that stop with an error, and overfull boxes.
Also listed: the features the report needs that the candidate offers natively (siunitx ``S``
columns, an estimate and its CI in one cell, a footnote per empty cell, a label, ``table*``), and
the time to write the table set (LaTeX + HTML), median of ``--repeat`` runs.

Each candidate gets what a user would write without hand-made LaTeX: ``Styler.format(precision=3,
na_rep="—", escape="latex")`` + ``to_latex(hrules=True, siunitx=True, environment="table*", label=..., caption=...)``;
``GT(...).fmt_number(decimals=3).sub_missing("—").tab_source_note(note).as_latex()``; tsglab
``publish.to_latex(name, frame, layout="table*")`` (and ``layout="narrow"`` for one column).

Run: ``python benchmarks/bench_tables.py`` (about a minute on 2 cores); ``--write`` stores the
table in ``benchmarks/results/tables.md``. ``--quick`` (CI): pdflatex only, three tables, one repeat.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "tables.md"
ENGINES = ("pdflatex", "xelatex", "lualatex")
HOSTILE = "enh <down> −1 α & 100% my_model"
PREAMBLE = r"""\documentclass[twocolumn]{article}
\input{preamble.tex}
\usepackage{longtable}
\usepackage{caption}
\begin{document}
"""


def report_tables(workdir: Path) -> tuple[dict[str, tuple[str, pd.DataFrame]], dict[str, str], dict]:
    """The tables, notes and footnotes of a real report of a small scripted run."""
    from tsglab.config import spec_from_dict
    from tsglab.load.runner import run_experiment
    from tsglab.report import ProtocolSettings, build_report
    from tsglab.report.publish import footnotes_from_verdict

    tier = {"backend": "scripted", "options": {"reply": "The answer is 42, positive.",
                                               "replies": {"JSON": '{"answer": 42}'}}}
    spec = spec_from_dict({
        "name": "bench-tables", "prompts": {"tasks": ["json", "open"], "limit": 12, "seed": 1},
        "arms": {"baseline": {"kind": "baseline"}, "tsg": {}}, "energy": {"meter": "none"},
        "tiers": {"light": tier, "std": tier, "enh": {"backend": "scripted", "options": {"error": "backend_error"}}},
        "load": {"mode": "paced", "period_ms": 0, "timeout_s": 5, "warmup_count": 1}})
    run_dir = run_experiment(spec, runs_dir=workdir, run_id="bench-tables", progress=False).run_dir
    report = build_report(run_dir, settings=ProtocolSettings(n_resamples=100, seed=1), write=False)
    tables = dict(report.tables())
    outcomes = tables["outcomes"][1].copy()
    outcomes["example"] = HOSTILE  # the characters a real error message may hold
    tables["outcomes"] = (tables["outcomes"][0], outcomes)
    return tables, dict(report.notes), footnotes_from_verdict(report.verdict)


def styler_latex(name: str, title: str, frame: pd.DataFrame, note: str) -> str:
    styler = frame.style.format(precision=3, na_rep="—", escape="latex").format_index(escape="latex", axis=1)
    styler = styler.hide(axis="index")
    return styler.to_latex(hrules=True, siunitx=True, environment="table*", caption=title,
                           label=f"tab:bench:{name}", position="tbp")


def styler_html(frame: pd.DataFrame, title: str) -> str:
    return frame.style.format(precision=3, na_rep="—").hide(axis="index").set_caption(title).to_html()


def gt_table(frame: pd.DataFrame, title: str, note: str):
    from great_tables import GT

    numbers = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    table = GT(frame).tab_header(title=title).sub_missing(missing_text="—")
    if numbers:
        table = table.fmt_number(columns=numbers, decimals=3)
    return table.tab_source_note(note) if note else table


def gt_latex(name: str, title: str, frame: pd.DataFrame, note: str) -> str:
    return gt_table(frame, title, note).as_latex()


def tsglab_latex(name: str, title: str, frame: pd.DataFrame, note: str, footnotes=None) -> str:
    from tsglab.report import publish

    return "\n".join(publish.to_latex(name, frame, title=title, note=note, footnotes=footnotes,
                                      label_prefix="tab:bench", layout=layout) for layout in ("table*", "narrow"))


CANDIDATES = {"pandas Styler": styler_latex, "great_tables": gt_latex, "tsglab publish": tsglab_latex}

# what each candidate offers without hand-made LaTeX (checked against its output below where it can be)
NATIVE = {
    "pandas Styler": {"siunitx S": "yes", "estimate [CI] cell": "no (one value per cell)",
                      "footnote per empty cell": "no",
                      "label": "yes", "table*": "yes (environment=)"},
    "great_tables": {"siunitx S": "no", "estimate [CI] cell": "yes (cols_merge, as text; NA pieces)",
                     "footnote per empty cell": "no (as_latex raises NotImplementedError)",
                     "label": "no (as_latex(use_longtable, tbl_pos) only)", "table*": "no"},
    "tsglab publish": {"siunitx S": "yes", "estimate [CI] cell": "yes (S + l column)",
                       "footnote per empty cell": "yes (\\tnote)", "label": "yes (per-report prefix)",
                       "table*": "yes (+ narrow)"},
}


def compile_counts(engine: str, workdir: Path, bodies: dict[str, str]) -> tuple[int, int]:
    """(documents stopped by an error, overfull boxes) over one document per table."""
    errors = overfull = 0
    for name, body in bodies.items():
        source = workdir / f"{name}.tex"
        source.write_text(PREAMBLE + body + "\n\\end{document}\n", encoding="utf-8")
        proc = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", source.name], cwd=workdir,
                              capture_output=True, timeout=120)
        log = (workdir / f"{name}.log").read_text(encoding="utf-8", errors="replace")
        errors += proc.returncode != 0
        overfull += log.count("Overfull \\hbox") + log.count("Overfull \\vbox")
    return errors, overfull


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pdflatex only, three tables, one repeat (CI)")
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats (median)")
    parser.add_argument("--write", action="store_true", help=f"store the table in {RESULTS}")
    args = parser.parse_args(argv)
    engines = [e for e in (ENGINES[:1] if args.quick else ENGINES) if shutil.which(e)]
    repeat = 1 if args.quick else args.repeat
    from tsglab.report import publish

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tables, notes, footnotes = report_tables(work / "runs")
        if args.quick:
            tables = {name: tables[name] for name in ("headline", "p95_views", "outcomes")}
        print(f"{len(tables)} tables of one scripted report; engines: {', '.join(engines) or 'none found'}")
        (work / "preamble.tex").write_text(publish.latex_preamble())
        rows = []
        for candidate, make in CANDIDATES.items():
            started = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                bodies = {}
                for name, (title, frame) in tables.items():
                    extra = {"footnotes": footnotes.get(name)} if candidate == "tsglab publish" else {}
                    bodies[name] = make(name, title, frame, notes.get(name, ""), **extra)
                    if candidate == "pandas Styler":
                        styler_html(frame, title)
                    elif candidate == "great_tables":
                        gt_table(frame, title, notes.get(name, "")).as_raw_html()
                    else:
                        publish.to_html(name, frame, title=title, note=notes.get(name, ""))
                started.append(time.perf_counter() - t0)
            row = {"candidate": candidate, "ms per table set": round(statistics.median(started) * 1e3, 1)}
            for engine in engines:
                folder = work / candidate.replace(" ", "_") / engine
                folder.mkdir(parents=True)
                (folder / "preamble.tex").write_text(publish.latex_preamble())
                errors, overfull = compile_counts(engine, folder, bodies)
                row[f"{engine} errors/overfull"] = f"{errors}/{overfull} of {len(bodies)}"
            row.update(NATIVE[candidate])
            found = any(re.search(r"\\begin\{tabular\*?\}(\{[^}]*\})?\{[^}]*S", b) for b in bodies.values())
            row["siunitx S"] += " (S column found)" if found else " (no S column in its output)"
            rows.append(row)
    table = pd.DataFrame(rows)
    shown = publish.to_markdown("bench_tables", table)  # tsglab's own Markdown tables (no tabulate needed)
    print(shown)
    clean = [r["candidate"] for r in rows if all(v.startswith("0/0") for k, v in r.items() if "errors" in k)]
    verdict = (f"Verdict: {', '.join(clean)} compiles clean with {', '.join(engines)}; "
               "only tsglab publish offers every required feature." if clean else "Verdict: no candidate is clean.")
    print(verdict)
    if args.write and not args.quick:
        RESULTS.write_text("# Table generators measured (benchmarks/bench_tables.py)\n\n"
                           + shown
                           + f"\n\n{verdict}\n\nCounts: documents stopped by an error / overfull boxes, one "
                           "document per table in a two-column article. Time: writing every table's LaTeX and "
                           f"HTML, median of {repeat} runs, on {platform.node() or 'this machine'} "
                           f"({os.cpu_count()} cores, shared).\n", encoding="utf-8")
        print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
