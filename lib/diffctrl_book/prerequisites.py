"""What the execute step runs before the notebooks, and how long each task is expected to take.

Work that several notebooks share is declared once, in ``pyproject.toml``::

    [tool.diffctrl.book.prerequisites."digit U-Net"]
    callable = "diffctrl.digits.unet:digit_unet"   # module:function
    notebooks = ["preliminaries", "finetune_digits"]
    override = "unet"

The execute step runs ``callable(profile, device=...)`` once, as its own task, before the
listed notebooks (:mod:`.scheduling`), with ``$DIFFCTRL_ARTIFACTS`` pointing at
``_build/artifacts`` where the callable leaves what it made (the trained U-Net); the notebooks
then find it there. A run that overrides the profile parameter ``override`` (``--set
unet=...``) makes its own and does not wait. ``tests/book/test_structure.py`` checks that the
listed notebooks are exactly those whose imports reach the callable.

Expected costs (:func:`cost_hints`, :func:`expected_cost`) order the queue: a task's last
recorded CPU-seconds, else ``[tool.diffctrl.book.cost.<profile>]``, else a minute.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import deps

__all__ = [
    "Prerequisite",
    "artifacts_env",
    "book_table",
    "cost_hints",
    "declared_prerequisites",
    "environ",
    "expected_cost",
    "run_prerequisite",
]


def book_table(root: Path) -> dict[str, Any]:
    """``[tool.diffctrl.book]`` of ``pyproject.toml`` (empty when there is no such file)."""
    try:
        project = deps.pyproject(root)
    except OSError:
        return {}
    return project.get("tool", {}).get("diffctrl", {}).get("book", {})


@dataclass(frozen=True)
class Prerequisite:
    """A declared prerequisite: ``target`` (``"module:function"``) is called once, before the
    ``notebooks``; a run overriding the profile parameter ``override`` does not wait for it."""

    name: str
    target: str
    notebooks: tuple[str, ...]
    override: str | None = None


def declared_prerequisites(root: Path) -> list[Prerequisite]:
    """The prerequisites of ``[tool.diffctrl.book.prerequisites]``; ValueError when malformed."""
    out = []
    table = book_table(root).get("prerequisites", {})
    for name, spec in table.items():
        target = str(spec.get("callable", ""))
        module, _, func = target.partition(":")
        if not module or not func.isidentifier():
            raise ValueError(
                f"pyproject.toml prerequisite {name!r}: callable must be "
                f"'package.module:function', got {target!r}"
            )
        notebooks = spec.get("notebooks", [])
        if not notebooks or not all(isinstance(n, str) for n in notebooks):
            raise ValueError(
                f"pyproject.toml prerequisite {name!r}: notebooks must list "
                "the notebooks that need it"
            )
        out.append(Prerequisite(name, target, tuple(notebooks), spec.get("override")))
    return out


@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """Set (a value) or unset (``None``) environment variables for the ``with`` block."""
    before = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def artifacts_env(root: Path) -> dict[str, str]:
    """``{"DIFFCTRL_ARTIFACTS": "<root>/_build/artifacts"}``: where the notebooks and the
    prerequisites keep shared trained models (:data:`diffctrl.digits.unet.ARTIFACTS_ENV`)."""
    from diffctrl.digits.unet import ARTIFACTS_ENV

    return {ARTIFACTS_ENV: str(Path(root) / "_build" / "artifacts")}


def run_prerequisite(
    root: Path, target: str, profile: str, device: str, threads: int
) -> dict[str, Any]:
    """The body of a prerequisite task: ``target(profile, device=...)`` with ``threads``
    threads and :func:`artifacts_env`; return the scalar entries (absolute paths left out) of
    the information it returns (the last element of its tuple, when a dict: e.g. the U-Net's
    origin and key)."""
    import torch

    from diffctrl.repro import pick_device

    module, _, func = target.partition(":")
    fn = getattr(importlib.import_module(module), func)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with environ(**artifacts_env(root)):
            result = fn(profile, device=str(pick_device(device)))
    finally:
        torch.set_num_threads(before)
    info = result[-1] if isinstance(result, tuple) and result else None
    if not isinstance(info, dict):
        return {}
    scalar = (str, int, float, bool, type(None))
    return {  # no paths of the building machine in the run's summary
        str(k): v
        for k, v in info.items()
        if isinstance(v, scalar) and not (isinstance(v, str) and os.path.isabs(v))
    }


def cost_hints(root: Path, profile: str) -> dict[str, float]:
    """``[tool.diffctrl.book.cost.<profile>]``: expected CPU-seconds per notebook and per
    prerequisite, used only to start the longest work first."""
    table = book_table(root).get("cost", {}).get(profile, {})
    return {str(k): float(v) for k, v in table.items()}


def expected_cost(record: Path, hint: float | None) -> float:
    """CPU-seconds of the last execution in ``record`` (same profile), else ``hint``, else 60."""
    try:
        ex = json.loads(record.read_text(encoding="utf-8")).get("execution", {})
        if ex.get("cpu_seconds"):
            return float(ex["cpu_seconds"])
    except (OSError, ValueError):
        pass
    return 60.0 if hint is None else hint
