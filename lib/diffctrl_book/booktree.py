"""The book's source tree: the table of contents, the notebook sources, their parameters.

Shared by every command of the build tool: :mod:`.execute` (which notebooks, with which
parameters), :mod:`.site` (what is staged and rendered), :mod:`.sync` (which sources get the
generated cells) and :mod:`.cli`.

A notebook source is a jupytext MyST file ``notebooks/<name>.md`` (or a percent script
``.py``); its Colab twin ``notebooks/<name>.ipynb`` is written by jupytext (``jupytext --sync``
or ``diffctrl-book sync``). Its parameters are read by papermill
(:func:`notebook_parameters`: ``papermill.inspect_notebook`` on the cell tagged
``parameters``), as papermill will inject them.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "SOURCE_SUFFIXES",
    "PipelineError",
    "book_notebooks",
    "mkdir",
    "notebook_parameters",
    "notebook_sources",
    "parse_sets",
    "read_source",
    "repo_root",
    "split_sets",
    "toc_files",
    "twin_path",
    "untracked_sources",
    "warn",
]

SOURCE_SUFFIXES = (".md", ".py")


class PipelineError(RuntimeError):
    """A notebook failed or the book tree is inconsistent (the command prints one line)."""


def warn(msg: str) -> None:
    """Print ``warning: msg`` on stderr."""
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def mkdir(path: Path) -> Path:
    """Create ``path`` (and its parents) if needed; return it."""
    path.mkdir(parents=True, exist_ok=True)
    return path


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The folder holding ``_toc.yml`` and ``notebooks/`` (searched upwards from ``start`` or
    the cwd)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists() and (folder / "notebooks").is_dir():
            return folder
    raise PipelineError(
        f"not inside the book's repository (no folder with _toc.yml and "
        f"notebooks/ above {here}); cd into your clone first"
    )


def toc_files(root: Path) -> list[str]:
    """Every file entry of ``_toc.yml`` (paths without suffix, relative to the root)."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    out: list[str] = [toc["root"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                out.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return out


def notebook_sources(root: Path) -> dict[str, Path]:
    """``{name: source path}`` for every jupytext source in ``notebooks/`` (``.md``/``.py``)."""
    found: dict[str, Path] = {}
    for path in sorted((root / "notebooks").iterdir()):
        if path.suffix in SOURCE_SUFFIXES and not path.name.startswith((".", "_")):
            if path.stem in found:
                raise PipelineError(
                    f"two sources for notebook {path.stem!r}: {found[path.stem]}, {path}"
                )
            found[path.stem] = path
    return found


def _toc_notebooks(root: Path) -> list[str]:
    return [f.split("/", 1)[1] for f in toc_files(root) if f.startswith("notebooks/")]


def untracked_sources(root: Path) -> list[str]:
    """Notebook sources that ``_toc.yml`` does not list (skipped by every command)."""
    return sorted(set(notebook_sources(root)) - set(_toc_notebooks(root)))


def book_notebooks(root: Path, warn_untracked: bool = True) -> dict[str, Path]:
    """Notebook sources in toc order. A toc entry without a source is an error; a source the
    toc does not list is skipped (with a warning when ``warn_untracked``)."""
    sources = notebook_sources(root)
    in_toc = _toc_notebooks(root)
    missing_source = [n for n in in_toc if n not in sources]
    if missing_source:
        raise PipelineError(
            f"_toc.yml lists notebooks without a source: {missing_source}"
        )
    not_in_toc = sorted(set(sources) - set(in_toc))
    if not_in_toc and warn_untracked:
        warn(f"notebook sources not in _toc.yml are skipped: {not_in_toc}")
    return {name: sources[name] for name in in_toc}


def twin_path(source: Path) -> Path:
    """The ``.ipynb`` twin of a notebook source (what Colab and Binder open)."""
    return source.with_suffix(".ipynb")


def read_source(path: Path):
    """Read a jupytext source; it must carry a kernelspec and one cell tagged ``parameters``."""
    import jupytext

    nb = jupytext.read(path)
    if "kernelspec" not in nb.metadata:
        raise PipelineError(f"{path}: no kernelspec in the jupytext header")
    tagged = [
        c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    if len(tagged) != 1:
        raise PipelineError(
            f"{path}: needs exactly one cell tagged 'parameters', found {len(tagged)}"
        )
    return nb


def notebook_parameters(nb) -> dict[str, Any]:
    """``{name: default}`` of the notebook's ``parameters`` cell, as papermill reads it
    (``papermill.inspect_notebook``); a default that is not a Python literal is ``None``."""
    import nbformat
    import papermill as pm

    with tempfile.TemporaryDirectory(prefix="diffctrl-params.") as tmp:
        path = Path(tmp) / "notebook.ipynb"
        nbformat.write(nb, str(path))
        found = pm.inspect_notebook(str(path))
    out: dict[str, Any] = {}
    for name, info in found.items():
        try:
            out[name] = ast.literal_eval(str(info.get("default")))
        except (ValueError, SyntaxError):
            out[name] = None
    return out


def split_sets(sets: dict[str, Any], names: Iterable[str]) -> tuple[dict, dict]:
    """``--set`` items -> (papermill parameters, profile overrides): a name of the parameters
    cell (``seed``, ``device``) is passed as itself, anything else as an override."""
    names = set(names) - {"profile", "overrides"}
    direct = {k: v for k, v in sets.items() if k in names}
    overrides = {k: v for k, v in sets.items() if k not in names}
    return direct, overrides


def parse_sets(items: Iterable[str]) -> dict[str, Any]:
    """``["seed=7", "T=50", "device=cpu"]`` -> ``{"seed": 7, "T": 50, "device": "cpu"}``
    (values read as JSON where they parse, else kept as strings)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise PipelineError(f"--set takes key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out
