"""The book pipeline: jupytext source -> papermill (profile) -> executed .ipynb -> Jupyter Book.

Command line (run anywhere inside the repository)::

    diffctrl-book execute --profile smoke [--only NAME ...] [--set key=value ...]
                                        [--jobs N] [--force] [--out DIR]
                                        [--rejudge NAME ... --rejudge-seed S]
    diffctrl-book profile [--executed DIR]  # seconds per notebook and section
    diffctrl-book build [--profile P] [--force]  # stage + jupyter-book -W -n
    diffctrl-book verdicts [--results DIR] [--json]   # the claims ledger
    diffctrl-book sync          # Colab cells, "Re-run" boxes, _config.yml, twins
    diffctrl-book check-twins   # fail if a twin drifted from its source
    diffctrl-book cache-key     # one key over the executed notebooks' keys

``--set seed=7`` sets a parameter of the ``parameters`` cell (``seed``, ``device``); any other
key overrides a profile parameter (``--set T=50``). ``--out DIR`` writes the executed notebooks
and their records to ``DIR/<name>.ipynb`` and ``DIR/<name>.json`` and leaves the book's outputs
alone (``verdicts --results DIR`` then judges them).

Layout of the build tree (never committed)::

    _build/executed/notebooks/<name>.ipynb   executed notebooks (papermill output)
    _build/results/<name>.json               results records (see diffctrl.repro.record)
    _build/reports/<name>.failed.ipynb       the last failed execution, with its traceback
    _build/artifacts/                        shared trained models ($DIFFCTRL_ARTIFACTS)
    _build/rejudge/<name>.{ipynb,json}       the book command's re-run at another seed
    _build/execution.json                    the last execute run: tasks, wall and CPU seconds
    _build/site/                             what Jupyter Book renders (book/, executed notebooks)
    _build/html/                             the rendered book (+ claims.json, _static/artifacts)

Execution cache (:mod:`diffctrl_book.cache`): a notebook whose source, profile, parameters, imported
``diffctrl`` code and package versions are unchanged is not re-executed (``--force`` does).
Scheduling (:mod:`diffctrl_book.scheduling`): the shared digit U-Net is trained once, as its own task,
before the notebooks that load it; tasks start longest path first, ``--jobs`` at a time.

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
from diffctrl.repro import PROFILE_NAMES
from diffctrl.atomic import atomic_write_text
from diffctrl.repro import RESULTS_ENV
from .scheduling import cpu_seconds as process_cpu_seconds
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
    (:mod:`diffctrl_book.outputs`: no progress bars, tqdm warnings or machine paths; the injected
    parameters cell hidden, one provenance line) and carries the cache key (:mod:`diffctrl_book.cache`),
    as does its record. On failure the stale outputs of an earlier run are removed, the failed
    notebook is kept beside them (``.failed.ipynb``) and :class:`~diffctrl_book.booktree.PipelineError` carries the
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
        start, cpu0 = time.perf_counter(), process_cpu_seconds(children_only=True)
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
        cpu_seconds = round(
            process_cpu_seconds(children_only=True) - cpu0, 1
        )  # the kernel's, once it has exited
        n_threads = threads or (
            int(os.environ["OMP_NUM_THREADS"])
            if os.environ.get("OMP_NUM_THREADS", "").isdigit()
            else None
        )
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
        data = (
            json.loads(produced.read_text(encoding="utf-8"))
            if produced.exists()
            else None
        )
        env_rec = (data or {}).get("environment") or {}
        device = env_rec.get("device")
        if device and env_rec.get("gpu"):
            device = f"{device} ({env_rec['gpu']})"
        execution = {
            "cache_key": key,
            "inputs": inputs,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "threads": n_threads,
            "device": device,
        }
        executed.metadata["diffctrl"] = {
            "profile": profile,
            "source": source.name,
            "source_sha256": source_digest(source),
            "overrides": dict(overrides or {}),
            "params": {
                k: v for k, v in run_params.items() if k not in ("profile", "overrides")
            },
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "threads": n_threads,
            "device": device,
            "cache_key": key,
            "record": data is not None,
        }
        if data is not None:
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


def _notebook_task(root, name, source, profile, overrides, log_output, extra) -> str:
    """A :class:`~diffctrl_book.scheduling.Task` body: execute one notebook, return its path."""
    return str(
        execute_notebook(root, name, source, profile, overrides, log_output, **extra)
    )


def _digit_unet_task(root: Path, config, device: str, threads: int) -> dict:
    """The prerequisite task: train (or find) the shared digit U-Net in ``_build/artifacts``
    with ``threads`` threads, as the notebooks that load it would."""
    import torch

    from diffctrl.finetune.pretrained import digit_unet
    from diffctrl.repro import pick_device

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with _environ(**{ARTIFACTS_ENV: str(root / "_build" / "artifacts")}):
            _, _, info = digit_unet(config, device=str(pick_device(device)))
    finally:
        torch.set_num_threads(before)
    return {k: info.get(k) for k in ("origin", "key", "train_cpu_s", "train_wall_s")}


PREREQUISITES = {
    # a notebook importing this file loads the shared digit U-Net: train it once, first
    "lib/diffctrl/finetune/pretrained.py": "digit U-Net",
}


def default_threads(jobs: int) -> int:
    """OpenMP threads per notebook: ``$OMP_NUM_THREADS`` if set, else the cores split over
    ``jobs`` (at least one)."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def cost_hints(root: Path, profile: str) -> dict[str, float]:
    """``[tool.diffctrl.book.cost.<profile>]`` of pyproject.toml: expected CPU-seconds per
    notebook (and per prerequisite), used only to start the longest work first."""
    from . import deps

    try:
        table = deps.pyproject(root).get("tool", {}).get("diffctrl", {}).get("book", {})
    except OSError:  # no pyproject.toml: no hints
        return {}
    return {str(k): float(v) for k, v in table.get("cost", {}).get(profile, {}).items()}


