"""Least squares recovers (A, B, C) exactly from n + p + d noiseless transitions."""

import numpy as np
import pytest
import torch

from diffctrl.lqr import (
    collect_transitions,
    estimate_system,
    k_lin,
    least_squares,
    model_free_k_lin,
    product_kernel,
    random_system,
    sine_kernel,
    stack_kernels,
)


@pytest.mark.parametrize("kernel", ["sin", "product"])
def test_exact_recovery_from_n_plus_p_plus_d_transitions(kernel):
    n, p = 3, 2
    ker = (
        sine_kernel(n, 2.0)
        if kernel == "sin"
        else stack_kernels(
            sine_kernel(n, 1.0), product_kernel(n, [(0, 1), (1, 2)], 0.5)
        )
    )
    s = random_system(n, p, seed=11, kernel=ker)
    N = n + p + ker.d
    x, u, xn = collect_transitions(s, N, torch.Generator().manual_seed(0))
    A, B, C = least_squares(s, x, u, xn)
    for est, true in ((A, s.A), (B, s.B), (C, s.C)):
        assert torch.allclose(est, true, atol=1e-10, rtol=0)
    K, est = model_free_k_lin(s, N, torch.Generator().manual_seed(1))
    assert torch.allclose(K, k_lin(s), atol=1e-9)


def test_too_few_or_degenerate_transitions_raise():
    s = random_system(3, 3, seed=0)
    x, u, xn = collect_transitions(s, 8, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="at least n \\+ p \\+ d = 9"):
        least_squares(s, x, u, xn)
    x, u, xn = collect_transitions(s, 20, torch.Generator().manual_seed(0))
    u[:, 2] = u[:, 0]  # one input never excited independently
    xn = x @ s.A.T + u @ s.B.T + s.phi(x) @ s.C.T
    with pytest.raises(ValueError, match="rank"):
        least_squares(s, x, u, xn)
    with pytest.raises(ValueError, match="shapes"):
        least_squares(s, x, u[:, :2], xn)
    # the minimum-norm solution is available on request, and it is not the truth
    x, u, xn = collect_transitions(s, 8, torch.Generator().manual_seed(0))
    A, _, _ = least_squares(s, x, u, xn, min_norm=True)
    assert (A - s.A).norm() > 1e-3


def test_noisy_estimates_converge_at_the_square_root_rate():
    s = random_system(3, 3, seed=2)
    errs = []
    for N in (100, 10_000):
        e = [
            float(
                (
                    estimate_system(
                        s, N, torch.Generator().manual_seed(r), noise_std=0.1
                    ).A
                    - s.A
                ).norm()
            )
            for r in range(6)
        ]
        errs.append(np.mean(e))
    ratio = errs[0] / errs[1]
    assert 6 < ratio < 16  # sqrt(100) = 10
