"""The execute step's task runner: order, dependencies, failures, CPU accounting."""

import subprocess
import sys
import time

import pytest

from diffctrl_book.scheduling import Task, priorities, run_tasks


def test_priorities_are_cost_plus_the_longest_chain_waiting():
    tasks = [
        Task("unet", "prerequisite", time.sleep, (0,), (), cost=8),
        Task("digits", "notebook", time.sleep, (0,), ("unet",), cost=6),
        Task("prelim", "notebook", time.sleep, (0,), ("unet",), cost=2),
        Task("mixture", "notebook", time.sleep, (0,), (), cost=10),
    ]
    assert priorities(tasks) == {"unet": 14, "digits": 6, "prelim": 2, "mixture": 10}


def test_one_at_a_time_runs_longest_path_first_and_after_what_it_needs():
    tasks = [
        Task("short", "notebook", time.sleep, (0,), (), cost=1),
        Task("after", "notebook", time.sleep, (0,), ("first",), cost=9),
        Task("first", "prerequisite", time.sleep, (0,), (), cost=1),
        Task("middle", "notebook", time.sleep, (0,), (), cost=5),
    ]
    order = [r.name for r in run_tasks(tasks, jobs=1)]
    # ranks: first 10, after 9, middle 5, short 1
    assert order == ["first", "after", "middle", "short"]


def test_a_task_starts_only_after_what_it_needs_in_parallel_too():
    tasks = [
        Task("slow", "prerequisite", time.sleep, (1.5,), (), cost=100),
        Task("needs_slow", "notebook", time.sleep, (0.1,), ("slow",), cost=1),
        Task("free", "notebook", time.sleep, (0.1,), (), cost=1),
    ]
    results = run_tasks(tasks, jobs=2)
    order = [r.name for r in results]
    assert sorted(order) == ["free", "needs_slow", "slow"]
    assert order.index("needs_slow") > order.index("slow")
    assert all(r.error is None for r in results)
    assert {r.name: r.seconds for r in results}["slow"] >= 1.4


def test_a_failed_notebook_stops_new_starts_a_failed_prerequisite_does_not():
    bad = Task("bad", "notebook", int, ("x",), (), cost=9)
    later = Task("later", "notebook", time.sleep, (0,), (), cost=1)
    results = run_tasks([bad, later], jobs=1)
    assert [r.name for r in results] == ["bad"]
    assert "ValueError" in results[0].error and "'x'" in results[0].error
    # keep going: both run
    assert len(run_tasks([bad, later], jobs=1, stop_on_error=False)) == 2
    # a failed prerequisite: its dependents still run (they do the work themselves)
    pre = Task("pre", "prerequisite", int, ("x",), (), cost=5)
    dep = Task("dep", "notebook", time.sleep, (0,), ("pre",), cost=1)
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


def test_bad_task_graphs_are_refused():
    a = Task("a", "notebook", time.sleep, (0,), ("b",))
    b = Task("b", "notebook", time.sleep, (0,), ("a",))
    with pytest.raises(ValueError, match="cycle"):
        priorities([a, b])
    with pytest.raises(ValueError, match="unknown task"):
        priorities([Task("c", "notebook", time.sleep, (0,), ("nope",))])
    with pytest.raises(ValueError, match="unique"):
        priorities([a, a])
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        run_tasks([], jobs=0)
