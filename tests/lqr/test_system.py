"""The nearly-LQ system: stacked systems against single ones, input checks."""

import math

import numpy as np
import pytest
import torch

from diffctrl.lqr import (
    check_policy,
    cost,
    k_lin,
    make_system,
    random_system,
    sample_x0,
    sine_kernel,
    stack_systems,
)


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


def test_b_norm_and_c_norm_set_the_largest_singular_values():
    s = random_system(3, 3, seed=4, spectral_radius=0.5, b_norm=1.0, c_norm=0.4)
    assert np.linalg.svd(s.B.numpy(), compute_uv=False)[0] == pytest.approx(1.0)
    assert np.linalg.svd(s.C.numpy(), compute_uv=False)[0] == pytest.approx(0.4)
    assert np.abs(np.linalg.eigvals(s.A.numpy())).max() == pytest.approx(0.5)
    # the same draws: only the scales differ from the spectral-radius scaling
    old = random_system(3, 3, seed=4, spectral_radius=0.5)
    np.testing.assert_allclose(s.A.numpy(), old.A.numpy())
    ratio = s.B.numpy() / old.B.numpy()
    np.testing.assert_allclose(ratio, ratio.flat[0])
    with pytest.raises(ValueError, match="c_norm"):
        random_system(3, 3, c_norm=0.0)
