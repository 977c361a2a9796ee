"""The execute step's task queue: order, prerequisites, failures, CPU accounting."""

import subprocess
import sys
import time

import pytest

from diffctrl_book.scheduling import Task, queue_order, run_tasks


def _sleep(name, kind="notebook", needs=(), cost=0.0, seconds=0.0):
    return Task(name, kind, time.sleep, (seconds,), needs, cost)


def test_the_queue_puts_prerequisites_first_then_the_longest():
    tasks = [
        _sleep("short", cost=1),
        _sleep("digits", needs=("unet",), cost=6),
        _sleep("mixture", cost=10),
        _sleep("unet", "prerequisite", cost=2),
        _sleep("prelim", needs=("unet",), cost=3),
    ]
    assert [t.name for t in queue_order(tasks)] == [
        "unet",
        "mixture",
        "digits",
        "prelim",
        "short",
    ]


def test_one_at_a_time_runs_in_queue_order():
    tasks = [
        _sleep("short", cost=1),
        _sleep("after", needs=("first",), cost=9),
        _sleep("first", "prerequisite", cost=1),
        _sleep("middle", cost=5),
    ]
    order = [r.name for r in run_tasks(tasks, jobs=1)]
    assert order == ["first", "after", "middle", "short"]


def test_a_task_waits_for_its_prerequisite_while_others_run():
    tasks = [
        _sleep("slow", "prerequisite", cost=1, seconds=1.5),
        _sleep("needs_slow", needs=("slow",), cost=100, seconds=0.1),
        _sleep("free", cost=1, seconds=0.1),
    ]
    results = run_tasks(tasks, jobs=2)
    order = [r.name for r in results]
    # the most expensive notebook waits; the cheap one fills the other core meanwhile
    assert order == ["free", "slow", "needs_slow"]
    assert all(r.error is None for r in results)
    assert {r.name: r.seconds for r in results}["slow"] >= 1.4


def test_a_failed_notebook_stops_new_starts_a_failed_prerequisite_does_not():
    bad = Task("bad", "notebook", int, ("x",), (), cost=9)
    later = _sleep("later", cost=1)
    results = run_tasks([bad, later], jobs=1)
    assert [r.name for r in results] == ["bad"]
    assert "ValueError" in results[0].error and "'x'" in results[0].error
    # keep going: both run
    assert len(run_tasks([bad, later], jobs=1, stop_on_error=False)) == 2
    # a failed prerequisite: the notebooks that need it still run (they do the work)
    pre = Task("pre", "prerequisite", int, ("x",), (), cost=5)
    dep = _sleep("dep", needs=("pre",), cost=1)
    results = run_tasks([pre, dep], jobs=1)
    assert [(r.name, r.error is None) for r in results] == [
        ("pre", False),
        ("dep", True),
    ]


def test_cpu_seconds_count_the_task_and_its_children():
    burn = "s = 0\nfor i in range(4_000_000): s += i"
    child = Task(
        "child", "notebook", subprocess.run, ([sys.executable, "-c", burn],), ()
    )
    (r,) = run_tasks([child], jobs=1)
    assert r.error is None
    # the child burned CPU for most of the wall time (python start-up included)
    assert r.cpu_seconds >= 0.5 * r.seconds > 0.05


def test_bad_queues_are_refused():
    with pytest.raises(ValueError, match="not prerequisites"):
        queue_order([_sleep("a", needs=("b",)), _sleep("b")])
    with pytest.raises(ValueError, match="not prerequisites"):
        queue_order([_sleep("c", needs=("nope",))])
    with pytest.raises(ValueError, match="cannot need"):
        queue_order(
            [_sleep("p", "prerequisite", needs=("q",)), _sleep("q", "prerequisite")]
        )
    with pytest.raises(ValueError, match="unique"):
        queue_order([_sleep("a"), _sleep("a")])
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        run_tasks([], jobs=0)
