"""Autograd Hessians, the Newton reference optimum, observed rates and the linear-rate
envelope."""

import numpy as np
import pytest
import torch

from diffctrl.lqr import (
    cost,
    cost_hessian,
    envelope_holds,
    exact_gradient,
    hessian_extremes,
    k_lin,
    lqr_gain,
    observed_rate,
    optimal_policy,
    product_kernel,
    random_system,
    sphere_points,
    stack_systems,
)


def test_hessian_matches_torch_functional_and_finite_differences():
    s = random_system(3, 3, scale=1.5, seed=0, spectral_radius=0.5)
    x0 = sphere_points(3, 32)
    K = k_lin(s)
    H = cost_hessian(s, K, x0, 8)
    ref = torch.autograd.functional.hessian(
        lambda k: cost(s, k.view(3, 6), x0, 8), K.reshape(-1)
    )
    assert torch.allclose(H, ref, atol=1e-10)
    E = torch.zeros(18, dtype=torch.float64)
    E[4] = 1e-5
    g_plus, _ = exact_gradient(s, K + E.view(3, 6), x0, 8)
    g_minus, _ = exact_gradient(s, K - E.view(3, 6), x0, 8)
    fd = ((g_plus - g_minus) / 2e-5).reshape(-1)
    assert torch.allclose(H[4], fd, atol=1e-6 * float(H.abs().max()))
    # batched over a stack of systems: the same blocks
    s2 = random_system(3, 3, scale=0.5, seed=1, spectral_radius=0.5)
    S = stack_systems([s, s2])
    HB = cost_hessian(S, torch.stack([K, k_lin(s2)]), x0.expand(2, 32, 3), 8)
    assert torch.allclose(HB[0], H, atol=1e-10)
    assert torch.allclose(HB[1], cost_hessian(s2, k_lin(s2), x0, 8), atol=1e-10)


def test_newton_finds_the_dare_optimum_when_c_is_zero():
    """C = 0: [K_lqr, 0] minimises the sampled cost over the policy class (every x0 at once)."""
    s = random_system(
        2,
        2,
        seed=3,
        spectral_radius=0.7,
        kernel=product_kernel(2, [(0, 1), (0, 0)], 1.0),
    )
    s = s.replace(C=torch.zeros_like(s.C))
    K_star = torch.cat(
        [
            torch.as_tensor(lqr_gain(s.A, s.B, s.Q, s.R)),
            torch.zeros(2, 2, dtype=torch.float64),
        ],
        1,
    )
    x0 = sphere_points(2, 16)
    starts = torch.stack(
        [
            K_star
            + 0.3
            * torch.randn(
                2, 4, generator=torch.Generator().manual_seed(i), dtype=torch.float64
            )
            for i in range(3)
        ]
    )
    K, c, g, steps = optimal_policy(s, starts, x0, 25)
    assert float(g.max()) < 1e-8
    assert float((K - K_star).abs().max()) < 1e-6
    mu, L = hessian_extremes(s, K_star, x0, 25)
    assert 0 < mu <= L


def test_observed_rate_of_a_geometric_sequence():
    gaps = 3.0 * 0.9 ** np.arange(50)
    assert observed_rate(gaps) == pytest.approx(0.9, rel=1e-12)
    with pytest.raises(ValueError):
        observed_rate([1.0, -1.0])


def test_envelope_can_fail_and_rejects_a_run_that_does_not_move():
    """Gradient descent on a quadratic 1/2 k'Hk with eta = 1/L: the envelope holds with the
    true mu (the theorem) and fails when mu is overstated; a constant gap fails it unless the
    envelope is vacuous over the run."""
    H = np.diag([1.0, 0.1, 0.01])
    k = np.array([0.1, 0.3, 1.0])
    eta, mu = 1.0, 0.01
    gaps = []
    for _ in range(301):
        gaps.append(0.5 * k @ H @ k)
        k = k - eta * H @ k
    iters = np.arange(301)
    gaps = np.array(gaps)
    assert envelope_holds(gaps, iters, 1 - eta * mu)
    assert not envelope_holds(gaps, iters, 1 - eta * 3 * mu)
    assert not envelope_holds(
        np.full(301, gaps[0]), iters, 1 - eta * mu
    )  # 0.99^300 = 0.05
    assert envelope_holds(np.full(301, gaps[0]), iters, 1 - 1e-14)  # vacuous
    assert not envelope_holds(gaps, iters, 1 + 1e-3)  # mu < 0: no claim