def _expected_cost(record: Path, hint: float | None) -> float:
    """CPU-seconds of the last execution in ``record`` (same profile), else ``hint``, else 60."""
    try:
        ex = json.loads(record.read_text(encoding="utf-8")).get("execution", {})
        if ex.get("cpu_seconds"):
            return float(ex["cpu_seconds"])
    except (OSError, ValueError):
        pass
    return 60.0 if hint is None else hint


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
    rejudge: Sequence[str] = (),
    rejudge_seed: int = 3,
) -> list[Path]:
    """Execute the toc's notebooks (or ``only`` those), ``jobs`` at a time.

    ``overrides`` holds the ``--set`` items: parameters-cell names (``seed``, ``device``) go to
    papermill as themselves, the rest override profile parameters. A notebook whose cache key
    (:mod:`diffctrl_book.cache`) matches its executed notebook and record is reused, not re-run,
    unless ``force``. ``rejudge`` names notebooks to run again at ``rejudge_seed`` into
    ``_build/rejudge`` (the claims ledger's re-judge), in the same run. Work that several
    notebooks share (``PREREQUISITES``: the digit U-Net's training) runs once as its own task
    before them; tasks start longest path first (:mod:`diffctrl_book.scheduling`), each in its own
    process when ``jobs > 1``, with the cores split between them (:func:`default_threads`).
    The run's summary goes to ``_build/execution.json``, or into ``out_dir``
    (:mod:`diffctrl_book.timings`).
    """
    import nbformat  # noqa: F401  (fail early when the book extra is missing)

    from . import cache, deps, timings
    from .scheduling import Task, run_tasks

    if profile not in PROFILE_NAMES:
        raise PipelineError(
            f"unknown profile {profile!r}; choose one of {PROFILE_NAMES}"
        )
    notebooks = book_notebooks(root)
    unknown = sorted((set(only) | set(rejudge)) - set(notebooks))
    if unknown:
        raise PipelineError(f"unknown notebook(s) {unknown}; known: {list(notebooks)}")
    if jobs < 1:
        raise PipelineError(f"jobs must be >= 1, got {jobs}")
    t_start = time.perf_counter()
    hints = cost_hints(root, profile)
    runs = [  # (name, kind, --set items, output folder)
        (n, "notebook", dict(overrides or {}), out_dir)
        for n in notebooks
        if not only or n in only
    ]
    runs += [
        (
            n,
            "rejudge",
            {**(overrides or {}), "seed": rejudge_seed},
            root / "_build" / "rejudge",
        )
        for n in rejudge
    ]
    todo, reused = [], []
    for name, kind, sets, folder in runs:
        source = notebooks[name]
        nb = read_source(source)
        params, over = split_sets(sets, parameter_names(nb))
        run_params = {
            "profile": profile,
            **params,
            **({"overrides": over} if over else {}),
        }
        inputs = cache.cache_inputs(root, source, profile, run_params)
        key = cache.cache_key(inputs)
        out, record, _ = _outputs(root, name, folder)
        if not force and cache.cached_key(out, record) == key:
            reused.append((name, kind, out, key))
            continue
        files = {str(p.relative_to(root)) for p in deps.source_files(root, source)}
        needs = tuple(PREREQUISITES[f] for f in sorted(files & set(PREREQUISITES)))
        if "unet" in over:  # a notebook told to use another U-Net trains its own
            needs = ()
        device = str(params.get("device", parameter_defaults(nb).get("device", "auto")))
        todo.append((name, kind, source, params, over, folder, record, needs, device))
    threads = default_threads(min(jobs, max(1, len(todo))))
    tasks = []
    for name, kind, source, params, over, folder, record, needs, _dev in todo:
        extra = {"params": params, "out_dir": folder, "threads": threads}
        label = name if kind == "notebook" else f"{name} (seed {rejudge_seed})"
        args = (root, name, source, profile, over or None, log_output, extra)
        cost = _expected_cost(record, hints.get(name))
        tasks.append(Task(label, kind, _notebook_task, args, needs, cost))
    for prereq in sorted({n for t in tasks for n in t.needs}):
        device = next(d for *_, needs, d in todo if prereq in needs)
        config = profile
        tasks.append(
            Task(
                prereq,
                "prerequisite",
                _digit_unet_task,
                (root, config, device, threads),
                (),
                hints.get(prereq, 480.0),
            )
        )
    done = []
    for name, kind, out, key in reused:
        done.append(out)
        what = "" if kind == "notebook" else f" re-run at seed {rejudge_seed}"
        print(
            f"{name}{what} ({profile}) unchanged (cache key {key}): reusing its executed "
            "notebook and record (--force re-executes)",
            flush=True,
        )
    if not tasks:
        return done
    errors: list[str] = []
    count = [0]

    def report(r) -> None:
        count[0] += 1
        head = f"[{count[0]}/{len(tasks)}] {r.name} ({r.kind}, {profile})"
        if r.error is None:
            if r.kind != "prerequisite":
                done.append(Path(r.value))
            print(
                f"{head} ok in {r.seconds:.1f} s ({r.cpu_seconds:.0f} CPU-s)",
                flush=True,
            )
        elif r.kind == "prerequisite":
            _warn(
                f"{head} failed; the notebooks that need it will try themselves:\n{r.error}"
            )
        else:
            errors.append(r.error)
            print(f"{head} FAILED:\n{r.error}", file=sys.stderr, flush=True)

    print(
        f"executing {len(tasks)} task(s) ({profile}): {min(jobs, len(tasks))} at a time, "
        f"{threads} thread(s) each, longest first",
        flush=True,
    )
    results = run_tasks(tasks, jobs, report, stop_on_error=not keep_going)
    # the run's summary, beside the outputs it wrote
    wall = round(time.perf_counter() - t_start, 1)
    start = os.environ.get("DIFFCTRL_BOOK_START", "")
    timings.write_run(
        root / "_build" if out_dir is None else out_dir,
        {
            "profile": profile,
            "jobs": min(jobs, len(tasks)),
            "threads": threads,
            "cpu_count": os.cpu_count(),
            "wall_s": wall,
            "cpu_s": round(sum(r.cpu_seconds for r in results), 1),
            "reused": [n for n, *_ in reused],
            "since_command_start_s": (
                round(time.time() - float(start), 1) if start.isdigit() else None
            ),
            "tasks": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "seconds": r.seconds,
                    "cpu_seconds": r.cpu_seconds,
                    "ok": r.error is None,
                    **(r.value if r.kind == "prerequisite" and r.value else {}),
                }
                for r in results
            ],
        },
    )
    not_run = len(tasks) - len(results)
    if errors:
        tail = f" ({not_run} task(s) not started)" if not_run else ""
        raise PipelineError(
            f"{len(errors)} notebook(s) failed{tail}:\n" + "\n".join(errors)
        )
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
    from .ledger import ledger, ledger_text

    folder = Path(results) if results is not None else root / "_build" / "results"
    if not folder.is_dir():
        raise PipelineError(
            f"no results folder {folder} (run `diffctrl-book "
            "execute` first, or pass --results DIR)"
        )
    order = list(book_notebooks(root, warn=False)) if root is not None else None
    rows = ledger(folder, order=order)
    return json.dumps(rows, indent=2, sort_keys=True) if as_json else ledger_text(rows)


