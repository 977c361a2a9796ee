"""The book pipeline: jupytext source -> papermill (profile) -> executed .ipynb -> Jupyter Book.

Command line (run from the repository root)::

    python -m diffctrl.pipeline execute --profile smoke [--only NAME ...] [--set key=value ...]
    python -m diffctrl.pipeline build                  # stage + jupyter-book build -W -n
    python -m diffctrl.pipeline sync                   # rewrite the .ipynb twins from the sources
    python -m diffctrl.pipeline check-twins            # fail if a twin drifted from its source

Layout of the build tree (never committed)::

    _build/executed/notebooks/<name>.ipynb   executed notebooks (papermill output)
    _build/results/<name>.json               results records (see diffctrl.results)
    _build/reports/<name>.failed.ipynb       the last failed execution, with its traceback
    _build/site/                             what Jupyter Book renders (book/, executed notebooks)
    _build/html/                             the rendered book

Every output is written to a temp path and renamed only on success, so an interrupted or
failed run never leaves a half-written notebook, record or site that a later build would take
as good.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from .profiles import PROFILE_NAMES
from .results import RESULTS_ENV

SOURCE_SUFFIXES = (".md", ".py")
KERNEL = "python3"


class PipelineError(RuntimeError):
    """A notebook failed or the book tree is inconsistent."""


# --------------------------------------------------------------------------- discovery
def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The folder holding ``_toc.yml`` (searched upwards from ``start`` or the cwd)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists() and (folder / "notebooks").is_dir():
            return folder
    raise PipelineError(f"no book repository (with _toc.yml and notebooks/) above {here}")


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
                raise PipelineError(f"two sources for notebook {path.stem!r}: {found[path.stem]}, {path}")
            found[path.stem] = path
    return found


def book_notebooks(root: Path) -> dict[str, Path]:
    """Notebook sources in toc order; fails if a source is missing from the toc or vice versa."""
    sources = notebook_sources(root)
    in_toc = [f.split("/", 1)[1] for f in toc_files(root) if f.startswith("notebooks/")]
    missing_source = [n for n in in_toc if n not in sources]
    if missing_source:
        raise PipelineError(f"_toc.yml lists notebooks without a source: {missing_source}")
    not_in_toc = sorted(set(sources) - set(in_toc))
    if not_in_toc:
        raise PipelineError(f"notebook sources not in _toc.yml: {not_in_toc}")
    return {name: sources[name] for name in in_toc}


# --------------------------------------------------------------------------- conversion
def read_source(path: Path):
    """Read a jupytext source; it must carry a kernelspec and one cell tagged ``parameters``."""
    import jupytext

    nb = jupytext.read(path)
    if "kernelspec" not in nb.metadata:
        raise PipelineError(f"{path}: no kernelspec in the jupytext header")
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise PipelineError(f"{path}: needs exactly one cell tagged 'parameters', found {len(tagged)}")
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
    for source in notebook_sources(root).values():
        nb = read_source(source)
        twin = twin_path(source)
        if twin.exists() and _strip(jupytext.read(twin)) == _strip(nb):
            continue
        nb.metadata.setdefault("jupytext", {})["formats"] = f"ipynb,{_format_name(source)}"
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        _atomic_write_notebook(nbformat, nb, twin)
        written.append(twin)
    return written


def _format_name(source: Path) -> str:
    return "md:myst" if source.suffix == ".md" else "py:percent"


def drifted_twins(root: Path) -> list[str]:
    """Names of notebooks whose committed ``.ipynb`` twin differs from the source (or is absent)."""
    import jupytext

    bad = []
    for name, source in notebook_sources(root).items():
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


# --------------------------------------------------------------------------- execution
def _atomic_write_notebook(nbformat, nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.ipynb")
    nbformat.write(nb, str(tmp))
    os.replace(tmp, path)


def parameter_names(nb) -> set[str]:
    """Names assigned in the notebook's parameters cell."""
    import ast

    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    names = set()
    for node in ast.parse(cell.source).body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def source_digest(source: Path) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()[:16]


