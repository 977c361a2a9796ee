"""Claims and verdicts: the criterion is declared before computing, the verdict is computed.

A notebook declares every claim it judges in one ``CLAIMS`` list right after its profiles::

    CLAIMS = [
        Claim("acf_ar1", paper="cao2026adaptive", where="Sec. 5.1",
              statement="the sequential sampler reproduces the AR(1) autocorrelation",
              criterion="|acf1 - phi| < 0.05 for at least 2 of 3 seeds",
              baseline="an untrained network"),
    ]
    rec.declare(CLAIMS)

and, once the evidence is computed, records one verdict per claim (:func:`judge` counts the
per-seed outcomes and makes a positive verdict ``inconclusive`` where the baseline passes
too)::

    verdict, base = judge(passes, baseline_passes_per_seed)
    rec.verdict("acf_ar1", verdict, evidence={...}, per_seed=passes, baseline_passes=base)

:meth:`diffctrl.results.Record.verdict` refuses a positive verdict whose baseline passes the
same criterion (such a criterion decides nothing), a verdict for an undeclared claim, and
:meth:`~diffctrl.results.Record.save` refuses a record with a declared claim left unjudged. The
records' ``claims`` sections feed the claims ledger (:func:`ledger`, ``python -m
diffctrl.pipeline verdicts``).
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

VERDICTS = ("confirmed", "confirmed with caveat", "not reproduced", "inconclusive")
POSITIVE = ("confirmed", "confirmed with caveat")


@dataclass(frozen=True)
class Claim:
    """One claim of a paper and the rule that decides it (stated before any computation).

    ``paper`` is the key of ``book/references.bib``; ``where`` the paper's section or figure;
    ``baseline`` names what the same criterion is also applied to (untrained model, zero
    iterations, the unperturbed chain) so that a criterion that decides nothing shows.
    """

    key: str
    paper: str
    statement: str
    criterion: str
    where: str = ""
    baseline: str = ""

    def __post_init__(self):
        if not self.key or not self.key.replace("_", "").isalnum():
            raise ValueError(
                f"claim key must be letters, digits and '_', got {self.key!r}"
            )
        for name in ("paper", "statement", "criterion"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"claim {self.key!r}: {name} must not be empty")

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check_verdict(verdict: str) -> str:
    """``verdict`` if it is one of ``VERDICTS``, else a ValueError naming the choices."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    return verdict


def count_verdict(
    passes: Sequence[bool], need: float = 1.0, caveat_need: float = 0.5
) -> str:
    """Verdict from per-seed (or per-setting) outcomes of one criterion.

    ``confirmed`` when a share >= ``need`` passes, ``confirmed with caveat`` when a share >=
    ``caveat_need`` does, ``not reproduced`` when none does, ``inconclusive`` in between.
    """
    passes = [bool(p) for p in passes]
    if not passes:
        raise ValueError("passes must hold at least one outcome")
    if not 0 < caveat_need <= need <= 1:
        raise ValueError(
            f"need 0 < caveat_need <= need <= 1, got {caveat_need}, {need}"
        )
    share = sum(passes) / len(passes)
    if share >= need:
        return "confirmed"
    if share >= caveat_need:
        return "confirmed with caveat"
    return "not reproduced" if share == 0 else "inconclusive"


def judge(
    passes: Sequence[bool],
    baseline: bool | Sequence[bool] | None = None,
    *,
    need: float = 1.0,
    caveat_need: float = 0.5,
) -> tuple[str, bool | None]:
    """``(verdict, baseline_passes)`` of one claim: :func:`count_verdict` of ``passes``, made
    ``"inconclusive"`` where it would be positive (``POSITIVE``) and the baseline passes the
    same criterion too (the criterion does not separate the method from its baseline).

    ``baseline``: whether the claim's baseline passes (one bool), or its per-seed outcomes
    under the same criterion (it passes when :func:`count_verdict` of them, with the same
    ``need`` and ``caveat_need``, is positive), or ``None`` where the claim has no baseline
    (``baseline_passes`` is then ``None``). A negative verdict stays as it is. The pair is what
    :meth:`diffctrl.results.Record.verdict` takes as ``verdict`` and ``baseline_passes``::

        verdict, base = judge(passes, baseline_passes_per_seed)
        rec.verdict(key, verdict, evidence={...}, per_seed=passes, baseline_passes=base)
    """
    verdict = count_verdict(passes, need, caveat_need)
    if baseline is None:
        return verdict, None
    if isinstance(baseline, (str, bytes)):
        raise TypeError(
            f"baseline must be a bool or per-seed outcomes, got {baseline!r}"
        )
    try:
        outcomes = list(baseline)  # type: ignore[arg-type]
    except TypeError:  # one outcome (bool, numpy bool)
        base = bool(baseline)
    else:
        base = count_verdict(outcomes, need, caveat_need) in POSITIVE
    if base and verdict in POSITIVE:
        verdict = "inconclusive"
    return verdict, base


def verdict_markdown(claims: dict[str, dict[str, Any]]) -> str:
    """A Markdown table (claim, criterion, verdict, per-seed count) of one record's claims."""
    lines = ["| claim | criterion | verdict | passes |", "| --- | --- | --- | --- |"]
    for c in claims.values():
        lines.append(
            f"| {_cell(c['statement'])} | {_cell(c['criterion'])} "
            f"| **{c.get('verdict', '—')}** | {_count(c)} |"
        )
    return "\n".join(lines)


def verdict_html(claims: dict[str, dict[str, Any]]) -> str:
    """The same table as :func:`verdict_markdown` in HTML (what a prose page pastes with
    ``{glue:any}`` and ``:doc:``, which carries no Markdown across documents); inline
    ``$...$`` math becomes ``\\(...\\)`` for MathJax."""
    head = "".join(f"<th>{h}</th>" for h in ("claim", "criterion", "verdict", "passes"))
    rows = []
    for c in claims.values():
        cells = (
            _html_cell(c["statement"]),
            _html_cell(c["criterion"]),
            f"<strong>{html.escape(str(c.get('verdict', '—')))}</strong>",
            html.escape(_count(c)),
        )
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    return (
        f'<table class="table verdicts"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _html_cell(text: Any) -> str:
    out = html.escape(" ".join(str(text or "").split()))
    return re.sub(r"\$([^$]+)\$", r"\\(\1\\)", out)


class VerdictTable:
    """A verdict table with a Markdown and an HTML representation (both glued)."""

    def __init__(self, claims: dict[str, dict[str, Any]]):
        self.claims = claims

    def _repr_markdown_(self) -> str:
        return verdict_markdown(self.claims)

    def _repr_html_(self) -> str:
        return verdict_html(self.claims)


def _cell(text: Any) -> str:
    """``text`` safe inside one Markdown table cell (pipes escaped, one line)."""
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _count(c: dict[str, Any]) -> str:
    seeds = c.get("per_seed")
    if not seeds:
        return "—"
    return f"{sum(bool(s) for s in seeds)}/{len(seeds)}"


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
    """The ledger as a plain-text table (what ``pipeline verdicts`` prints)."""
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
        "the book is built (`python -m diffctrl.pipeline verdicts` prints the same table); "
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
        "use (`python -m diffctrl.pipeline execute --only <name> --set seed=<seed> --out "
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
