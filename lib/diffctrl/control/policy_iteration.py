"""Plain (outer) policy iteration, the comparison for PI-FT: evaluate, then improve.

``book/pift_convergence.md``, *PI-FT against plain policy iteration*. From ``u = 0``: evaluate
the whole current policy (backward), then improve every step t against the evaluated
``V_{t+1}`` — ``"greedy"`` (the exact argmax: in the LQ class the closed form of
:mod:`diffctrl.control.riccati`, on the grid the improvement map iterated to a tolerance) or ``"phi"`` (one
damped application of the improvement map ``Phi_t`` of :mod:`.pift`). PI-FT instead improves
each step against the already fine-tuned ``V_{t+1}``. Work is counted in one-step operations
(an evaluation or an improvement at one step t).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .affine_policy import AffinePolicy
from .grid import Grid, gauss_hermite, interpolate
from .lq import LQProblem, evaluate_affine_policy, pretrained_policy
from .moments import _np, affine_rms
from .pift import _check_grid_inputs, _expectations, _vnext_fn, evaluate_grid_policy
from .rates import _check_eta
from .riccati import _bellman_np

__all__ = ["IMPROVE", "OuterPIResult", "outer_pi_grid", "outer_pi_lq"]

IMPROVE = ("greedy", "phi")


@dataclass
class OuterPIResult:
    """Per outer iteration n = 0..n_outer: the objective ``J`` of policy n, its largest control
    error ``u_err`` over t (vs a reference, RMS under the pre-trained laws) and the work done so
    far, counted in one-step operations (an evaluation or an improvement of one step t)."""

    J: np.ndarray
    u_err: np.ndarray | None
    work: np.ndarray
    policy: AffinePolicy | None = None
    extra: dict = field(default_factory=dict)


def outer_pi_lq(
    problem: LQProblem,
    n_outer: int,
    *,
    improve: str = "greedy",
    eta: float = 1.0,
    reference: AffinePolicy | None = None,
) -> OuterPIResult:
    """Plain policy iteration in the LQ class from u = 0: evaluate the whole policy (backward),
    then improve every t against the evaluated ``V_{t+1}``: ``"greedy"`` takes the exact argmax,
    ``"phi"`` one (damped) application of the improvement map."""
    if improve not in IMPROVE:
        raise ValueError(f"unknown improve {improve!r}; choose one of {IMPROVE}")
    eta = _check_eta(eta)
    pb = problem
    T, d = pb.T, pb.d
    A, cv = (_np(x) for x in pb.pretrained_affine())
    s2 = _np(pb.sigma) ** 2
    beta = _np(pb.beta)
    pre_means, pre_covs = (_np(x) for x in pretrained_policy(pb).marginals())
    G, g = np.zeros((T, d, d)), np.zeros((T, d))
    Js, errs, work = [], [], []
    done = 0
    for n in range(n_outer + 1):
        pol = evaluate_affine_policy(pb, torch.as_tensor(G), torch.as_tensor(g))
        done += T
        Js.append(pol.objective())
        if reference is not None:
            RG, Rg = _np(reference.G), _np(reference.g)
            errs.append(
                max(
                    affine_rms(G[t] - RG[t], g[t] - Rg[t], pre_means[t], pre_covs[t])
                    for t in range(T)
                )
            )
        work.append(done)
        if n == n_outer:
            break
        P, p, c = _np(pol.P), _np(pol.p), _np(pol.c)
        for t in range(T):
            if improve == "greedy":
                Gt, gt = _bellman_np(
                    P[t + 1],
                    p[t + 1],
                    c[t + 1],
                    A[t],
                    cv[t],
                    s2[t],
                    beta[t],
                    "mean-shift",
                )[3:5]
            else:
                w = s2[t] / beta[t]
                Gt = -w * P[t + 1] @ (A[t] + G[t])
                gt = w * (p[t + 1] - P[t + 1] @ (cv[t] + g[t]))
            G[t] = (1 - eta) * G[t] + eta * Gt
            g[t] = (1 - eta) * g[t] + eta * gt
        done += T
    return OuterPIResult(
        np.array(Js),
        np.array(errs) if reference is not None else None,
        np.array(work),
        pol,
    )


def outer_pi_grid(
    chain,
    reward,
    grid: Grid,
    n_outer: int,
    *,
    improve: str = "greedy",
    eta: float = 1.0,
    n_inner: int = 100,
    tol: float = 1e-12,
    n_gh: int = 20,
    reference=None,
    region=None,
    device="cpu",
) -> OuterPIResult:
    """Plain policy iteration on the grid from u = 0: evaluate the whole policy
    (:func:`evaluate_grid_policy`), then improve every t against ``V^(n)_{t+1}``: ``"greedy"``
    iterates the (damped) improvement map to ``tol`` (at most ``n_inner`` times) from the current
    control, ``"phi"`` applies it once. Work is counted in one-step quadrature passes over the
    grid (an evaluation or one application of the map at one step)."""
    if improve not in IMPROVE:
        raise ValueError(f"unknown improve {improve!r}; choose one of {IMPROVE}")
    _check_grid_inputs(chain, reward, grid)
    eta = _check_eta(eta)
    T, d = chain.T, grid.d
    dt = torch.float64
    pts = grid.points(dt, device)
    reg = (
        grid.mask(margin=2, device=device)
        if region is None
        else grid.mask(region[0], region[1], margin=2, device=device)
    )
    M = torch.stack([chain.mean(t, pts) for t in range(T)])
    sig, beta = chain.sigma.numpy(), chain.beta.detach().cpu().double().numpy()
    u = torch.zeros(T, grid.size, d, dtype=dt, device=device)
    Js, errs, work = [], [], []
    done = 0
    gh0, w0 = gauss_hermite(40, d, dt, device)
    for n in range(n_outer + 1):
        V = evaluate_grid_policy(
            chain,
            reward,
            grid,
            u.reshape(T, *grid.shape, d),
            n_gh=n_gh,
            means=M,
            device=device,
        )
        done += T
        Js.append(float(interpolate(grid, V[0], gh0)[0] @ w0))
        if reference is not None:
            errs.append(
                max(
                    float(
                        (u[t][reg] - reference.control(t, pts[reg]).to(dt))
                        .norm(dim=-1)
                        .max()
                    )
                    for t in range(T)
                )
            )
        work.append(done)
        if n == n_outer:
            break
        for t in range(T):
            s, b = float(sig[t]), float(beta[t])
            vnext = _vnext_fn(t, T, reward, V, grid)
            for _ in range(n_inner if improve == "greedy" else 1):
                _, EG = _expectations(vnext, grid, M[t], u[t], s, n_gh)
                new = (1 - eta) * u[t] + eta * (s**2 / b) * EG
                delta = float((new - u[t]).abs().max())
                u[t] = new
                done += 1
                if delta < tol:
                    break
    res = OuterPIResult(
        np.array(Js), np.array(errs) if reference is not None else None, np.array(work)
    )
    res.extra["u"] = u.reshape(T, *grid.shape, d)
    res.extra["V"] = V
    return res
