"""The execution cache: a notebook re-executes only when what it depends on changed.

The key is a SHA-256 over (:func:`cache_inputs`): the notebook source's bytes, the profile, the
parameters passed to papermill (overrides and seed included), the bytes of every ``diffctrl``
file the notebook imports (followed transitively, :func:`diffctrl_book.deps.source_files`), and the
versions of Python and of the distributions the notebook imports. The key and its inputs are
written into the executed notebook's metadata and its results record (``execution``); the
execute step reuses an executed notebook and its record when both carry the current key, and says
so. ``execute --force`` re-executes regardless.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import sys
from pathlib import Path
from typing import Any

from . import deps

__all__ = ["cache_inputs", "cache_key", "cached_key"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def cache_inputs(
    root: Path, source: Path, profile: str, params: dict[str, Any]
) -> dict:
    """Everything the execution of ``source`` depends on, as a JSON-able dict of digests."""
    root = Path(root)
    code = hashlib.sha256()
    for path in deps.source_files(root, source):
        code.update(
            str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0"
        )
    packages = {
        d: _version(d) for d in sorted(deps.notebook_requirements(root, source))
    }
    packages["python"] = sys.version.split()[0]
    return {
        "source": _sha(Path(source).read_bytes()),
        "profile": profile,
        "parameters": json.loads(json.dumps(params, sort_keys=True, default=str)),
        "diffctrl_code": code.hexdigest(),
        "packages": packages,
    }


def cache_key(inputs: dict) -> str:
    """The key of :func:`cache_inputs` (24 hex digits of a SHA-256)."""
    return _sha(json.dumps(inputs, sort_keys=True).encode())[:24]


def cached_key(notebook: Path, record: Path) -> str | None:
    """The key both the executed ``notebook`` and its ``record`` carry, else ``None``.

    A notebook that saves no record counts as complete when its metadata says so.
    """
    import nbformat

    if not notebook.exists():
        return None
    try:
        meta = nbformat.read(str(notebook), as_version=4).metadata.get("diffctrl", {})
    except Exception:
        return None
    key = meta.get("cache_key")
    if not key:
        return None
    if meta.get("record", True):
        if not record.exists():
            return None
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if data.get("execution", {}).get("cache_key") != key:
            return None
    return key