def execute_notebook(root: Path, name: str, source: Path, profile: str,
                     overrides: dict | None = None, log_output: bool = False) -> Path:
    """Execute one notebook with papermill; return the executed notebook's path.

    The run goes to a temp notebook and a temp results folder; both are moved into
    ``_build/executed`` and ``_build/results`` only when every cell succeeded. On failure the
    stale outputs of an earlier run are removed, the failed notebook is kept under
    ``_build/reports`` and :class:`PipelineError` carries the traceback.
    """
    import nbformat
    import papermill as pm

    if profile not in PROFILE_NAMES:
        raise PipelineError(f"unknown profile {profile!r}; choose one of {PROFILE_NAMES}")
    build = root / "_build"
    out = build / "executed" / "notebooks" / f"{name}.ipynb"
    record = build / "results" / f"{name}.json"
    failed = build / "reports" / f"{name}.failed.ipynb"
    nb = read_source(source)
    params: dict = {"profile": profile}
    if overrides:
        params["overrides"] = dict(overrides)
    unknown = sorted(set(params) - parameter_names(nb))
    if unknown:
        raise PipelineError(f"{source.name}: its parameters cell has no {unknown}")

    work = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=_mkdir(build / "tmp")))
    src_nb, tmp_out, tmp_results = work / f"{name}.in.ipynb", work / f"{name}.ipynb", work / "results"
    nbformat.write(nb, str(src_nb))
    env_before = os.environ.get(RESULTS_ENV)
    os.environ[RESULTS_ENV] = str(tmp_results)
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(src_nb), str(tmp_out), parameters=params, kernel_name=KERNEL,
            cwd=str(root / "notebooks"), progress_bar=False, log_output=log_output,
        )
    except Exception as exc:  # papermill's error carries the cell's traceback
        out.unlink(missing_ok=True)
        record.unlink(missing_ok=True)
        if tmp_out.exists():
            _mkdir(failed.parent)
            os.replace(tmp_out, failed)
        shutil.rmtree(work, ignore_errors=True)
        raise PipelineError(f"notebook {name!r} failed (profile {profile}); executed copy with "
                            f"the error: {failed}\n{exc}") from exc
    finally:
        if env_before is None:
            os.environ.pop(RESULTS_ENV, None)
        else:
            os.environ[RESULTS_ENV] = env_before
    seconds = time.perf_counter() - start
    executed = nbformat.read(str(tmp_out), as_version=4)
    executed.metadata["diffctrl"] = {
        "profile": profile, "source": source.name, "source_sha256": source_digest(source),
        "overrides": dict(overrides or {}), "seconds": round(seconds, 1),
    }
    produced = tmp_results / f"{name}.json"
    if produced.exists():
        data = json.loads(produced.read_text(encoding="utf-8"))
        if data.get("profile") != profile:
            raise PipelineError(f"{name}: results record says profile {data.get('profile')!r}, "
                                f"expected {profile!r}")
        data["seconds"] = round(seconds, 1)
        from .results import atomic_write_text
        atomic_write_text(record, json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        record.unlink(missing_ok=True)
    _atomic_write_notebook(nbformat, executed, out)
    failed.unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    return out


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _execute_one(args) -> tuple[str, Path | None, str | None, float]:
    root, name, source, profile, overrides, log_output = args
    t0 = time.perf_counter()
    try:
        out = execute_notebook(root, name, source, profile, overrides, log_output)
    except PipelineError as exc:
        return name, None, str(exc), time.perf_counter() - t0
    return name, out, None, time.perf_counter() - t0


def execute_all(root: Path, profile: str, only: Sequence[str] = (), overrides: dict | None = None,
                keep_going: bool = False, log_output: bool = False, jobs: int = 1) -> list[Path]:
    """Execute the toc's notebooks (or ``only`` those), ``jobs`` at a time.

    With ``jobs > 1`` each notebook runs in its own process (and kernel); set
    ``OMP_NUM_THREADS`` so that ``jobs`` x threads does not exceed the cores.
    """
    notebooks = book_notebooks(root)
    unknown = sorted(set(only) - set(notebooks))
    if unknown:
        raise PipelineError(f"unknown notebook(s) {unknown}; known: {list(notebooks)}")
    if jobs < 1:
        raise PipelineError(f"jobs must be >= 1, got {jobs}")
    todo = [(root, n, s, profile, overrides, log_output)
            for n, s in notebooks.items() if not only or n in only]
    done, errors = [], []

    def report(i, result):
        name, out, err, secs = result
        if err is None:
            done.append(out)
            print(f"[{i}/{len(todo)}] {name} ({profile}) ok in {secs:.1f} s", flush=True)
        else:
            errors.append(err)
            print(f"[{i}/{len(todo)}] {name} ({profile}) FAILED:\n{err}", file=sys.stderr, flush=True)

    if jobs == 1:
        for i, args in enumerate(todo, 1):
            print(f"[{i}/{len(todo)}] {args[1]} ({profile}) ...", flush=True)
            report(i, _execute_one(args))
            if errors and not keep_going:
                break
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        print(f"executing {len(todo)} notebooks, {jobs} at a time ({profile})", flush=True)
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_execute_one, args) for args in todo]
            for i, fut in enumerate(as_completed(futures), 1):
                report(i, fut.result())
    if errors:
        raise PipelineError(f"{len(errors)} notebook(s) failed:\n" + "\n".join(errors))
    return done


