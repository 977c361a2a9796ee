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
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_text
from .claims import POSITIVE, Claim, VerdictTable, check_verdict
from .runtime import environment

__all__ = ["RESULTS_ENV", "Record", "load", "results_dir", "to_jsonable"]
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
        verdict: str,
        *,
        evidence: dict[str, Any],
        baseline_passes: bool | None,
        per_seed: Sequence[bool] | None = None,
        note: str = "",
    ) -> str:
        """Record the computed verdict of a declared claim with its evidence.

        ``baseline_passes``: whether the claim's baseline (see :class:`~diffctrl.repro.Claim`)
        meets the same criterion; ``None`` only where the claim has no baseline (an identity
        checked to round-off, say). A positive verdict whose baseline passes is refused: that
        criterion decides nothing. Glues ``verdict_<key>`` (the word); :meth:`save` glues the
        table of all verdicts once, as ``verdicts`` (Markdown).
        """
        if key not in self.claims:
            raise ValueError(
                f"claim {key!r} was not declared (declared: {sorted(self.claims)})"
            )
        check_verdict(verdict)
        if baseline_passes and verdict in POSITIVE:
            raise ValueError(
                f"claim {key!r}: the baseline ({self.claims[key]['baseline']!r}) "
                "passes the criterion too, so it cannot confirm the claim"
            )
        self.claims[key].update(
            verdict=verdict,
            evidence=to_jsonable(dict(evidence)),
            baseline_passes=baseline_passes,
            note=note,
            per_seed=None if per_seed is None else [bool(p) for p in per_seed],
        )
        _glue(f"verdict_{key}", verdict)
        return verdict

    def save(self, folder: str | os.PathLike | None = None) -> Path:
        """Write ``{meta..., "values": {...}, "claims": {...}}`` atomically to
        ``<folder>/<notebook>.json``; fails if a declared claim has no verdict."""
        unjudged = [k for k, c in self.claims.items() if "verdict" not in c]
        if unjudged:
            raise ValueError(f"declared claims without a verdict: {unjudged}")
        if self.claims:  # the table of all verdicts, glued once (Markdown and HTML)
            _glue_table("verdicts", self.claims)
        folder = Path(folder) if folder is not None else results_dir()
        payload = dict(self.meta, values=self.values, claims=self.claims)
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
