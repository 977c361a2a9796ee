"""The execute step's tasks, run ``jobs`` at a time, longest path first.

A task is a notebook to execute, a notebook re-run at another seed (the claims ledger's
re-judge) or a *prerequisite*: work that several notebooks share and that is done once before
them, today the training of the shared digit U-Net. A task may *need* others; it starts only
once they have finished (failed or not: a notebook whose prerequisite failed does the work
itself, or fails with its own message). Among the tasks ready to start, the one with the
longest remaining path (its expected cost plus the longest chain of tasks waiting for it, the
"upward rank" of list scheduling) starts first, so the U-Net's training and the notebooks after
it are not left for last and the short notebooks fill the other cores.

Each task runs in its own process (``spawn``) when ``jobs > 1``; its wall and CPU seconds (user
and system, its own and its children's: a notebook's kernel is a child) are measured around it.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

__all__ = ["Task", "TaskResult", "cpu_seconds", "priorities", "run_tasks"]


@dataclass(frozen=True)
class Task:
    """One unit of the execute step: ``fn(*args)`` (a module-level, picklable function).

    ``name`` is unique among the tasks, ``kind`` says what it is (``"notebook"``,
    ``"rejudge"``, ``"prerequisite"``), ``needs`` names the tasks that must finish first and
    ``cost`` is its expected CPU-seconds (only the order depends on it).
    """

    name: str
    kind: str
    fn: Callable[..., Any]
    args: tuple = ()
    needs: tuple[str, ...] = ()
    cost: float = 0.0


@dataclass
class TaskResult:
    name: str
    kind: str
    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def cpu_seconds(children_only: bool = False) -> float:
    """User + system CPU seconds so far of this process and its finished children (only the
    children with ``children_only``: a notebook's kernel, once it has exited)."""
    who = (
        (resource.RUSAGE_CHILDREN,)
        if children_only
        else (
            resource.RUSAGE_SELF,
            resource.RUSAGE_CHILDREN,
        )
    )
    return sum(ru.ru_utime + ru.ru_stime for ru in map(resource.getrusage, who))


def _call(task: Task) -> TaskResult:
    """Run one task, measuring it; an exception becomes the result's ``error``."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    try:
        value, error = task.fn(*task.args), None
    except Exception as exc:  # noqa: BLE001 - reported by the caller with the task's name
        value, error = None, f"{type(exc).__name__}: {exc}"
    return TaskResult(
        task.name,
        task.kind,
        value,
        error,
        round(time.perf_counter() - t0, 1),
        round(cpu_seconds() - c0, 1),
    )


def _worker_init() -> None:
    # SIGTERM -> SystemExit, so that a task's own cleanup (temp folders) runs in a worker too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def priorities(tasks: Sequence[Task]) -> dict[str, float]:
    """Upward rank: a task's cost plus the largest rank among the tasks that need it."""
    names = {t.name for t in tasks}
    if len(names) != len(tasks):
        raise ValueError("task names must be unique")
    for t in tasks:
        unknown = set(t.needs) - names
        if unknown:
            raise ValueError(f"task {t.name!r} needs unknown task(s) {sorted(unknown)}")
    waiting: dict[str, list[Task]] = {t.name: [] for t in tasks}
    for t in tasks:
        for n in t.needs:
            waiting[n].append(t)
    rank: dict[str, float] = {}

    def visit(t: Task, seen: tuple[str, ...]) -> float:
        if t.name in seen:
            raise ValueError(f"tasks need each other in a cycle: {[*seen, t.name]}")
        if t.name not in rank:
            after = [visit(w, (*seen, t.name)) for w in waiting[t.name]]
            rank[t.name] = t.cost + max(after, default=0.0)
        return rank[t.name]

    for t in tasks:
        visit(t, ())
    return rank


def run_tasks(
    tasks: Sequence[Task],
    jobs: int = 1,
    on_done: Callable[[TaskResult], None] | None = None,
    stop_on_error: bool = True,
) -> list[TaskResult]:
    """Run ``tasks`` ``jobs`` at a time (module docstring for the order); return the results
    in the order they finished. With ``stop_on_error`` a failed notebook stops new starts
    (running tasks finish); a failed prerequisite never does."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    rank = priorities(tasks)
    pending = sorted(tasks, key=lambda t: -rank[t.name])
    finished: set[str] = set()
    results: list[TaskResult] = []
    stopped = False

    def done(r: TaskResult) -> None:
        nonlocal stopped
        finished.add(r.name)
        results.append(r)
        if r.error is not None and r.kind != "prerequisite" and stop_on_error:
            stopped = True
        if on_done is not None:
            on_done(r)

    def next_ready() -> Task | None:
        for t in pending:
            if all(n in finished for n in t.needs):
                pending.remove(t)
                return t
        return None

    if jobs == 1 or len(tasks) <= 1:
        while pending and not stopped:
            t = next_ready()
            if (
                t is None
            ):  # cannot happen: priorities() rejects cycles and unknown needs
                raise RuntimeError("no task is ready")
            done(_call(t))
        return results

    pool = ProcessPoolExecutor(
        min(jobs, len(tasks)),
        mp_context=mp.get_context("spawn"),
        initializer=_worker_init,
    )
    running: dict = {}
    try:
        while pending or running:
            while not stopped and len(running) < jobs:
                t = next_ready()
                if t is None:
                    break
                running[pool.submit(_call, t)] = t
            if not running:
                break
            ready, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in ready:
                running.pop(fut)
                done(fut.result())
    except (
        BaseException
    ):  # interrupted: stop the workers, which clean up after themselves
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return results
