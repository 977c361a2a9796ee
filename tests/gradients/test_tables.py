"""Rows of dicts as Markdown and HTML tables: formats, missing values, escaping."""

import torch

from diffctrl.gradients.tables import html_table, markdown_table

F64 = torch.float64


def test_markdown_and_html_tables():
    rows = [dict(a=1, b=0.123456, c="x<y"), dict(a=2, b=float("nan"), c="z")]
    md = markdown_table(rows, ["a", "b"], {"b": ".2g"})
    assert md.splitlines() == ["| a | b |", "|---|---|", "| 1 | 0.12 |", "| 2 | — |"]
    h = html_table(rows, ["a", "c"])
    assert h.count("<tr>") == 3 and "x&lt;y" in h
