"""Rollouts against closed forms and the dynamics, the closed loop at 0, sphere points,
stability checks."""

import pytest
import torch

from diffctrl.lqr import (
    check_stabilizing,
    closed_loop_matrix,
    closed_loop_radius,
    cost,
    k_lin,
    lqr_cost,
    random_system,
    rollout,
    sample_x0,
    sphere_points,
)


def test_linear_rollout_cost_matches_lyapunov_sum():
    """C = 0, linear policy: the sample cost is tr(P_T Sigma0_hat) (closed form)."""
    s = random_system(3, 2, seed=3, spectral_radius=0.8)
    s = s.replace(C=torch.zeros_like(s.C))
    K1 = torch.tensor([[0.3, -0.1, 0.2], [0.0, 0.4, -0.2]], dtype=torch.float64)
    K = torch.cat(
        [K1, torch.zeros(2, 3, dtype=torch.float64)], dim=1
    )  # a linear policy
    x0 = sample_x0(3, 50, torch.Generator().manual_seed(0))
    sigma0 = (x0.T @ x0 / 50).numpy()
    for T in (1, 7, 40):
        ours = float(cost(s, K, x0, T))
        exact = lqr_cost(s.A, s.B, s.Q, s.R, K1, sigma0=sigma0, horizon=T)
        assert ours == pytest.approx(exact, rel=1e-12)


def test_rollout_states_follow_the_dynamics():
    s = random_system(3, 3, scale=2.0, seed=1)
    K = k_lin(s)
    x0 = sample_x0(3, 4, torch.Generator().manual_seed(1))
    total, xs = rollout(s, K, x0, 5, return_states=True)
    x = x0
    acc = torch.zeros(4, dtype=torch.float64)
    for t in range(5):
        phi = 2.0 * torch.sin(x)
        u = -(torch.cat([x, phi], 1) @ K.T)
        acc += (x * x).sum(1) + (u * u).sum(1)
        x = x @ s.A.T + u @ s.B.T + phi @ s.C.T
        assert torch.allclose(xs[t + 1], x, atol=1e-14)
    assert torch.allclose(total, acc, atol=1e-13)


def test_closed_loop_matrix_is_the_jacobian_of_the_step_at_zero():
    s = random_system(3, 3, scale=1.5, seed=4)
    K = k_lin(s) + 0.05
    zero = torch.zeros(1, 3, dtype=torch.float64)

    def step(x):
        _, xs = rollout(s, K, x.view(1, 3), 1, return_states=True)
        return xs[1, 0]

    J = torch.autograd.functional.jacobian(step, zero[0])
    assert torch.allclose(closed_loop_matrix(s, K), J, atol=1e-13)


def test_sphere_points_are_on_the_sphere_and_isotropic():
    for n, m in ((3, 400), (2, 64)):
        p = sphere_points(n, m)
        assert torch.allclose(p.norm(dim=1), torch.ones(m, dtype=torch.float64))
        assert torch.allclose(
            p.T @ p / m, torch.eye(n, dtype=torch.float64) / n, atol=2e-3
        )


def test_unstable_policy_is_rejected():
    s = random_system(3, 3, scale=1.0, seed=0, spectral_radius=0.5)
    check_stabilizing(s, k_lin(s))  # K^lin is stabilising here
    bad = k_lin(s) - 5.0 * torch.linalg.pinv(s.B) @ torch.cat(
        [torch.eye(3), torch.zeros(3, 3)], 1
    ).to(s.B)
    assert closed_loop_radius(s, bad) > 1
    with pytest.raises(ValueError, match="does not stabilise"):
        check_stabilizing(s, bad)
