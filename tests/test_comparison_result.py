"""tsglab.compare returns a ComparisonResult: the table, a one-line repr, HTML/Markdown/LaTeX in the
publication formats, and the report's figures over every variant/arm."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from tsglab.comparison import ComparisonResult, run_comparison
from tsglab.errors import InvalidArgument

FIXTURE = Path(__file__).parent / "fixtures" / "notebooks" / "comparison.yaml"


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> ComparisonResult:
    runs = tmp_path_factory.mktemp("cmp")
    return run_comparison(FIXTURE, runs_dir=runs, comparison_id="cmp-1", progress=False)


def test_table_is_the_written_csv(result):
    written = pd.read_csv(result.directory / "comparison.csv")
    assert list(written["variant"]) == list(result.to_frame()["variant"])
    assert set(result.run_dirs) == {"scripted-a", "scripted-b"}
    assert len(result.table) == 4  # two variants x two arms


def test_repr_is_one_line_and_str_the_markdown(result):
    assert "\n" not in repr(result)
    assert "nb-compare" in repr(result)
    assert "2 variant(s)" in repr(result)
    assert str(result) == result.to_markdown()
    assert "---:|" in str(result)


def test_html_and_latex(result, tmp_path):
    page = result._repr_html_()
    assert "<table" in page
    assert "scripted-a" in page
    assert "NaN" not in page
    text = result.to_latex(tmp_path / "c.tex")
    assert (tmp_path / "c.tex").read_text(encoding="utf-8") == text
    assert re.findall(r"\\label\{([^}]*)\}", text) == ["tab:nb-compare:comparison"]
    written = (result.directory / "comparison.tex").read_text(encoding="utf-8")
    assert "\\label{tab:cmp-1:comparison}" in written
    assert (result.directory / "comparison.narrow.tex").is_file()


def test_frames_cover_every_variant_and_arm(result):
    frames = result.frames()
    assert set(frames) == {f"{v}/{a}" for v in ("scripted-a", "scripted-b") for a in ("baseline", "tsg")}
    assert sum(len(f) for f in frames.values()) == int(result.table["n"].sum())


@pytest.mark.parametrize("kind", ["p95_views", "latency_ecdf"])
def test_plot(result, kind):
    figure = result.plot(kind, size="column")
    assert isinstance(figure, Figure)
    with pytest.raises(InvalidArgument, match="no figure"):
        result.plot("bars")
