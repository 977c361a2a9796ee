"""One exact Bellman step (diffctrl.control.riccati): the Riccati solution satisfies the
Bellman equation and the first-order condition (Gauss-Hermite, exact for quadratics) and
matches a brute-force maximisation in 1-D."""

import pytest
import torch

from diffctrl.control.grid import gauss_hermite
from diffctrl.control.lq import random_lq_problem, solve_lq
from diffctrl.control.riccati import bellman_step, policy_value_step

F64 = torch.float64


def random_problem(d, T, seed, beta=None, variance="large"):
    return random_lq_problem(d, T, seed, beta=beta, variance=variance)


@pytest.mark.parametrize(
    "d,variance", [(1, "large"), (2, "large"), (5, "large"), (2, "small")]
)
def test_riccati_solution_satisfies_the_bellman_equation(d, variance):
    pb = random_problem(d, 30, 10 + d, variance=variance)
    sol = solve_lq(pb)
    A, c = pb.pretrained_affine()
    nodes, w = gauss_hermite(3, d)  # exact for quadratics
    y = 2 * torch.randn(20, d, dtype=F64, generator=torch.Generator().manual_seed(1))
    for t in (0, 7, 29):
        s, b = float(pb.sigma[t]), float(pb.beta[t])

        def rhs(u):
            z = (y @ A[t].T + c[t] + u)[:, None, :] + s * nodes[None]
            EV = sol.value(t + 1, z.reshape(-1, d)).reshape(len(y), -1) @ w
            kl = (
                (u**2).sum(-1) / (2 * s**2) if s > 0 else torch.zeros(len(y), dtype=F64)
            )
            return -b * kl + EV

        u = sol.control(t, y)
        assert torch.allclose(rhs(u), sol.value(t, y), atol=1e-10, rtol=1e-10)
        if s == 0:
            assert torch.all(u == 0)
            continue
        # first-order condition: d/du of the Bellman objective vanishes at u*
        uu = u.clone().requires_grad_(True)
        grad = torch.autograd.grad(rhs(uu).sum(), uu)[0]
        assert grad.abs().max() < 1e-9 * max(1.0, b / s**2)
        # and u* is the maximiser
        du = 1e-2 * torch.randn_like(u)
        assert torch.all(rhs(u + du) < rhs(u))


def test_bellman_step_matches_brute_force_in_1d():
    pb = random_problem(1, 12, 5, beta=0.2)
    sol = solve_lq(pb)
    A, c = pb.pretrained_affine()
    t = 4
    s, b = float(pb.sigma[t]), float(pb.beta[t])
    nodes, w = gauss_hermite(5, 1)
    ys = torch.linspace(-2, 2, 7, dtype=F64)[:, None]
    us = torch.linspace(-3, 3, 60001, dtype=F64)  # spacing 1e-4
    for y in ys:
        m = float(y @ A[t].T + c[t])
        z = (m + us)[:, None] + s * nodes[None, :, 0]
        obj = (
            -b * us**2 / (2 * s**2)
            + sol.value(t + 1, z.reshape(-1, 1)).reshape(len(us), -1) @ w
        )
        i = int(obj.argmax())
        assert abs(float(us[i]) - float(sol.control(t, y[None])[0, 0])) < 2e-4
        assert float(obj[i]) == pytest.approx(float(sol.value(t, y[None])[0]), abs=1e-8)


def test_one_step_of_the_recursion_is_the_bellman_step():
    pb = random_problem(2, 6, 4, beta=0.3)
    sol = solve_lq(pb)
    A, c = pb.pretrained_affine()
    t = 3
    s, b = float(pb.sigma[t]), float(pb.beta[t])
    P, p, c_t, G, g, kc = bellman_step(
        sol.P[t + 1], sol.p[t + 1], sol.c[t + 1], A[t], c[t], s, b
    )
    assert torch.allclose(P, sol.P[t], atol=1e-12) and torch.allclose(G, sol.G[t])
    assert torch.allclose(kc, s**2 * torch.eye(2, dtype=F64))
    # evaluating the optimal control gives the same value
    Pe, pe, ce = policy_value_step(
        sol.P[t + 1], sol.p[t + 1], sol.c[t + 1], A[t], c[t], s, b, G, g
    )
    assert torch.allclose(Pe, P, atol=1e-12) and torch.allclose(pe, p, atol=1e-12)
    assert float(ce) == pytest.approx(float(c_t), abs=1e-12)
    with pytest.raises(ValueError, match="beta"):
        bellman_step(
            torch.eye(2), torch.zeros(2), 0.0, torch.eye(2), torch.zeros(2), 0.1, -0.5
        )
    with pytest.raises(ValueError, match="kernel"):
        bellman_step(P, p, 0.0, A[t], c[t], s, b, kernel="diagonal")
