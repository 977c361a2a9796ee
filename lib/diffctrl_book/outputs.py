"""Cleaning an executed notebook before it becomes a page of the book.

- :func:`scrub` removes progress-bar frames and tqdm's ``IProgress not found`` warning from the
  outputs and replaces the building machine's paths (repository, virtual environment, Python
  installation, home, temp folders) by neutral placeholders;
- :func:`mark_provenance` tags papermill's injected-parameters cell ``remove-cell`` (it stays in
  the notebook for provenance) and puts one margin line after it saying which profile and seed
  produced the page;
- :func:`warnings_in` lists what still looks like a warning or traceback in the outputs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "PROVENANCE_TAG",
    "mark_provenance",
    "path_replacements",
    "scrub",
    "warnings_in",
]

PROVENANCE_TAG = "diffctrl-provenance"
_BAR = re.compile(r"^.*\d+%\|.*\|.*$|^.*\|\s*\d+/\d+ \[[^\]]*\]\s*$")
_TQDM_WARNING = re.compile(
    r"TqdmWarning|IProgress not found|tqdm/auto\.py|from tqdm\.autonotebook|"
    r"^\s*from \.autonotebook import tqdm as notebook_tqdm\s*$"
)
_WARNING = re.compile(r"\b\w*Warning\b|Traceback \(most recent call last\)")


def path_replacements(
    root: Path, extra: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """(path, placeholder) pairs, longest path first: temp folders, the virtual environment,
    the repository, the Python installation and the home folder of the building machine."""
    import tempfile

    pairs = list(extra) + [
        (sys.prefix, "<venv>"),
        (sys.base_prefix, "<python>"),
        (str(Path(root).resolve()), "<repo>"),
        (str(Path.home()), "~"),
        (tempfile.gettempdir(), "<tmp>"),
    ]
    seen, out = set(), []
    for path, label in sorted(pairs, key=lambda p: -len(p[0])):
        if len(path) > 1 and path not in seen:
            seen.add(path)
            out.append((path, label))
    return out


def _replace(text: str, pairs: list[tuple[str, str]]) -> str:
    for path, label in pairs:
        text = text.replace(path, label)
    return text


def _clean_stream(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        line = line.rsplit("\r", 1)[
            -1
        ]  # what a terminal shows after the last carriage return
        if _BAR.match(line) or _TQDM_WARNING.search(line):
            continue
        lines.append(line)
    out = "\n".join(lines)
    return "" if not out.strip() else out


def _walk_strings(value: Any, fn) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_walk_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return type(value)((k, _walk_strings(v, fn)) for k, v in value.items())
    return value


_TEXT_MIME = (
    "text/plain",
    "text/html",
    "text/markdown",
    "text/latex",
    "application/json",
)


def scrub(nb, pairs: list[tuple[str, str]]) -> int:
    """Clean ``nb``'s outputs in place (see the module docstring); return how many changed."""
    changed = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            before = repr(out)
            if out.get("output_type") == "stream":
                text = out.get("text", "")
                text = "".join(text) if isinstance(text, list) else text
                text = _clean_stream(_replace(text, pairs))
                if not text:
                    changed += 1
                    continue
                out["text"] = text
            elif out.get("output_type") in ("display_data", "execute_result"):
                data = out.get("data", {})
                for mime in _TEXT_MIME:
                    if mime in data:
                        data[mime] = _walk_strings(
                            data[mime], lambda s: _replace(s, pairs)
                        )
            elif out.get("output_type") == "error":
                out["evalue"] = _replace(out.get("evalue", ""), pairs)
                out["traceback"] = [
                    _replace(t, pairs) for t in out.get("traceback", [])
                ]
            changed += repr(out) != before
            kept.append(out)
        cell["outputs"] = kept
    return changed


def warnings_in(nb) -> list[str]:
    """First line of every output that still reads like a warning or a traceback."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                found.append(f"cell {i}: {out.get('ename')}")
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = "".join(out.get("text", ""))
                m = _WARNING.search(text)
                if m:
                    line = next(ln for ln in text.splitlines() if m.group(0) in ln)
                    found.append(f"cell {i}: {line.strip()[:160]}")
    return found


def mark_provenance(nb, profile: str, seed: Any, overrides: dict | None = None) -> None:
    """Hide papermill's injected-parameters cell and add the one-line provenance margin note."""
    import nbformat

    nb.cells = [
        c
        for c in nb.cells
        if PROVENANCE_TAG not in c.get("metadata", {}).get("tags", [])
    ]
    at = None
    for i, cell in enumerate(nb.cells):
        tags = cell.get("metadata", {}).setdefault("tags", [])
        if "injected-parameters" in tags:
            if "remove-cell" not in tags:
                tags.append("remove-cell")
            at = i + 1
    if at is None:  # no injected cell: after the parameters cell
        at = next(
            (
                i + 1
                for i, c in enumerate(nb.cells)
                if "parameters" in c.get("metadata", {}).get("tags", [])
            ),
            len(nb.cells),
        )
    changed = ""
    if overrides:
        changed = "; overrides " + ", ".join(
            f"`{k}={v!r}`" for k, v in sorted(overrides.items())
        )
    text = (
        ":::{margin}\n"
        f"This page was produced by the `{profile}` profile, seed `{seed}`{changed}.\n"
        ":::"
    )
    note = nbformat.v4.new_markdown_cell(text)
    note.metadata["tags"] = [PROVENANCE_TAG]
    if "id" in note:
        note["id"] = "diffctrl-provenance"  # deterministic: re-runs stay bit-identical
    nb.cells.insert(at, note)
