"""Kernel GD in closed form, the local Rademacher complexity, the RWY stopping rule."""

import math

import pytest
import torch

from diffctrl.score_theory.kernels import (
    critical_radius,
    fit_kernel_gd,
    kernel_gd_predict,
    local_rademacher,
    relu_ntk,
    rwy_stopping_step,
    rwy_stopping_time,
    spectral_filter,
    validation_stop,
)
from diffctrl.score_theory.network import features


def _problem(n=25, n_eval=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + n_eval, 2, generator=g, dtype=torch.float64)
    t = torch.rand(n + n_eval, generator=g, dtype=torch.float64) + 0.05
    z = features(x, t)
    y = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return z[:n], y, z[n:]


@pytest.mark.parametrize("lr_scale", [0.3, 1.0, 1.7])
def test_spectral_form_equals_iterated_kernel_gd(lr_scale):
    z, y, z_eval = _problem()
    K, K_eval = relu_ntk(z, z), relu_ntk(z_eval, z)
    kgd = fit_kernel_gd(K, y)
    n = z.shape[0]
    lr = lr_scale * n / float(kgd.eigvals[0])
    steps = [0, 1, 7, 60]
    F, c = torch.zeros_like(y), torch.zeros_like(y)
    want_train, want_eval = {}, {}
    for k in range(61):
        if k in steps:
            want_train[k], want_eval[k] = F.clone(), K_eval @ c
        resid = F - y
        F = F - lr / n * K @ resid  # F_{k+1} = F_k - (lr/n) K (F_k - Y)
        c = c - lr / n * resid  # f_k = K(., Z) c_k
    got_train = kernel_gd_predict(kgd, None, steps, lr)
    got_eval = kernel_gd_predict(kgd, K_eval, steps, lr)
    for i, k in enumerate(steps):
        torch.testing.assert_close(got_train[i], want_train[k], rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(got_eval[i], want_eval[k], rtol=1e-8, atol=1e-10)


def test_long_training_interpolates_and_flow_is_the_small_step_limit():
    z, y, z_eval = _problem(n=15)
    K = relu_ntk(z, z)
    kgd = fit_kernel_gd(K, y)
    lr = 15 / float(kgd.eigvals[0])
    far = kernel_gd_predict(kgd, None, [1e12], lr)[0]
    torch.testing.assert_close(far, y, rtol=0, atol=1e-6)  # kernel interpolation
    interp = relu_ntk(z_eval, z) @ torch.linalg.solve(K, y)
    torch.testing.assert_close(
        kernel_gd_predict(kgd, relu_ntk(z_eval, z), [1e12], lr)[0],
        interp,
        rtol=1e-5,
        atol=1e-5,
    )
    # gradient flow for time tau = lr k equals GD with k' = 1000 k steps of lr / 1000, nearly
    flow = kernel_gd_predict(kgd, None, [20], lr, flow=True)[0]
    gd_small = kernel_gd_predict(kgd, None, [20_000], lr / 1000)[0]
    torch.testing.assert_close(flow, gd_small, rtol=2e-3, atol=2e-3)
    g = spectral_filter(kgd.eigvals, [0], lr, 15)
    assert float(g.abs().max()) == 0.0
    with pytest.raises(ValueError, match="unstable"):
        spectral_filter(kgd.eigvals, [1], 2.5 * lr, 15)


def test_local_rademacher_and_rwy_rule_by_brute_force():
    lam = (
        1.0 / torch.arange(1, 201, dtype=torch.float64) ** 2
    )  # eigenvalues of K/n, c = 1
    n, sigma = 200, 0.5
    R = local_rademacher(lam, torch.tensor([0.1, 1.0]))
    torch.testing.assert_close(
        R[0], torch.minimum(lam, torch.tensor(0.01)).mean().sqrt()
    )
    # brute force: first t with R(1/sqrt(t)) > 1 / (2 e sigma t), minus one (unit steps)
    t = 1
    while float(local_rademacher(lam, torch.tensor([t**-0.5]))[0]) <= 1 / (
        2 * math.e * sigma * t
    ):
        t += 1
    T = rwy_stopping_time(lam * n, n, sigma)
    assert T == t - 1
    assert rwy_stopping_step(
        lam * n, n, lr=2.0, sigma=sigma, kernel_scale=4.0
    ) == pytest.approx(rwy_stopping_time(lam * n, n, sigma, 4.0) / 8.0)
    # the critical radius solves R(delta) = delta^2 / (2 e sigma); the RWY time is ~ 1/delta^2
    delta = critical_radius(lam * n, n, sigma)
    r = float(local_rademacher(lam, torch.tensor([delta]))[0])
    assert r == pytest.approx(delta**2 / (2 * math.e * sigma), rel=1e-6)
    assert 0.2 < T * delta**2 < 5
    # more noise -> stop earlier, larger radius
    assert rwy_stopping_time(lam * n, n, 4 * sigma) < T
    assert critical_radius(lam * n, n, 4 * sigma) > delta


def test_validation_stop_and_errors():
    assert validation_stop([3.0, 1.0, 2.0]) == 1
    with pytest.raises(ValueError):
        validation_stop([])
    with pytest.raises(ValueError, match="square"):
        fit_kernel_gd(torch.zeros(3, 2), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="sigma"):
        rwy_stopping_time(torch.ones(3), 3, 0.0)
