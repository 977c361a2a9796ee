"""Exact references: LQ mean/covariance ODE vs scipy, Euler recursions vs Monte Carlo, CIR
moments vs closed forms."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from diffctrl.gradients.problems import cir, point_mass_lq
from diffctrl.gradients.references import (
    cir_exact_cost,
    finite_difference_gradient,
    lq_exact_cost,
    lq_exact_gradient,
)
from diffctrl.gradients.sde import brownian_increments, path_costs

F64 = torch.float64


@pytest.fixture(scope="module")
def linear_lq():
    return point_mass_lq(
        hidden=(), generator=torch.Generator().manual_seed(0), dtype=F64
    )


def scipy_lq_cost(problem, theta):
    A, B, S, Q, R, QT = (
        problem.info[k].numpy() for k in ("A", "B", "Sigma", "Q", "R", "QT")
    )
    W = theta[:10].view(2, 5).numpy()
    b = theta[10:].numpy()
    Wx, wt = W[:, 1:], W[:, 0]
    F = A + B @ Wx

    def rhs(t, y):
        m, P = y[:4], y[4:20].reshape(4, 4)
        u = Wx @ m + wt * t + b
        dm = F @ m + B @ (wt * t + b)
        dP = F @ P + P @ F.T + S @ S.T
        dc = m @ Q @ m + np.trace(Q @ P) + u @ R @ u + np.trace(Wx.T @ R @ Wx @ P)
        return np.concatenate([dm, dP.ravel(), [dc]])

    y0 = np.concatenate([problem.x0.numpy(), np.zeros(16), [0.0]])
    sol = solve_ivp(rhs, (0, problem.T), y0, rtol=1e-11, atol=1e-12, method="DOP853")
    y = sol.y[:, -1]
    m, P = y[:4], y[4:20].reshape(4, 4)
    return y[20] + m @ QT @ m + np.trace(QT @ P)


def test_lq_ode_matches_scipy(linear_lq):
    problem, theta = linear_lq
    ours = float(lq_exact_cost(problem, theta, n_steps=400, scheme="ode"))
    assert ours == pytest.approx(scipy_lq_cost(problem, theta), rel=1e-9)


def test_lq_euler_recursion_converges_to_ode_at_rate_one(linear_lq):
    problem, theta = linear_lq
    exact = float(lq_exact_cost(problem, theta, n_steps=400, scheme="ode"))
    errs = [
        abs(float(lq_exact_cost(problem, theta, n_steps=n)) - exact)
        for n in (40, 80, 160)
    ]
    assert 1.7 < errs[0] / errs[1] < 2.3 and 1.7 < errs[1] / errs[2] < 2.3


def test_lq_euler_recursion_is_the_chain_mean(linear_lq):
    problem, theta = linear_lq
    N, M = 10, 20000
    noise = brownian_increments(
        N, M, 2, problem.T / N, torch.Generator().manual_seed(1), dtype=F64
    )
    c = path_costs(problem, theta, noise)
    exact = float(lq_exact_cost(problem, theta, n_steps=N))
    assert abs(float(c.mean()) - exact) < 4 * float(c.std()) / math.sqrt(M)


def test_lq_exact_gradient_matches_central_differences(linear_lq):
    problem, theta = linear_lq
    for scheme, n in (("euler", 10), ("ode", 50)):
        g = lq_exact_gradient(problem, theta, n_steps=n, scheme=scheme)
        fd = torch.stack(
            [
                (
                    lq_exact_cost(problem, theta + 1e-6 * e, n_steps=n, scheme=scheme)
                    - lq_exact_cost(problem, theta - 1e-6 * e, n_steps=n, scheme=scheme)
                )
                / 2e-6
                for e in torch.eye(12, dtype=F64)
            ]
        )
        torch.testing.assert_close(g, fd, rtol=1e-6, atol=1e-7)


def test_cir_moment_recursion():
    problem, theta = cir(dtype=F64)
    kappa, m, s = theta.tolist()
    x0, T = 1.0, 1.0
    # continuous-time closed forms as N grows
    mean_T = m + (x0 - m) * math.exp(-kappa * T)
    var_T = (
        x0 * s * s / kappa * (math.exp(-kappa * T) - math.exp(-2 * kappa * T))
        + m * s * s / (2 * kappa) * (1 - math.exp(-kappa * T)) ** 2
    )
    int_mean = m * T + (x0 - m) * (1 - math.exp(-kappa * T)) / kappa
    cont = int_mean + var_T + mean_T**2
    assert float(cir_exact_cost(problem, theta, n_steps=4000)) == pytest.approx(
        cont, rel=1e-3
    )
    # and the Euler chain itself by Monte Carlo
    N, M = 10, 20000
    noise = brownian_increments(
        N, M, 1, T / N, torch.Generator().manual_seed(2), dtype=F64
    )
    c = path_costs(problem, theta, noise)
    exact = float(cir_exact_cost(problem, theta, n_steps=N))
    assert abs(float(c.mean()) - exact) < 4 * float(c.std()) / math.sqrt(M)


def test_finite_differences_on_linear_lq_and_errors(linear_lq):
    problem, theta = linear_lq
    N = 8
    fd = finite_difference_gradient(
        problem,
        theta,
        n_paths=4000,
        n_steps=N,
        generator=torch.Generator().manual_seed(3),
        coords=[0, 5, 11],
    )
    exact = lq_exact_gradient(problem, theta, n_steps=N)[[0, 5, 11]]
    se = fd.std(0) / math.sqrt(fd.shape[0])
    assert ((fd.mean(0) - exact).abs() < 4 * se).all()
    with pytest.raises(ValueError, match="eps must be positive"):
        finite_difference_gradient(problem, theta, n_paths=2, n_steps=2, eps=0.0)
    with pytest.raises(ValueError, match="out of range"):
        finite_difference_gradient(problem, theta, n_paths=2, n_steps=2, coords=[12])
    with pytest.raises(ValueError, match="scheme must be"):
        lq_exact_cost(problem, theta, n_steps=4, scheme="rk45")
    mlp_problem, mlp_theta = point_mass_lq(hidden=(3,), dtype=F64)
    with pytest.raises(ValueError, match="affine control"):
        lq_exact_cost(mlp_problem, mlp_theta, n_steps=4)
