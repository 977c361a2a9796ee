"""The policy-gradient loop: the DARE optimum when C = 0, stacked runs, bad inputs and
divergence."""

import numpy as np
import pytest
import torch

from diffctrl.lqr import (
    cost,
    k_lin,
    lqr_cost,
    lqr_gain,
    policy_gradient,
    product_kernel,
    random_system,
    sphere_points,
    stack_systems,
    zeroth_order_gradient,
)


def test_zeroth_order_pg_reaches_the_dare_optimum_when_c_is_zero():
    """C = 0: the paper's one-point estimator drives K to [K_lqr, 0].

    Tolerance: the average of the last half of the iterates is within 0.08 (Frobenius) of the
    DARE optimum (the start is 0.66 away) and its cost within 0.1% of the DARE cost.
    """
    s = random_system(
        2, 1, seed=3, spectral_radius=0.5, kernel=product_kernel(2, [(0, 1)])
    )
    s = s.replace(C=torch.zeros_like(s.C))
    K_star = torch.cat(
        [
            torch.as_tensor(lqr_gain(s.A, s.B, s.Q, s.R)),
            torch.zeros(1, 1, dtype=torch.float64),
        ],
        1,
    )
    K0 = K_star + torch.tensor([[0.3, -0.3, 0.5]], dtype=torch.float64)
    x0 = sphere_points(2, 64)
    res = policy_gradient(
        s, K0, 100, 0.2, n_perturb=20_000, radius=0.3, horizon=20, x0_eval=x0, seed=0
    )
    assert not res.diverged
    K_avg = res.K[50:].mean(0)
    assert float((K0 - K_star).norm()) > 0.65
    assert float((K_avg - K_star).norm()) < 0.08
    c_dare = lqr_cost(s.A, s.B, s.Q, s.R, K_star[:, :2], sigma0=np.eye(2) / 2)
    assert float(cost(s, K_avg, x0, 20)) / c_dare - 1 < 1e-3


def test_stacked_runs_match_single_runs():
    systems = [
        random_system(3, 3, scale=l, seed=i, spectral_radius=0.3)
        for i, l in enumerate((0.5, 1.0, 1.5))
    ]
    x0 = sphere_points(3, 24)
    K0 = torch.stack([k_lin(s) for s in systems])
    S = stack_systems(systems)
    kw = dict(estimator="exact", horizon=6, check_initial=False, stop_if_unstable=False)
    both = policy_gradient(S, K0, 5, 0.05, x0_eval=x0.expand(3, 24, 3), **kw)
    for i, s in enumerate(systems):
        one = policy_gradient(s, K0[i], 5, 0.05, x0_eval=x0, **kw)
        assert torch.allclose(both.K[:, i], one.K, atol=1e-13)
        assert np.allclose(both.cost[:, i], one.cost, rtol=1e-12)
    # per-system step sizes
    steps = torch.tensor([0.05, 0.01, 0.02], dtype=torch.float64)
    mixed = policy_gradient(S, K0, 3, steps, x0_eval=x0.expand(3, 24, 3), **kw)
    one = policy_gradient(systems[1], K0[1], 3, 0.01, x0_eval=x0, **kw)
    assert torch.allclose(mixed.K[:, 1], one.K, atol=1e-13)


def test_bad_inputs_and_divergence_are_reported_not_silent():
    s = random_system(3, 3, scale=1.0, seed=0, spectral_radius=0.5)
    K = k_lin(s)
    unstable = K - 5 * torch.cat([torch.linalg.pinv(s.B), torch.zeros(3, 3).to(K)], 1)
    with pytest.raises(ValueError, match="K0 does not stabilise"):
        policy_gradient(s, unstable, 5, 1e-4)
    with pytest.raises(ValueError, match="r \\(radius\\)"):
        policy_gradient(s, K, 5, 1e-4, radius=0.0)
    with pytest.raises(ValueError, match="r \\(radius\\)"):
        zeroth_order_gradient(s, K, 10, -1.0, 5)
    with pytest.raises(ValueError, match="step"):
        policy_gradient(s, K, 5, 0.0)
    with pytest.raises(ValueError, match="n_perturb"):
        zeroth_order_gradient(s, K, 0, 0.5, 5)
    with pytest.raises(ValueError, match="shape"):
        policy_gradient(s, K[:, :5], 5, 1e-4)
    with pytest.raises(ValueError, match="shape"):
        zeroth_order_gradient(s, K.expand(2, 3, 6), 10, 0.5, 5)
    with pytest.raises(ValueError, match="estimator"):
        policy_gradient(s, K, 5, 1e-4, estimator="reinforce")
    # a step far too large: the run stops, flagged, instead of filling K with NaN
    res = policy_gradient(s, K + 0.02, 50, 50.0, estimator="exact", horizon=10)
    assert res.diverged and res.stopped_at >= 0 and res.reason
    assert torch.isfinite(res.K).all()
    assert np.isnan(res.cost[res.iters > res.stopped_at]).all()
