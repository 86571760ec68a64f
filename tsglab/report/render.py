"""Frame-first shortcuts to :mod:`tsglab.report.publish`, which owns how every table looks.

For callers that render a table with no name of its own (the framework comparison, the legacy
import, the CLI's ad-hoc tables): each column gets a humanised header and the precision its name and
dtype suggest. Report tables go through :mod:`tsglab.report.publish` with their name, so their
description (headers with units, merged intervals, footnotes) applies.
"""

from __future__ import annotations

import pandas as pd

from tsglab.report import publish

__all__ = ["to_html", "to_latex", "to_markdown"]


def to_markdown(frame: pd.DataFrame, *, title: str = "", note: str = "") -> str:
    return publish.to_markdown("", frame, title=title, note=note)


def to_latex(frame: pd.DataFrame, *, title: str = "", note: str = "", label: str = "tab:table") -> str:
    """A ``table*`` float (a one-column page wide; both columns of a two-column paper) labelled ``label``."""
    prefix, _, name = label.rpartition(":")
    return publish.to_latex(name, frame, title=title, note=note, label_prefix=prefix or "tab", layout="table*")


def to_html(frame: pd.DataFrame, *, title: str = "", note: str = "") -> str:
    return publish.to_html("", frame, title=title, note=note)