# --------------------------------------------------------------------------- book build
def executed_profiles(root: Path) -> dict[str, str]:
    import nbformat

    out = {}
    for path in sorted((root / "_build" / "executed" / "notebooks").glob("*.ipynb")):
        meta = nbformat.read(str(path), as_version=4).metadata.get("diffctrl", {})
        out[path.stem] = meta.get("profile", "?")
    return out


def stage_site(root: Path, profile: str | None = None) -> Path:
    """Assemble ``_build/site``: config, toc, ``book/``, and the executed notebooks.

    Every notebook of the toc must have been executed, all with one profile (``profile`` if
    given). The site mirrors the repository layout, so launch buttons point at the committed
    ``notebooks/<name>.ipynb`` twins.
    """
    build = root / "_build"
    names = list(book_notebooks(root))
    profiles = executed_profiles(root)
    missing = [n for n in names if n not in profiles]
    if missing:
        raise PipelineError(f"not executed yet: {missing} (run `python -m diffctrl.pipeline "
                            f"execute` first)")
    used = {profiles[n] for n in names}
    if len(used) != 1 or (profile and used != {profile}):
        raise PipelineError(f"executed notebooks mix profiles {sorted(used)}; expected "
                            f"{profile or 'one profile'}: re-execute them")
    tmp = build / "site.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(root / "book", tmp / "book")
    for fname in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / fname, tmp / fname)
    _mkdir(tmp / "notebooks")
    for name in names:
        shutil.copy2(build / "executed" / "notebooks" / f"{name}.ipynb", tmp / "notebooks")
    site = build / "site"
    shutil.rmtree(site, ignore_errors=True)
    os.replace(tmp, site)
    return site


def build_book(root: Path, profile: str | None = None, strict: bool = True) -> Path:
    """Render ``_build/site`` with Jupyter Book (no execution) into ``_build/html``."""
    site = stage_site(root, profile)
    work = root / "_build" / "jb"
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(site),
           "--path-output", str(work), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    print("$", " ".join(cmd), flush=True)
    html_tmp = work / "_build" / "html"
    shutil.rmtree(html_tmp, ignore_errors=True)
    proc = subprocess.run(cmd, cwd=root)
    if proc.returncode != 0 or not (html_tmp / "index.html").exists():
        raise PipelineError(f"jupyter-book build failed (exit {proc.returncode}); "
                            "the previous _build/html is left as it was")
    html = root / "_build" / "html"
    old = root / "_build" / "html.old"
    shutil.rmtree(old, ignore_errors=True)
    if html.exists():
        os.replace(html, old)
    os.replace(html_tmp, html)
    shutil.rmtree(old, ignore_errors=True)
    return html


# --------------------------------------------------------------------------- CLI
def _parse_sets(items: Iterable[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise PipelineError(f"--set takes key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffctrl.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="execute notebooks with papermill")
    ex.add_argument("--profile", default=os.environ.get("PROFILE", "full"),
                    help="parameter profile: smoke or full (default $PROFILE or full)")
    ex.add_argument("--only", nargs="*", default=[], help="notebook names (default: all)")
    ex.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="override profile parameters (JSON values)")
    ex.add_argument("--keep-going", action="store_true", help="run the rest after a failure")
    ex.add_argument("--log-output", action="store_true", help="stream notebook output")
    ex.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS", "1")),
                    help="notebooks executed at once (default $JOBS or 1)")
    bd = sub.add_parser("build", help="stage the executed notebooks and run jupyter-book")
    bd.add_argument("--profile", default=None, help="require this profile in every notebook")
    bd.add_argument("--no-strict", action="store_true", help="do not fail on warnings")
    sub.add_parser("sync", help="rewrite .ipynb twins from the jupytext sources")
    sub.add_parser("check-twins", help="fail if a twin drifted from its source")
    args = parser.parse_args(argv)
    root = repo_root()
    try:
        if args.command == "execute":
            execute_all(root, args.profile, args.only, _parse_sets(args.set), args.keep_going,
                        args.log_output, args.jobs)
        elif args.command == "build":
            print(build_book(root, args.profile, strict=not args.no_strict))
        elif args.command == "sync":
            for path in sync_twins(root):
                print("wrote", path.relative_to(root))
        elif args.command == "check-twins":
            bad = drifted_twins(root)
            if bad:
                raise PipelineError("twins out of sync (run `python -m diffctrl.pipeline sync`): "
                                    + ", ".join(bad))
            print("all twins in sync")
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
