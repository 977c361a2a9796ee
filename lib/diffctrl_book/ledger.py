"""The claims ledger and the report card: every judged claim of every results record.

Reads the ``claims`` sections that :class:`diffctrl.repro.Record` writes; prints them
(``diffctrl-book verdicts``), renders the ledger page of the book (grouped by paper, verdict
first, criteria folded; the book's own hypotheses and the checks of our code apart) and the
report card on the opening page (per paper, claims per verdict).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diffctrl.repro.claims import VERDICTS
from diffctrl.repro.tables import _cell, _count, _reason

__all__ = [
    "bib_titles",
    "ledger",
    "ledger_page",
    "ledger_text",
    "rejudge_section",
    "report_card",
]


def ledger(
    folder: str | os.PathLike, order: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Every judged claim of every results record in ``folder``, one row each: notebook,
    profile, seed, key, kind, paper, where, statement, criterion, verdict, per-seed count and
    list, baseline/control and their outcomes, why, diagnosis, evidence, note. Notebooks in
    ``order`` (e.g. the table of contents) come first in that order, the rest by name; files
    that are not results records are skipped."""
    records = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if isinstance(rec, dict) and "values" in rec:
            records[rec.get("notebook", path.stem)] = rec
    rank = {name: i for i, name in enumerate(order or [])}
    rows = []
    for name in sorted(records, key=lambda n: (rank.get(n, len(rank)), n)):
        rec = records[name]
        claims = rec.get("claims") or {}
        keys = [k for k in rec.get("claim_order", []) if k in claims]
        for key in keys + sorted(set(claims) - set(keys)):
            c = claims[key]
            rows.append(
                {
                    "notebook": name,
                    "profile": rec.get("profile"),
                    "seed": rec.get("seed"),
                    "key": key,
                    "kind": c.get("kind", "paper"),
                    "paper": c.get("paper"),
                    "where": c.get("where", ""),
                    "statement": c.get("statement"),
                    "criterion": c.get("criterion"),
                    "verdict": c.get("verdict"),
                    "passes": _count(c),
                    "per_seed": c.get("per_seed"),
                    "baseline": c.get("baseline", ""),
                    "baseline_passes": c.get("baseline_passes"),
                    "no_baseline": c.get("no_baseline", ""),
                    "control": c.get("control", ""),
                    "control_passes": c.get("control_passes"),
                    "no_control": c.get("no_control", ""),
                    "why": c.get("why", ""),
                    "diagnosis": c.get("diagnosis"),
                    "evidence": c.get("evidence", {}),
                    "note": c.get("note", ""),
                }
            )
    return rows


def _counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    return {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}


