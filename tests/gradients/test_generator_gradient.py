"""The generator gradient: GG averaged over its random step is the pathwise gradient (off
sigma), it matches finite differences, it needs its second variations when sigma depends
on theta, and its late tangents equal the all-step recursion."""

import dataclasses
import importlib

import pytest
import torch

from diffctrl.gradients import (
    generator_gradient,
    pathwise_reverse,
)
from diffctrl.gradients.problems import cir, point_mass_lq, relu_drift, volatility_net
from diffctrl.gradients.references import (
    cir_exact_cost,
    finite_difference_gradient,
)
from diffctrl.gradients.sde import (
    euler_step,
    time_grid,
    value_and_x_derivatives,
)
from diffctrl.stats import coordinate_z, hotelling_test

F64 = torch.float64


@pytest.mark.parametrize("which", ["mlp_lq", "relu"])
def test_gg_averaged_over_its_random_step_is_the_pathwise_gradient(
    which, mlp_lq, noise_for
):
    """Drift-only theta: E[GG | path] = reverse-mode pathwise gradient, path by path."""
    if which == "mlp_lq":
        problem, theta = mlp_lq
    else:
        problem, theta = relu_drift(
            generator=torch.Generator().manual_seed(0), dtype=F64
        )
    N, M = 6, 5
    noise = noise_for(problem, N, M, 2)
    avg = (
        sum(
            generator_gradient(
                problem, theta, noise=noise, kappa=torch.full((M,), k)
            ).samples
            for k in range(N)
        )
        / N
    )
    torch.testing.assert_close(
        avg,
        pathwise_reverse(problem, theta, noise=noise).samples,
        rtol=1e-9,
        atol=1e-11,
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: cir(dtype=F64),
        lambda: volatility_net(generator=torch.Generator().manual_seed(0), dtype=F64),
    ],
)
def test_rao_blackwell_identity_holds_coordinatewise_off_sigma(make, noise_for):
    """Coordinates that enter only drift and costs keep E[GG | path] = pathwise; the ones in
    sigma do not (GG uses the Hessian there)."""
    problem, theta = make()
    sig = problem.info["sigma_coords"]
    drift = [i for i in range(problem.n_params) if i not in sig]
    N, M = 6, 5
    noise = noise_for(problem, N, M, 2)
    avg = (
        sum(
            generator_gradient(
                problem, theta, noise=noise, kappa=torch.full((M,), k)
            ).samples
            for k in range(N)
        )
        / N
    )
    pd = pathwise_reverse(problem, theta, noise=noise).samples
    torch.testing.assert_close(avg[:, drift], pd[:, drift], rtol=1e-9, atol=1e-11)
    assert (avg[:, sig] - pd[:, sig]).abs().max() > 1e-3


@pytest.mark.parametrize("make", ["cir", "volatility_net", "relu_drift"])
def test_gg_matches_finite_differences(make, noise_for):
    """Paired test on common noise: E[GG - FD] = 0 (FD bias O(eps^2) is negligible here)."""
    problem, theta = {
        "cir": lambda: cir(dtype=F64),
        "volatility_net": lambda: volatility_net(
            generator=torch.Generator().manual_seed(0), dtype=F64
        ),
        "relu_drift": lambda: relu_drift(
            generator=torch.Generator().manual_seed(0), dtype=F64
        ),
    }[make]()
    N, M = 10, 3000
    noise = noise_for(problem, N, M, 3)
    gg = generator_gradient(
        problem, theta, noise=noise, generator=torch.Generator().manual_seed(4)
    )
    fd = finite_difference_gradient(problem, theta, noise=noise, eps=1e-5)
    diff = gg.samples - fd
    zero = torch.zeros(problem.n_params, dtype=F64)
    assert coordinate_z(diff, zero).abs().max() < 4
    assert hotelling_test(diff, zero)["p"] > 1e-3
    if make == "cir":
        th = theta.clone().requires_grad_(True)
        (exact,) = torch.autograd.grad(cir_exact_cost(problem, th, n_steps=N), th)
        assert coordinate_z(gg.samples, exact).abs().max() < 4


