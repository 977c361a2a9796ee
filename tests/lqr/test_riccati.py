"""K^lin and the DARE: exact against scipy and an independent Riccati recursion."""

import numpy as np
import pytest
import scipy.linalg
import torch

from diffctrl.lqr import (
    cancellation_policy,
    k_lin,
    linear_part_optimal,
    lqr_cost,
    lqr_gain,
    random_system,
    solve_dare,
    split_policy,
)


def _riccati_recursion(A, B, Q, R, iters=2000):
    """Value iteration P <- Q + A'PA - A'PB (R + B'PB)^{-1} B'PA from P = Q (no scipy)."""
    P = Q.copy()
    for _ in range(iters):
        G = R + B.T @ P @ B
        P = Q + A.T @ P @ A - A.T @ P @ B @ np.linalg.solve(G, B.T @ P @ A)
    return P


def _gain(A, B, R, P):
    return np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_klin_with_c_zero_is_the_dare_gain(seed):
    """With C = 0, K^lin = [K_dare, 0]: K_dare from an independent value iteration (no scipy),
    and first-order optimal for the exact infinite-horizon LQR cost (central differences)."""
    s = random_system(3, 3, seed=seed, spectral_radius=0.9)
    s = s.replace(C=torch.zeros_like(s.C))
    A, B, Q, R = (getattr(s, k).numpy() for k in "ABQR")
    P_iter = _riccati_recursion(A, B, Q, R)
    assert np.allclose(P_iter, scipy.linalg.solve_discrete_are(A, B, Q, R), atol=1e-10)
    K_iter = _gain(A, B, R, P_iter)
    K = k_lin(s).numpy()
    np.testing.assert_allclose(K[:, :3], K_iter, rtol=1e-9, atol=1e-11)
    assert np.array_equal(K[:, 3:], np.zeros((3, 3)))  # B'P C with C = 0: exactly zero
    np.testing.assert_allclose(linear_part_optimal(s).numpy(), K, rtol=1e-9, atol=1e-11)
    eps, grad = 1e-6, np.zeros_like(K_iter)
    for i in range(3):
        for j in range(3):
            E = np.zeros_like(K_iter)
            E[i, j] = eps
            grad[i, j] = (
                lqr_cost(A, B, Q, R, K_iter + E) - lqr_cost(A, B, Q, R, K_iter - E)
            ) / (2 * eps)
    assert np.abs(grad).max() < 1e-7


def test_klin_kernel_part_formula():
    s = random_system(3, 3, scale=2.0, seed=5)
    A, B, C, Q, R = (getattr(s, k).numpy() for k in "ABCQR")
    P = solve_dare(A, B, Q, R)
    G = R + B.T @ P @ B
    K = k_lin(s).numpy()
    assert np.allclose(G @ K[:, :3], B.T @ P @ A, atol=1e-12)
    assert np.allclose(G @ K[:, 3:], B.T @ P @ C, atol=1e-12)


def test_dare_gain_minimises_the_exact_lq_cost():
    s = random_system(3, 2, seed=7, spectral_radius=0.9)
    A, B, Q, R = (getattr(s, k).numpy() for k in "ABQR")
    K = lqr_gain(A, B, Q, R)
    best = lqr_cost(A, B, Q, R, K)
    P = solve_dare(A, B, Q, R)
    assert best == pytest.approx(np.trace(P) / 3, rel=1e-10)  # E x0'P x0, Sigma0 = I/3
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert lqr_cost(A, B, Q, R, K + 1e-2 * rng.standard_normal(K.shape)) > best
    # the Lyapunov (infinite-horizon) cost is the limit of the finite sums
    assert lqr_cost(A, B, Q, R, K, horizon=400) == pytest.approx(best, rel=1e-10)


def test_cancellation_policy_removes_the_kernel_term():
    s = random_system(3, 3, scale=2.0, seed=4)
    K1, K2 = split_policy(s, cancellation_policy(s))
    assert torch.allclose(
        s.C - s.B @ K2, torch.zeros(3, 3, dtype=torch.float64), atol=1e-12
    )
