"""Entry points of diffctrl.lqr that take data (transitions, initial states, system matrices)
refuse a wrong shape or a non-finite value, naming the argument; well-formed calls still
recover the closed form."""

import numpy as np
import pytest
import scipy.linalg
import torch

from diffctrl.lqr.identification import collect_transitions, least_squares
from diffctrl.lqr.riccati import lqr_gain, solve_dare
from diffctrl.lqr.rollout import cost, rollout, sample_x0
from diffctrl.lqr.system import random_system


@pytest.fixture(scope="module")
def system():
    return random_system(n=2, p=2, seed=0)


def test_least_squares_refuses_nan_transitions_and_recovers_the_system(system):
    x, u, xn = collect_transitions(system, 40, torch.Generator().manual_seed(0))
    bad = u.clone()
    bad[3, 0] = float("nan")
    with pytest.raises(ValueError, match="u has non-finite"):
        least_squares(system, x, bad, xn)
    with pytest.raises(ValueError, match="x_next must have 2 dimensions"):
        least_squares(system, x, u, xn[None])
    A, B, C = least_squares(system, x, u, xn)  # noiseless: exact recovery
    assert torch.allclose(A, system.A, atol=1e-10) and torch.allclose(
        C, system.C, atol=1e-10
    )


def test_rollout_refuses_nan_initial_states(system):
    K = torch.zeros(system.policy_shape, dtype=torch.float64)
    x0 = sample_x0(system.n, 5, torch.Generator().manual_seed(1))
    bad = x0.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x0 has non-finite"):
        rollout(system, K, bad, 3)
    with pytest.raises(TypeError, match="x0 must be a torch.Tensor"):
        cost(system, K, x0.numpy(), 3)
    # well formed, K = 0 and phi's part aside: one step of cost is |x0|^2 (Q = I)
    assert torch.allclose(rollout(system, K, x0, 1), (x0**2).sum(-1), atol=1e-12)


def test_riccati_refuses_nan_matrices_and_matches_scipy():
    A, B = np.array([[1.0, 0.1], [0.0, 1.0]]), np.array([[0.0], [0.1]])
    Q, R = np.eye(2), np.eye(1)
    with pytest.raises(ValueError, match="Q has non-finite"):
        solve_dare(A, B, np.array([[1.0, 0.0], [0.0, np.nan]]), R)
    with pytest.raises(ValueError, match=r"R must have shape \(1, 1\)"):
        solve_dare(A, B, Q, np.eye(2))
    P = scipy.linalg.solve_discrete_are(A, B, Q, R)
    assert np.allclose(solve_dare(A, B, Q, R), P)
    assert np.allclose(
        lqr_gain(A, B, Q, R), np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    )
