"""Formatting of result tables: fixed digits, LaTeX and HTML, and the three files of a table."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

from filterlens.io.atomic import atomic_output
from filterlens.io.files import write_tsv

# --- writing tables ------------------------------------------------------------------------

def _format(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


def formatted(table: pd.DataFrame, digits: Mapping[str, int] | None = None, default_digits: int = 3) -> pd.DataFrame:
    """Every cell as text: NaN as n/a, integers with thousands separators, floats rounded."""
    digits = digits or {}
    return pd.DataFrame({c: [_format(v, digits.get(c, default_digits)) for v in table[c]] for c in table.columns})


UNIT_DIGITS = {"nats": 3, "%": 2}


def format_by_unit(value, unit: str) -> str:
    """A number as printed in the comparison table: counts as integers, KL to 3, % to 2 digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "filters":
        return f"{int(round(value)):,}"
    return f"{value:.{UNIT_DIGITS.get(unit, 3)}f}"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def to_latex(table: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs ``table`` of text cells (see :func:`formatted`); no jinja2 needed."""
    align = "".join("l" if i == 0 or not _numeric_column(table[c]) else "r" for i, c in enumerate(table.columns))
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{latex_escape(caption)}}}",
             rf"\label{{{label}}}", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(latex_escape(c) for c in table.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(v) for v in row) + r" \\" for row in table.astype(str).itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def _numeric_column(column: pd.Series) -> bool:
    text = column.astype(str).str.replace(",", "").str.replace(" ± ", "").str.replace("n/a", "0")
    return bool(pd.to_numeric(text, errors="coerce").notna().all())


def to_html(table: pd.DataFrame, caption: str) -> str:
    """A standalone HTML page of the table, for the Snakemake report (which shows HTML inline)."""
    body = table.to_html(index=False, border=0, classes="filterlens", na_rep="n/a", escape=True)
    style = ("body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
             "th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
             "th:first-child,td:first-child{text-align:left}caption{text-align:left;margin-bottom:6px}")
    caption = caption.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{caption}</title><style>{style}</style>"
            f"</head><body><p>{caption}</p>\n{body}\n</body></html>\n")


def write_table_files(outputs, table: pd.DataFrame, printed: pd.DataFrame, caption: str, label: str,
                      html_printed: pd.DataFrame | None = None, html_caption: str | None = None) -> None:
    """A result table's three files, ``outputs.tsv``, ``.tex`` and ``.html``: the TSV of numbers
    (``table``), LaTeX and HTML as printed (``printed``, text cells of :func:`formatted`; the
    HTML page may show other columns, ``html_printed``, and another caption)."""
    write_tsv(table, outputs.tsv)
    with atomic_output(outputs.tex) as temporary:
        temporary.write_text(to_latex(printed, caption, label))
    with atomic_output(outputs.html) as temporary:
        temporary.write_text(to_html(printed if html_printed is None else html_printed,
                                     caption if html_caption is None else html_caption))
