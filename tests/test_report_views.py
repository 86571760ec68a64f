"""RunReport in a notebook: the HTML view (verdict banner, figures inline, styled tables), plot(),
to_latex(path) with a per-report label prefix, to_markdown()."""

from __future__ import annotations

import re

import pytest
from _rundir_helpers import write_spec
from matplotlib.figure import Figure

import tsglab
from tsglab.errors import InvalidArgument
from tsglab.report.figures import FIGURES


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("views")
    result = tsglab.run(write_spec(folder, name="views", limit=6), runs_dir=folder / "runs", run_id="views-1",
                        progress=False)
    return result.report(write=False)


def test_html_view_has_banner_figures_and_every_table(report):
    page = report._repr_html_()
    state = "pass" if report.verdict["overall"] else "fail"
    banner = re.search(r"class='tsglab-verdict tsglab-verdict-(\w+)'", page)
    assert banner is not None
    # a pass with no caveat is green, a fail red; caveats (underpowered, not computable...) make it amber
    assert banner.group(1) in ({state, "warn"} if state == "pass" else {"fail"})
    assert page.count("<svg") == 2  # the P95-views and cost-quality figures, inline
    for title, _frame in report.tables().values():
        assert title.split(":")[0] in page
    assert "NaN" not in page


def test_banner_follows_the_verdict(report):
    import dataclasses

    failed = dataclasses.replace(report, verdict={**report.verdict, "overall": False})
    assert "tsglab-verdict-fail" in failed.verdict_banner_html()
    clean = {"overall": True, "family_A": True, "family_B": True, "family_C": True}
    passed = dataclasses.replace(report, verdict=clean, routing_warnings=(), outcomes=report.outcomes.iloc[0:0])
    assert "tsglab-verdict-pass" in passed.verdict_banner_html()


@pytest.mark.parametrize("kind", list(FIGURES))
def test_plot_every_kind(report, kind):
    figure = report.plot(kind, size="column")
    assert figure is None or isinstance(figure, Figure)
    if figure is not None:
        assert figure.get_size_inches()[0] == pytest.approx(3.5, abs=0.05)


def test_plot_refuses_unknown_kind_and_size(report):
    with pytest.raises(InvalidArgument, match="p95_views"):
        report.plot("histogram")
    with pytest.raises(InvalidArgument, match="column"):
        report.plot("p95_views", size="poster")


def test_to_latex_writes_labelled_tables(report, tmp_path):
    out = tmp_path / "report.tex"
    text = report.to_latex(out)
    assert out.read_text(encoding="utf-8") == text
    labels = re.findall(r"\\label\{([^}]*)\}", text)
    assert len(labels) == len(report.tables())
    assert all(label.startswith("tab:views-1:") for label in labels)
    assert len(set(labels)) == len(labels)
    other = report.to_latex(label_prefix="tab:other", tables=("headline",), layout="narrow")
    assert re.findall(r"\\label\{([^}]*)\}", other) == ["tab:other:headline:narrow"]
    with pytest.raises(InvalidArgument, match="no table"):
        report.to_latex(tables=("nonsense",))


def test_to_markdown_right_aligns_numbers(report):
    text = report.to_markdown()
    assert "---:|" in text
    assert "_P50" not in text  # notes are plain paragraphs, not a literal _..._
    assert str(report).endswith(text) or text in str(report)
