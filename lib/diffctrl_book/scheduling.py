"""The execute step's tasks, run ``jobs`` at a time, longest first.

A task is a notebook to execute, a notebook re-run at another seed (the claims ledger's
re-judge) or a *prerequisite*: work that several notebooks share, declared in
``pyproject.toml`` (:mod:`.prerequisites`: the training of the shared digit U-Net) and done once
before them. The order is a queue: prerequisites first, then the other tasks, each group
longest expected cost first (the cost is the task's last recorded CPU-seconds, else a hint). A
task that needs a prerequisite is skipped in the queue until that prerequisite has finished
(failed or not: a notebook whose prerequisite failed does the work itself, or fails with its
own message); meanwhile the other cores take the next tasks.

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

__all__ = ["Task", "TaskResult", "cpu_seconds", "queue_order", "run_tasks"]


@dataclass(frozen=True)
class Task:
    """One unit of the execute step: ``fn(*args)`` (a module-level, picklable function).

    ``name`` is unique among the tasks, ``kind`` says what it is (``"notebook"``,
    ``"rejudge"``, ``"prerequisite"``), ``needs`` names the prerequisite tasks that must
    finish first and ``cost`` is its expected CPU-seconds (only the order depends on it).
    """

    name: str
    kind: str
    fn: Callable[..., Any]
    args: tuple = ()
    needs: tuple[str, ...] = ()
    cost: float = 0.0


@dataclass
class TaskResult:
    """What a task returned (``value``) or the error it raised, and its wall and CPU seconds."""

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
        else (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
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


def queue_order(tasks: Sequence[Task]) -> list[Task]:
    """The queue: prerequisites, then the rest, each longest ``cost`` first (ties: as given).
    Names must be unique, and ``needs`` may name only prerequisites, which need nothing."""
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError("task names must be unique")
    prereqs = {t.name for t in tasks if t.kind == "prerequisite"}
    for t in tasks:
        if t.kind == "prerequisite" and t.needs:
            raise ValueError(f"prerequisite {t.name!r} cannot need other tasks")
        unknown = set(t.needs) - prereqs
        if unknown:
            raise ValueError(
                f"task {t.name!r} needs {sorted(unknown)}, which are not prerequisites"
            )
    return sorted(tasks, key=lambda t: (t.kind != "prerequisite", -t.cost))


def run_tasks(
    tasks: Sequence[Task],
    jobs: int = 1,
    on_done: Callable[[TaskResult], None] | None = None,
    stop_on_error: bool = True,
) -> list[TaskResult]:
    """Run ``tasks`` ``jobs`` at a time in :func:`queue_order` (a task waits for the
    prerequisites it needs); return the results in the order they finished. With
    ``stop_on_error`` a failed notebook stops new starts (running tasks finish); a failed
    prerequisite never does."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    pending = queue_order(tasks)
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
            if set(t.needs) <= finished:
                pending.remove(t)
                return t
        return None

    if jobs == 1 or len(tasks) <= 1:
        # in order, in this process: every prerequisite comes first, so none waits
        while pending and not stopped:
            done(_call(pending.pop(0)))
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
