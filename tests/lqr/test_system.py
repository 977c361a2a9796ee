"""The nearly-LQ system: rollouts against closed forms, batching, kernels, input checks."""

import math

import numpy as np
import pytest
import torch

from diffctrl.lqr import (
    check_policy,
    check_stabilizing,
    closed_loop_matrix,
    closed_loop_radius,
    cost,
    k_lin,
    lqr_cost,
    make_system,
    product_kernel,
    random_system,
    rollout,
    sample_x0,
    sine_kernel,
    sphere_points,
    stack_kernels,
    stack_systems,
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


def test_batched_policies_and_stacked_systems_match_single_runs():
    systems = [
        random_system(3, 3, scale=l, seed=i) for i, l in enumerate((0.5, 1.0, 2.0))
    ]
    S = stack_systems(systems)
    Ks = torch.stack([k_lin(s) for s in systems])
    x0 = sample_x0(3, 6, torch.Generator().manual_seed(2))
    stacked = cost(S, Ks, x0.expand(3, 6, 3), 8)
    single = torch.stack([cost(s, K, x0, 8) for s, K in zip(systems, Ks)])
    assert torch.allclose(stacked, single, rtol=1e-13)
    # a batch of policies against one system, one x0 batch per policy
    U = 0.1 * torch.randn(5, 3, 6, dtype=torch.float64)
    batch = cost(systems[0], Ks[0] + U, x0.expand(5, 6, 3), 8)
    loop = torch.stack([cost(systems[0], Ks[0] + u, x0, 8) for u in U])
    assert torch.allclose(batch, loop, rtol=1e-13)
    # unstack recovers the systems
    back = S.unstack()
    assert torch.equal(back[2].A, systems[2].A) and back[2].kernel.scale == 2.0


def test_kernels():
    x = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64)
    assert torch.allclose(sine_kernel(3, 4.0)(x), 4.0 * torch.sin(x))
    pk = product_kernel(3, [(0, 1), (2, 2)], scale=0.5)
    s = torch.sin(x[0])
    assert torch.allclose(pk(x)[0], 0.5 * torch.stack([s[0] * s[1], s[2] * s[2]]))
    both = stack_kernels(sine_kernel(3, 2.0), pk)
    assert both.d == 5 and torch.allclose(both(x)[0, 3:], pk(x)[0])
    assert sine_kernel(3, 4.0).lipschitz_phi == 4.0
    with pytest.raises(ValueError, match="pairs"):
        product_kernel(3, [(0, 3)])


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


def test_bad_inputs_raise_clear_errors():
    s = random_system(3, 3, seed=0)
    with pytest.raises(ValueError, match="shape"):
        check_policy(s, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="non-finite"):
        check_policy(s, torch.full((3, 6), math.nan, dtype=torch.float64))
    with pytest.raises(ValueError, match="B must have shape"):
        make_system(np.eye(3), np.ones((2, 3)), np.eye(3), sine_kernel(3))
    with pytest.raises(ValueError, match="kernel"):
        make_system(np.eye(3), np.eye(3), np.ones((3, 2)), sine_kernel(3))
    with pytest.raises(ValueError, match="x0"):
        cost(s, k_lin(s), torch.zeros(4, 2, dtype=torch.float64), 3)
    with pytest.raises(ValueError, match="horizon"):
        cost(s, k_lin(s), torch.zeros(4, 3, dtype=torch.float64), 0)
    with pytest.raises(ValueError, match="spectral_radius"):
        random_system(3, 3, spectral_radius=0.0)
    S = stack_systems([s, s])
    with pytest.raises(ValueError, match="stack of 2"):
        check_policy(S, torch.zeros(3, 6, dtype=torch.float64))


def test_unstable_policy_is_rejected():
    s = random_system(3, 3, scale=1.0, seed=0, spectral_radius=0.5)
    check_stabilizing(s, k_lin(s))  # K^lin is stabilising here
    bad = k_lin(s) - 5.0 * torch.linalg.pinv(s.B) @ torch.cat(
        [torch.eye(3), torch.zeros(3, 3)], 1
    ).to(s.B)
    assert closed_loop_radius(s, bad) > 1
    with pytest.raises(ValueError, match="does not stabilise"):
        check_stabilizing(s, bad)
