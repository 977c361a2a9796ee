"""Claims and verdicts: the criterion is declared before computing, the verdict is computed.

A notebook declares every claim it judges in one ``CLAIMS`` list right after its profiles::

    CLAIMS = [
        Claim("acf_ar1", paper="cao2026adaptive", where="Sec. 5.1, Fig. 3",
              statement="the sequential sampler reproduces the AR(1) autocorrelation",
              criterion="|acf1 - phi| < 0.05 for at least 2 of 3 seeds",
              baseline="a moment-matched AR(1) fitted to the training paths (must fail)",
              control="the sampler driven by the exact conditional law (must pass)"),
    ]
    rec.declare(CLAIMS)

Three kinds of claim (``kind``): ``"paper"``, a statement the paper makes (``where`` locates it:
section, figure, or the sentence); ``"ours"``, the book's own hypothesis about the paper's
method (not counted among the paper's verdicts); ``"check"``, a property our implementation
satisfies by construction (an identity checked to round-off), listed apart and never a
confirmation of the paper.

Every claim names its **baseline** (what the same criterion is applied to and must fail: the
untrained model, zero iterations, the method to beat) and its **positive control** (what must
pass the criterion if the criterion is attainable at this size and budget: the exact score, the
exact optimum, an oracle sampler, a case inside the theorem's assumptions), or says why it has
none (``no_baseline``, ``no_control``). Once the evidence is computed, :func:`judge` turns the
per-seed outcomes of the method, the baseline and the control into a :class:`Judgement`::

    j = judge(passes, baseline=base_passes, control=control_passes)
    rec.verdict("acf_ar1", j, evidence={...}, diagnosis=Diagnosis("setting", "..."))

Rules (``WHY`` names the reason recorded with the verdict): a positive verdict whose
baseline passes too becomes ``inconclusive`` (``"baseline passes"``: the criterion does not
separate); a negative verdict whose control fails too becomes ``inconclusive`` (``"control
fails"``: the criterion is out of reach at this size, so the miss says nothing about the
paper); a positive verdict whose control fails is an error (the criterion or the control is
wrong: find out before publishing); some seeds passing and some not is ``inconclusive``
(``"mixed"``). Every negative or inconclusive verdict carries a :class:`Diagnosis`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

__all__ = [
    "CAUSES",
    "KINDS",
    "NEGATIVE",
    "adjudicate",
    "POSITIVE",
    "VERDICTS",
    "WHY",
    "Claim",
    "Diagnosis",
    "Judgement",
    "check_verdict",
    "count_verdict",
    "judge",
]

VERDICTS = ("confirmed", "confirmed with caveat", "not reproduced", "inconclusive")
POSITIVE = ("confirmed", "confirmed with caveat")
NEGATIVE = ("not reproduced", "inconclusive")
KINDS = ("paper", "ours", "check")
CAUSES = {
    "overstated": "the paper states more than it proves",
    "setting": "our setting differs from the paper's",
    "underpowered": "the test is under-powered",
}
WHY = {
    "": "",
    "mixed": "some seeds pass, some do not",
    "baseline passes": "the baseline passes the criterion too",
    "control fails": "the positive control fails the criterion too",
}


@dataclass(frozen=True)
class Claim:
    """One claim and the rule that decides it (stated before any computation).

    ``paper``: the key of ``book/references.bib`` the claim is about; ``where``: where the paper
    states it (required for ``kind="paper"``); ``kind``: ``"paper"``, ``"ours"`` or ``"check"``
    (see the module docstring); ``baseline`` / ``control``: what the same criterion is applied to
    and must fail / pass, or ``no_baseline`` / ``no_control``: why there is none.
    """

    key: str
    paper: str
    statement: str
    criterion: str
    where: str = ""
    baseline: str = ""
    control: str = ""
    kind: str = "paper"
    no_baseline: str = ""
    no_control: str = ""

    def __post_init__(self):
        if not self.key or not self.key.replace("_", "").isalnum():
            raise ValueError(
                f"claim key must be letters, digits and '_', got {self.key!r}"
            )
        for name in ("paper", "statement", "criterion"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"claim {self.key!r}: {name} must not be empty")
        if self.kind not in KINDS:
            raise ValueError(
                f"claim {self.key!r}: kind must be one of {KINDS}, got {self.kind!r}"
            )
        if self.kind == "paper" and not self.where.strip():
            raise ValueError(
                f"claim {self.key!r}: a paper's claim must locate its statement "
                "(where=section, figure or sentence), or be kind='ours'"
            )
        for thing in ("baseline", "control"):
            if getattr(self, thing) and getattr(self, f"no_{thing}"):
                raise ValueError(
                    f"claim {self.key!r}: give {thing} or no_{thing}, not both"
                )

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Diagnosis:
    """Why a verdict is negative or inconclusive: ``cause`` one of ``CAUSES``
    (``"overstated"``: the paper states more than it proves; ``"setting"``: our setting differs,
    ``detail`` says which detail; ``"underpowered"``: the test cannot decide at this size,
    ``detail`` says what would decide it)."""

    cause: str
    detail: str

    def __post_init__(self):
        if self.cause not in CAUSES:
            raise ValueError(
                f"diagnosis cause must be one of {tuple(CAUSES)}, got {self.cause!r}"
            )
        if not str(self.detail).strip():
            raise ValueError("diagnosis detail must say what (it must not be empty)")

    def as_dict(self) -> dict[str, str]:
        return {"cause": self.cause, "detail": " ".join(str(self.detail).split())}

    def text(self) -> str:
        return f"{CAUSES[self.cause]}: {' '.join(str(self.detail).split())}"


@dataclass(frozen=True)
class Judgement:
    """A computed verdict with what decided it: the per-seed outcomes, whether the baseline and
    the positive control pass the same criterion (``None``: the claim has none), and ``why``
    (a key of ``WHY``)."""

    verdict: str
    per_seed: list[bool] = field(default_factory=list)
    baseline_passes: bool | None = None
    control_passes: bool | None = None
    why: str = ""

    def __post_init__(self):
        check_verdict(self.verdict)
        if self.why not in WHY:
            raise ValueError(f"why must be one of {tuple(WHY)}, got {self.why!r}")


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


def _passes(outcomes, need: float, caveat_need: float, name: str) -> bool | None:
    """One outcome from a bool or per-seed outcomes (positive count verdict)."""
    if outcomes is None:
        return None
    if isinstance(outcomes, (str, bytes)):
        raise TypeError(f"{name} must be a bool or per-seed outcomes, got {outcomes!r}")
    try:
        seq = list(outcomes)
    except TypeError:  # one outcome (bool, numpy bool)
        return bool(outcomes)
    return count_verdict(seq, need, caveat_need) in POSITIVE


def judge(
    passes: Sequence[bool],
    baseline: bool | Sequence[bool] | None = None,
    control: bool | Sequence[bool] | None = None,
    *,
    need: float = 1.0,
    caveat_need: float = 0.5,
) -> Judgement:
    """The :class:`Judgement` of one claim from per-seed outcomes under its criterion.

    ``passes``: the method's outcomes; ``baseline`` / ``control``: the baseline's and the
    positive control's (one bool, or per-seed outcomes: they pass when :func:`count_verdict` of
    them, with the same ``need``, is positive), ``None`` where the claim has none. The verdict is
    :func:`count_verdict` of ``passes``, then: positive and the baseline passes ->
    ``inconclusive`` (why ``"baseline passes"``); negative and the control fails ->
    ``inconclusive`` (``"control fails"``); positive and the control fails -> ``ValueError`` (the
    criterion or the control is wrong); ``inconclusive`` from mixed seeds -> why ``"mixed"``.
    """
    base = _passes(baseline, need, caveat_need, "baseline")
    ctrl = _passes(control, need, caveat_need, "control")
    return adjudicate(count_verdict(passes, need, caveat_need), passes, base, ctrl)


def adjudicate(
    verdict: str,
    per_seed: Sequence[bool],
    baseline_passes: bool | None = None,
    control_passes: bool | None = None,
) -> Judgement:
    """:func:`judge`'s rules applied to a verdict reached by another rule (a ladder of
    criteria, say): positive and the baseline passes -> ``inconclusive`` (why ``"baseline
    passes"``); negative and the control fails -> ``inconclusive`` (``"control fails"``);
    positive and the control fails -> ``ValueError``; ``inconclusive`` from mixed seeds -> why
    ``"mixed"``."""
    check_verdict(verdict)
    base, ctrl = baseline_passes, control_passes
    why = "mixed" if verdict == "inconclusive" else ""
    if verdict in POSITIVE and ctrl is False:
        raise ValueError(
            "the method passes the criterion but its positive control fails it: the "
            "criterion or the control is wrong; find out which before publishing"
        )
    if verdict in POSITIVE and base:
        verdict, why = "inconclusive", "baseline passes"
    elif verdict == "not reproduced" and ctrl is False:
        verdict, why = "inconclusive", "control fails"
    elif verdict == "inconclusive" and ctrl is False:
        why = "control fails"
    return Judgement(
        verdict=verdict,
        per_seed=[bool(p) for p in per_seed],
        baseline_passes=base,
        control_passes=ctrl,
        why=why,
    )
