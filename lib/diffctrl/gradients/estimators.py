"""Estimators of ``grad_theta E[C]`` for a controlled SDE, each returning per-path samples.

All four target the gradient of the *discretised* objective ``E[C]`` of the Euler–Maruyama
chain (``sde.py``), and all accept the same arguments::

    estimate_gradient(method, problem, theta, n_paths=M, n_steps=N, generator=gen)
    -> GradientEstimate(mean (n,), samples (M, n) or None, cost (M,), ...)

- ``"gg"`` :func:`generator_gradient`: the generator gradient of Wang, Blanchet & Glynn
  (NeurIPS 2024, Thm. 1), in the discrete-time form derived in the chapter:
  pick ``kappa ~ U{0..N-1}`` per path and return
  ``T grad_theta[rho + mu . lambda + tr(sigma' H sigma) / 2](t_kappa, X_kappa)
  + grad_theta g(X_N)``, where ``lambda`` and ``H`` are the pathwise gradient / Hessian of the
  cost-to-go with respect to ``X_{kappa+1}``, carried by the first (d x d) and second
  (d x d x d) variation processes of the continuation of the same path. One VJP through the
  network per estimate.
- ``"pathwise_forward"`` :func:`pathwise_forward`: forward sensitivities ``Y = dX/dtheta``
  (the ``d + d n``-dimensional SDE the paper compares with).
- ``"pathwise_reverse"`` :func:`pathwise_reverse`: reverse-mode autograd through the path.
- ``"lr"`` :func:`likelihood_ratio`: the score-function (likelihood ratio) estimator; it
  refuses a theta-dependent sigma and a drift whose theta-dependence leaves sigma's range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.func import grad, grad_and_value, jacrev, jvp, vmap
from tqdm.auto import tqdm

from .sde import (
    ControlledSDE,
    check_theta,
    euler_step,
    resolve_noise,
    simulate,
    time_grid,
    value_and_x_derivatives,
)

METHODS = ("gg", "pathwise_forward", "pathwise_reverse", "lr")


@dataclass
class GradientEstimate:
    """One gradient estimate from ``n_paths`` paths.

    ``samples (M, n)`` are i.i.d. per-path estimates (``None`` when ``per_path=False``),
    ``mean (n,)`` their average, ``cost (M,)`` the per-path costs ``C``.
    """

    method: str
    mean: torch.Tensor
    samples: torch.Tensor | None
    cost: torch.Tensor
    n_steps: int

    @property
    def n_paths(self) -> int:
        return self.cost.shape[0]

    @property
    def stderr(self) -> torch.Tensor:
        """Per-coordinate standard error ``std / sqrt(M)`` of ``mean``."""
        if self.samples is None:
            raise ValueError(
                "no per-path samples: call the estimator with per_path=True"
            )
        m = self.samples.shape[0]
        if m < 2:
            raise ValueError("a standard error needs n_paths >= 2")
        return self.samples.std(0) / math.sqrt(m)


def _finish(method, samples, cost, n_steps, mean=None) -> GradientEstimate:
    if mean is None:
        mean = samples.mean(0)
    return GradientEstimate(
        method=method,
        mean=mean.detach(),
        samples=None if samples is None else samples.detach(),
        cost=cost.detach(),
        n_steps=n_steps,
    )


def _x0(problem: ControlledSDE, theta: torch.Tensor, n_paths: int) -> torch.Tensor:
    return problem.x0.to(dtype=theta.dtype, device=theta.device).expand(n_paths, -1)


def _terminal3(problem: ControlledSDE):
    return lambda th, t, x: problem.terminal_cost(th, x)


# --------------------------------------------------------------------------- generator gradient
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


# --------------------------------------------------------------------------- pathwise, forward
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


# --------------------------------------------------------------------------- pathwise, reverse
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


# --------------------------------------------------------------------------- likelihood ratio
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


ESTIMATORS = {
    "gg": generator_gradient,
    "pathwise_forward": pathwise_forward,
    "pathwise_reverse": pathwise_reverse,
    "lr": likelihood_ratio,
}


def estimate_gradient(
    method: str, problem: ControlledSDE, theta: torch.Tensor, **kwargs
) -> GradientEstimate:
    """Dispatch to one of ``METHODS`` (same keyword arguments for all)."""
    if method not in ESTIMATORS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return ESTIMATORS[method](problem, theta, **kwargs)


def state_dimension(method: str, problem: ControlledSDE) -> int:
    """Numbers carried forward per path by the simulation (the paper's cost measure).

    GG: ``d + d^2`` (``+ d^3`` when sigma depends on theta); forward sensitivities
    ``d + d n``; reverse mode and LR carry ``d`` forward but store the whole path
    (``(N + 1) d`` plus the network activations) for the backward pass.
    """
    d, n = problem.d, problem.n_params
    if method == "gg":
        return d + d * d + (d**3 if problem.sigma_depends_on_theta else 0)
    if method == "pathwise_forward":
        return d + d * n
    if method in ("pathwise_reverse", "lr"):
        return d
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
