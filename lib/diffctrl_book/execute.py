"""The execute step: jupytext source -> papermill (profile, parameters) -> executed notebook.

Layout of its outputs (never committed)::

    _build/executed/notebooks/<name>.ipynb   executed notebooks (papermill output)
    _build/results/<name>.json               results records (see diffctrl.repro.record)
    _build/reports/<name>.failed.ipynb       the last failed execution, with its traceback
    _build/artifacts/                        shared trained models ($DIFFCTRL_ARTIFACTS)
    _build/rejudge/<name>.{ipynb,json}       the book command's re-run at another seed
    _build/execution.json                    the last execute run: tasks, wall and CPU seconds

``--out DIR`` sends the notebooks, records and ``execution.json`` to ``DIR`` instead.

A notebook whose source, profile, parameters, imported ``diffctrl`` code and package versions
are unchanged is not re-executed (:mod:`.cache`; ``--force`` does). The declared prerequisites
(:mod:`.prerequisites`: the shared digit U-Net) run once, first; the notebooks follow, longest
first, ``--jobs`` at a time with the cores split between them (:mod:`.scheduling`). Every output
is written to a temp path and renamed only on success, so an interrupted or failed run never
leaves a half-written notebook or record that a later build would take as good; the temp folder
under ``_build/tmp`` is removed whatever happens.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from diffctrl.atomic import atomic_write, atomic_write_text
from diffctrl.repro.profiles import PROFILE_NAMES
from diffctrl.repro.record import RESULTS_ENV

from .booktree import (
    PipelineError,
    book_notebooks,
    mkdir,
    notebook_parameters,
    read_source,
    split_sets,
    warn,
)
from .prerequisites import (
    artifacts_env,
    cost_hints,
    declared_prerequisites,
    environ,
    expected_cost,
    run_prerequisite,
)
from .scheduling import Task, TaskResult, cpu_seconds, run_tasks

__all__ = ["KERNEL", "default_threads", "execute_all", "execute_notebook", "outputs_of"]

KERNEL = "python3"


def outputs_of(root: Path, name: str, out_dir: Path | None) -> tuple[Path, Path, Path]:
    """(executed notebook, results record, failure report) paths of notebook ``name``."""
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


def _kernel_threads(threads: int | None) -> int | None:
    if threads:
        return threads
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else None


def _record_device(data: dict | None) -> str | None:
    env_rec = (data or {}).get("environment") or {}
    device = env_rec.get("device")
    if device and env_rec.get("gpu"):
        device = f"{device} ({env_rec['gpu']})"
    return device


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
    temp folder with ``TQDM_DISABLE=1``, :func:`~.prerequisites.artifacts_env` and ``threads``
    OpenMP threads. The executed notebook is cleaned (:mod:`.outputs`: no progress bars, tqdm
    warnings or machine paths; the injected parameters cell hidden, one provenance line) and
    carries the cache key (:mod:`.cache`), as does its record. On failure the stale outputs of
    an earlier run are removed, the failed notebook is kept beside them (``.failed.ipynb``)
    and :class:`~.booktree.PipelineError` carries the traceback.
    """
    import nbformat
    import papermill as pm

    from . import cache, outputs

    if profile not in PROFILE_NAMES:
        raise PipelineError(
            f"unknown profile {profile!r}; choose one of {PROFILE_NAMES}"
        )
    build = root / "_build"
    out, record, failed = outputs_of(root, name, out_dir)
    nb = read_source(source)
    defaults = notebook_parameters(nb)
    run_params: dict = {"profile": profile, **dict(params or {})}
    if overrides:
        run_params["overrides"] = dict(overrides)
    unknown = sorted(set(run_params) - set(defaults))
    if unknown:
        raise PipelineError(f"{source.name}: its parameters cell has no {unknown}")
    if inputs is None:
        inputs = cache.cache_inputs(root, source, profile, run_params)
    key = cache.cache_key(inputs)

    work = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=mkdir(build / "tmp")))
    try:
        src_nb, tmp_out = work / f"{name}.in.ipynb", work / f"{name}.ipynb"
        tmp_results, cwd = work / "results", mkdir(work / "cwd")
        nbformat.write(nb, str(src_nb))
        env = {
            RESULTS_ENV: str(tmp_results),
            "TQDM_DISABLE": "1",
            "PYTHONWARNINGS": None,
            **artifacts_env(root),
        }
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        start, cpu0 = time.perf_counter(), cpu_seconds(children_only=True)
        try:
            with environ(**env):
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
                mkdir(failed.parent)
                os.replace(tmp_out, failed)
            raise PipelineError(
                f"notebook {name!r} failed (profile {profile}); executed copy "
                f"with the error: {failed}\n{exc}"
            ) from exc
        seconds = round(time.perf_counter() - start, 1)
        # the kernel's, once it has exited
        kernel_cpu = round(cpu_seconds(children_only=True) - cpu0, 1)
        n_threads = _kernel_threads(threads)
        executed = nbformat.read(str(tmp_out), as_version=4)
        seed = run_params.get("seed", defaults.get("seed"))
        outputs.mark_provenance(executed, profile, seed, overrides)
        outputs.scrub(
            executed,
            outputs.path_replacements(root, [(str(cwd), "."), (str(work), "<tmp>")]),
        )
        for line in outputs.warnings_in(executed):
            warn(f"{name}: its page shows {line}")
        produced = tmp_results / f"{name}.json"
        data = (
            json.loads(produced.read_text(encoding="utf-8"))
            if produced.exists()
            else None
        )
        device = _record_device(data)
        timing = {
            "seconds": seconds,
            "cpu_seconds": kernel_cpu,
            "threads": n_threads,
            "device": device,
        }
        executed.metadata["diffctrl"] = {
            "profile": profile,
            "source": source.name,
            "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest()[:16],
            "overrides": dict(overrides or {}),
            "params": {
                k: v for k, v in run_params.items() if k not in ("profile", "overrides")
            },
            **timing,
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
            data["execution"] = {"cache_key": key, "inputs": inputs, **timing}
            atomic_write_text(record, json.dumps(data, indent=2, sort_keys=True) + "\n")
        else:
            record.unlink(missing_ok=True)
        atomic_write(out, lambda tmp: nbformat.write(executed, str(tmp)))
        failed.unlink(missing_ok=True)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _notebook_task(root, name, source, profile, overrides, log_output, extra) -> str:
    """A :class:`~.scheduling.Task` body: execute one notebook, return its path."""
    return str(
        execute_notebook(root, name, source, profile, overrides, log_output, **extra)
    )


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
    rejudge: Sequence[str] = (),
    rejudge_seed: int = 3,
) -> list[Path]:
    """Execute the toc's notebooks (or ``only`` those), ``jobs`` at a time.

    ``overrides`` holds the ``--set`` items: parameters-cell names (``seed``, ``device``) go to
    papermill as themselves, the rest override profile parameters. A notebook whose cache key
    (:mod:`.cache`) matches its executed notebook and record is reused, not re-run, unless
    ``force``. ``rejudge`` names notebooks to run again at ``rejudge_seed`` into
    ``_build/rejudge`` (the claims ledger's re-judge), in the same pool. The declared
    prerequisites of the notebooks to run (:mod:`.prerequisites`) run once, first; tasks start
    longest first (:mod:`.scheduling`), each in its own process when ``jobs > 1``, with the
    cores split between them (:func:`default_threads`). The run's summary goes to
    ``_build/execution.json``, or into ``out_dir``.
    """
    from . import cache, timings

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
    try:
        prereqs = declared_prerequisites(root)
    except ValueError as exc:
        raise PipelineError(str(exc)) from exc
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
        defaults = notebook_parameters(read_source(source))
        params, over = split_sets(sets, defaults)
        run_params = {
            "profile": profile,
            **params,
            **({"overrides": over} if over else {}),
        }
        key = cache.cache_key(cache.cache_inputs(root, source, profile, run_params))
        out, record, _ = outputs_of(root, name, folder)
        if not force and cache.cached_key(out, record) == key:
            reused.append((name, kind, out, key))
            continue
        needs = tuple(
            p.name for p in prereqs if name in p.notebooks and p.override not in over
        )
        device = str(params.get("device", defaults.get("device") or "auto"))
        todo.append((name, kind, source, params, over, folder, record, needs, device))
    threads = default_threads(min(jobs, max(1, len(todo))))
    tasks = []
    for name, kind, source, params, over, folder, record, needs, _dev in todo:
        extra = {"params": params, "out_dir": folder, "threads": threads}
        label = name if kind == "notebook" else f"{name} (seed {rejudge_seed})"
        args = (root, name, source, profile, over or None, log_output, extra)
        cost = expected_cost(record, hints.get(name))
        tasks.append(Task(label, kind, _notebook_task, args, needs, cost))
    for p in prereqs:
        users = [d for *_, needs, d in todo if p.name in needs]
        if users:  # on the device of the first notebook that needs it
            args = (root, p.target, profile, users[0], threads)
            cost = hints.get(p.name, 480.0)
            tasks.append(Task(p.name, "prerequisite", run_prerequisite, args, (), cost))
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

    def report(r: TaskResult) -> None:
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
            warn(
                f"{head} failed; the notebooks that need it will try themselves:\n{r.error}"
            )
        else:
            errors.append(r.error)
            print(f"{head} FAILED:\n{r.error}", file=sys.stderr, flush=True)

    n_jobs = min(jobs, len(tasks))
    print(
        f"executing {len(tasks)} task(s) ({profile}): {n_jobs} at a time, "
        f"{threads} thread(s) each, longest first",
        flush=True,
    )
    results = run_tasks(tasks, jobs, report, stop_on_error=not keep_going)
    wall = round(time.perf_counter() - t_start, 1)
    reused_names = [n for n, *_ in reused]
    timings.write_run(
        root / "_build" if out_dir is None else out_dir,
        timings.run_summary(profile, n_jobs, threads, wall, reused_names, results),
    )
    not_run = len(tasks) - len(results)
    if errors:
        tail = f" ({not_run} task(s) not started)" if not_run else ""
        raise PipelineError(
            f"{len(errors)} notebook(s) failed{tail}:\n" + "\n".join(errors)
        )
    return done
