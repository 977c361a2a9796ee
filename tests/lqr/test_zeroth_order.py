"""The zeroth-order estimator: sphere samples, unbiased for the smoothed gradient,
consistent with the exact gradient."""

import math

import pytest
import torch

from diffctrl.lqr import (
    cost,
    exact_gradient,
    k_lin,
    random_system,
    sample_sphere,
    smoothed_gradient,
    sphere_points,
    zeroth_order_gradient,
)


def test_sphere_samples_have_the_radius_and_zero_mean():
    U = sample_sphere((20_000, 2, 3), 0.6, torch.Generator().manual_seed(0))
    assert torch.allclose(
        U.flatten(1).norm(dim=1), torch.full((20_000,), 0.6, dtype=torch.float64)
    )
    assert float(U.mean(0).abs().max()) < 4 * 0.6 / math.sqrt(6 * 20_000)
    # E[U U'] = r^2 / D per coordinate
    assert float((U.flatten(1).square().mean(0) - 0.36 / 6).abs().max()) < 0.004
    with pytest.raises(ValueError, match="radius"):
        sample_sphere((3, 2, 3), 0.0)


def test_zeroth_order_estimator_is_unbiased_for_the_smoothed_gradient():
    """Mean of many estimates vs the autograd gradient of C_r, within Monte Carlo error."""
    s = random_system(
        2, 1, scale=1.0, seed=5, spectral_radius=0.5
    )  # n = d = 2, p = 1: D = 4
    K = k_lin(s) + 0.2
    r, T = 0.5, 8
    gen = torch.Generator().manual_seed(1)
    draws = torch.stack(
        [zeroth_order_gradient(s, K, 5000, r, T, gen) for _ in range(40)]
    )
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(40)
    x0 = sphere_points(2, 64)  # E over the unit circle (trapezoid rule)
    smooth = smoothed_gradient(s, K, r, x0, T, 20_000, torch.Generator().manual_seed(2))
    z = ((mean - smooth) / se).abs()
    assert float(z.max()) < 4.0, z
    # the test has power: the smoothed gradient differs from the raw one by many SEs here
    exact, _ = exact_gradient(s, K, x0, T)
    assert float(((mean - exact) / se).abs().max()) > 4.0


def test_smoothed_and_exact_gradients_are_consistent():
    s = random_system(3, 3, scale=1.0, seed=0, spectral_radius=0.5)
    x0 = sphere_points(3, 32)
    K = k_lin(s) + 0.1
    g, c = exact_gradient(s, K, x0, 6)
    h = 1e-6
    E = torch.zeros(3, 6, dtype=torch.float64)
    E[1, 4] = h
    fd = (cost(s, K + E, x0, 6) - cost(s, K - E, x0, 6)) / (2 * h)
    assert float(g[1, 4]) == pytest.approx(float(fd), rel=1e-7)
    small = smoothed_gradient(s, K, 1e-4, x0, 6, 64, torch.Generator().manual_seed(0))
    assert torch.allclose(small, g, atol=1e-3 * float(g.norm()))  # O(r ||H||) MC noise
