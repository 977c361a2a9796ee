"""Rows of dicts (one row per method, seed, problem, ...) as a Markdown or HTML table, for the
chapter's notebook (``book/gradient_estimators.md``): the HTML renders in Jupyter and in the
book alike."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["html_table", "markdown_table"]


def _cell(row: dict[str, Any], col: str, formats: dict[str, str]) -> str:
    v = row.get(col, "")
    if isinstance(v, float) and math.isnan(v):
        return "—"
    return (
        format(v, formats[col])
        if col in formats and isinstance(v, (int, float))
        else str(v)
    )


def markdown_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    formats: dict[str, str] | None = None,
) -> str:
    """A Markdown table of ``rows`` (``formats``: column -> format spec, e.g. ``".3g"``)."""
    formats = formats or {}
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [
        "| " + " | ".join(_cell(r, c, formats) for c in columns) + " |" for r in rows
    ]
    return "\n".join(lines)


def html_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    formats: dict[str, str] | None = None,
) -> str:
    """The same table as HTML (renders in Jupyter and in the book alike)."""
    import html

    formats = formats or {}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(_cell(r, c, formats))}</td>" for c in columns)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
