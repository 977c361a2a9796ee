"""Euler–Maruyama simulation, input validation and the per-path x-derivatives."""

import dataclasses

import pytest
import torch

from diffctrl.gradients.problems import point_mass_lq, relu_drift, volatility_net
from diffctrl.gradients.sde import (
    brownian_increments,
    simulate,
    value_and_x_derivatives,
)

F64 = torch.float64


def test_simulate_matches_a_hand_written_loop():
    problem, theta = point_mass_lq(
        hidden=(6, 6, 6), generator=torch.Generator().manual_seed(0), dtype=F64
    )
    N, M = 7, 5
    noise = brownian_increments(
        N, M, 2, problem.T / N, torch.Generator().manual_seed(1), dtype=F64
    )
    out = simulate(problem, theta, noise=noise, keep_path=True)
    A, B, S, Q, R, QT = (problem.info[k] for k in ("A", "B", "Sigma", "Q", "R", "QT"))
    net, h = problem.network, problem.T / N
    x, cost = problem.x0.expand(M, 4).clone(), torch.zeros(M, dtype=F64)
    for k in range(N):
        t = torch.full((M, 1), k * h, dtype=F64)
        u = net(theta, torch.cat([t, x], 1))
        cost += h * (
            torch.einsum("bi,ij,bj->b", x, Q, x) + torch.einsum("bi,ij,bj->b", u, R, u)
        )
        x = x + h * (x @ A.T + u @ B.T) + noise[k] @ S.T
    cost += torch.einsum("bi,ij,bj->b", x, QT, x)
    torch.testing.assert_close(out["cost"], cost)
    torch.testing.assert_close(out["path"][-1], x)
    assert out["path"].shape == (N + 1, M, 4)


def test_brownian_increments_variance():
    db = brownian_increments(
        50, 4000, 2, 0.02, torch.Generator().manual_seed(0), dtype=F64
    )
    assert db.shape == (50, 4000, 2)
    assert abs(float(db.var()) / 0.02 - 1) < 0.02


@pytest.mark.parametrize("order", [1, 2])
def test_x_derivatives_match_autograd_functional(order):
    problem, theta = volatility_net(
        generator=torch.Generator().manual_seed(0), dtype=F64
    )
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    t = torch.zeros(3, dtype=F64)
    sig, dsig, hsig = value_and_x_derivatives(problem.diffusion, theta, t, x, order)
    (mu, rho), (dmu, drho), hess = value_and_x_derivatives(
        problem.drift_cost, theta, t, x, order
    )
    for b in range(3):
        f_sig = lambda y: problem.diffusion(theta, t[:1], y[None])[0]  # noqa: E731
        f_mu = lambda y: problem.drift_cost(theta, t[:1], y[None])[0][0]  # noqa: E731
        torch.testing.assert_close(
            dsig[b], torch.autograd.functional.jacobian(f_sig, x[b])
        )
        torch.testing.assert_close(
            dmu[b], torch.autograd.functional.jacobian(f_mu, x[b])
        )
        if order == 2:
            href = torch.autograd.functional.jacobian(
                lambda y: torch.autograd.functional.jacobian(
                    f_sig, y, create_graph=True
                ),
                x[b],
            )
            torch.testing.assert_close(hsig[b], href)
    torch.testing.assert_close(sig, problem.diffusion(theta, t, x))


@pytest.mark.parametrize(
    "make",
    [lambda: point_mass_lq(hidden=(7, 7, 7), dtype=F64), lambda: relu_drift(dtype=F64)],
)
def test_hand_written_forward_mode_matches_jacfwd(make):
    problem, theta = make()
    x = torch.randn(
        6,
        2 if problem.d == 2 else 4,
        generator=torch.Generator().manual_seed(3),
        dtype=F64,
    )
    t = torch.rand(6, generator=torch.Generator().manual_seed(4), dtype=F64)
    fast = value_and_x_derivatives(
        problem.drift_cost, theta, t, x, 1, problem.drift_cost_jvp
    )
    slow = value_and_x_derivatives(problem.drift_cost, theta, t, x, 1)
    for a, b in zip(fast[:2], slow[:2]):
        for u, w in zip(a, b):
            torch.testing.assert_close(u, w)


def test_invalid_inputs_raise_clear_errors():
    for T in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="T must be a positive"):
            point_mass_lq(hidden=(), T=T)
    problem, theta = point_mass_lq(hidden=())
    with pytest.raises(ValueError, match="n_steps must be an int >= 1"):
        simulate(problem, theta, n_paths=3, n_steps=0)
    with pytest.raises(ValueError, match="n_steps must be an int >= 1"):
        simulate(problem, theta, n_paths=3, n_steps=2.5)
    with pytest.raises(ValueError, match="n_paths must be an int >= 1"):
        simulate(problem, theta, n_paths=0, n_steps=3)
    with pytest.raises(ValueError, match=r"theta must have shape \(12,\)"):
        simulate(problem, theta[:5], n_paths=3, n_steps=3)
    with pytest.raises(TypeError, match="theta must be a torch.Tensor"):
        simulate(problem, [0.0] * 12, n_paths=3, n_steps=3)
    with pytest.raises(
        ValueError, match=r"noise must have shape \(n_steps, n_paths, 2\)"
    ):
        simulate(problem, theta, noise=torch.zeros(4, 3, 3))
    with pytest.raises(ValueError, match="n_steps=5 but noise has 4 steps"):
        simulate(problem, theta, n_steps=5, noise=torch.zeros(4, 3, 2))
    with pytest.raises(ValueError, match="x0 must be a 1-d tensor"):
        dataclasses.replace(problem, x0=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="noise_dim"):
        dataclasses.replace(problem, noise_dim=0)