def profile(root: Path, executed: Path | None = None, min_seconds: float = 1.0) -> str:
    """Per-notebook and per-section seconds of the executed notebooks in ``executed``
    (default ``_build/executed/notebooks``; :mod:`diffctrl_book.timings`), and the summary of the
    execute run that wrote them (``_build/execution.json``, or ``execution.json`` in an
    ``--out`` folder)."""
    from . import timings

    folder = (
        Path(executed)
        if executed is not None
        else root / "_build" / "executed" / "notebooks"
    )
    if not folder.is_dir():
        raise PipelineError(f"no executed notebooks in {folder}")
    order = [n for n in book_notebooks(root, warn=False)]
    rows = timings.profile_rows(folder, order=order)
    if not rows:
        raise PipelineError(f"no executed notebook of the book in {folder}")
    run = timings.read_run(root / "_build" if executed is None else folder)
    return timings.profile_text(rows, run, min_seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="diffctrl-book",
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
    ex.add_argument(
        "--rejudge",
        nargs="*",
        default=[],
        metavar="NAME",
        help="also run these notebooks at --rejudge-seed into _build/rejudge",
    )
    ex.add_argument(
        "--rejudge-seed", type=int, default=3, help="seed of --rejudge (default 3)"
    )
    pr = sub.add_parser(
        "profile", help="print where the execution time goes, per notebook and section"
    )
    pr.add_argument(
        "--executed",
        type=Path,
        default=None,
        help="folder of executed notebooks (default _build/executed/notebooks)",
    )
    pr.add_argument(
        "--min-seconds",
        type=float,
        default=1.0,
        help="leave out sections shorter than this (default 1)",
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
                rejudge=args.rejudge,
                rejudge_seed=args.rejudge_seed,
            )
        elif args.command == "profile":
            print(profile(root, args.executed, args.min_seconds))
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
                    "twins out of sync (run `diffctrl-book sync`): "
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
