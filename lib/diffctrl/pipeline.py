"""The book pipeline: jupytext source -> papermill (profile) -> executed .ipynb -> Jupyter Book.

Command line (run anywhere inside the repository)::

    python -m diffctrl.pipeline execute --profile smoke [--only NAME ...] [--set key=value ...]
                                        [--jobs N] [--force] [--out DIR]
    python -m diffctrl.pipeline build [--profile P] [--force]  # stage + jupyter-book -W -n
    python -m diffctrl.pipeline verdicts [--results DIR] [--json]   # the claims ledger
    python -m diffctrl.pipeline sync          # Colab cells, "Re-run" boxes, _config.yml, twins
    python -m diffctrl.pipeline check-twins   # fail if a twin drifted from its source
    python -m diffctrl.pipeline cache-key     # one key over the executed notebooks' keys

``--set seed=7`` sets a parameter of the ``parameters`` cell (``seed``, ``device``); any other
key overrides a profile parameter (``--set T=50``). ``--out DIR`` writes the executed notebooks
and their records to ``DIR/<name>.ipynb`` and ``DIR/<name>.json`` and leaves the book's outputs
alone (``verdicts --results DIR`` then judges them).

Layout of the build tree (never committed)::

    _build/executed/notebooks/<name>.ipynb   executed notebooks (papermill output)
    _build/results/<name>.json               results records (see diffctrl.results)
    _build/reports/<name>.failed.ipynb       the last failed execution, with its traceback
    _build/artifacts/                        shared trained models ($DIFFCTRL_ARTIFACTS)
    _build/rejudge/<name>.{ipynb,json}       the book command's re-run at another seed
    _build/site/                             what Jupyter Book renders (book/, executed notebooks)
    _build/html/                             the rendered book (+ claims.json, _static/artifacts)

Execution cache (:mod:`diffctrl.cache`): a notebook whose source, profile, parameters, imported
``diffctrl`` code and package versions are unchanged is not re-executed (``--force`` does).

Every output is written to a temp path and renamed only on success, so an interrupted or
failed run never leaves a half-written notebook, record or site that a later build would take
as good; the temp folder under ``_build/tmp`` is removed whatever happens.

A notebook source in ``notebooks/`` that ``_toc.yml`` does not list (an untracked draft, say)
is skipped with a warning by every command; a toc entry without a source is an error.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .booktree import (  # noqa: F401  (re-exported: the pipeline's public names)
    SOURCE_SUFFIXES,
    PipelineError,
    _atomic_write_notebook,
    _mkdir,
    _warn,
    book_notebooks,
    drifted_twins,
    notebook_sources,
    read_source,
    repo_root,
    sync_all,
    sync_twins,
    toc_files,
    twin_path,
    untracked_sources,
)
from .profiles import PROFILE_NAMES
from .results import RESULTS_ENV, atomic_write_text
from .site import (  # noqa: F401
    CLAIMS_PAGE,
    build_book,
    combined_cache_key,
    executed_profiles,
    publish_extras,
    site_digest,
    stage_site,
)

KERNEL = "python3"
ARTIFACTS_ENV = "DIFFCTRL_ARTIFACTS"


# --------------------------------------------------------------------------- execution
def _parameters_cell(nb):
    return next(
        c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])
    )


def parameter_names(nb) -> set[str]:
    """Names assigned in the notebook's parameters cell."""
    return set(parameter_defaults(nb))


def parameter_defaults(nb) -> dict[str, Any]:
    """``{name: default}`` of the parameters cell (``None`` where not a literal)."""
    out: dict[str, Any] = {}
    for node in ast.parse(_parameters_cell(nb).source).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else ([node.target] if isinstance(node, ast.AnnAssign) else [])
        )
        for t in targets:
            if isinstance(t, ast.Name):
                try:
                    out[t.id] = ast.literal_eval(node.value) if node.value else None
                except ValueError:
                    out[t.id] = None
    return out


def source_digest(source: Path) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()[:16]


def split_sets(sets: dict[str, Any], names: Iterable[str]) -> tuple[dict, dict]:
    """``--set`` items -> (papermill parameters, profile overrides): a name of the parameters
    cell (``seed``, ``device``) is passed as itself, anything else as an override."""
    names = set(names) - {"profile", "overrides"}
    direct = {k: v for k, v in sets.items() if k in names}
    overrides = {k: v for k, v in sets.items() if k not in names}
    return direct, overrides


@contextlib.contextmanager
def _environ(**values: str | None) -> Iterator[None]:
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


