"""K^lin and the DARE: exact against scipy and an independent Riccati recursion."""

import numpy as np
import pytest
import scipy.linalg
import torch

from diffctrl.lqr import k_lin, linear_part_optimal, lqr_cost, lqr_gain, random_system, solve_dare


def _riccati_recursion(A, B, Q, R, iters=2000):
    """Value iteration P <- Q + A'PA - A'PB (R + B'PB)^{-1} B'PA from P = Q (no scipy)."""
    P = Q.copy()
    for _ in range(iters):
        G = R + B.T @ P @ B
        P = Q + A.T @ P @ A - A.T @ P @ B @ np.linalg.solve(G, B.T @ P @ A)
    return P


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_klin_with_c_zero_is_the_dare_gain(seed):
    s = random_system(3, 3, seed=seed, spectral_radius=0.9)
    s = s.replace(C=torch.zeros_like(s.C))
    A, B, Q, R = (getattr(s, k).numpy() for k in "ABQR")
    P = scipy.linalg.solve_discrete_are(A, B, Q, R)
    K_dare = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    K = k_lin(s).numpy()
    assert np.array_equal(K[:, :3], K_dare)                # the same formula, bit for bit
    assert np.array_equal(K[:, 3:], np.zeros((3, 3)))
    assert np.allclose(_riccati_recursion(A, B, Q, R), P, atol=1e-10)
    assert torch.equal(linear_part_optimal(s), k_lin(s))


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
    assert best == pytest.approx(np.trace(P) / 3, rel=1e-10)     # E x0'P x0, Sigma0 = I/3
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert lqr_cost(A, B, Q, R, K + 1e-2 * rng.standard_normal(K.shape)) > best
    # the Lyapunov (infinite-horizon) cost is the limit of the finite sums
    assert lqr_cost(A, B, Q, R, K, horizon=400) == pytest.approx(best, rel=1e-10)
