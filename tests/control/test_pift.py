"""PI-FT on a grid (diffctrl.control.pift): exact on the LQ class, where Catmull-Rom
interpolation and Gauss-Hermite quadrature are exact; results on the CPU, evaluated where
their points are."""

import numpy as np
import pytest
import torch

from diffctrl.control.grid import Grid
from diffctrl.control.lq import LQProblem, solve_lq
from diffctrl.control.pift import evaluate_grid_policy, pift_grid
from diffctrl.control.rewards import QuadraticReward
from diffctrl.diffusion.schedules import vp_sde_schedule

F64 = torch.float64


def _lq(d, T=12, beta=0.3):
    mu0 = torch.tensor([0.5, -0.3][:d], dtype=F64)
    S0 = torch.tensor([[0.5, 0.1], [0.1, 0.3]], dtype=F64)[:d, :d]
    Q = torch.tensor([[1.0, 0.2], [0.2, 0.6]], dtype=F64)[:d, :d]
    rew = QuadraticReward.create(Q=Q, a=[1.0, 0.5][:d], g=[0.2, -0.1][:d])
    return LQProblem.create(vp_sde_schedule(T), mu0, S0, rew, beta)


@pytest.mark.parametrize("d", [1, 2])
def test_grid_pift_reproduces_the_lq_solution(d):
    pb = _lq(d)
    ref = solve_lq(pb)
    grid = Grid.create(-4, 4, 41 if d == 1 else 25, d=d)
    res = pift_grid(
        pb.chain(),
        pb.reward,
        grid,
        60,
        n_gh=4,
        tol=1e-14,
        reference=ref,
        region=([-2] * d, [2] * d),
    )
    # Catmull-Rom is exact for quadratics and Gauss-Hermite for polynomials: exact to round-off
    assert max(e[-1] for e in res.u_err) < 1e-9
    assert max(e[-1] for e in res.v_err) < 1e-9
    assert res.objective() == pytest.approx(ref.objective(), abs=1e-9)
    assert np.allclose(res.rho, ref.rho().numpy(), atol=1e-7)
    V = evaluate_grid_policy(
        pb.chain(),
        pb.reward,
        grid,
        torch.stack(
            [ref.control(t, grid.points()).reshape(*grid.shape, d) for t in range(pb.T)]
        ),
        n_gh=4,
    )
    assert torch.allclose(V[0].reshape(-1), ref.value(0, grid.points()), atol=1e-9)


def test_grid_result_is_on_the_cpu_and_evaluates_where_its_points_are():
    pb = LQProblem.create(
        vp_sde_schedule(3), [0.5], [[0.4]], QuadraticReward.create(Q=1.0, a=[1.0]), 0.5
    )
    res = pift_grid(
        pb.chain(), pb.reward, Grid.create(-4, 4, 21), 5, n_gh=4, record=False
    )
    assert res.V.device.type == "cpu" and res.u.device.type == "cpu"  # plottable
    # "meta" stands in for a GPU: the control follows the chain's samples
    y = torch.zeros(3, 1, device="meta")
    assert res.value(1, y).device.type == "meta"
    u = res.as_control()(1, y)
    assert u.device.type == "meta" and u.dtype == y.dtype and u.shape == (3, 1)
