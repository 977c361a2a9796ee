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

:meth:`diffctrl.repro.Record.verdict` refuses a positive verdict whose baseline passes the
same criterion (such a criterion decides nothing), a verdict for an undeclared claim, and
:meth:`~diffctrl.repro.Record.save` refuses a record with a declared claim left unjudged. The
records' ``claims`` sections feed the claims ledger (the build tool's ``diffctrl-book
verdicts``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "POSITIVE",
    "VERDICTS",
    "Claim",
    "ClaimsTable",
    "VerdictTable",
    "check_verdict",
    "claims_table",
    "count_verdict",
    "judge",
    "verdict_html",
    "verdict_markdown",
]

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
    :meth:`diffctrl.repro.Record.verdict` takes as ``verdict`` and ``baseline_passes``::

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


class ClaimsTable:
    """The declared claims of a notebook as a table (statement, criterion, baseline), shown
    at the top of its page before anything is computed; Markdown and HTML representations."""

    COLUMNS = (
        ("statement", "claim"),
        ("criterion", "criterion"),
        ("baseline", "baseline"),
    )

    def __init__(self, claims: Sequence[Claim]):
        for c in claims:
            if not isinstance(c, Claim):
                raise TypeError(
                    f"claims must hold Claim objects, got {type(c).__name__}"
                )
        self.claims = list(claims)

    def _rows(self) -> list[tuple[str, ...]]:
        return [
            (
                f"{c.statement} ({c.where})" if c.where else c.statement,
                c.criterion,
                c.baseline or "—",
            )
            for c in self.claims
        ]

    def _repr_markdown_(self) -> str:
        head = "| " + " | ".join(h for _, h in self.COLUMNS) + " |"
        lines = [head, "|" + " --- |" * len(self.COLUMNS)]
        lines += [
            "| " + " | ".join(_cell(x) for x in row) + " |" for row in self._rows()
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for _, h in self.COLUMNS)
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
