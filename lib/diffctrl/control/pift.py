"""PI-FT (Han, Razaviyayn, Xu 2025, Algorithm 1 as we read it; ``book/notation.md``,
*The tilted target and the Bellman recursion*) with values on a 1-D/2-D grid.

Backward sweep ``t = T-1, ..., 0`` from ``V_T = r``. At each step start from the pre-trained
model ``u^(0) = 0`` and iterate the policy-improvement map (the first-order condition)

    u^(m+1)(y) = (1 - eta) u^(m)(y) + eta Phi_t(u^(m))(y),
    Phi_t(u)(y) = (sigma_t^2 / beta_t) E_W grad V_{t+1}(m_t(y) + u(y) + sigma_t W)

(``eta = 1`` is the plain iteration), evaluating ``V_t^(m)(y) = -beta_t |u^(m)|^2/(2 sigma_t^2) +
E_W V_{t+1}(m_t(y) + u^(m)(y) + sigma_t W)``; the last ``V_t^(m_t)`` is passed to step ``t - 1``.
``Phi_t`` is a contraction with factor ``rho_t = sigma_t^2 Lip(grad V_{t+1}) / beta_t`` when it is
< 1; the damped map's rate is :func:`~.rates.damped_rate`.

:func:`pift_grid` holds the values on a grid, computes ``E_W`` by Gauss-Hermite quadrature and
``V_{t+1}``, ``grad V_{t+1}`` by C^1 cubic (Catmull-Rom) interpolation (:mod:`.grid`), for any
pre-trained score (exact Gaussian-mixture scores in the book) and any smooth reward. The LQ
class, where the map is affine and everything exact, is :mod:`.pift_affine`; the plain outer
policy iteration is :mod:`.policy_iteration`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..checks import call_reward
from .grid import (
    Grid,
    GridFunction,
    gauss_hermite,
    hessian_bounds,
    interpolate,
    lipschitz_field,
    pad_values,
    second_derivative_bound,
    smoothed_value_and_grad,
    smoothing_matrices,
    sup_grad,
)
from .rates import _check_eta, _iterations

__all__ = ["PIFTGridResult", "evaluate_grid_policy", "pift_grid"]


def _vnext_fn(t: int, T: int, reward, V: torch.Tensor, grid: Grid):
    """What ``V_{t+1}`` is: the exact reward (a callable ``y -> (value, grad)``) at t + 1 = T,
    else the padded grid values of ``V_{t+1}``."""
    if t + 1 == T and hasattr(reward, "value_and_grad"):
        return reward.value_and_grad
    return pad_values(grid, V[t + 1])


def _expectations(
    vnext,
    grid: Grid,
    M: torch.Tensor,
    u: torch.Tensor,
    sigma: float,
    n_gh: int,
    chunk: int = 2**19,
):
    """``E_W V(M + u + sigma W)`` (G,) and ``E_W grad V(...)`` (G, d) by Gauss-Hermite quadrature:
    pointwise for a callable, by the factorised smoothing matrices for grid values."""
    base = M + u
    if isinstance(vnext, torch.Tensor):
        return smoothed_value_and_grad(
            grid, vnext, smoothing_matrices(grid, base, sigma, n_gh)
        )
    nodes, weights = gauss_hermite(n_gh, grid.d, base.dtype, base.device)
    Gn, d = base.shape
    J = nodes.shape[0]
    EV = torch.empty(Gn, dtype=base.dtype, device=base.device)
    EG = torch.empty(Gn, d, dtype=base.dtype, device=base.device)
    step = max(1, chunk // J)
    for s in range(0, Gn, step):
        z = base[s : s + step, None, :] + sigma * nodes[None]
        val, grad = vnext(z.reshape(-1, d))
        n = z.shape[0]
        EV[s : s + n] = val.view(n, J) @ weights
        EG[s : s + n] = torch.einsum("gjd,j->gd", grad.view(n, J, d), weights)
    return EV, EG


@dataclass
class PIFTGridResult:
    """Output of :func:`pift_grid` (values ``V`` (T+1, *grid.shape), controls ``u``
    (T, *grid.shape, d)) with per-step diagnostics (lists over t of arrays over m):

    - ``residual[t][m] = max |u^(m+1) - u^(m)|`` over the region;
    - ``lip_u[t][m]`` = Lip(u_t^(m)), ``lip_gradV[t][m]`` = Lip(grad V_t^(m)) on the region
      (finite differences), with the controls ``u^(0) = 0, ..., u^(m_t)``;
    - ``u_err``, ``v_err`` max errors over the region against a reference (if given);
    - per step: ``rho[t] = sigma_t^2 L[t+1] / beta_t``, ``hess_range[t] = (lambda_min,
      lambda_max)`` of Hess V_{t+1}, ``ell[t] = Lip(m_t)`` and ``kappa[t]`` (bound on ||D^2 m_t||)
      on the region, ``L[t]`` = Lip(grad V_t) and ``grad_sup[t] = sup |grad V_t|`` on the grid
      interior (``L[T]`` from the reward's ``lip_grad`` when it has one).
    """

    grid: Grid
    V: torch.Tensor
    u: torch.Tensor
    sigma: np.ndarray
    beta: np.ndarray
    n_iter: np.ndarray
    rho: np.ndarray
    hess_range: np.ndarray
    L: np.ndarray
    grad_sup: np.ndarray
    ell: np.ndarray
    kappa: np.ndarray
    residual: list
    lip_u: list
    lip_gradV: list
    u_err: list | None = None
    v_err: list | None = None

    @property
    def T(self) -> int:
        return self.u.shape[0]

    def value_fn(self, t: int) -> GridFunction:
        return GridFunction(self.grid, self.V[t])

    def value(self, t: int, y: torch.Tensor) -> torch.Tensor:
        """V_t(y) by Catmull-Rom interpolation, (B,), computed on ``y``'s device."""
        return interpolate(self.grid, self.V[t].to(y.device), y)[0]

    def control(self, t: int, y: torch.Tensor) -> torch.Tensor:
        """u_t(y) by Catmull-Rom interpolation of each component, (B, d), computed on ``y``'s
        device."""
        return interpolate(self.grid, self.u[t].to(y.device), y)[0]

    def as_control(self):
        return lambda t, y: self.control(t, y).to(y.dtype)

    def objective(self, n_gh: int = 40) -> float:
        """``E V_0(Y_0)``, ``Y_0 ~ N(0, I)``, by Gauss-Hermite quadrature of the grid value."""
        nodes, w = gauss_hermite(n_gh, self.grid.d, self.V.dtype, self.V.device)
        return float(self.value(0, nodes) @ w)


def _check_grid_inputs(chain, reward, grid: Grid):
    if chain.dim != grid.d:
        raise ValueError(
            f"chain has dimension {chain.dim}, grid has dimension {grid.d}"
        )
    if getattr(reward, "dim", grid.d) != grid.d:
        raise ValueError(
            f"reward has dimension {reward.dim}, grid has dimension {grid.d}"
        )


def _means_on_grid(
    chain, pts: torch.Tensor, T: int, grid: Grid, region_mask, with_derivs: bool
):
    M = torch.stack([chain.mean(t, pts) for t in range(T)])  # (T, G, d)
    ell = np.full(T, np.nan)
    kappa = np.full(T, np.nan)
    if with_derivs:
        for t in range(T):
            field_ = M[t].reshape(*grid.shape, grid.d)
            ell[t] = lipschitz_field(grid, field_, region_mask)
            kappa[t] = second_derivative_bound(grid, field_, region_mask)
    return M, ell, kappa


def pift_grid(
    chain,
    reward,
    grid: Grid,
    n_iter: int | Sequence[int] = 20,
    *,
    n_gh: int = 20,
    eta: float = 1.0,
    tol: float | None = None,
    reference=None,
    region=None,
    record: bool = True,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> PIFTGridResult:
    """PI-FT with values on a 1-D/2-D grid (module docstring).

    ``chain``: a :class:`~.chain.ControlledChain` (any score; exact mixture scores in the book);
    ``reward``: a callable with ``value_and_grad`` (used exactly at the last step); ``n_gh``
    Gauss-Hermite nodes per axis; ``region = (lo, hi)`` the sub-box where Lipschitz constants and
    errors are measured (default: the grid without its outer two cells); ``reference`` anything
    with ``control(t, y)`` and ``value(t, y)`` (e.g. an :class:`~.affine_policy.AffinePolicy`). The sweep
    runs on ``device``; the result's ``V`` and ``u`` are returned on the CPU (ready to plot or
    convert; :meth:`PIFTGridResult.control` evaluates on the device of its points).
    """
    _check_grid_inputs(chain, reward, grid)
    T, d = chain.T, grid.d
    n_it = _iterations(n_iter, T)
    eta = _check_eta(eta)
    dt = torch.float64
    pts = grid.points(dt, device)
    inner = grid.mask(margin=2, device=device)
    reg = (
        inner
        if region is None
        else grid.mask(region[0], region[1], margin=2, device=device)
    )
    sig = chain.sigma.numpy()
    beta = chain.beta.detach().cpu().double().numpy()
    M, ell, kappa = _means_on_grid(chain, pts, T, grid, reg, record)
    V = torch.empty(T + 1, *grid.shape, dtype=dt, device=device)
    U = torch.zeros(T, *grid.shape, d, dtype=dt, device=device)
    V[T] = call_reward(reward, pts).reshape(grid.shape)
    L = np.full(T + 1, np.nan)
    gsup = np.full(T + 1, np.nan)
    hr = np.full((T, 2), np.nan)
    rho = np.full(T, np.nan)
    lam_T = hessian_bounds(grid, V[T], inner)
    L[T] = getattr(reward, "lip_grad", lam_T[2])
    gsup[T] = sup_grad(grid, V[T], inner)
    lam_next = (lam_T[0], lam_T[1])
    residual, lip_u, lip_gv, u_err, v_err = [], [], [], [], []
    used = np.zeros(T, dtype=int)
    for t in tqdm(range(T - 1, -1, -1), desc="PI-FT (grid)", disable=not progress):
        s, b = float(sig[t]), float(beta[t])
        vnext = _vnext_fn(t, T, reward, V, grid)
        hr[t] = lam_next
        rho[t] = s**2 * L[t + 1] / b
        u = torch.zeros(grid.size, d, dtype=dt, device=device)
        res, lu, lv, ue, ve = [], [], [], [], []
        ref_u = ref_v = None
        if reference is not None:
            ref_u = reference.control(t, pts[reg]).to(dt)
            ref_v = reference.value(t, pts[reg]).to(dt)
        m = 0
        while True:
            EV, EG = _expectations(vnext, grid, M[t], u, s, n_gh)
            kl = (u**2).sum(-1) / (2 * s**2) if s > 0 else torch.zeros_like(EV)
            Vm = -b * kl + EV
            if record:
                lu.append(lipschitz_field(grid, u.reshape(*grid.shape, d), reg))
                lv.append(hessian_bounds(grid, Vm.reshape(grid.shape), reg)[2])
            if reference is not None:
                ue.append(float((u[reg] - ref_u).norm(dim=-1).max()))
                ve.append(float((Vm[reg] - ref_v).abs().max()))
            if m == n_it[t] or (tol is not None and res and res[-1] < tol):
                break
            u_new = (1 - eta) * u + eta * (s**2 / b) * EG
            res.append(float((u_new - u)[reg].norm(dim=-1).max()))
            u = u_new
            m += 1
        used[t] = m
        V[t] = Vm.reshape(grid.shape)
        U[t] = u.reshape(*grid.shape, d)
        lam = hessian_bounds(grid, V[t], inner)
        lam_next = (lam[0], lam[1])
        L[t] = lam[2]
        gsup[t] = sup_grad(grid, V[t], inner)
        for lst, x in (
            (residual, res),
            (lip_u, lu),
            (lip_gv, lv),
            (u_err, ue),
            (v_err, ve),
        ):
            lst.append(np.array(x))
    rev = lambda x: x[::-1]  # noqa: E731
    return PIFTGridResult(
        grid,
        V.cpu(),
        U.cpu(),
        sig,
        beta,
        used,
        rho,
        hr,
        L,
        gsup,
        ell,
        kappa,
        rev(residual),
        rev(lip_u),
        rev(lip_gv),
        rev(u_err) if reference is not None else None,
        rev(v_err) if reference is not None else None,
    )


def evaluate_grid_policy(
    chain,
    reward,
    grid: Grid,
    u: torch.Tensor,
    *,
    n_gh: int = 20,
    means: torch.Tensor | None = None,
    device="cpu",
) -> torch.Tensor:
    """Values ``V_t`` (T+1, *grid.shape) of the grid control ``u`` (T, *grid.shape, d):
    ``V_t = -beta_t |u_t|^2/(2 sigma_t^2) + E_W V_{t+1}(m_t + u_t + sigma_t W)``."""
    _check_grid_inputs(chain, reward, grid)
    T, d = chain.T, grid.d
    if tuple(u.shape) != (T, *grid.shape, d):
        raise ValueError(
            f"u must have shape {(T, *grid.shape, d)}, got {tuple(u.shape)}"
        )
    dt = torch.float64
    pts = grid.points(dt, device)
    M = (
        means
        if means is not None
        else torch.stack([chain.mean(t, pts) for t in range(T)])
    )
    sig, beta = chain.sigma.numpy(), chain.beta.detach().cpu().double().numpy()
    V = torch.empty(T + 1, *grid.shape, dtype=dt, device=device)
    V[T] = call_reward(reward, pts).reshape(grid.shape)
    for t in range(T - 1, -1, -1):
        s, b = float(sig[t]), float(beta[t])
        ut = u[t].reshape(-1, d).to(dt)
        EV, _ = _expectations(_vnext_fn(t, T, reward, V, grid), grid, M[t], ut, s, n_gh)
        kl = (ut**2).sum(-1) / (2 * s**2) if s > 0 else torch.zeros_like(EV)
        V[t] = (-b * kl + EV).reshape(grid.shape)
    return V