def _outputs(root: Path, name: str, out_dir: Path | None) -> tuple[Path, Path, Path]:
    """(executed notebook, results record, failure report) paths of ``name``."""
    if out_dir is not None:
        out_dir = Path(out_dir)
        return (
            out_dir / f"{name}.ipynb",
            out_dir / f"{name}.json",
            out_dir / f"{name}.failed.ipynb",
        )
    build = root / "_build"
    return (
        build / "executed" / "notebooks" / f"{name}.ipynb",
        build / "results" / f"{name}.json",
        build / "reports" / f"{name}.failed.ipynb",
    )


def execute_notebook(
    root: Path,
    name: str,
    source: Path,
    profile: str,
    overrides: dict | None = None,
    log_output: bool = False,
    *,
    params: dict | None = None,
    out_dir: Path | None = None,
    inputs: dict | None = None,
    threads: int | None = None,
) -> Path:
    """Execute one notebook with papermill; return the executed notebook's path.

    ``params`` are further papermill parameters (``seed``, ``device``); ``out_dir`` sends the
    notebook and its record to ``out_dir`` instead of ``_build``. The kernel runs in a neutral
    temp folder with ``TQDM_DISABLE=1``, ``$DIFFCTRL_ARTIFACTS`` = ``_build/artifacts`` and
    ``threads`` OpenMP threads. The run goes to a temp notebook and a temp results folder,
    moved into place only when every cell succeeded. The executed notebook is cleaned
    (:mod:`diffctrl.outputs`: no progress bars, tqdm warnings or machine paths; the injected
    parameters cell hidden, one provenance line) and carries the cache key (:mod:`diffctrl.cache`),
    as does its record. On failure the stale outputs of an earlier run are removed, the failed
    notebook is kept beside them (``.failed.ipynb``) and :class:`~diffctrl.booktree.PipelineError` carries the
    traceback. The temp folder is removed whatever happens (interrupt included).
    """
    import nbformat
    import papermill as pm

    from . import cache, outputs

    if profile not in PROFILE_NAMES:
        raise PipelineError(
            f"unknown profile {profile!r}; choose one of {PROFILE_NAMES}"
        )
    build = root / "_build"
    out, record, failed = _outputs(root, name, out_dir)
    nb = read_source(source)
    run_params: dict = {"profile": profile, **dict(params or {})}
    if overrides:
        run_params["overrides"] = dict(overrides)
    unknown = sorted(set(run_params) - parameter_names(nb))
    if unknown:
        raise PipelineError(f"{source.name}: its parameters cell has no {unknown}")
    if inputs is None:
        inputs = cache.cache_inputs(root, source, profile, run_params)
    key = cache.cache_key(inputs)

    work = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=_mkdir(build / "tmp")))
    try:
        src_nb, tmp_out = work / f"{name}.in.ipynb", work / f"{name}.ipynb"
        tmp_results, cwd = work / "results", _mkdir(work / "cwd")
        nbformat.write(nb, str(src_nb))
        env = {
            RESULTS_ENV: str(tmp_results),
            "TQDM_DISABLE": "1",
            ARTIFACTS_ENV: str(build / "artifacts"),
            "PYTHONWARNINGS": None,
        }
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        start = time.perf_counter()
        try:
            with _environ(**env):
                pm.execute_notebook(
                    str(src_nb),
                    str(tmp_out),
                    parameters=run_params,
                    kernel_name=KERNEL,
                    cwd=str(cwd),
                    progress_bar=False,
                    log_output=log_output,
                )
        except Exception as exc:  # papermill's error carries the cell's traceback
            out.unlink(missing_ok=True)
            record.unlink(missing_ok=True)
            if tmp_out.exists():
                _mkdir(failed.parent)
                os.replace(tmp_out, failed)
            raise PipelineError(
                f"notebook {name!r} failed (profile {profile}); executed copy "
                f"with the error: {failed}\n{exc}"
            ) from exc
        seconds = round(time.perf_counter() - start, 1)
        executed = nbformat.read(str(tmp_out), as_version=4)
        seed = run_params.get("seed", parameter_defaults(nb).get("seed"))
        outputs.mark_provenance(executed, profile, seed, overrides)
        outputs.scrub(
            executed,
            outputs.path_replacements(root, [(str(cwd), "."), (str(work), "<tmp>")]),
        )
        for line in outputs.warnings_in(executed):
            _warn(f"{name}: its page shows {line}")
        produced = tmp_results / f"{name}.json"
        execution = {"cache_key": key, "inputs": inputs, "seconds": seconds}
        executed.metadata["diffctrl"] = {
            "profile": profile,
            "source": source.name,
            "source_sha256": source_digest(source),
            "overrides": dict(overrides or {}),
            "params": {
                k: v for k, v in run_params.items() if k not in ("profile", "overrides")
            },
            "seconds": seconds,
            "cache_key": key,
            "record": produced.exists(),
        }
        if produced.exists():
            data = json.loads(produced.read_text(encoding="utf-8"))
            if data.get("profile") != profile:
                raise PipelineError(
                    f"{name}: results record says profile "
                    f"{data.get('profile')!r}, expected {profile!r}"
                )
            data["seconds"] = seconds
            data["execution"] = execution
            atomic_write_text(record, json.dumps(data, indent=2, sort_keys=True) + "\n")
        else:
            record.unlink(missing_ok=True)
        _atomic_write_notebook(nbformat, executed, out)
        failed.unlink(missing_ok=True)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _execute_one(args) -> tuple[str, Path | None, str | None, float]:
    root, name, source, profile, overrides, log_output, extra = args
    t0 = time.perf_counter()
    try:
        out = execute_notebook(
            root, name, source, profile, overrides, log_output, **extra
        )
    except PipelineError as exc:
        return name, None, str(exc), time.perf_counter() - t0
    return name, out, None, time.perf_counter() - t0


