"""PI-FT (Han, Razaviyayn, Xu 2025, Algorithm 1 as we read it; ``book/notation.md``,
*The tilted target and the Bellman recursion*) and the plain outer policy iteration.

Backward sweep ``t = T-1, ..., 0`` from ``V_T = r``. At each step start from the pre-trained
model ``u^(0) = 0`` and iterate the policy-improvement map (the first-order condition)

    u^(m+1)(y) = (1 - eta) u^(m)(y) + eta Phi_t(u^(m))(y),
    Phi_t(u)(y) = (sigma_t^2 / beta_t) E_W grad V_{t+1}(m_t(y) + u(y) + sigma_t W)

(``eta = 1`` is the plain iteration), evaluating ``V_t^(m)(y) = -beta_t |u^(m)|^2/(2 sigma_t^2) +
E_W V_{t+1}(m_t(y) + u^(m)(y) + sigma_t W)``; the last ``V_t^(m_t)`` is passed to step ``t - 1``.
``Phi_t`` is a contraction with factor ``rho_t = sigma_t^2 Lip(grad V_{t+1}) / beta_t`` when it is
< 1. If the Hessian of ``V_{t+1}`` has its eigenvalues in ``[-rho_- , rho_+] beta_t / sigma_t^2``
the damped map contracts at ``max(|1 - eta (1 - rho_+)|, |1 - eta (1 + rho_-)|)`` ([ours],
:func:`damped_rate`), which is < 1 for some ``eta > 0`` whenever ``rho_+ < 1`` (the one-step
problem is strongly concave), however large ``rho_-``.

Two representations:

- :func:`pift_lq` exact in the LQ class (affine control ``G y + g``, quadratic value), where the
  map is affine: ``G <- -(s^2/beta) P (A + G)``, ``g <- (s^2/beta)(p - P (c + g))``;
- :func:`pift_grid` values on a 1-D/2-D grid, ``E_W`` by Gauss-Hermite quadrature and ``V_{t+1}``,
  ``grad V_{t+1}`` by C^1 cubic (Catmull-Rom) interpolation (:mod:`.grid`), for any pre-trained
  score (exact Gaussian-mixture scores) and any smooth reward.

:func:`outer_pi_lq` / :func:`outer_pi_grid` are the plain policy iteration: evaluate the whole
policy, then improve at every t (greedily, or by one application of ``Phi_t``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

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
from .lq import (
    AffinePolicy,
    LQProblem,
    _bellman_np,
    _np,
    _policy_value_np,
    affine_rms,
    evaluate_affine_policy,
    pretrained_policy,
    quadratic_rms,
)

IMPROVE = ("greedy", "phi")


# --------------------------------------------------------------------------- rates
def damped_rate(eta: float, rho_minus: float, rho_plus: float = 0.0) -> float:
    """Contraction factor of ``u <- (1 - eta) u + eta Phi(u)`` when the Jacobian of Phi has its
    eigenvalues in ``[-rho_minus, rho_plus]``: ``max(|1 - eta (1 - rho_+)|, |1 - eta (1 + rho_-)|)``."""
    if eta <= 0:
        raise ValueError(f"eta must be > 0, got {eta}")
    return max(abs(1 - eta * (1 - rho_plus)), abs(1 - eta * (1 + rho_minus)))


def optimal_damping(rho_minus: float, rho_plus: float = 0.0) -> tuple[float, float]:
    """``(eta*, rate*)`` minimising :func:`damped_rate`: ``eta* = 2 / (2 + rho_- - rho_+)``,
    ``rate* = (rho_- + rho_+) / (2 + rho_- - rho_+)`` (< 1 iff ``rho_+ < 1``)."""
    if rho_plus >= 1:
        raise ValueError(
            f"rho_plus = {rho_plus} >= 1: the one-step problem is not strongly "
            "concave and no damping makes the iteration contract"
        )
    eta = 2.0 / (2.0 + rho_minus - rho_plus)
    return eta, (rho_minus + rho_plus) / (2.0 + rho_minus - rho_plus)


def lq_iteration_rate(P_next, sigma: float, beta: float, eta: float = 1.0) -> float:
    """Exact asymptotic rate in the LQ class: the spectral radius of
    ``(1 - eta) I - eta (sigma^2/beta) P_{t+1}``, i.e. ``max_i |1 - eta (1 + sigma^2 lambda_i / beta)|``."""
    lam = np.linalg.eigvalsh(_np(P_next))
    a = float(sigma) ** 2 * lam / float(beta)
    return float(np.max(np.abs(1 - eta * (1 + a))))


def measured_rate(
    errors: Sequence[float], floor: float = 1e-11, abs_floor: float = 0.0
) -> float:
    """Geometric rate of a linearly converging error sequence: ``exp`` of the least-squares
    slope of ``log e_m`` over the leading iterations where ``e_m > max(floor * e_0, abs_floor)``
    (the round-off floor; at least two points, else 0)."""
    e = np.asarray(errors, dtype=float)
    if e.size < 2 or not e[0] > 0:
        return float("nan")
    keep = np.nonzero(e > max(floor * e[0], abs_floor))[0]
    last = keep[-1] if keep.size else 0
    idx = np.arange(0, last + 1)
    idx = idx[e[idx] > 0]
    if idx.size < 2:
        return 0.0
    slope = np.polyfit(idx, np.log(e[idx]), 1)[0]
    return float(np.exp(slope))


def _iterations(n_iter, T: int) -> np.ndarray:
    n = np.asarray(n_iter)
    if n.ndim == 0:
        n = np.full(T, int(n))
    if n.shape != (T,) or np.any(n < 0) or not np.issubdtype(n.dtype, np.integer):
        raise ValueError(f"n_iter must be an int >= 0 or {T} ints >= 0, got {n_iter!r}")
    return n.astype(int)


def _check_eta(eta: float) -> float:
    if not 0 < eta <= 1:
        raise ValueError(f"damping eta must lie in (0, 1], got {eta}")
    return float(eta)


# --------------------------------------------------------------------------- PI-FT, LQ class
@dataclass
class PIFTLQResult:
    """Output of :func:`pift_lq`.

    ``policy`` holds the final controls and the values ``V_t`` the sweep passed backwards;
    ``rho[t] = sigma_t^2 lambda_max(P_{t+1}) / beta_t`` (with the sweep's own ``V_{t+1}``) and
    ``rate[t]`` the exact asymptotic rate of the (damped) iteration at step t. With a reference,
    ``u_err[t][m]`` is ``sqrt(E|u^(m)_t - u*_t|^2)`` and ``v_err[t][m]`` ``sqrt(E|V^(m)_t - V*_t|^2)``
    under the pre-trained law of ``Y_t``; ``residual[t][m] = sqrt(E|u^(m+1) - u^(m)|^2)``.
    """

    policy: AffinePolicy
    n_iter: np.ndarray
    rho: np.ndarray
    rate: np.ndarray
    residual: list[np.ndarray]
    u_err: list[np.ndarray] | None = None
    v_err: list[np.ndarray] | None = None


def pift_lq(
    problem: LQProblem,
    n_iter: int | Sequence[int] = 20,
    *,
    eta: float = 1.0,
    tol: float | None = None,
    reference: AffinePolicy | None = None,
    progress: bool = False,
) -> PIFTLQResult:
    """PI-FT in the LQ class, exactly (no sampling, no quadrature).

    ``n_iter``: iterations m_t per step (int or T ints); with ``tol`` a step stops early once
    the residual ``sqrt(E|u^(m+1) - u^(m)|^2)`` is below ``tol``. ``reference`` (e.g.
    :func:`~.lq.solve_lq`) turns on the error histories.
    """
    pb = problem
    T, d = pb.T, pb.d
    n_it = _iterations(n_iter, T)
    eta = _check_eta(eta)
    A, cv = (_np(x) for x in pb.pretrained_affine())
    s2 = _np(pb.sigma) ** 2
    beta = _np(pb.beta)
    pre_means, pre_covs = (_np(x) for x in pretrained_policy(pb).marginals())
    if reference is not None:
        if reference.problem.T != T or reference.problem.d != d:
            raise ValueError("reference solves a different problem (T or d differ)")
        Rp, Rpp, Rc = _np(reference.P), _np(reference.p), _np(reference.c)
        RG, Rg = _np(reference.G), _np(reference.g)
    P, p, c = np.empty((T + 1, d, d)), np.empty((T + 1, d)), np.empty(T + 1)
    G, g = np.zeros((T, d, d)), np.zeros((T, d))
    P[T], p[T], c[T] = (_np(x) for x in pb.reward.quadratic_form())
    rho, rate = np.empty(T), np.empty(T)
    residual, u_err, v_err, used = [], [], [], np.zeros(T, dtype=int)
    for t in tqdm(range(T - 1, -1, -1), desc="PI-FT (LQ)", disable=not progress):
        Pn, pn, cn = P[t + 1], p[t + 1], c[t + 1]
        rho[t] = s2[t] * max(np.linalg.eigvalsh(Pn).max(), 0.0) / beta[t]
        rate[t] = lq_iteration_rate(Pn, s2[t] ** 0.5, beta[t], eta)
        mu, C = pre_means[t], pre_covs[t]
        w = s2[t] / beta[t]
        Gm, gm = np.zeros((d, d)), np.zeros(d)
        res, ue, ve = [], [], []
        m = 0
        while True:
            Pm, pm, cm = _policy_value_np(
                Pn, pn, cn, A[t], cv[t], s2[t], beta[t], Gm, gm
            )
            if reference is not None:
                ue.append(affine_rms(Gm - RG[t], gm - Rg[t], mu, C))
                ve.append(quadratic_rms(Pm - Rp[t], pm - Rpp[t], cm - Rc[t], mu, C))
            if m == n_it[t] or (tol is not None and res and res[-1] < tol):
                break
            G_new = (1 - eta) * Gm + eta * (-w * Pn @ (A[t] + Gm))
            g_new = (1 - eta) * gm + eta * (w * (pn - Pn @ (cv[t] + gm)))
            res.append(affine_rms(G_new - Gm, g_new - gm, mu, C))
            Gm, gm = G_new, g_new
            m += 1
        used[t] = m
        P[t], p[t], c[t], G[t], g[t] = Pm, pm, cm, Gm, gm
        residual.append(np.array(res))
        u_err.append(np.array(ue))
        v_err.append(np.array(ve))
    residual, u_err, v_err = residual[::-1], u_err[::-1], v_err[::-1]
    o = pb._out
    eye = np.eye(d)
    policy = AffinePolicy(
        pb, o(G), o(g), o(P), o(p), o(c), o(s2[:, None, None] * eye), "mean-shift"
    )
    return PIFTLQResult(
        policy,
        used,
        rho,
        rate,
        residual,
        u_err if reference is not None else None,
        v_err if reference is not None else None,
    )


def pift_lq_step(
    reference: AffinePolicy, t: int, n_iter: int, eta: float = 1.0
) -> tuple[np.ndarray, np.ndarray, float]:
    """The inner iteration at one step t, started from u = 0 with the *exact* ``V_{t+1}`` of
    ``reference`` (the optimum): ``(u_err, v_err, rate)`` with the errors of ``u^(m)`` and
    ``V_t^(m)`` (RMS under the pre-trained law of Y_t), m = 0..n_iter, and the exact rate
    :func:`lq_iteration_rate`. Diverging iterates are reported as they are (inf/nan)."""
    pb = reference.problem
    if not 0 <= t < pb.T:
        raise ValueError(f"t must lie in 0..{pb.T - 1}, got {t}")
    eta = _check_eta(eta)
    A, cv = (_np(x)[t] for x in pb.pretrained_affine())
    s2, b = float(pb.sigma[t]) ** 2, float(pb.beta[t])
    P, p, c = _np(reference.P), _np(reference.p), _np(reference.c)
    RG, Rg = _np(reference.G)[t], _np(reference.g)[t]
    means, covs = (_np(x) for x in pretrained_policy(pb).marginals())
    mu, C = means[t], covs[t]
    d = pb.d
    G, g = np.zeros((d, d)), np.zeros(d)
    ue, ve = [], []
    w = s2 / b
    with np.errstate(all="ignore"):
        for _ in range(n_iter + 1):
            Pm, pm, cm = _policy_value_np(
                P[t + 1], p[t + 1], c[t + 1], A, cv, s2, b, G, g
            )
            ue.append(affine_rms(G - RG, g - Rg, mu, C))
            ve.append(quadratic_rms(Pm - P[t], pm - p[t], cm - c[t], mu, C))
            G = (1 - eta) * G + eta * (-w * P[t + 1] @ (A + G))
            g = (1 - eta) * g + eta * (w * (p[t + 1] - P[t + 1] @ (cv + g)))
    return np.array(ue), np.array(ve), lq_iteration_rate(P[t + 1], s2**0.5, b, eta)


# --------------------------------------------------------------------------- outer PI, LQ class
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


def pift_lq_work(result: PIFTLQResult) -> int:
    """One-step operations done by a PI-FT sweep: (m_t + 1) evaluations + m_t improvements."""
    return int(np.sum(2 * result.n_iter + 1))


# --------------------------------------------------------------------------- PI-FT on a grid
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
    with ``control(t, y)`` and ``value(t, y)`` (e.g. an :class:`~.lq.AffinePolicy`). The sweep
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


# --------------------------------------------------------------------------- regularity bounds
def control_lipschitz_bound(rho: float, ell: float, m: int) -> float:
    """[ours] ``Lip(u^(m)) <= B_m``, ``B_0 = 0``, ``B_{m+1} = rho (ell + B_m)``, i.e.
    ``rho ell (1 - rho^m) / (1 - rho)`` (< ``rho ell / (1 - rho)`` uniformly in m when rho < 1),
    for the plain iteration from u^(0) = 0 with Lip(grad V_{t+1}) = L, Lip(m_t) = ell,
    rho = sigma^2 L / beta."""
    B = 0.0
    for _ in range(m):
        B = rho * (ell + B)
    return B


def value_lipschitz_bounds(
    rho: float,
    ell: float,
    kappa: float,
    L: float,
    Gamma: float,
    sigma: float,
    beta: float,
    n: int,
) -> np.ndarray:
    """[ours] Bounds on ``Lip(grad V_t^(m))``, m = 0..n, for the plain iteration from u^(0) = 0:

        Gamma kappa + L ell (ell + B_m) + (beta/sigma^2) B_m (rho (ell + B_m) + B_m) + rho^m Gamma C_m

    with ``B_m`` of :func:`control_lipschitz_bound`, ``C_0 = 0``,
    ``C_{m+1} = rho ((c/sigma)(ell + B_m)^2 + kappa + C_m)`` (a bound on ||D^2 u^(m+1)||,
    ``c = sqrt(2/pi)``: Gaussian smoothing bounds the third derivative of ``E V_{t+1}``),
    ``Gamma = sup |grad V_{t+1}|``, ``kappa`` a bound on ||D^2 m_t||. Derived from
    ``grad V^(m) = (beta/sigma^2) [Dm^T u^(m+1) + Du^(m)T (u^(m+1) - u^(m))]``. The limit
    m -> inf of the first two terms is the fixed-point bound ``Gamma kappa + L ell^2 / (1 - rho)``.
    """
    c = math.sqrt(2 / math.pi)
    out = np.empty(n + 1)
    B = C = 0.0
    w = beta / sigma**2 if sigma > 0 else 0.0
    for m in range(n + 1):
        out[m] = (
            Gamma * kappa
            + L * ell * (ell + B)
            + w * B * (rho * (ell + B) + B)
            + (rho**m * Gamma * C if C > 0 else 0.0)
        )
        if sigma > 0:
            C = rho * ((c / sigma) * (ell + B) ** 2 + kappa + C)
        B = rho * (ell + B)
    return out


def fixed_point_value_bound(
    rho: float, ell: float, kappa: float, L: float, Gamma: float
) -> float:
    """[ours] ``Lip(grad V_t) <= Gamma kappa + L ell^2 / (1 - rho)`` at the fixed point (from
    ``grad V_t = (beta/sigma^2) Dm_t^T u*_t`` and Lip(u*) <= rho ell / (1 - rho)); inf if rho >= 1."""
    return Gamma * kappa + L * ell**2 / (1 - rho) if rho < 1 else math.inf


def a_priori_value_bounds(
    result: PIFTGridResult, lip_grad_r: float, grad_sup_r: float
) -> tuple[np.ndarray, np.ndarray]:
    """[ours] Bounds on ``Lip(grad V_t)`` propagated backwards from the reward alone, using only
    the pre-trained model's ``ell_t = Lip(m_t)`` and ``kappa_t`` (bound on ||D^2 m_t||) measured
    on the grid: ``L_T = Lip(grad r)``, ``Gamma_T = sup |grad r|``,
    ``rho_t = sigma_t^2 L_{t+1} / beta_t``, ``L_t = Gamma_{t+1} kappa_t + L_{t+1} ell_t^2 / (1 - rho_t)``,
    ``Gamma_t = ell_t Gamma_{t+1}`` (from ``grad V_t = Dm_t^T E grad V_{t+1}``). Returns
    ``(L (T+1,), rho (T,))``; ``L_t = inf`` once some ``rho >= 1``."""
    T = result.T
    L = np.full(T + 1, np.inf)
    rho = np.full(T, np.inf)
    L[T], Gam = float(lip_grad_r), float(grad_sup_r)
    for t in range(T - 1, -1, -1):
        s2, b = float(result.sigma[t]) ** 2, float(result.beta[t])
        rho[t] = s2 * L[t + 1] / b
        if not rho[t] < 1:
            break
        L[t] = Gam * result.kappa[t] + L[t + 1] * result.ell[t] ** 2 / (1 - rho[t])
        Gam = result.ell[t] * Gam
    return L, rho
