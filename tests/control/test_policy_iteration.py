"""Plain (outer) policy iteration (diffctrl.control.policy_iteration): exact after T greedy
rounds on a finite horizon, monotone, and the same on the grid."""

import numpy as np
import pytest
import torch

from diffctrl.control.grid import Grid
from diffctrl.control.lq import LQProblem, solve_lq
from diffctrl.control.lq import random_lq_problem as random_problem
from diffctrl.control.pift_affine import pift_lq, pift_lq_work
from diffctrl.control.policy_iteration import outer_pi_grid, outer_pi_lq
from diffctrl.control.rewards import QuadraticReward
from diffctrl.diffusion.schedules import vp_sde_schedule

F64 = torch.float64


def _lq(d, T=12, beta=0.3):
    mu0 = torch.tensor([0.5, -0.3][:d], dtype=F64)
    S0 = torch.tensor([[0.5, 0.1], [0.1, 0.3]], dtype=F64)[:d, :d]
    Q = torch.tensor([[1.0, 0.2], [0.2, 0.6]], dtype=F64)[:d, :d]
    rew = QuadraticReward.create(Q=Q, a=[1.0, 0.5][:d], g=[0.2, -0.1][:d])
    return LQProblem.create(vp_sde_schedule(T), mu0, S0, rew, beta)


def test_outer_policy_iteration():
    pb = random_problem(2, 8, 3, beta=0.5)
    ref = solve_lq(pb)
    greedy = outer_pi_lq(pb, pb.T, improve="greedy", reference=ref)
    # finite horizon: after n greedy rounds the last n steps are optimal, so T rounds are exact
    assert abs(greedy.J[-1] - ref.objective()) < 1e-10
    assert np.all(np.diff(greedy.J) >= -1e-12)  # policy improvement is monotone
    phi = outer_pi_lq(pb, 40, improve="phi", reference=ref)
    assert abs(phi.J[-1] - ref.objective()) < 1e-8
    res = pift_lq(pb, 5)
    assert pift_lq_work(res) == pb.T * 11
    with pytest.raises(ValueError, match="improve"):
        outer_pi_lq(pb, 2, improve="newton")


def test_outer_policy_iteration_on_the_grid():
    pb = _lq(1, T=6)
    ref = solve_lq(pb)
    out = outer_pi_grid(
        pb.chain(),
        pb.reward,
        Grid.create(-4, 4, 41),
        pb.T,
        n_gh=4,
        reference=ref,
        region=([-2], [2]),
    )
    assert abs(out.J[-1] - ref.objective()) < 1e-9
    assert out.u_err[-1] < 1e-9