def _worker_init() -> None:
    # SIGTERM -> SystemExit, so that execute_notebook's cleanup runs in a worker too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def default_threads(jobs: int) -> int:
    """OpenMP threads per notebook: ``$OMP_NUM_THREADS`` if set, else the cores split over
    ``jobs`` (at least one)."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def execute_all(
    root: Path,
    profile: str,
    only: Sequence[str] = (),
    overrides: dict | None = None,
    keep_going: bool = False,
    log_output: bool = False,
    jobs: int = 1,
    *,
    force: bool = False,
    out_dir: Path | None = None,
) -> list[Path]:
    """Execute the toc's notebooks (or ``only`` those), ``jobs`` at a time.

    ``overrides`` holds the ``--set`` items: parameters-cell names (``seed``, ``device``) go to
    papermill as themselves, the rest override profile parameters. A notebook whose cache key
    (:mod:`diffctrl.cache`) matches its executed notebook and record is reused, not re-run,
    unless ``force``. With ``jobs > 1`` each notebook runs in its own process and kernel, with
    the cores split between them (:func:`default_threads`).
    """
    import nbformat  # noqa: F401  (fail early when the book extra is missing)

    from . import cache

    if profile not in PROFILE_NAMES:
        raise PipelineError(
            f"unknown profile {profile!r}; choose one of {PROFILE_NAMES}"
        )
    notebooks = book_notebooks(root)
    unknown = sorted(set(only) - set(notebooks))
    if unknown:
        raise PipelineError(f"unknown notebook(s) {unknown}; known: {list(notebooks)}")
    if jobs < 1:
        raise PipelineError(f"jobs must be >= 1, got {jobs}")
    threads = default_threads(jobs)
    todo, reused = [], []
    for name, source in notebooks.items():
        if only and name not in only:
            continue
        nb = read_source(source)
        params, over = split_sets(dict(overrides or {}), parameter_names(nb))
        run_params = {
            "profile": profile,
            **params,
            **({"overrides": over} if over else {}),
        }
        inputs = cache.cache_inputs(root, source, profile, run_params)
        key = cache.cache_key(inputs)
        out, record, _ = _outputs(root, name, out_dir)
        if not force and cache.cached_key(out, record) == key:
            reused.append((name, out, key))
            continue
        extra = {
            "params": params,
            "out_dir": out_dir,
            "inputs": inputs,
            "threads": threads,
        }
        todo.append((root, name, source, profile, over or None, log_output, extra))
    done = []
    for name, out, key in reused:
        done.append(out)
        print(
            f"{name} ({profile}) unchanged (cache key {key}): reusing its executed notebook "
            f"and record (--force re-executes)",
            flush=True,
        )
    errors: list[str] = []

    def report(i, result):
        name, out, err, secs = result
        if err is None:
            done.append(out)
            print(
                f"[{i}/{len(todo)}] {name} ({profile}) ok in {secs:.1f} s", flush=True
            )
        else:
            errors.append(err)
            print(
                f"[{i}/{len(todo)}] {name} ({profile}) FAILED:\n{err}",
                file=sys.stderr,
                flush=True,
            )

    if todo and (jobs == 1 or len(todo) == 1):
        for i, args in enumerate(todo, 1):
            print(f"[{i}/{len(todo)}] {args[1]} ({profile}) ...", flush=True)
            report(i, _execute_one(args))
            if errors and not keep_going:
                break
    elif todo:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        print(
            f"executing {len(todo)} notebooks, {jobs} at a time, {threads} thread(s) each "
            f"({profile})",
            flush=True,
        )
        pool = ProcessPoolExecutor(
            min(jobs, len(todo)),
            mp_context=mp.get_context("spawn"),
            initializer=_worker_init,
        )
        try:
            futures = [pool.submit(_execute_one, args) for args in todo]
            for i, fut in enumerate(as_completed(futures), 1):
                report(i, fut.result())
        except (
            BaseException
        ):  # interrupted: stop the workers, which remove their temp folders
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
    if errors:
        raise PipelineError(f"{len(errors)} notebook(s) failed:\n" + "\n".join(errors))
    return done


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


def verdicts(
    root: Path | None, results: Path | None = None, as_json: bool = False
) -> str:
    """The claims ledger of the records in ``results`` (default ``_build/results``)."""
    from .claims import ledger, ledger_text

    folder = Path(results) if results is not None else root / "_build" / "results"
    if not folder.is_dir():
        raise PipelineError(
            f"no results folder {folder} (run `python -m diffctrl.pipeline "
            "execute` first, or pass --results DIR)"
        )
    order = list(book_notebooks(root, warn=False)) if root is not None else None
    rows = ledger(folder, order=order)
    return json.dumps(rows, indent=2, sort_keys=True) if as_json else ledger_text(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m diffctrl.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="execute notebooks with papermill")
    ex.add_argument(
        "--profile",
        default=os.environ.get("PROFILE", "full"),
        help="parameter profile: smoke or full (default $PROFILE or full)",
    )
    ex.add_argument(
        "--only", nargs="*", default=[], help="notebook names (default: all)"
    )
    ex.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="seed=/device= or a profile parameter (JSON values)",
    )
    ex.add_argument(
        "--keep-going", action="store_true", help="run the rest after a failure"
    )
    ex.add_argument("--log-output", action="store_true", help="stream notebook output")
    ex.add_argument(
        "--jobs",
        type=int,
        default=int(os.environ.get("JOBS", "1")),
        help="notebooks executed at once (default $JOBS or 1)",
    )
    ex.add_argument("--force", action="store_true", help="re-execute even when cached")
    ex.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write executed notebooks and records to DIR (the book's untouched)",
    )
    bd = sub.add_parser(
        "build", help="stage the executed notebooks and run jupyter-book"
    )
    bd.add_argument(
        "--profile", default=None, help="require this profile in every notebook"
    )
    bd.add_argument("--no-strict", action="store_true", help="do not fail on warnings")
    bd.add_argument(
        "--force", action="store_true", help="render even if nothing changed"
    )
    vd = sub.add_parser(
        "verdicts", help="print the claims ledger from the results records"
    )
    vd.add_argument(
        "--results",
        type=Path,
        default=None,
        help="folder of results records (default _build/results)",
    )
    vd.add_argument(
        "--json", action="store_true", help="print JSON rows instead of a table"
    )
    sub.add_parser(
        "sync", help="regenerate Colab cells, Re-run boxes, _config.yml and twins"
    )
    sub.add_parser("check-twins", help="fail if a twin drifted from its source")
    sub.add_parser(
        "cache-key", help="print one key over every executed notebook's cache key"
    )
    args = parser.parse_args(argv)
    signal.signal(
        signal.SIGTERM, lambda *_: sys.exit(143)
    )  # clean up temp folders on kill
    try:
        if args.command == "verdicts":
            try:
                root = repo_root()
            except PipelineError:
                if args.results is None:
                    raise
                root = None
            print(verdicts(root, args.results, args.json))
            return 0
        root = repo_root()
        if args.command == "execute":
            out = (
                args.out
                if args.out is None or args.out.is_absolute()
                else Path.cwd() / args.out
            )
            execute_all(
                root,
                args.profile,
                args.only,
                _parse_sets(args.set),
                args.keep_going,
                args.log_output,
                args.jobs,
                force=args.force,
                out_dir=out,
            )
        elif args.command == "build":
            print(
                build_book(
                    root, args.profile, strict=not args.no_strict, force=args.force
                )
            )
        elif args.command == "sync":
            for path in sync_all(root):
                print("wrote", path.relative_to(root))
        elif args.command == "cache-key":
            print(combined_cache_key(root))
        elif args.command == "check-twins":
            bad = drifted_twins(root)
            if bad:
                raise PipelineError(
                    "twins out of sync (run `python -m diffctrl.pipeline sync`): "
                    + ", ".join(bad)
                )
            print("all twins in sync")
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
