"""Policy optimisation driven by an estimator lowers the exact cost."""

import pytest
import torch

from diffctrl.gradients.optimise import optimise_policy
from diffctrl.gradients.problems import point_mass_lq
from diffctrl.gradients.references import lq_exact_cost
from diffctrl.gradients.sde import brownian_increments

F64 = torch.float64


@pytest.mark.parametrize("method", ["gg", "pathwise_reverse"])
def test_optimisation_lowers_the_exact_cost(method):
    problem, theta = point_mass_lq(
        hidden=(), generator=torch.Generator().manual_seed(0), dtype=F64
    )
    N = 10
    eval_noise = brownian_increments(
        N, 500, 2, problem.T / N, torch.Generator().manual_seed(1), dtype=F64
    )
    out = optimise_policy(
        problem,
        theta,
        method,
        n_iters=30,
        n_paths=64,
        n_steps=N,
        eval_noise=eval_noise,
        lr=0.05,
        eval_every=10,
        seed=2,
    )
    assert out["iters"] == [0, 10, 20, 30]
    assert out["seconds"][0] == 0 and out["seconds"][-1] > 0
    before = float(lq_exact_cost(problem, theta, n_steps=N))
    after = float(lq_exact_cost(problem, out["theta"], n_steps=N))
    assert after < 0.8 * before
    assert out["cost"][-1] < out["cost"][0]


def test_optimise_rejects_bad_arguments():
    problem, theta = point_mass_lq(hidden=())
    noise = torch.zeros(3, 2, 2)
    with pytest.raises(ValueError, match="n_iters"):
        optimise_policy(
            problem, theta, "gg", n_iters=0, n_paths=2, n_steps=3, eval_noise=noise
        )
    with pytest.raises(ValueError, match="lr must be positive"):
        optimise_policy(
            problem,
            theta,
            "gg",
            n_iters=1,
            n_paths=2,
            n_steps=3,
            eval_noise=noise,
            lr=0.0,
        )
