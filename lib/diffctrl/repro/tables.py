"""The tables a notebook page shows of its claims: declared (before computing) and judged.

:func:`claims_table` is the output of a page's claims cell (claim and where the paper states
it, whose claim, criterion, the baseline that must fail and the control that must pass);
:class:`VerdictTable` is the page's closing table (verdict first, then the claim, seeds
passing, the reason of an inconclusive verdict and the diagnosis of a negative one; checks of
our implementation last). :func:`findings_sentence` is the page's one-line finding, glued as
``findings`` by :meth:`diffctrl.repro.Record.save`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from .claims import CAUSES, VERDICTS, WHY, Claim

__all__ = [
    "ClaimsTable",
    "VerdictTable",
    "claims_table",
    "findings_sentence",
    "verdict_html",
    "verdict_markdown",
]

WHOSE = {"paper": "the paper's", "ours": "ours", "check": "check of our code"}


def _cell(text: Any) -> str:
    """``text`` safe inside one Markdown table cell (pipes escaped, one line)."""
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _html_cell(text: Any) -> str:
    out = html.escape(" ".join(str(text or "").split()))
    return re.sub(r"\$([^$]+)\$", r"\\(\1\\)", out)


def _count(c: dict[str, Any]) -> str:
    seeds = c.get("per_seed")
    if not seeds:
        return "—"
    return f"{sum(bool(s) for s in seeds)}/{len(seeds)}"


def _reason(c: dict[str, Any]) -> str:
    """Why an inconclusive verdict, and the diagnosis of a negative one, in words."""
    parts = []
    if c.get("why"):
        parts.append(WHY.get(c["why"], c["why"]))
    d = c.get("diagnosis")
    if d:
        parts.append(f"{CAUSES.get(d['cause'], d['cause'])}: {d['detail']}")
    return "; ".join(parts) or "—"


def _ordered(claims: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Paper's claims, then ours, then checks (declaration order within each)."""
    rank = {"paper": 0, "ours": 1, "check": 2}
    return sorted(claims.values(), key=lambda c: rank.get(c.get("kind", "paper"), 0))


def _verdict_rows(claims: dict[str, dict[str, Any]]) -> list[tuple[str, ...]]:
    rows = []
    for c in _ordered(claims):
        kind = c.get("kind", "paper")
        verdict = c.get("verdict", "—")
        if kind == "check":
            verdict = (
                "check passes" if verdict in ("confirmed",) else f"check: {verdict}"
            )
        rows.append(
            (verdict, c["statement"], WHOSE.get(kind, kind), _count(c), _reason(c))
        )
    return rows


VERDICT_HEAD = ("verdict", "claim", "whose", "seeds passing", "why / diagnosis")


def verdict_markdown(claims: dict[str, dict[str, Any]]) -> str:
    """A Markdown table of one record's judged claims, verdict first."""
    lines = ["| " + " | ".join(VERDICT_HEAD) + " |", "|" + " --- |" * len(VERDICT_HEAD)]
    for v, *rest in _verdict_rows(claims):
        lines.append(f"| **{_cell(v)}** | " + " | ".join(_cell(x) for x in rest) + " |")
    return "\n".join(lines)


def verdict_html(claims: dict[str, dict[str, Any]]) -> str:
    """The same table as :func:`verdict_markdown` in HTML (what a prose page pastes with
    ``{glue:any}``); inline ``$...$`` math becomes ``\\(...\\)`` for MathJax."""
    head = "".join(f"<th>{h}</th>" for h in VERDICT_HEAD)
    rows = []
    for v, *rest in _verdict_rows(claims):
        cells = [f"<strong>{html.escape(v)}</strong>"] + [_html_cell(x) for x in rest]
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    return (
        f'<table class="table verdicts"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


class VerdictTable:
    """A verdict table with a Markdown and an HTML representation (both glued)."""

    def __init__(self, claims: dict[str, dict[str, Any]]):
        self.claims = claims

    def _repr_markdown_(self) -> str:
        return verdict_markdown(self.claims)

    def _repr_html_(self) -> str:
        return verdict_html(self.claims)


class ClaimsTable:
    """The declared claims of a notebook as a table, shown at the top of its page before
    anything is computed: claim (and where the paper states it), whose, criterion, the baseline
    that must fail it and the positive control that must pass it."""

    HEAD = (
        "claim",
        "whose",
        "criterion",
        "baseline (must fail)",
        "control (must pass)",
    )

    def __init__(self, claims: Sequence[Claim]):
        for c in claims:
            if not isinstance(c, Claim):
                raise TypeError(
                    f"claims must hold Claim objects, got {type(c).__name__}"
                )
        self.claims = list(claims)

    def _rows(self) -> list[tuple[str, ...]]:
        rank = {"paper": 0, "ours": 1, "check": 2}
        return [
            (
                f"{c.statement} ({c.where})" if c.where else c.statement,
                WHOSE[c.kind],
                c.criterion,
                c.baseline or (f"none: {c.no_baseline}" if c.no_baseline else "—"),
                c.control or (f"none: {c.no_control}" if c.no_control else "—"),
            )
            for c in sorted(self.claims, key=lambda c: rank[c.kind])
        ]

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(self.HEAD) + " |", "|" + " --- |" * len(self.HEAD)]
        lines += [
            "| " + " | ".join(_cell(x) for x in row) + " |" for row in self._rows()
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in self.HEAD)
        rows = "".join(
            "<tr>" + "".join(f"<td>{_html_cell(x)}</td>" for x in row) + "</tr>"
            for row in self._rows()
        )
        return (
            f'<table class="table claims"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )


def claims_table(claims: Sequence[Claim]) -> ClaimsTable:
    """The table a notebook page shows of its declared ``CLAIMS``: the output of its claims
    cell, which ends::

        CLAIMS = [Claim(...), ...]
        claims_table(CLAIMS)
    """
    return ClaimsTable(claims)


def findings_sentence(claims: dict[str, dict[str, Any]]) -> str:
    """One line of what a page found, e.g. "Of the paper's 5 claims: 3 confirmed, 1 not
    reproduced (our setting differs), 1 inconclusive (the baseline passes too); 1 hypothesis of
    ours confirmed; 2 checks of our code pass." (glued as ``findings``)."""

    def counts(rows):
        out = []
        for v in VERDICTS:
            sel = [c for c in rows if c.get("verdict") == v]
            if not sel:
                continue
            reasons = sorted(
                {
                    WHY[c["why"]]
                    if c.get("why")
                    else CAUSES.get((c.get("diagnosis") or {}).get("cause", ""), "")
                    for c in sel
                }
                - {""}
            )
            why = f" ({'; '.join(reasons)})" if v != "confirmed" and reasons else ""
            out.append(f"{len(sel)} {v}{why}")
        return ", ".join(out)

    by = {k: [c for c in claims.values() if c.get("kind", "paper") == k] for k in WHOSE}
    parts = []
    if by["paper"]:
        n = len(by["paper"])
        parts.append(f"of the paper's {n} claim{'s' * (n != 1)}: {counts(by['paper'])}")
    if by["ours"]:
        n = len(by["ours"])
        parts.append(
            f"of our {n} hypothes{'es' if n != 1 else 'is'}: {counts(by['ours'])}"
        )
    if by["check"]:
        ok = sum(c.get("verdict") == "confirmed" for c in by["check"])
        n = len(by["check"])
        parts.append(f"{ok} of {n} check{'s' * (n != 1)} of our code pass")
    if not parts:
        return "No claims judged on this page."
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]
