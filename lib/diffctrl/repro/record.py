"""The results record of a notebook.

A notebook's headline numbers (those its prose and verdicts quote) go through one
:class:`Record`: each value is glued (myst-nb ``glue``, so the book's text can paste it with
``{glue:text}`notebooks/<name>.ipynb::<key>```) and kept, and :meth:`Record.save` writes them as
JSON to ``$DIFFCTRL_RESULTS_DIR/<notebook>.json`` (default ``./results``). Tests, the book and a
reader re-running with other parameters read the same file. Writes are atomic: a temp file in the
same folder, then ``os.replace``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_text
from .claims import NEGATIVE, POSITIVE, WHY, Claim, Diagnosis, Judgement, check_verdict
from .runtime import environment
from .tables import VerdictTable, findings_sentence

__all__ = ["RESULTS_ENV", "Outcome", "Record", "load", "results_dir", "to_jsonable"]
RESULTS_ENV = "DIFFCTRL_RESULTS_DIR"


def results_dir() -> Path:
    """Folder where results records are written (``$DIFFCTRL_RESULTS_DIR`` or ``./results``).

    The build tool (``diffctrl-book execute``) always sets it; ``results/`` (a bare papermill
    or Jupyter run) is git-ignored."""
    return Path(os.environ.get(RESULTS_ENV, "results"))


def to_jsonable(value: Any) -> Any:
    """Convert numpy / torch scalars and arrays to plain JSON types (NaN/inf kept as strings)."""
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return (
            [to_jsonable(v) for v in value.tolist()]
            if value.ndim
            else to_jsonable(value.item())
        )
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"cannot record a value of type {type(value).__name__}")


def _glue(key: str, value: Any) -> None:
    try:
        from myst_nb import glue
    except ImportError:  # e.g. on Colab without the book extras: nothing to paste into
        return
    glue(key, value, display=False)


def _glue_table(key: str, claims: dict[str, dict[str, Any]]) -> None:
    try:
        from myst_nb import glue
    except ImportError:
        return
    glue(key, VerdictTable(claims), display=False)


@dataclass
class Outcome:
    """What an experiment of a chapter returns to its notebook, recorded in one line
    (``rec.record(out)``): ``values`` the headline numbers, ``verdicts`` the keyword arguments
    of :meth:`Record.verdict` per claim key (empty where the experiment judges no claim) and
    ``data`` the arrays its figure and printout show (not recorded)."""

    values: dict
    verdicts: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)


class Record:
    """Headline numbers of one notebook run: ``rec("key", value)`` glues and keeps a value."""

    def __init__(
        self,
        notebook: str,
        profile: str,
        seed: int | None = None,
        device: Any = None,
        params: dict[str, Any] | None = None,
    ):
        if not notebook or "/" in notebook:
            raise ValueError(
                f"notebook must be a bare name like 'preliminaries', got {notebook!r}"
            )
        self.notebook = notebook
        self.profile = profile
        self.values: dict[str, Any] = {}
        self.claims: dict[str, dict[str, Any]] = {}
        self.meta = {
            "notebook": notebook,
            "profile": profile,
            "seed": seed,
            "params": to_jsonable(dict(params or {})),
            "environment": environment(device),
        }

    def __call__(self, key: str, value: Any, glue: bool = True) -> Any:
        if not key.replace("_", "").isalnum():
            raise ValueError(f"result key must be letters, digits and '_', got {key!r}")
        self.values[key] = to_jsonable(value)
        if glue:
            _glue(key, value)
        return value

    def update(self, values: dict[str, Any], glue: bool = True) -> None:
        """``rec(key, value)`` for every item of ``values`` (a driver's headline numbers, in
        one line of the notebook)."""
        if not isinstance(values, dict):
            raise TypeError(f"values must be a dict, got {type(values).__name__}")
        for key, value in values.items():
            self(key, value, glue=glue)

    def figure(self, key: str, fig: Any) -> Any:
        """Glue a figure so that prose pages can show it (``{glue:figure}`` directive)."""
        if not key.replace("_", "").isalnum():
            raise ValueError(f"figure key must be letters, digits and '_', got {key!r}")
        _glue(key, fig)
        return fig

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def declare(self, claims: Sequence[Claim]) -> None:
        """Declare the claims this notebook judges, with their criteria, before computing."""
        for c in claims:
            if not isinstance(c, Claim):
                raise TypeError(
                    f"claims must hold Claim objects, got {type(c).__name__}"
                )
            if c.key in self.claims:
                raise ValueError(f"claim {c.key!r} declared twice")
            self.claims[c.key] = c.as_dict()

    def verdict(
        self,
        key: str,
        verdict: str | Judgement,
        *,
        evidence: dict[str, Any],
        baseline_passes: bool | None = None,
        control_passes: bool | None = None,
        per_seed: Sequence[bool] | None = None,
        diagnosis: Diagnosis | None = None,
        why: str = "",
        note: str = "",
    ) -> str:
        """Record the computed verdict of a declared claim with its evidence.

        ``verdict``: a :class:`~diffctrl.repro.Judgement` (from :func:`~diffctrl.repro.judge`,
        which carries the per-seed outcomes, the baseline's and the control's outcomes and the
        reason) or a verdict word with those given here. ``baseline_passes`` /
        ``control_passes``: whether the claim's baseline / positive control meets the same
        criterion (``None`` where the claim has none). Refused: a positive verdict whose
        baseline passes (the criterion decides nothing) or whose control fails (the criterion
        or the control is wrong); an outcome for a control or baseline the claim does not
        declare; a diagnosis on a plain ``confirmed``. ``diagnosis``: why a negative or
        inconclusive verdict (see :class:`~diffctrl.repro.Diagnosis`). Glues ``verdict_<key>``
        (the word); :meth:`save` glues the table of all verdicts (``verdicts``) and the page's
        one-line finding (``findings``).
        """
        if key not in self.claims:
            raise ValueError(
                f"claim {key!r} was not declared (declared: {sorted(self.claims)})"
            )
        claim = self.claims[key]
        if isinstance(verdict, Judgement):
            j = verdict
            verdict, why = j.verdict, why or j.why
            baseline_passes = (
                j.baseline_passes if baseline_passes is None else baseline_passes
            )
            control_passes = (
                j.control_passes if control_passes is None else control_passes
            )
            per_seed = j.per_seed if per_seed is None else per_seed
        check_verdict(verdict)
        if why not in WHY:
            raise ValueError(f"why must be one of {tuple(WHY)}, got {why!r}")
        if baseline_passes and verdict in POSITIVE:
            raise ValueError(
                f"claim {key!r}: the baseline ({claim['baseline']!r}) "
                "passes the criterion too, so it cannot confirm the claim"
            )
        if control_passes is False and verdict in POSITIVE:
            raise ValueError(
                f"claim {key!r}: the positive control ({claim['control']!r}) fails the "
                "criterion the method passes: the criterion or the control is wrong"
            )
        for thing, outcome in (
            ("baseline", baseline_passes),
            ("control", control_passes),
        ):
            if outcome is not None and not claim.get(thing):
                raise ValueError(
                    f"claim {key!r}: a {thing} outcome was given but the claim declares no "
                    f"{thing} (declare {thing}=... in its Claim)"
                )
        if diagnosis is not None and not isinstance(diagnosis, Diagnosis):
            raise TypeError(
                f"diagnosis must be a Diagnosis, got {type(diagnosis).__name__}"
            )
        if (
            diagnosis is not None
            and verdict == "confirmed"
            and claim.get("kind") != "check"
        ):
            raise ValueError(
                f"claim {key!r}: a diagnosis explains a negative or qualified verdict, "
                "not a plain 'confirmed'"
            )
        claim.update(
            verdict=verdict,
            evidence=to_jsonable(dict(evidence)),
            baseline_passes=None if baseline_passes is None else bool(baseline_passes),
            control_passes=None if control_passes is None else bool(control_passes),
            why=why,
            diagnosis=None if diagnosis is None else diagnosis.as_dict(),
            note=note,
            per_seed=None if per_seed is None else [bool(p) for p in per_seed],
        )
        _glue(f"verdict_{key}", verdict)
        return verdict

    def record(self, outcome: Outcome) -> Outcome:
        """Record an experiment's :class:`Outcome` in one line: its values, then its
        verdicts (``rec.verdict(key, **kwargs)`` for each)."""
        if not isinstance(outcome, Outcome):
            raise TypeError(f"outcome must be an Outcome, got {type(outcome).__name__}")
        self.update(outcome.values)
        for key, kwargs in outcome.verdicts.items():
            self.verdict(key, **kwargs)
        return outcome

    def save(self, folder: str | os.PathLike | None = None) -> Path:
        """Write ``{meta..., "values": {...}, "claims": {...}}`` atomically to
        ``<folder>/<notebook>.json``; fails if a declared claim has no verdict."""
        unjudged = [k for k, c in self.claims.items() if "verdict" not in c]
        if unjudged:
            raise ValueError(f"declared claims without a verdict: {unjudged}")
        for k, c in self.claims.items():
            for thing in ("baseline", "control"):
                if not (c.get(thing) or c.get(f"no_{thing}")):
                    raise ValueError(
                        f"claim {k!r} declares neither a {thing} nor why it has none "
                        f"(no_{thing}=...)"
                    )
            if c["verdict"] in NEGATIVE and not c.get("diagnosis"):
                raise ValueError(
                    f"claim {k!r} is {c['verdict']!r} without a diagnosis "
                    "(rec.verdict(..., diagnosis=Diagnosis(cause, detail)))"
                )
        if (
            self.claims
        ):  # the table of all verdicts and the one-line finding, glued once
            _glue_table("verdicts", self.claims)
            _glue("findings", findings_sentence(self.claims))
        folder = Path(folder) if folder is not None else results_dir()
        payload = dict(
            self.meta,
            values=self.values,
            claims=self.claims,
            claim_order=list(self.claims),
        )
        return atomic_write_text(
            folder / f"{self.notebook}.json",
            json.dumps(payload, indent=2, sort_keys=True) + "\n",
        )


def load(notebook: str, folder: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read a saved results record."""
    folder = Path(folder) if folder is not None else results_dir()
    path = folder / f"{notebook}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no results record for notebook {notebook!r} at {path}"
        )
    return json.loads(path.read_text(encoding="utf-8"))
