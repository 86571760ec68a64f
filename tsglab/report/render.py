"""Plain table rendering to Markdown, LaTeX (booktabs) and HTML, with a note line under each table."""

from __future__ import annotations

import html
import math

import pandas as pd


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def _rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = [str(c) for c in frame.columns]
    return header, [[_cell(v) for v in row] for row in frame.itertuples(index=False)]


def to_markdown(frame: pd.DataFrame, *, title: str = "", note: str = "") -> str:
    header, rows = _rows(frame)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    if note:
        lines += ["", f"_{note}_"]
    return "\n".join(lines) + "\n"


_LATEX_ESCAPE = str.maketrans({"&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$", "~": r"\~{}",
                               "^": r"\^{}", "{": r"\{", "}": r"\}", "\\": r"\textbackslash{}"})


def to_latex(frame: pd.DataFrame, *, title: str = "", note: str = "", label: str = "") -> str:
    header, rows = _rows(frame)
    esc = [[c.translate(_LATEX_ESCAPE).replace("–", "--") for c in r] for r in rows]
    lines = [r"\begin{table}[t]", r"\centering", r"\small"]
    if title:
        lines.append(rf"\caption{{{title.translate(_LATEX_ESCAPE)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}")
    lines += [r"\toprule", " & ".join(h.translate(_LATEX_ESCAPE) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in esc]
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    if note:
        lines.append(rf"\par\smallskip\footnotesize {note.translate(_LATEX_ESCAPE)}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_html(frame: pd.DataFrame, *, title: str = "", note: str = "") -> str:
    header, rows = _rows(frame)
    parts = [f"<h3>{html.escape(title)}</h3>"] if title else []
    parts.append("<table class='tsglab'><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)
                 + "</tr></thead><tbody>")
    parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
    parts.append("</tbody></table>")
    if note:
        parts.append(f"<p><em>{html.escape(note)}</em></p>")
    return "\n".join(parts) + "\n"
