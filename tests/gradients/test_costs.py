"""Deterministic cost measures: network passes, flops and memory per estimate vs n."""

import pytest
import torch

from diffctrl.gradients.costs import (
    benchmark_estimators,
    count_flops,
    count_network_calls,
    count_work,
    network_eval_flops,
    peak_memory,
    time_methods,
)
from diffctrl.gradients.estimators import estimate_gradient, state_dimension
from diffctrl.gradients.networks import mlp_width_for
from diffctrl.gradients.problems import point_mass_lq, volatility_net

N, M = 5, 8


def per_estimate(method, problem, theta, per_path=True):
    return lambda: estimate_gradient(
        method,
        problem,
        theta,
        n_paths=M,
        n_steps=N,
        generator=torch.Generator().manual_seed(0),
        per_path=per_path,
    )


@pytest.fixture(scope="module")
def nets():
    return {
        w: point_mass_lq(hidden=(w, w, w), generator=torch.Generator().manual_seed(0))
        for w in (4, 16, 64)
    }


def test_gg_network_passes_do_not_depend_on_n(nets):
    calls = {
        w: count_network_calls(per_estimate("gg", *p), p[0]) for w, p in nets.items()
    }
    # per step one value pass for the paths before kappa and one tangent-batched pass for the
    # paths after it, plus one VJP at the random step: the count does not grow with n
    assert len(set(calls.values())) == 1
    assert N + 1 <= next(iter(calls.values())) <= 2 * N
    fwd = {
        w: count_network_calls(per_estimate("pathwise_forward", *p), p[0])
        for w, p in nets.items()
    }
    assert set(fwd.values()) == {2 * N}


def test_gg_flops_grow_like_one_network_evaluation(nets):
    """GG's flops per estimate / flops of one network pass is flat (it does not grow with n)."""
    ratio = {}
    for w, (problem, theta) in nets.items():
        ratio[w] = count_flops(per_estimate("gg", problem, theta)) / network_eval_flops(
            problem, theta, M
        )
    assert ratio[64] <= 1.05 * ratio[4]
    assert ratio[64] >= 0.5 * ratio[4]


def test_forward_sensitivities_state_and_memory_grow_with_n(nets):
    for _w, (problem, _theta) in nets.items():
        n, d = problem.n_params, problem.d
        assert state_dimension("pathwise_forward", problem) == d + d * n
        assert state_dimension("gg", problem) == d + d * d
    problem, theta = nets[64]
    fwd, gg = (
        count_flops(per_estimate(m, problem, theta)) for m in ("pathwise_forward", "gg")
    )
    assert fwd > 3 * gg
    assert state_dimension("gg", volatility_net()[0]) == 2 + 4 + 8


def test_peak_memory_forward_vs_gg():
    """Forward sensitivities hold Y (M x d x n); GG holds a few n-vectors."""
    problem, theta = point_mass_lq(
        hidden=(200, 200, 200), generator=torch.Generator().manual_seed(0)
    )
    n, paths = problem.n_params, 16
    y_bytes = paths * problem.d * n * 4
    peak = {}
    for method in ("pathwise_forward", "gg"):

        def run():
            return estimate_gradient(
                method,
                problem,
                theta,
                n_paths=paths,
                n_steps=2,
                generator=torch.Generator().manual_seed(0),
                per_path=False,
            )

        run()  # warm-up: one-time allocations of the first call are not the estimator's
        peak[method] = peak_memory(run)
    assert peak["pathwise_forward"] >= y_bytes
    assert peak["gg"] < y_bytes / 4


@pytest.mark.parametrize("method", ["rss", "profiler"])
def test_peak_memory_sees_a_known_allocation(method):
    def fn():
        a = torch.ones(10_000_000)  # 40 MB
        return float(a.sum())

    assert peak_memory(fn, method=method) >= 35e6
    with pytest.raises(ValueError, match="method must be"):
        peak_memory(fn, method="tracemalloc")


def test_benchmark_rows_and_memory_guard():
    rows = benchmark_estimators(
        [100, 400],
        ["gg", "pathwise_forward"],
        n_paths=4,
        n_steps=3,
        repeats=1,
        measure_memory=False,
        max_bytes=4 * 5 * 400 * 4 * 6,
    )
    by = {(r["method"], r["n"] > 200): r for r in rows}
    assert len(rows) == 4
    assert by[("gg", True)]["status"] == "ok" and by[("gg", True)]["seconds"] > 0
    assert by[("pathwise_forward", False)]["status"] == "ok"
    assert by[("pathwise_forward", True)]["status"].startswith("skipped: predicted")
    rows = benchmark_estimators(
        [100, 400],
        ["lr"],
        n_paths=2,
        n_steps=2,
        repeats=1,
        measure_memory=False,
        max_n={"lr": 200},
    )
    assert [r["status"] for r in rows] == ["ok", "skipped: n > 200 for this method"]


def test_count_work_rows_are_the_counts_of_single_calls():
    rows = count_work([50, 500], ["gg", "pathwise_forward"], n_paths=M, n_steps=N)
    assert [(r["method"], r["n"] >= t) for r, t in zip(rows, [50, 50, 500, 500])] == [
        ("gg", True),
        ("pathwise_forward", True),
        ("gg", True),
        ("pathwise_forward", True),
    ]
    p_, th_ = point_mass_lq(
        hidden=(mlp_width_for(500),) * 3, generator=torch.Generator().manual_seed(0)
    )
    gg, fwd = rows[2], rows[3]
    assert gg["n"] == p_.n_params
    assert gg["calls"] == count_network_calls(
        per_estimate("gg", p_, th_, per_path=False), p_
    )
    assert gg["flops_per_eval"] == count_flops(
        per_estimate("gg", p_, th_, per_path=False)
    ) / network_eval_flops(p_, th_, M)
    assert fwd["state_dim"] == p_.d + p_.d * p_.n_params
    assert rows[0]["calls"] == gg["calls"]  # GG's passes do not grow with n


def test_time_methods_times_each_entry_and_refuses_bad_input():
    problem, theta = point_mass_lq(hidden=(4, 4, 4), dtype=torch.float64)
    kw = dict(n_paths=4, n_steps=3, repeats=2)
    methods = ("gg", "pathwise_reverse", "pathwise_reverse")
    seconds = time_methods(problem, theta, methods, **kw)
    # one median per entry, the repeated method timed on its own
    assert len(seconds) == 3 and all(s > 0 for s in seconds)
    with pytest.raises(ValueError, match="methods must be among"):
        time_methods(problem, theta, ("gg", "adjoint"), **kw)
    with pytest.raises(ValueError, match="repeats"):
        time_methods(problem, theta, ("gg",), n_paths=4, n_steps=3, repeats=0)
