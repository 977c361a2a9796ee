import math

import numpy as np
import pytest
import torch

from diffctrl.control.chain import ControlledChain
from diffctrl.control.grid import (
    Grid,
    GridFunction,
    gauss_hermite,
    hessian_bounds,
    interpolate,
    lipschitz_field,
    pad_values,
    smoothed_value_and_grad,
    smoothing_matrices,
    sup_grad,
)
from diffctrl.control.lq import LQProblem, solve_lq
from diffctrl.control.pift import (
    control_lipschitz_bound,
    evaluate_grid_policy,
    outer_pi_grid,
    pift_grid,
    value_lipschitz_bounds,
)
from diffctrl.control.rewards import BumpReward, QuadraticReward
from diffctrl.diffusion.exact import GaussianMixture
from diffctrl.diffusion.schedules import vp_sde_schedule

F64 = torch.float64
G1 = Grid.create(-3, 3, 61)
G2 = Grid.create([-3, -2], [3, 2], [31, 21])


def quad(y):
    out = -0.65 * (y**2).sum(-1) + 0.7 * y[:, 0] + 2
    return out + 0.4 * y[:, 0] * y[:, -1] if y.shape[1] == 2 else out


@pytest.mark.parametrize("grid", [G1, G2])
def test_interpolation_reproduces_quadratics_and_is_third_order(grid):
    V = quad(grid.points()).reshape(grid.shape)
    y = (
        torch.rand(500, grid.d, dtype=F64, generator=torch.Generator().manual_seed(0))
        - 0.5
    ) * 7
    y.requires_grad_(True)
    g_true = torch.autograd.grad(quad(y).sum(), y)[0]
    val, grad = interpolate(grid, V, y.detach())
    assert torch.allclose(val, quad(y.detach()), atol=1e-9)  # also 1 box-width outside
    assert torch.allclose(grad, g_true, atol=1e-8)
    errs = []
    for k in (1, 2):
        g = Grid.create(grid.lo, grid.hi, [(n - 1) * k + 1 for n in grid.n])
        f = lambda x: torch.sin(x).sum(-1)  # noqa: E731
        yi = (torch.rand(2000, grid.d, dtype=F64) - 0.5) * 3
        errs.append(
            float(
                (interpolate(g, f(g.points()).reshape(g.shape), yi)[0] - f(yi))
                .abs()
                .max()
            )
        )
    assert 5 < errs[0] / errs[1] < 12  # O(h^3)


def test_channels_and_grid_function():
    u = torch.stack([torch.sin(G2.points()[:, 0]), G2.points()[:, 1] ** 2], -1).reshape(
        *G2.shape, 2
    )
    y = torch.rand(7, 2, dtype=F64)
    val, grad = interpolate(G2, u, y)
    assert val.shape == (7, 2) and grad.shape == (7, 2, 2)
    f = GridFunction(G2, u[..., 1])
    assert torch.allclose(f(y), y[:, 1] ** 2, atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        GridFunction(G2, torch.zeros(3, 3))
    with pytest.raises(ValueError):
        Grid.create(0, 1, 3)


@pytest.mark.parametrize("d", [1, 2])
def test_gauss_hermite_and_smoothing_matrices(d):
    x, w = gauss_hermite(6, d)
    assert float(w.sum()) == pytest.approx(1.0)
    assert float((w * x[:, 0] ** 4).sum()) == pytest.approx(3.0)
    grid = G1 if d == 1 else G2
    V = torch.sin(grid.points()).prod(-1).reshape(grid.shape)
    base = torch.randn(40, d, dtype=F64)
    EV, EG = smoothed_value_and_grad(
        grid, pad_values(grid, V), smoothing_matrices(grid, base, 0.3, 6)
    )
    val, grad = interpolate(grid, V, (base[:, None, :] + 0.3 * x[None]).reshape(-1, d))
    assert torch.allclose(EV, val.view(40, -1) @ w, atol=1e-12)
    assert torch.allclose(
        EG, torch.einsum("gjd,j->gd", grad.view(40, -1, d), w), atol=1e-11
    )


def test_finite_difference_lipschitz_constants():
    P = G2.points()
    u = torch.stack([2 * P[:, 0] + P[:, 1], -P[:, 1]], -1).reshape(*G2.shape, 2)
    assert lipschitz_field(G2, u) == pytest.approx(
        float(
            torch.linalg.matrix_norm(
                torch.tensor([[2.0, 1.0], [0.0, -1.0]], dtype=F64), ord=2
            )
        ),
        rel=1e-10,
    )
    V = quad(P).reshape(G2.shape)
    lo, hi, nrm = hessian_bounds(G2, V)
    lam = torch.linalg.eigvalsh(torch.tensor([[-1.3, 0.4], [0.4, -1.3]], dtype=F64))
    assert (lo, hi) == pytest.approx((float(lam[0]), float(lam[1])), abs=1e-8)
    assert sup_grad(G1, (G1.points()[:, 0] * 3).reshape(G1.shape)) == pytest.approx(3.0)


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


def test_regularity_bounds_hold_on_a_mixture():
    data = GaussianMixture.create([0.4, 0.6], [[-1.2], [1.0]], [0.15, 0.25])
    chain = ControlledChain.from_data(data, vp_sde_schedule(20), 0.5)
    reward = BumpReward.create([1.5], height=1.0, width=0.5)
    grid = Grid.create(-5, 5, 201)
    res = pift_grid(chain, reward, grid, 8, n_gh=12, region=([-3], [3]))
    for t in range(chain.T):
        rho, ell = res.rho[t], res.ell[t]
        assert rho < 1
        for m, lip in enumerate(res.lip_u[t]):
            assert lip <= control_lipschitz_bound(rho, ell, m) * 1.001 + 1e-9
        bound = value_lipschitz_bounds(
            rho,
            ell,
            res.kappa[t],
            res.L[t + 1],
            res.grad_sup[t + 1],
            res.sigma[t],
            res.beta[t],
            len(res.lip_gradV[t]) - 1,
        )
        assert np.all(res.lip_gradV[t] <= bound * 1.001 + 1e-9)
    assert math.isfinite(res.objective())