def test_gg_uses_second_variations_when_sigma_depends_on_theta(noise_for):
    """Without the Hessian term GG would be biased for the vol-parameters: check it is not."""
    problem, theta = volatility_net(
        generator=torch.Generator().manual_seed(0), dtype=F64
    )
    N, M = 10, 3000
    noise = noise_for(problem, N, M, 5)
    fd = finite_difference_gradient(
        problem, theta, noise=noise, eps=1e-5, coords=range(4, 10)
    )
    no_hess = dataclasses.replace(problem, sigma_depends_on_theta=False)
    wrong = generator_gradient(
        no_hess, theta, noise=noise, generator=torch.Generator().manual_seed(6)
    ).samples[:, 4:]
    assert coordinate_z(wrong - fd, torch.zeros(6, dtype=F64)).abs().max() > 10


# ------------------------------------------------------------------ GG: tangents only after kappa
def _gg_all_tangents(problem, theta, noise, kappa):
    """The former GG recursion, kept as the reference: every path carries its tangents at
    every step (masked before kappa + 1). Returns ``(lam, H, x_kappa, x_N, cost)``."""
    N, M = noise.shape[0], noise.shape[1]
    h = problem.T / N
    dev, dt = theta.device, theta.dtype
    need_hess = problem.sigma_depends_on_theta
    order = 2 if need_hess else 1
    th = theta.detach()
    prm = problem.params(th)
    d = problem.d
    eye = torch.eye(d, dtype=dt, device=dev).expand(M, d, d)
    x = problem.x0.to(dtype=th.dtype).expand(M, -1)
    J = eye.clone()
    K = torch.zeros(M, d, d, d, dtype=dt, device=dev) if need_hess else None
    lam = torch.zeros(M, d, dtype=dt, device=dev)
    H = torch.zeros(M, d, d, dtype=dt, device=dev)
    x_kappa = torch.zeros(M, d, dtype=dt, device=dev)
    cost = torch.zeros(M, dtype=dt, device=dev)
    for k in range(N):
        t = time_grid(problem, N, M, k, th)
        x_kappa = torch.where((kappa == k)[:, None], x, x_kappa)
        reset = kappa + 1 == k
        J = torch.where(reset[:, None, None], eye, J)
        if need_hess:
            K = torch.where(reset[:, None, None, None], torch.zeros_like(K), K)
        active = (k >= kappa + 1).to(dt)
        (mu, rho), (dmu, drho), hess = value_and_x_derivatives(
            problem.drift_cost, prm, t, x, order, problem.drift_cost_jvp
        )
        if problem.sigma_depends_on_x:
            sigma, dsig, hsig = value_and_x_derivatives(
                problem.diffusion, prm, t, x, order
            )
        else:
            sigma, dsig, hsig = problem.diffusion(prm, t, x), None, None
        cost = cost + rho * h
        lam = lam + (active * h)[:, None] * torch.einsum("bca,bc->ba", J, drho)
        if need_hess:
            d2mu, d2rho = hess
            H = H + (active * h)[:, None, None] * (
                torch.einsum("bca,bce,bef->baf", J, d2rho, J)
                + torch.einsum("bc,bcaf->baf", drho, K)
            )
        db = noise[k]
        x_new = euler_step(x, mu, sigma, db, h)
        J_new = J + h * torch.bmm(dmu, J)
        if dsig is not None:
            J_new = J_new + torch.einsum("bilc,bl,bca->bia", dsig, db, J)
        if need_hess:
            K_new = K + h * (
                torch.einsum("bic,bcaf->biaf", dmu, K)
                + torch.einsum("bice,bca,bef->biaf", d2mu, J, J)
            )
            if dsig is not None:
                K_new = (
                    K_new
                    + torch.einsum("bilc,bl,bcaf->biaf", dsig, db, K)
                    + torch.einsum("bilce,bl,bca,bef->biaf", hsig, db, J, J)
                )
            K = K_new
        x, J = x_new, J_new
    reset = kappa + 1 == N
    J = torch.where(reset[:, None, None], eye, J)
    t_N = time_grid(problem, N, M, N, th)
    g, dg, d2g = value_and_x_derivatives(
        lambda th_, t_, x_: problem.terminal_cost(th_, x_), prm, t_N, x, order
    )
    cost = cost + g
    lam = lam + torch.einsum("bca,bc->ba", J, dg)
    if need_hess:
        K = torch.where(reset[:, None, None, None], torch.zeros_like(K), K)
        H = (
            H
            + torch.einsum("bca,bce,bef->baf", J, d2g, J)
            + torch.einsum("bc,bcaf->baf", dg, K)
        )
    return lam, H, x_kappa, x, cost


