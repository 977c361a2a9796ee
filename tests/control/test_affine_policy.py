"""An affine policy's exact laws (diffctrl.control.affine_policy): objective and KL against
Monte Carlo of the chain, J = E r - sum beta KL, bad states refused, values computed on the
device of the points."""

import pytest
import torch

from diffctrl.control.chain import estimate_objective
from diffctrl.control.lq import LQProblem, random_lq_problem, solve_lq
from diffctrl.control.rewards import QuadraticReward
from diffctrl.diffusion.schedules import vp_sde_schedule

F64 = torch.float64


def random_problem(d, T, seed, beta=None, variance="large"):
    return random_lq_problem(d, T, seed, beta=beta, variance=variance)


def test_monte_carlo_objective_matches_the_exact_value():
    pb = random_problem(2, 40, 7, beta=0.3)
    sol = solve_lq(pb)
    est = estimate_objective(
        pb.chain(),
        pb.reward,
        sol.as_control(),
        20000,
        generator=torch.Generator().manual_seed(0),
    )
    assert abs(est.value - sol.objective()) < 3 * est.stderr
    assert abs(est.kl - sol.expected_kl()) < 3 * est.kl_stderr
    assert sol.objective() == pytest.approx(
        sol.expected_reward() - sol.expected_kl(), abs=1e-10
    )


def test_bad_states_raise():
    pb = LQProblem.create(
        vp_sde_schedule(10),
        [0.0, 0.0],
        0.5,
        QuadraticReward.create(Q=1.0, a=[0.0, 0.0]),
        0.1,
    )
    sol = solve_lq(pb)
    with pytest.raises(ValueError, match="shape"):
        sol.value(0, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="t must"):
        sol.control(10, torch.zeros(4, 2))


def test_the_policy_evaluates_on_the_device_of_the_points():
    # solved on the CPU, the policy drives a chain on any device ("meta" stands in for a GPU)
    sol = solve_lq(random_problem(2, 5, 0))
    y = torch.zeros(4, 2, device="meta")
    outs = (sol.value(1, y), sol.value_grad(1, y), sol.control(1, y))
    assert all(o.device.type == "meta" and o.dtype == F64 for o in outs)
    u = sol.as_control()(1, y)
    assert u.device.type == "meta" and u.dtype == y.dtype and u.shape == (4, 2)
