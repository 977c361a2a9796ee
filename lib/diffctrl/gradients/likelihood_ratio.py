"""The likelihood-ratio (score-function) estimator on the Euler chain (chapter
``book/gradient_estimators.md``): the cost times the score of the Gaussian transitions. It
refuses a theta-dependent sigma and a drift whose theta-dependence leaves sigma's range.
"""

from __future__ import annotations

import torch
from torch.func import grad, jvp, vmap

from .estimate import GradientEstimate, _finish
from .sde import ControlledSDE, check_theta, resolve_noise, simulate

__all__ = ["likelihood_ratio"]


def likelihood_ratio(
    problem: ControlledSDE,
    theta: torch.Tensor,
    *,
    n_paths: int | None = None,
    n_steps: int | None = None,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    per_path: bool = True,
    progress: bool = False,
    check_range: bool = True,
) -> GradientEstimate:
    """Likelihood-ratio (score-function) estimator on the Euler chain.

    ``C * sum_k (sigma_k^+ D_theta mu_k)' dB_k + sum_k D_theta rho_k h + D_theta g(X_N)``, with
    ``X`` held fixed: the Gaussian transition density's score. It needs sigma independent of theta
    (else the transition densities are mutually singular in general, and the score does not
    exist), and ``D_theta mu`` in the range of sigma (checked on the first step with one JVP).
    """
    check_theta(problem, theta)
    if problem.sigma_depends_on_theta:
        raise ValueError(
            f"likelihood ratio does not apply to problem {problem.name!r}: its diffusion "
            "coefficient sigma depends on theta (the path laws for different theta are then "
            "mutually singular). Use 'gg' or a pathwise estimator."
        )
    noise, N, M, h = resolve_noise(problem, theta, n_paths, n_steps, generator, noise)
    th = theta.detach()
    d, m = problem.d, problem.m
    sim = simulate(problem, th, noise=noise, keep_path=True)
    path, cost = sim["path"], sim["cost"]  # (N+1, M, d), (M,)
    ts = torch.arange(N, dtype=th.dtype, device=th.device) * h
    t_flat = ts[:, None].expand(N, M).reshape(-1)
    x_flat = path[:-1].reshape(N * M, d)
    sigma = problem.diffusion(problem.params(th), t_flat, x_flat)  # (N M, d, m)
    pinv = torch.linalg.pinv(sigma)  # (N M, m, d)
    w = torch.einsum("bmd,bm->bd", pinv, noise.reshape(N * M, m)).reshape(N, M, d)
    if check_range:
        v = torch.randn(
            th.shape,
            generator=torch.Generator(device=th.device).manual_seed(0),
            dtype=th.dtype,
            device=th.device,
        )
        t0, x0 = t_flat[:M], x_flat[:M]
        _, dmu = jvp(
            lambda p: problem.drift_cost(problem.params(p), t0, x0)[0], (th,), (v,)
        )
        s0, p0 = sigma[:M], pinv[:M]
        resid = dmu - torch.einsum("bdm,bme,be->bd", s0, p0, dmu)
        if resid.abs().max() > 1e-6 * (1.0 + dmu.abs().max()):
            raise ValueError(
                f"likelihood ratio does not apply to problem {problem.name!r}: the drift's "
                "dependence on theta leaves the range of sigma (the score is not defined)."
            )

    def phi(th_, xs, ws, c):  # one path: xs (N+1, d), ws (N, d), c ()
        p_ = problem.params(th_)
        mu, rho = problem.drift_cost(p_, ts, xs[:-1])
        return (
            c * (mu * ws).sum() + h * rho.sum() + problem.terminal_cost(p_, xs[-1:])[0]
        )

    if per_path:
        samples = vmap(grad(phi), in_dims=(None, 1, 1, 0))(th, path, w, cost)
        return _finish("lr", samples, cost, N)
    th_r = th.clone().requires_grad_(True)
    p_r = problem.params(th_r)
    mu, rho = problem.drift_cost(p_r, t_flat, x_flat)
    obj = (
        (cost[None, :] * (mu.reshape(N, M, d) * w).sum(-1)).sum()
        + h * rho.sum()
        + problem.terminal_cost(p_r, path[-1]).sum()
    )
    (g,) = torch.autograd.grad(obj / M, th_r)
    return _finish("lr", None, cost, N, mean=g)
