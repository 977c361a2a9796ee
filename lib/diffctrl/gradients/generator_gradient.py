"""The generator-gradient (GG) estimator of Wang, Blanchet & Glynn (NeurIPS 2024, Thm. 1), in
the discrete-time form derived in the chapter ``book/gradient_estimators.md``.

Pick ``kappa ~ U{0..N-1}`` per path and return
``T grad_theta[rho + mu . lambda + tr(sigma' H sigma) / 2](t_kappa, X_kappa) + grad_theta g(X_N)``,
where ``lambda`` and ``H`` are the pathwise gradient / Hessian of the cost-to-go with respect
to ``X_{kappa+1}``, carried by the first (d x d) and second (d x d x d) variation processes of
the continuation of the same path. One VJP through the network per estimate; no state of size
``n``.
"""

from __future__ import annotations

import torch
from torch.func import grad, vmap
from tqdm.auto import tqdm

from .estimate import GradientEstimate, _finish, _terminal3, _x0
from .sde import (
    ControlledSDE,
    check_theta,
    euler_step,
    resolve_noise,
    time_grid,
    value_and_x_derivatives,
)

__all__ = ["generator_gradient"]


def generator_gradient(
    problem: ControlledSDE,
    theta: torch.Tensor,
    *,
    n_paths: int | None = None,
    n_steps: int | None = None,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    kappa: torch.Tensor | None = None,
    per_path: bool = True,
    progress: bool = False,
) -> GradientEstimate:
    """Generator-gradient (GG) estimator (Wang, Blanchet & Glynn 2024, Thm. 1; chapter, Prop. GG).

    State carried per path: ``X (d)``, first variation ``J (d, d)``, and, when sigma depends on
    theta, second variation ``K (d, d, d)``; the running sums ``lambda (d)`` and ``H (d, d)``
    of the cost-to-go's pathwise gradient / Hessian w.r.t. ``X_{kappa+1}``. None of it has
    size ``n``. ``kappa (M,)`` (random step per path, ``U{0..N-1}``) may be given to fix it.
    The tangents are propagated, and the x-derivatives of the coefficients evaluated, only on
    the steps ``k >= kappa + 1`` where they are used: ``N - 1 - kappa`` derivative passes per
    path, ``(N - 1) / 2`` on average, instead of ``N`` (the other steps evaluate values only).
    """
    check_theta(problem, theta)
    noise, N, M, h = resolve_noise(problem, theta, n_paths, n_steps, generator, noise)
    dev, dt = theta.device, theta.dtype
    if kappa is None:
        kappa = torch.randint(0, N, (M,), generator=generator, device=dev)
    else:
        kappa = torch.as_tensor(kappa, device=dev)
        if kappa.shape != (M,) or kappa.dtype.is_floating_point:
            raise ValueError(
                f"kappa must be an integer tensor of shape ({M},), got "
                f"{tuple(kappa.shape)} {kappa.dtype}"
            )
        if int(kappa.min()) < 0 or int(kappa.max()) >= N:
            raise ValueError(f"kappa must lie in [0, {N - 1}]")
    need_hess = problem.sigma_depends_on_theta
    order = 2 if need_hess else 1
    th = theta.detach()
    prm = problem.params(th)
    d = problem.d
    # The tangents (J, K) and the sums (lam, H) of a path matter only from step kappa + 1 on
    # (J restarts at I there). Paths are put in the order of their kappa, so at step k the
    # paths that need them are a prefix, of length #{kappa < k} (counted once, on the host):
    # the derivative passes cost sum_k #{kappa < k} = sum_paths (N - 1 - kappa) instead of M N.
    order_ = torch.argsort(kappa, stable=True)
    inv = torch.empty_like(order_)
    inv[order_] = torch.arange(M, device=dev)
    ks = kappa[order_]
    nz = noise[:, order_]
    n_act = torch.searchsorted(
        ks, torch.arange(N + 1, device=dev), right=False
    ).tolist()
    eye = torch.eye(d, dtype=dt, device=dev)
    x = _x0(problem, th, M)
    J = torch.zeros(M, d, d, dtype=dt, device=dev)
    K = torch.zeros(M, d, d, d, dtype=dt, device=dev) if need_hess else None
    lam = torch.zeros(M, d, dtype=dt, device=dev)
    H = torch.zeros(M, d, d, dtype=dt, device=dev)
    x_kappa = torch.zeros(M, d, dtype=dt, device=dev)
    cost = torch.zeros(M, dtype=dt, device=dev)
    for k in tqdm(range(N), disable=not progress, desc="GG", leave=False):
        t = time_grid(problem, N, M, k, th)
        x_kappa = torch.where((ks == k)[:, None], x, x_kappa)
        a, b0 = (
            n_act[k],
            n_act[k - 1] if k > 0 else 0,
        )  # active prefix; [b0, a) starts now
        J[b0:a] = eye
        db = nz[k]
        mu = torch.empty_like(x)
        rho = torch.empty_like(cost)
        sigma = None
        if a < M:  # paths before their kappa + 1: values only
            mu[a:], rho[a:] = problem.drift_cost(prm, t[a:], x[a:])
            sig_rest = problem.diffusion(prm, t[a:], x[a:])
            sigma = sig_rest.new_empty((M, *sig_rest.shape[1:]))
            sigma[a:] = sig_rest
        if a > 0:  # active paths: values and x-derivatives, tangents carried forward
            xa, ta, Ja = x[:a], t[:a], J[:a]
            (mu_a, rho_a), (dmu, drho), hess = value_and_x_derivatives(
                problem.drift_cost, prm, ta, xa, order, problem.drift_cost_jvp
            )
            if problem.sigma_depends_on_x:
                sig_a, dsig, hsig = value_and_x_derivatives(
                    problem.diffusion, prm, ta, xa, order
                )
            else:
                sig_a, dsig, hsig = problem.diffusion(prm, ta, xa), None, None
            mu[:a], rho[:a] = mu_a, rho_a
            if sigma is None:
                sigma = sig_a.new_empty((M, *sig_a.shape[1:]))
            sigma[:a] = sig_a
            lam[:a] += h * torch.einsum("bca,bc->ba", Ja, drho)
            dba = db[:a]
            J_new = Ja + h * torch.bmm(dmu, Ja)
            if dsig is not None:
                J_new = J_new + torch.einsum("bilc,bl,bca->bia", dsig, dba, Ja)
            if need_hess:
                d2mu, d2rho = hess
                Ka = K[:a]
                H[:a] += h * (
                    torch.einsum("bca,bce,bef->baf", Ja, d2rho, Ja)
                    + torch.einsum("bc,bcaf->baf", drho, Ka)
                )
                K_new = Ka + h * (
                    torch.einsum("bic,bcaf->biaf", dmu, Ka)
                    + torch.einsum("bice,bca,bef->biaf", d2mu, Ja, Ja)
                )
                if dsig is not None:
                    K_new = (
                        K_new
                        + torch.einsum("bilc,bl,bcaf->biaf", dsig, dba, Ka)
                        + torch.einsum("bilce,bl,bca,bef->biaf", hsig, dba, Ja, Ja)
                    )
                K[:a] = K_new
            J[:a] = J_new
        cost = cost + rho * h
        x = euler_step(x, mu, sigma, db, h)
    J[n_act[N - 1] :] = eye  # kappa = N - 1: the tangent starts at X_N
    t_N = time_grid(problem, N, M, N, th)
    g, dg, d2g = value_and_x_derivatives(_terminal3(problem), prm, t_N, x, order)
    cost = cost + g
    lam = lam + torch.einsum("bca,bc->ba", J, dg)
    if need_hess:
        H = (
            H
            + torch.einsum("bca,bce,bef->baf", J, d2g, J)
            + torch.einsum("bc,bcaf->baf", dg, K)
        )
    # back to the caller's path order
    x, cost, lam, H, x_kappa = (v[inv] for v in (x, cost, lam, H, x_kappa))
    x_T = x
    t_kappa = kappa.to(dt) * h
    T = problem.T

    def integrand(p_, t1, x1, lam1, H1):
        mu1, rho1 = problem.drift_cost(p_, t1, x1)
        val = rho1 + (mu1 * lam1).sum(-1)
        if need_hess:
            sig = problem.diffusion(p_, t1, x1)
            val = val + 0.5 * (sig * torch.bmm(H1, sig)).sum((-1, -2))
        return val

    if per_path:

        def one(th_, t1, x1, lam1, H1, xT1):
            p_ = problem.params(th_)
            val = integrand(p_, t1[None], x1[None], lam1[None], H1[None])[0]
            return T * val + problem.terminal_cost(p_, xT1[None])[0]

        samples = vmap(grad(one), in_dims=(None, 0, 0, 0, 0, 0))(
            th, t_kappa, x_kappa, lam, H, x_T
        )
        return _finish("gg", samples, cost, N)
    th_r = th.clone().requires_grad_(True)
    p_r = problem.params(th_r)
    obj = (
        T * integrand(p_r, t_kappa, x_kappa, lam, H) + problem.terminal_cost(p_r, x_T)
    ).mean()
    (mean,) = torch.autograd.grad(obj, th_r)
    return _finish("gg", None, cost, N, mean=mean)