GG_PROBLEMS = {
    "mlp_lq": lambda: point_mass_lq(
        hidden=(8, 8), generator=torch.Generator().manual_seed(0), dtype=F64
    ),
    "relu_drift": lambda: relu_drift(
        generator=torch.Generator().manual_seed(0), dtype=F64
    ),
    "cir": lambda: cir(dtype=F64),
    "volatility_net": lambda: volatility_net(
        generator=torch.Generator().manual_seed(0), dtype=F64
    ),
}


@pytest.mark.parametrize("make", sorted(GG_PROBLEMS))
def test_gg_late_tangents_equal_the_all_tangent_recursion(make, monkeypatch, noise_for):
    """Same noise, same kappa (every value 0..N-1, unsorted): the estimator that propagates the
    tangents only from kappa + 1 on returns what the all-step recursion gives, path by path."""
    from torch.func import grad, vmap

    est = importlib.import_module("diffctrl.gradients.generator_gradient")

    problem, theta = GG_PROBLEMS[make]()
    N, M = 7, 14
    noise = noise_for(problem, N, M, 8)
    kappa = torch.tensor([6, 0, 3, 3, 1, 5, 2, 0, 4, 6, 1, 2, 5, 4])
    lam, H, xk, xN, cost = _gg_all_tangents(problem, theta, noise, kappa)
    need_hess = problem.sigma_depends_on_theta
    T, h = problem.T, problem.T / N

    def one(th_, t1, x1, lam1, H1, xT1):
        p_ = problem.params(th_)
        mu1, rho1 = problem.drift_cost(p_, t1[None], x1[None])
        val = rho1[0] + (mu1[0] * lam1).sum()
        if need_hess:
            sig = problem.diffusion(p_, t1[None], x1[None])[0]
            val = val + 0.5 * (sig * (H1 @ sig)).sum()
        return T * val + problem.terminal_cost(p_, xT1[None])[0]

    ref = vmap(grad(one), in_dims=(None, 0, 0, 0, 0, 0))(
        theta, kappa.to(F64) * h, xk, lam, H, xN
    )
    new = generator_gradient(problem, theta, noise=noise, kappa=kappa)
    torch.testing.assert_close(new.samples, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(new.cost, cost, rtol=1e-12, atol=1e-12)
    # and the derivative passes: N - 1 - kappa per path (+ 1 at X_N), not N + 1
    rows = []
    orig = est.value_and_x_derivatives

    def counting(fn, prm, t, x, order, jvp_fn=None):
        rows.append(x.shape[0])
        return orig(fn, prm, t, x, order, jvp_fn)

    monkeypatch.setattr(est, "value_and_x_derivatives", counting)
    generator_gradient(problem, theta, noise=noise, kappa=kappa)
    per_coef = (
        2 if problem.sigma_depends_on_x else 1
    )  # drift/cost, and sigma if it has x
    assert sum(rows) == per_coef * int((N - 1 - kappa).sum()) + M
