"""The book's source tree: the table of contents, the notebook sources and their twins.

Shared by :mod:`diffctrl_book.pipeline` (execution, command line) and :mod:`diffctrl_book.site`
(staging and rendering).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SOURCE_SUFFIXES = (".md", ".py")


class PipelineError(RuntimeError):
    """A notebook failed or the book tree is inconsistent."""


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The folder holding ``_toc.yml`` (searched upwards from ``start`` or the cwd)."""
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

    def walk(node):
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


def untracked_sources(root: Path) -> list[str]:
    """Notebook sources that ``_toc.yml`` does not list (skipped by every command)."""
    in_toc = {f.split("/", 1)[1] for f in toc_files(root) if f.startswith("notebooks/")}
    return sorted(set(notebook_sources(root)) - in_toc)


def book_notebooks(root: Path, warn: bool = True) -> dict[str, Path]:
    """Notebook sources in toc order. A toc entry without a source is an error; a source the
    toc does not list is skipped (with a warning when ``warn``)."""
    sources = notebook_sources(root)
    in_toc = [f.split("/", 1)[1] for f in toc_files(root) if f.startswith("notebooks/")]
    missing_source = [n for n in in_toc if n not in sources]
    if missing_source:
        raise PipelineError(
            f"_toc.yml lists notebooks without a source: {missing_source}"
        )
    not_in_toc = sorted(set(sources) - set(in_toc))
    if not_in_toc and warn:
        _warn(f"notebook sources not in _toc.yml are skipped: {not_in_toc}")
    return {name: sources[name] for name in in_toc}


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


def _strip(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        (c.cell_type, c.source.strip(), tuple(c.get("metadata", {}).get("tags", [])))
        for c in nb.cells
    ]


def twin_path(source: Path) -> Path:
    return source.with_suffix(".ipynb")


def sync_twins(root: Path) -> list[Path]:
    """Write each source's ``.ipynb`` twin (no outputs) for Colab; return the rewritten twins."""
    import jupytext
    import nbformat

    written = []
    for source in book_notebooks(root).values():
        nb = read_source(source)
        twin = twin_path(source)
        if twin.exists() and _strip(jupytext.read(twin)) == _strip(nb):
            continue
        nb.metadata.setdefault("jupytext", {})["formats"] = (
            f"ipynb,{_format_name(source)}"
        )
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        _atomic_write_notebook(nbformat, nb, twin)
        written.append(twin)
    return written


def sync_all(root: Path) -> list[Path]:
    """``pipeline sync``: regenerate ``_config.yml``'s repository block, every notebook's Colab
    cell and "Re-run this page" box (:mod:`diffctrl_book.sync`), then the ``.ipynb`` twins."""
    from . import sync

    written = []
    try:
        if sync.sync_config(root):
            written.append(root / "_config.yml")
        for source in book_notebooks(root).values():
            if sync.sync_source(root, source):
                written.append(source)
    except ValueError as exc:
        raise PipelineError(str(exc)) from exc
    return written + sync_twins(root)


def _format_name(source: Path) -> str:
    return "md:myst" if source.suffix == ".md" else "py:percent"


def drifted_twins(root: Path) -> list[str]:
    """Names of notebooks whose committed ``.ipynb`` twin differs from the source (or is absent)."""
    import jupytext

    bad = []
    for name, source in book_notebooks(root).items():
        twin = twin_path(source)
        if not twin.exists():
            bad.append(f"{name} (no twin {twin.name})")
            continue
        nb_twin = jupytext.read(twin)
        if _strip(nb_twin) != _strip(read_source(source)):
            bad.append(f"{name} (cells differ)")
        elif any(c.cell_type == "code" and c.get("outputs") for c in nb_twin.cells):
            bad.append(f"{name} (twin has outputs)")
    return bad


def _atomic_write_notebook(nbformat, nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.ipynb")
    nbformat.write(nb, str(tmp))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
