"""Pathwise differentiation of the Euler chain, the method the generator gradient is compared
with (Wang, Blanchet & Glynn, NeurIPS 2024, Sec. 2; chapter ``book/gradient_estimators.md``).

- :func:`pathwise_forward`: forward sensitivities ``Y = dX/dtheta``, the ``d + d n``-dimensional
  SDE of the paper;
- :func:`pathwise_reverse`: reverse-mode autograd through the stored path.
"""

from __future__ import annotations

import torch
from torch.func import grad_and_value, jacrev, vmap
from tqdm.auto import tqdm

from .estimate import GradientEstimate, _finish, _terminal3, _x0
from .sde import (
    ControlledSDE,
    check_theta,
    euler_step,
    resolve_noise,
    simulate,
    time_grid,
    value_and_x_derivatives,
)

__all__ = ["pathwise_forward", "pathwise_reverse"]


def pathwise_forward(
    problem: ControlledSDE,
    theta: torch.Tensor,
    *,
    n_paths: int | None = None,
    n_steps: int | None = None,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    per_path: bool = True,
    progress: bool = False,
) -> GradientEstimate:
    """Pathwise derivative by forward sensitivities ``Y_k = dX_k / dtheta`` (shape ``(M, d, n)``).

    ``Y_{k+1} = Y_k + (D_x mu Y_k + D_theta mu) h
    + sum_l (D_x sigma_l Y_k + D_theta sigma_l) dB_l``, and
    ``dC/dtheta = sum_k (D_x rho Y_k + D_theta rho) h + D_x g Y_N + D_theta g``: the
    ``d + d n``-dimensional system of the paper. ``D_theta`` per path by ``vmap(jacrev)``.
    """
    check_theta(problem, theta)
    noise, N, M, h = resolve_noise(problem, theta, n_paths, n_steps, generator, noise)
    th = theta.detach()
    n, d, dt, dev = problem.n_params, problem.d, th.dtype, th.device

    def single(fn):
        def f(th_, t1, x1):
            out = fn(problem.params(th_), t1[None], x1[None])
            return tuple(o[0] for o in out) if isinstance(out, tuple) else out[0]

        return f

    jac_theta_drift = vmap(jacrev(single(problem.drift_cost)), in_dims=(None, 0, 0))
    jac_theta_sigma = vmap(jacrev(single(problem.diffusion)), in_dims=(None, 0, 0))
    prm = problem.params(th)
    x = _x0(problem, th, M)
    Y = torch.zeros(M, d, n, dtype=dt, device=dev)
    G = torch.zeros(M, n, dtype=dt, device=dev)
    cost = torch.zeros(M, dtype=dt, device=dev)
    for k in tqdm(range(N), disable=not progress, desc="pathwise forward", leave=False):
        t = time_grid(problem, N, M, k, th)
        (mu, rho), (dmu, drho), _ = value_and_x_derivatives(
            problem.drift_cost, prm, t, x, 1, problem.drift_cost_jvp
        )
        jmu, jrho = jac_theta_drift(th, t, x)
        if problem.sigma_depends_on_x:
            sigma, dsig, _ = value_and_x_derivatives(problem.diffusion, prm, t, x, 1)
        else:
            sigma, dsig = problem.diffusion(prm, t, x), None
        cost = cost + rho * h
        G = G + h * (torch.einsum("bc,bcn->bn", drho, Y) + jrho)
        db = noise[k]
        Y_new = Y + h * (torch.bmm(dmu, Y) + jmu)
        if dsig is not None:
            Y_new = Y_new + torch.einsum("bilc,bl,bcn->bin", dsig, db, Y)
        if problem.sigma_depends_on_theta:
            Y_new = Y_new + torch.einsum("biln,bl->bin", jac_theta_sigma(th, t, x), db)
        x = euler_step(x, mu, sigma, db, h)
        Y = Y_new
    t_N = time_grid(problem, N, M, N, th)
    g, dg, _ = value_and_x_derivatives(_terminal3(problem), prm, t_N, x, 1)
    jg = vmap(jacrev(single(_terminal3(problem))), in_dims=(None, 0, 0))(th, t_N, x)
    cost = cost + g
    G = G + torch.einsum("bc,bcn->bn", dg, Y) + jg
    if per_path:
        return _finish("pathwise_forward", G, cost, N)
    return _finish("pathwise_forward", None, cost, N, mean=G.mean(0))


def pathwise_reverse(
    problem: ControlledSDE,
    theta: torch.Tensor,
    *,
    n_paths: int | None = None,
    n_steps: int | None = None,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    per_path: bool = True,
    progress: bool = False,
) -> GradientEstimate:
    """Pathwise derivative by reverse-mode autograd through the simulated Euler path.

    ``per_path=True``: ``vmap(grad)`` over paths (per-path samples, memory ``M n``);
    ``per_path=False``: one backward pass of the path-averaged cost (memory ``n`` + the tape).
    """
    check_theta(problem, theta)
    noise, N, M, h = resolve_noise(problem, theta, n_paths, n_steps, generator, noise)
    th = theta.detach()
    if per_path:

        def one(th_, nz):
            return simulate(problem, th_, noise=nz[:, None, :])["cost"][0]

        samples, cost = vmap(grad_and_value(one), in_dims=(None, 1))(th, noise)
        return _finish("pathwise_reverse", samples, cost, N)
    th_r = th.clone().requires_grad_(True)
    cost = simulate(problem, th_r, noise=noise)["cost"]
    (mean,) = torch.autograd.grad(cost.mean(), th_r)
    return _finish("pathwise_reverse", None, cost, N, mean=mean)
