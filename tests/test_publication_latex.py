"""The report's LaTeX tables compile unedited with pdflatex, xelatex and lualatex, in a one-column and
a two-column ``article``, with no error and no overfull box: every table file of a real report (a
scripted run with a not-computed arm and LaTeX-hostile text) and the same tables with latencies of
tens of seconds (the widest numbers a real run prints) are ``\\input`` into one document per engine
and layout, after ``tables/preamble.tex``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from _publication_helpers import hostile_report, stretched

from tsglab.report import publish

ENGINES = ("pdflatex", "xelatex", "lualatex")
LAYOUTS = {"onecolumn": r"\documentclass{article}", "twocolumn": r"\documentclass[twocolumn]{article}"}

pytestmark = pytest.mark.skipif(any(shutil.which(e) is None for e in ENGINES),
                                reason="needs pdflatex, xelatex and lualatex (TeX Live)")


def document(documentclass: str, tables: list[Path]) -> str:
    inputs = "\n".join(rf"\input{{{path.as_posix()}}}" + "\n\\clearpage" for path in tables)
    return (f"{documentclass}\n\\input{{tables/preamble.tex}}\n\\begin{{document}}\n"
            f"Text before the tables.\n{inputs}\n\\end{{document}}\n")


def compile_problems(workdir: Path, engine: str, source: str, jobname: str) -> list[str]:
    """Run ``engine`` on ``source`` in ``workdir``; the errors and overfull boxes of its log."""
    (workdir / f"{jobname}.tex").write_text(source, encoding="utf-8")
    proc = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", f"{jobname}.tex"], cwd=workdir,
                          capture_output=True, timeout=120)
    log = (workdir / f"{jobname}.log").read_text(encoding="utf-8", errors="replace")
    problems = [line for line in log.splitlines() if line.startswith("!") or "Overfull \\hbox" in line
                or "Overfull \\vbox" in line]
    if proc.returncode != 0 and not problems:
        problems.append(f"{engine} exited {proc.returncode}: {log[-800:]}")
    return problems


@pytest.fixture(scope="module")
def tables_dir(tmp_path_factory) -> Path:
    """A report's tables/ folder, plus the stretched variant of every table under tables/stretched/."""
    root = tmp_path_factory.mktemp("publication")
    report = hostile_report(root / "runs")
    tables = report.run_dir / "tables"
    # what write_report writes (without its figures, which take most of a report's writing time)
    publish.write_tables(tables, report.tables(), notes=report.notes,
                         label_prefix=publish.label_prefix_for(report.run_dir.name),
                         footnotes=publish.footnotes_from_verdict(report.verdict), page_title="report")
    stretched_tables = {name: (title, stretched(name, frame)) for name, (title, frame) in report.tables().items()}
    publish.write_tables(tables / "stretched", stretched_tables, notes=report.notes,
                         label_prefix="tab:stretched", footnotes=publish.footnotes_from_verdict(report.verdict))
    return tables


def table_files(tables: Path) -> list[Path]:
    return sorted(p.relative_to(tables.parent) for p in tables.rglob("*.tex") if p.name != "preamble.tex")


def test_the_report_writes_both_layouts_and_the_preamble(tables_dir):
    names = {p.name for p in tables_dir.glob("*.tex")}
    assert {"preamble.tex", "headline.tex", "headline.narrow.tex", "p95_views.tex", "family_B.narrow.tex"} <= names
    headline = (tables_dir / "headline.tex").read_text()
    assert r"\label{tab:pub-run-1:headline}" in headline
    for piece in (r"\begin{table*}", r"\toprule", "S[table-format=", "---", r"\tnote{"):
        assert piece in headline
    outcomes = (tables_dir / "outcomes.tex").read_text()
    for piece in (r"\textless{}down\textgreater{}", r"\ensuremath{\alpha}", r"\ensuremath{-}1", r"100\%", "my\\_"):
        assert piece in outcomes
    assert all(ord(c) < 128 for p in tables_dir.rglob("*.tex") for c in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("engine", ENGINES)
def test_every_table_compiles_without_errors_or_overfull_boxes(tables_dir, engine, layout):
    files = table_files(tables_dir)
    assert len(files) >= 2 * 11 * 2  # 11 tables, two layouts, as written and stretched
    problems = compile_problems(tables_dir.parent, engine, document(LAYOUTS[layout], files), f"{engine}-{layout}")
    assert problems == [], f"{engine} {layout}: " + "\n".join(problems[:20])


OLD_RENDER = "3fa4c17:tsglab/report/render.py"  # the hand-written renderer these tables replaced


def test_the_check_fails_on_the_old_renderer(tables_dir, tmp_path):
    """The check can fail: the same report's tables as the old renderer wrote them stop pdflatex (a
    bare Unicode minus or alpha) or overflow the page."""
    import importlib.util

    proc = subprocess.run(["git", "show", OLD_RENDER], cwd=Path(__file__).parents[1], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"git history without {OLD_RENDER} (a shallow clone?)")
    (tmp_path / "old_render.py").write_text(proc.stdout)
    spec = importlib.util.spec_from_file_location("old_render", tmp_path / "old_render.py")
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    report = hostile_report(tmp_path / "runs", run_id="old-render")
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "preamble.tex").write_text(publish.latex_preamble())
    problems = {}
    for name, (title, frame) in report.tables().items():
        (tmp_path / f"{name}.tex").write_text(old.to_latex(frame, title=title, note=report.notes.get(name, ""),
                                                           label=f"tab:{name}"), encoding="utf-8")
        found = compile_problems(tmp_path, "pdflatex", document(LAYOUTS["twocolumn"], [Path(f"{name}.tex")]),
                                 f"doc-{name}")
        if found:
            problems[name] = found[0]
    assert any("Unicode" in p for p in problems.values()), problems
    assert any("Overfull" in p for p in problems.values())