def ledger_text(rows: Sequence[dict[str, Any]], width: int = 60) -> str:
    """The ledger as a plain-text table, verdict first (what ``diffctrl-book verdicts``
    prints); the last line counts the papers' claims per verdict, then ours and the checks."""
    if not rows:
        return "no judged claims (no results record with claims)"
    yn = {True: "yes", False: "no", None: "—"}
    head = (
        "verdict",
        "notebook",
        "claim",
        "kind",
        "passes",
        "baseline",
        "control",
        "why",
        "seed",
    )
    table = [head] + [
        (
            r["verdict"] or "—",
            r["notebook"],
            r["key"],
            r["kind"],
            r["passes"],
            yn[r["baseline_passes"]],
            yn[r["control_passes"]],
            r["why"] or (r["diagnosis"] or {}).get("cause", ""),
            str(r["seed"]),
        )
        for r in rows
    ]
    widths = [
        min(width, max(len(str(row[i])) for row in table)) for i in range(len(head))
    ]
    lines = [
        "  ".join(str(v)[:w].ljust(w) for v, w in zip(row, widths)).rstrip()
        for row in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    paper = [r for r in rows if r["kind"] == "paper"]
    lines.append("")
    lines.append(
        "papers' claims: "
        + ", ".join(f"{n} {v}" for v, n in _counts(paper).items())
        + f" ({len(paper)}); ours: {sum(r['kind'] == 'ours' for r in rows)}; "
        f"checks: {sum(r['kind'] == 'check' for r in rows)}"
    )
    return "\n".join(lines)


def bib_titles(bib: str) -> dict[str, str]:
    """``{key: short title}`` of the entries of a BibTeX text (title braces dropped)."""
    out = {}
    for m in re.finditer(r"@\w+\s*\{\s*([^,\s]+)\s*,(.*?)\n\}", bib, flags=re.S):
        t = re.search(
            r"\btitle\s*=\s*[{\"](.+?)[}\"]\s*,?\s*\n", m.group(2), flags=re.S
        )
        if t:
            out[m.group(1)] = " ".join(
                t.group(1).replace("{", "").replace("}", "").split()
            )
    return out


def _cite(paper: str, bib_keys: set[str] | None) -> str:
    return (
        f"{{cite:t}}`{paper}`"
        if bib_keys is not None and paper in bib_keys
        else f"`{paper}`"
    )


def _page(r: dict[str, Any]) -> str:
    return f"{{ref}}`{r['notebook']} <{r['notebook']}-verdicts>`"


def _table(rows: Sequence[dict[str, Any]], with_paper: bool = False) -> list[str]:
    head = ["verdict", "claim", "seeds", "why / diagnosis", "page"]
    if with_paper:
        head.insert(2, "paper")
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        claim = _cell(r["statement"]) + (
            f" ({_cell(r['where'])})" if r["where"] else ""
        )
        cells = [
            f"**{r['verdict'] or '—'}**",
            claim,
            r["passes"],
            _cell(_reason(r)),
            _page(r),
        ]
        if with_paper:
            cells.insert(2, f"`{r['paper']}`")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _criteria(rows: Sequence[dict[str, Any]]) -> list[str]:
    yn = {True: "passes", False: "fails", None: ""}
    lines = ["", ":::{dropdown} Criteria, baselines and positive controls", ""]
    for r in rows:
        base = (
            r["baseline"]
            and f"baseline: {_cell(r['baseline'])} ({yn[r['baseline_passes']]})"
        )
        base = base or (r["no_baseline"] and f"no baseline: {_cell(r['no_baseline'])}")
        ctrl = (
            r["control"]
            and f"control: {_cell(r['control'])} ({yn[r['control_passes']]})"
        )
        ctrl = ctrl or (r["no_control"] and f"no control: {_cell(r['no_control'])}")
        extra = "; ".join(x for x in (base, ctrl) if x)
        lines.append(
            f"- **{_cell(r['statement'])}**: {_cell(r['criterion'])}"
            + (f" — {extra}" if extra else "")
        )
    return lines + ["", ":::", ""]


def ledger_page(
    rows: Sequence[dict[str, Any]],
    bib_keys: set[str] | None = None,
    titles: dict[str, str] | None = None,
) -> str:
    """The MyST page of the claims ledger, generated from the records at build time: one
    section per paper (label ``ledger-<paper>``; verdict first; criteria, baselines and
    controls folded), then the book's own hypotheses, then the checks of our code."""
    titles = titles or {}
    profiles = sorted({str(r["profile"]) for r in rows})
    lines = [
        "# Claims ledger",
        "",
        "Every claim this book judges, with the verdict the notebook computed from a criterion "
        "stated before any computation, how many seeds passed, and, for a negative or "
        "inconclusive verdict, why. Only statements located in a paper count toward its "
        "verdicts; the book's own hypotheses and the checks of our implementation are listed "
        "apart. This page is generated from the notebooks' results records when the book is "
        "built (`diffctrl-book verdicts` prints the same rows); nothing on it is typed by hand. "
        'The rows with their evidence are in <a href="../claims.json">claims.json</a>'
        + (f" (profile: {', '.join(profiles)})." if profiles else "."),
        "",
    ]
    if not rows:
        lines.append("No executed notebook has declared a claim yet.")
        return "\n".join(lines) + "\n"
    paper_rows = [r for r in rows if r["kind"] == "paper"]
    for paper in dict.fromkeys(r["paper"] for r in paper_rows):
        sel = [r for r in paper_rows if r["paper"] == paper]
        counts = ", ".join(f"{n} {v}" for v, n in _counts(sel).items() if n)
        lines += [
            f"(ledger-{paper})=",
            f"## {titles.get(paper, paper)}",
            "",
            f"{_cite(paper, bib_keys)}: {counts}.",
            "",
            *_table(sel),
            *_criteria(sel),
        ]
    for kind, title, text in (
        (
            "ours",
            "The book's own hypotheses",
            "Statements the book tests about the papers' methods that the papers do not make; "
            "they do not count toward any paper's verdicts.",
        ),
        (
            "check",
            "Checks of our implementation",
            "Identities our code satisfies by construction, checked to round-off: they test the "
            "implementation, not the papers.",
        ),
    ):
        sel = [r for r in rows if r["kind"] == kind]
        if sel:
            lines += [
                f"(ledger-{kind})=",
                f"## {title}",
                "",
                text,
                "",
                *_table(sel, True),
            ]
            lines += _criteria(sel)
    return "\n".join(lines) + "\n"


def report_card(
    rows: Sequence[dict[str, Any]],
    bib_keys: set[str] | None = None,
    titles: dict[str, str] | None = None,
) -> str:
    """The opening page's report card: per paper, its located claims per verdict, linked to
    its ledger section, and the chapters that judge them."""
    titles = titles or {}
    paper_rows = [r for r in rows if r["kind"] == "paper"]
    if not paper_rows:
        return "No executed notebook has judged a claim yet.\n"
    short = ("confirmed", "with caveat", "not reproduced", "inconclusive")
    lines = [
        "| paper | " + " | ".join(short) + " | judged on |",
        "| --- |" + " ---: |" * len(short) + " --- |",
    ]
    for paper in dict.fromkeys(r["paper"] for r in paper_rows):
        sel = [r for r in paper_rows if r["paper"] == paper]
        n = _counts(sel)
        pages = ", ".join(_page(r) for r in {r["notebook"]: r for r in sel}.values())
        lines.append(
            f"| {_cite(paper, bib_keys)} ({{ref}}`ledger <ledger-{paper}>`) | "
            + " | ".join(str(n[v]) for v in VERDICTS)
            + f" | {pages} |"
        )
    extra = []
    n_ours = sum(r["kind"] == "ours" for r in rows)
    n_check = sum(r["kind"] == "check" for r in rows)
    if n_ours:
        extra.append(f"{n_ours} hypotheses of its own ({{ref}}`ledger-ours`)")
    if n_check:
        extra.append(f"{n_check} checks of its implementation ({{ref}}`ledger-check`)")
    if extra:
        lines += ["", "Besides these, the book tests " + " and ".join(extra) + "."]
    return "\n".join(lines).rstrip() + "\n"


def rejudge_section(
    rejudged: Sequence[dict[str, Any]], book: Sequence[dict[str, Any]]
) -> str:
    """A ledger section comparing verdicts re-judged at other seeds (``execute --set seed=...
    --out DIR``) with the book's verdicts of the same claims, verdict first."""
    if not rejudged:
        return ""
    mine = {(r["notebook"], r["key"]): r for r in book}
    seeds = sorted({str(r["seed"]) for r in rejudged})
    lines = [
        "",
        "## Re-judged at other seeds",
        "",
        f"The same notebooks re-executed at seed {', '.join(seeds)}, which the book does not "
        "use (`diffctrl-book execute --only <name> --set seed=<seed> --out "
        "<folder>`), judged by the same criteria:",
        "",
        "| verdict | the book's verdict | same | claim | seed | passes | page |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rejudged:
        b = mine.get((r["notebook"], r["key"]))
        theirs = b["verdict"] if b else "—"
        same = (
            "—" if b is None else ("yes" if b["verdict"] == r["verdict"] else "**no**")
        )
        lines.append(
            f"| **{r['verdict']}** | {theirs} | {same} | {_cell(r['statement'])} "
            f"| {r['seed']} | {r['passes']} | {_page(r)} |"
        )
    return "\n".join(lines) + "\n"
