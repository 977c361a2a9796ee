"""Where the book's execution time goes: per notebook and per section, read from the executed
notebooks.

papermill records every code cell's wall time in the executed notebook
(``cell.metadata.papermill.duration``); the execute step adds the notebook's wall and CPU seconds,
its OpenMP threads and its device (``metadata.diffctrl``). A *section* is the cells under one
Markdown heading (level 1 or 2); the cells before the first ``##`` heading are the set-up. The
execute step also writes ``_build/execution.json`` (:func:`write_run`): the run's wall time,
its jobs and threads, and the tasks it ran, prerequisites (the shared digit U-Net's training)
included. ``diffctrl-book profile`` prints the tables; the build renders them as
the *Execution profile* page (:func:`profile_page`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from diffctrl.atomic import atomic_write_text

__all__ = [
    "notebook_profile",
    "profile_page",
    "profile_rows",
    "profile_text",
    "read_run",
    "run_summary",
    "write_run",
]

RUN_FILE = "execution.json"
_HEADING = re.compile(r"^(#{1,2})\s+(.+?)\s*$", re.M)


def _first_code_line(source: str) -> str:
    """The first line of a cell that is neither blank, a comment nor a decorator."""
    for line in source.splitlines():
        s = line.strip()
        if s and not s.startswith(("#", "@", "%")):
            return s if len(s) <= 70 else s[:67] + "..."
    return "(comments only)"


def notebook_profile(nb: dict) -> dict[str, Any]:
    """One executed notebook's timing: ``seconds``, ``cpu_seconds``, ``threads``, ``device``,
    ``profile`` (from ``metadata.diffctrl``) and ``sections``, each with ``title``,
    ``seconds`` (sum of its cells' papermill durations), ``cells`` and its slowest cell
    (``top_line``, ``top_seconds``)."""
    meta = (nb.get("metadata") or {}).get("diffctrl", {})
    sections: list[dict[str, Any]] = []
    current = {"title": "set-up", "seconds": 0.0, "cells": 0, "top_seconds": -1.0}
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        if cell.get("cell_type") == "markdown":
            heads = [title for level, title in _HEADING.findall(src) if level == "##"]
            if heads:
                sections.append(current)
                current = {
                    "title": heads[-1],
                    "seconds": 0.0,
                    "cells": 0,
                    "top_seconds": -1.0,
                }
            continue
        if cell.get("cell_type") != "code":
            continue
        dur = ((cell.get("metadata") or {}).get("papermill") or {}).get("duration")
        if dur is None:
            continue
        current["seconds"] += float(dur)
        current["cells"] += 1
        if float(dur) > current["top_seconds"]:
            current["top_seconds"] = float(dur)
            current["top_line"] = _first_code_line(src)
    sections.append(current)
    sections = [s for s in sections if s["cells"]]
    for s in sections:
        s["seconds"] = round(s["seconds"], 1)
        s["top_seconds"] = round(s["top_seconds"], 1)
    return {
        "profile": meta.get("profile"),
        "seconds": meta.get("seconds"),
        "cpu_seconds": meta.get("cpu_seconds"),
        "threads": meta.get("threads"),
        "device": meta.get("device"),
        "sections": sections,
    }


def profile_rows(
    folder: Path, order: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """:func:`notebook_profile` of every executed notebook in ``folder`` (in ``order`` when
    given, notebooks missing from ``folder`` skipped), each with its ``notebook`` name."""
    folder = Path(folder)
    names = (
        list(order)
        if order is not None
        else sorted(p.stem for p in folder.glob("*.ipynb") if ".failed" not in p.name)
    )
    rows = []
    for name in names:
        path = folder / f"{name}.ipynb"
        if not path.exists():
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        rows.append({"notebook": name, **notebook_profile(nb)})
    return rows


def run_summary(
    profile: str,
    jobs: int,
    threads: int,
    wall_s: float,
    reused: Sequence[str],
    results: Sequence[Any],
) -> dict[str, Any]:
    """The execute step's summary: its profile, jobs, threads, cores, wall and CPU seconds, the
    notebooks it reused, and one entry per task it ran (``results``: the
    :class:`~.scheduling.TaskResult` list; a prerequisite adds what its callable reported).
    ``$DIFFCTRL_BOOK_START`` (set by the book command) gives the time since it started."""
    start = os.environ.get("DIFFCTRL_BOOK_START", "")
    return {
        "profile": profile,
        "jobs": jobs,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "wall_s": wall_s,
        "cpu_s": round(sum(r.cpu_seconds for r in results), 1),
        "reused": list(reused),
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
    }


def write_run(build: Path, run: dict[str, Any]) -> Path:
    """Write the execute step's summary to ``build/execution.json`` (atomically)."""
    path = Path(build) / RUN_FILE
    atomic_write_text(path, json.dumps(run, indent=2, sort_keys=True) + "\n")
    return path


def read_run(build: Path) -> dict[str, Any] | None:
    """The last execute run's summary (:func:`write_run`), or ``None``."""
    path = Path(build) / RUN_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _fmt(v, spec=".0f") -> str:
    return "–" if v is None else format(v, spec)


def _notebook_table(rows: Iterable[dict]) -> list[str]:
    out = [
        "| Notebook | Profile | Wall s | CPU s | Threads | Device |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    total_wall = total_cpu = 0.0
    for r in rows:
        out.append(
            f"| {r['notebook']} | {r['profile'] or '–'} | {_fmt(r['seconds'])} | "
            f"{_fmt(r['cpu_seconds'])} | {_fmt(r['threads'], 'd')} | {r['device'] or '–'} |"
        )
        total_wall += r["seconds"] or 0.0
        total_cpu += r["cpu_seconds"] or 0.0
    out.append(f"| **all notebooks** | | {total_wall:.0f} | {total_cpu:.0f} | | |")
    return out


def _section_table(rows: Iterable[dict], min_seconds: float) -> list[str]:
    out = [
        "| Notebook | Section | Seconds | Slowest cell (seconds) |",
        "| --- | --- | ---: | --- |",
    ]
    for r in rows:
        for s in r["sections"]:
            if s["seconds"] < min_seconds:
                continue
            line = s.get("top_line", "").replace("|", "\\|")
            title = s["title"].replace("|", "\\|")
            out.append(
                f"| {r['notebook']} | {title} | "
                f"{s['seconds']:.1f} | `{line}` ({s['top_seconds']:.1f}) |"
            )
    return out


def _run_table(run: dict[str, Any]) -> list[str]:
    out = [
        "| Task | Kind | Wall s | CPU s |",
        "| --- | --- | ---: | ---: |",
    ]
    for t in run.get("tasks", []):
        out.append(
            f"| {t['name']} | {t['kind']} | {_fmt(t.get('seconds'))} | "
            f"{_fmt(t.get('cpu_seconds'))} |"
        )
    return out


def _run_line(run: dict[str, Any]) -> str:
    line = (
        f"The last execute run (profile {run.get('profile')}) ran {len(run.get('tasks', []))} "
        f"task(s), {run.get('jobs')} at a time with {run.get('threads')} thread(s) each, on "
        f"{run.get('cpu_count')} core(s), in {_fmt(run.get('wall_s'))} s wall "
        f"({_fmt(run.get('cpu_s'))} CPU-s); it reused {len(run.get('reused', []))} notebook(s) "
        "from the execution cache."
    )
    if run.get("since_command_start_s") is not None:
        line += (
            " The book command had been running for "
            f"{run['since_command_start_s']:.0f} s (install included) when it ended."
        )
    return line


def profile_text(
    rows: list[dict], run: dict[str, Any] | None = None, min_seconds: float = 1.0
) -> str:
    """The per-notebook and per-section tables (Markdown), and the run's summary."""
    parts = ["## Per notebook", "", *_notebook_table(rows), ""]
    parts += [f"## Per section (sections of at least {min_seconds:g} s)", ""]
    parts += [*_section_table(rows, min_seconds), ""]
    if run:
        parts += ["## Last execute run", "", _run_line(run), "", *_run_table(run), ""]
    return "\n".join(parts)


def profile_page(rows: list[dict], run: dict[str, Any] | None = None) -> str:
    """The book's *Execution profile* page (MyST), generated by the build."""
    head = [
        "# Execution profile",
        "",
        "Where the time of this book's regeneration goes, read from the executed notebooks "
        "that built these pages (this page is generated by `diffctrl-book "
        "build`; `diffctrl-book profile` prints the same tables). Wall seconds "
        "are papermill's per-cell durations summed by section; CPU seconds are the kernel's "
        "user and system time. Notebooks run two or more at a time with the cores split "
        "between them (the threads column), so the run's wall time is less than the sum of "
        "the notebooks'. The shared digit U-Net is trained once per build, as its own task "
        "before the two notebooks that load it (the task table below). Timings depend on the "
        "machine; the device column and the Reproducibility page say which one built this "
        "book.",
        "",
    ]
    gpus = sorted(
        {r["device"] for r in rows if str(r.get("device") or "").startswith("cuda")}
    )
    if gpus:
        gpu = f"Notebooks of this build ran on {', '.join(gpus)}."
    else:
        gpu = (
            "No notebook of this build ran on a GPU, so this page does not measure the GPU "
            "path. `bash scripts/gpu_book.sh` runs the full profile on a CUDA machine (every "
            'notebook\'s `device = "auto"` picks the GPU) and prints these tables for it.'
        )
    return "\n".join(head) + gpu + "\n\n" + profile_text(rows, run) + "\n"
