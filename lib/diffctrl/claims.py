"""Claims and verdicts: the criterion is declared before computing, the verdict is computed.

A notebook declares every claim it judges in one ``CLAIMS`` list right after its profiles::

    CLAIMS = [
        Claim("acf_ar1", paper="cao2026adaptive", where="Sec. 5.1",
              statement="the sequential sampler reproduces the AR(1) autocorrelation",
              criterion="|acf1 - phi| < 0.05 for at least 2 of 3 seeds",
              baseline="an untrained network"),
    ]
    rec.declare(CLAIMS)

and, once the evidence is computed, records one verdict per claim::

    rec.verdict("acf_ar1", count_verdict(passes), evidence={...}, per_seed=passes,
                baseline_passes=False)

:meth:`diffctrl.results.Record.verdict` refuses a positive verdict whose baseline passes the
same criterion (such a criterion decides nothing), a verdict for an undeclared claim, and
:meth:`~diffctrl.results.Record.save` refuses a record with a declared claim left unjudged. The
records' ``claims`` sections feed the claims ledger (:func:`ledger`, ``python -m
diffctrl.pipeline verdicts``).
"""

from __future__ import annotations

import json
import os
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
            raise ValueError(f"claim key must be letters, digits and '_', got {self.key!r}")
        for name in ("paper", "statement", "criterion"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"claim {self.key!r}: {name} must not be empty")

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check_verdict(verdict: str) -> str:
    """``verdict`` if it is one of :data:`VERDICTS`, else a ValueError naming the choices."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    return verdict


def count_verdict(passes: Sequence[bool], need: float = 1.0, caveat_need: float = 0.5) -> str:
    """Verdict from per-seed (or per-setting) outcomes of one criterion.

    ``confirmed`` when a share >= ``need`` passes, ``confirmed with caveat`` when a share >=
    ``caveat_need`` does, ``not reproduced`` when none does, ``inconclusive`` in between.
    """
    passes = [bool(p) for p in passes]
    if not passes:
        raise ValueError("passes must hold at least one outcome")
    if not 0 < caveat_need <= need <= 1:
        raise ValueError(f"need 0 < caveat_need <= need <= 1, got {caveat_need}, {need}")
    share = sum(passes) / len(passes)
    if share >= need:
        return "confirmed"
    if share >= caveat_need:
        return "confirmed with caveat"
    return "not reproduced" if share == 0 else "inconclusive"


def verdict_markdown(claims: dict[str, dict[str, Any]]) -> str:
    """A Markdown table (claim, criterion, verdict, per-seed count) of one record's claims."""
    lines = ["| claim | criterion | verdict | passes |", "| --- | --- | --- | --- |"]
    for c in claims.values():
        lines.append(f"| {c['statement']} | {c['criterion']} | **{c.get('verdict', '—')}** "
                     f"| {_count(c)} |")
    return "\n".join(lines)


def _count(c: dict[str, Any]) -> str:
    seeds = c.get("per_seed")
    if not seeds:
        return "—"
    return f"{sum(bool(s) for s in seeds)}/{len(seeds)}"


def ledger(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """Every judged claim of every results record in ``folder``, one row each (notebook order
    by name): notebook, profile, seed, key, paper, where, statement, criterion, verdict,
    per-seed count, baseline outcome."""
    rows = []
    for path in sorted(Path(folder).glob("*.json")):
        rec = json.loads(path.read_text(encoding="utf-8"))
        for key, c in (rec.get("claims") or {}).items():
            rows.append({"notebook": rec.get("notebook", path.stem), "profile": rec.get("profile"),
                         "seed": rec.get("seed"), "key": key, "paper": c.get("paper"),
                         "where": c.get("where", ""), "statement": c.get("statement"),
                         "criterion": c.get("criterion"), "verdict": c.get("verdict"),
                         "passes": _count(c), "baseline": c.get("baseline", ""),
                         "baseline_passes": c.get("baseline_passes")})
    return rows
