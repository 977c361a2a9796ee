"""The claims ledger: every judged claim of every results record, as a table and a page.

Reads the ``claims`` sections that :class:`diffctrl.repro.Record` writes; prints them
(``diffctrl-book verdicts``) and renders the ledger page of the book.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diffctrl.repro.claims import VERDICTS, _cell, _count

__all__ = ["ledger", "ledger_page", "ledger_text", "rejudge_section"]


def ledger(
    folder: str | os.PathLike, order: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Every judged claim of every results record in ``folder``, one row each: notebook,
    profile, seed, key, paper, where, statement, criterion, verdict, per-seed count and list,
    baseline and its outcome, evidence, note. Notebooks in ``order`` (e.g. the table of
    contents) come first in that order, the rest by name; files that are not results records
    are skipped."""
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
        for key, c in (rec.get("claims") or {}).items():
            rows.append(
                {
                    "notebook": name,
                    "profile": rec.get("profile"),
                    "seed": rec.get("seed"),
                    "key": key,
                    "paper": c.get("paper"),
                    "where": c.get("where", ""),
                    "statement": c.get("statement"),
                    "criterion": c.get("criterion"),
                    "verdict": c.get("verdict"),
                    "passes": _count(c),
                    "per_seed": c.get("per_seed"),
                    "baseline": c.get("baseline", ""),
                    "baseline_passes": c.get("baseline_passes"),
                    "evidence": c.get("evidence", {}),
                    "note": c.get("note", ""),
                }
            )
    return rows


def ledger_text(rows: Sequence[dict[str, Any]], width: int = 60) -> str:
    """The ledger as a plain-text table (what ``diffctrl-book verdicts`` prints)."""
    if not rows:
        return "no judged claims (no results record with claims)"
    head = (
        "notebook",
        "claim",
        "verdict",
        "passes",
        "baseline passes",
        "profile",
        "seed",
    )
    table = [head] + [
        (
            r["notebook"],
            r["key"],
            r["verdict"] or "—",
            r["passes"],
            {True: "yes", False: "no", None: "—"}[r["baseline_passes"]],
            str(r["profile"]),
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
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    lines.append("")
    lines.append(
        ", ".join(f"{n} {v}" for v, n in counts.items()) + f" ({len(rows)} claims)"
    )
    return "\n".join(lines)


def ledger_page(
    rows: Sequence[dict[str, Any]], bib_keys: set[str] | None = None
) -> str:
    """The MyST page of the claims ledger, generated from the records at build time."""
    profiles = sorted({str(r["profile"]) for r in rows})
    lines = [
        "# Claims ledger",
        "",
        "Every claim of the papers this book judges, with the criterion stated before any "
        "computation, the verdict the notebook computed and, where the verdict is decided over "
        "seeds, how many passed. This page is generated from the notebooks' results records when "
        "the book is built (`diffctrl-book verdicts` prints the same table); "
        "nothing on it is typed by hand. The same rows, with the evidence, are in "
        '<a href="../claims.json">claims.json</a>'
        + (f" (profile: {', '.join(profiles)})." if profiles else "."),
        "",
    ]
    if not rows:
        lines.append("No executed notebook has declared a claim yet.")
        return "\n".join(lines) + "\n"
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    lines += [
        "Verdicts: " + ", ".join(f"{v} {n}" for v, n in counts.items() if n) + ".",
        "",
    ]
    lines += [
        "| paper | claim | where in the book | criterion | verdict | passes | baseline |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        paper = r["paper"] or ""
        cite = (
            f"{{cite:t}}`{paper}`"
            if bib_keys is not None and paper in bib_keys
            else f"`{paper}`"
        )
        if r["where"]:
            cite += f", {_cell(r['where'])}"
        base = {True: "passes too", False: "fails", None: "—"}[r["baseline_passes"]]
        if r["baseline"]:
            base = f"{_cell(r['baseline'])}: {base}"
        lines.append(
            f"| {cite} | {_cell(r['statement'])} "
            f"| {{doc}}`/notebooks/{r['notebook']}` | {_cell(r['criterion'])} "
            f"| **{r['verdict'] or '—'}** | {r['passes']} | {base} |"
        )
    return "\n".join(lines) + "\n"


def rejudge_section(
    rejudged: Sequence[dict[str, Any]], book: Sequence[dict[str, Any]]
) -> str:
    """A ledger section comparing verdicts re-judged at other seeds (``execute --set seed=...
    --out DIR``) with the book's verdicts of the same claims."""
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
        "| notebook | claim | seed | verdict | passes | the book's verdict | same |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rejudged:
        b = mine.get((r["notebook"], r["key"]))
        theirs = b["verdict"] if b else "—"
        same = (
            "—" if b is None else ("yes" if b["verdict"] == r["verdict"] else "**no**")
        )
        lines.append(
            f"| {{doc}}`/notebooks/{r['notebook']}` | {_cell(r['statement'])} "
            f"| {r['seed']} | **{r['verdict']}** | {r['passes']} | {theirs} | {same} |"
        )
    return "\n".join(lines) + "\n"
