"""The optimisation landscape of ``C(K)``: the global optimum, Hessians, observed rates.

Han, Razaviyayn, Xu (arXiv 2303.08431), Sec. 3-4 (chapter ``book/nearly_lq.md``): near ``K^lin`` the
cost is ``mu``-strongly convex and ``L``-smooth when the kernel's Lipschitz constants are small,
so gradient descent with step ``eta <= 1/L`` contracts the optimality gap at least like
``(1 - eta mu)`` per step. Here both constants are measured as the extreme eigenvalues of the
autograd Hessian of the sample cost (a pointwise version of the paper's constants).

All functions are batched: ``K (..., p, n + d)`` with ``x0 (..., m, n)`` (for a stacked system,
the system dim first), one Hessian / one Newton solve per leading index.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .riccati import cancellation_policy, k_lin
from .rollout import check_policy, cost
from .system import NearlyLQ, stack_systems

__all__ = [
    "cost_hessian",
    "envelope_holds",
    "hessian_extremes",
    "observed_rate",
    "optimal_policy",
    "reference_optima",
]

Tensor = torch.Tensor


def _grad_and_hessian(system, K, x0, horizon, hessian=True):
    shape = K.shape
    D = shape[-2] * shape[-1]
    k = K.detach().reshape(*shape[:-2], D).requires_grad_(True)
    c = cost(system, k.view(shape), x0, horizon)
    (g,) = torch.autograd.grad(c.sum(), k, create_graph=hessian)
    if not hessian:
        return c.detach(), g.detach(), None
    rows = [
        torch.autograd.grad(g[..., i].sum(), k, retain_graph=i < D - 1)[0]
        for i in range(D)
    ]
    H = torch.stack(rows, dim=-2)
    return c.detach(), g.detach(), 0.5 * (H + H.transpose(-1, -2)).detach()


def cost_hessian(system: NearlyLQ, K: Tensor, x0: Tensor, horizon: int) -> Tensor:
    """Hessian ``(..., D, D)`` of the sample cost ``C_T`` at ``K`` (row-major ``vec K``).

    One forward pass and ``D + 1`` backward passes for the whole batch (the batch entries are
    independent, so ``d/dK grad_i`` of the summed gradient gives every block at once).
    """
    K = check_policy(system, K)
    return _grad_and_hessian(system, K, x0, horizon)[2]


def hessian_extremes(system: NearlyLQ, K: Tensor, x0: Tensor, horizon: int):
    """``(mu, L)``: smallest and largest Hessian eigenvalue (floats, or arrays for a batch)."""
    ev = torch.linalg.eigvalsh(cost_hessian(system, K, x0, horizon))
    mu, L = ev[..., 0], ev[..., -1]
    if mu.ndim == 0:
        return float(mu), float(L)
    return mu.cpu().numpy(), L.cpu().numpy()


def optimal_policy(
    system: NearlyLQ,
    K_init: Tensor,
    x0: Tensor,
    horizon: int,
    max_iter: int = 50,
    tol: float = 1e-9,
    progress: bool = False,
):
    """Minimise the sample cost ``C_T`` by damped (Levenberg-Marquardt) Newton steps.

    Step ``-(H + lam I)^{-1} grad`` with the autograd Hessian ``H``; ``lam`` is at least what
    makes ``H + lam I`` positive definite, grows tenfold when a step does not decrease the cost
    (Armijo) and shrinks threefold after a success. A *local* method from
    ``K_init (..., p, n + d)``, batched over the leading dims (for a stacked system,
    ``K_init (R, S, p, n + d)`` runs ``S`` starts per system with ``x0 (R, 1, m, n)``); entries
    whose gradient norm fell below ``tol`` stop. Returns ``(K*, C_T(K*), ||grad C_T(K*)||_F,
    Newton steps taken)``; the gradient norm certifies a stationary point.
    """
    from tqdm.auto import tqdm

    K = check_policy(system, K_init).detach().clone()
    shape, lead = K.shape, K.shape[:-2]
    D = shape[-2] * shape[-1]
    eye = torch.eye(D, dtype=K.dtype, device=K.device)
    stacked = system.n_systems is not None
    Kf = K.reshape(-1, *shape[-2:])  # flat view over the leading dims
    x0f = (
        x0.expand(*lead, *x0.shape[-2:]).reshape(-1, *x0.shape[-2:]) if stacked else x0
    )
    sys_index = None
    if stacked:
        sys_index = torch.arange(system.n_systems, device=K.device)
        sys_index = sys_index.view(-1, *([1] * (len(lead) - 1)))
        sys_index = sys_index.expand(lead).reshape(-1)
    steps = torch.zeros(Kf.shape[0], dtype=torch.long, device=K.device)
    lam = torch.full((Kf.shape[0],), 1e-6, dtype=K.dtype, device=K.device)
    full = _sub(system, sys_index, None) if stacked else system
    c, g, _ = _grad_and_hessian(full, Kf, x0f, horizon, hessian=False)
    gnorm = g.norm(dim=-1)
    for _ in tqdm(range(max_iter), disable=not progress, desc="Newton", leave=False):
        todo = (gnorm >= tol).nonzero().squeeze(-1)
        if todo.numel() == 0:
            break
        sub = _sub(system, sys_index, todo) if stacked else system
        Kt, xt = Kf[todo], (x0f[todo] if stacked else x0f)
        ct, gt, H = _grad_and_hessian(sub, Kt, xt, horizon)
        ev = torch.linalg.eigvalsh(H)
        scale = ev[..., -1].abs().clamp(min=1e-12)
        base = torch.clamp(-ev[..., 0], min=0.0) + 1e-12 * scale
        lt = lam[todo]
        done = torch.zeros(len(todo), dtype=torch.bool, device=K.device)
        newK = Kt.clone()
        for _ in range(12):
            shift = base + lt * scale
            step = torch.linalg.solve(
                H + shift[:, None, None] * eye, gt.unsqueeze(-1)
            ).squeeze(-1)
            trial = Kt - step.view(-1, *shape[-2:])
            with torch.no_grad():
                c_trial = cost(sub, trial, xt, horizon)
            ok = (
                ~done
                & torch.isfinite(c_trial)
                & (c_trial <= ct - 1e-4 * (gt * step).sum(-1))
            )
            newK[ok] = trial[ok]
            lt = torch.where(ok, lt / 3, torch.where(done, lt, lt * 10))
            done = done | ok
            if bool(done.all()):
                break
        lam[todo] = lt.clamp(1e-12, 1e12)
        Kf = Kf.index_copy(0, todo, newK)
        steps[todo] += done.long()
        c, g, _ = _grad_and_hessian(full, Kf, x0f, horizon, hessian=False)
        gnorm = g.norm(dim=-1)
    return (
        Kf.reshape(shape),
        c.reshape(lead),
        gnorm.reshape(lead),
        steps.reshape(lead),
    )


def _sub(system: NearlyLQ, sys_index: Tensor, todo: Tensor | None) -> NearlyLQ:
    """The stacked system repeated along flattened (system, start) entries, optionally subset."""
    return system.select(sys_index if todo is None else sys_index[todo])


def reference_optima(
    systems: list[NearlyLQ],
    x0: Tensor,
    horizon: int,
    max_iter: int = 40,
    tol: float = 1e-9,
    starts: tuple[str, ...] = ("klin", "cancel"),
    extra_starts: Tensor | None = None,
) -> dict:
    """The optimum of each system's sample cost ``C_T`` over initial states ``x0 (m, n)``, by
    multi-start damped Newton (:func:`optimal_policy`): starts ``"klin"`` (``K^lin``) and/or
    ``"cancel"`` (:func:`~diffctrl.lqr.riccati.cancellation_policy`), plus
    ``extra_starts (R, s, p, n + d)``.

    Returns per system: ``K`` (the best stationary point found), ``cost``, ``grad_norm``,
    ``n_minima`` (distinct points, to 1e-4, among the ``n_converged`` of ``n_starts`` starts
    that converged), ``spread``
    (max cost difference between converged starts), ``mu``/``L`` (Hessian extremes at ``K``),
    ``certified`` (best start converged to ``tol``).
    """
    S = stack_systems(systems)
    makers = {"klin": k_lin, "cancel": cancellation_policy}
    if not starts or any(s not in makers for s in starts):
        raise ValueError(
            f"starts must be a non-empty tuple of {sorted(makers)}, got {starts!r}"
        )
    K_init = torch.stack(
        [torch.stack([makers[k](s) for s in systems]) for k in starts], 1
    )
    if extra_starts is not None:
        K_init = torch.cat([K_init, extra_starts.to(K_init)], 1)
    R_, nstart = K_init.shape[:2]
    X0 = x0.expand(R_, 1, *x0.shape[-2:])
    K, c, g, steps = optimal_policy(S, K_init, X0, horizon, max_iter=max_iter, tol=tol)
    conv = g < 1e-6
    c_masked = torch.where(torch.isfinite(c), c, torch.full_like(c, math.inf))
    best = c_masked.argmin(1)
    Kb = K[torch.arange(R_, device=K.device), best]
    n_min, spread = [], []
    for r in range(R_):
        pts = [K[r, i] for i in range(nstart) if conv[r, i]]
        distinct = []
        for P in pts:
            if all(
                float((P - Q).norm()) > 1e-4 * (1 + float(Q.norm())) for Q in distinct
            ):
                distinct.append(P)
        n_min.append(len(distinct))
        cs = c[r][conv[r]]
        spread.append(float(cs.max() - cs.min()) if cs.numel() > 1 else 0.0)
    mu, L = hessian_extremes(S, Kb, x0.expand(R_, *x0.shape[-2:]), horizon)
    pick = (torch.arange(R_, device=K.device), best)
    return dict(
        K=Kb,
        cost=c[pick].cpu().numpy(),
        grad_norm=g[pick].cpu().numpy(),
        n_minima=np.array(n_min),
        n_converged=conv.sum(1).cpu().numpy(),
        n_starts=nstart,
        spread=np.array(spread),
        mu=np.atleast_1d(mu),
        L=np.atleast_1d(L),
        certified=conv[pick].cpu().numpy(),
        newton_steps=steps.cpu().numpy(),
    )


def observed_rate(gaps, start: int = 0, stop: int | None = None) -> float:
    """Per-step contraction ``exp(slope)`` of a least-squares fit of ``log(gap)`` vs iteration."""
    gaps = np.asarray(gaps, float)[start:stop]
    keep = np.isfinite(gaps) & (gaps > 0)
    if keep.sum() < 2:
        raise ValueError("observed_rate needs at least two positive finite gaps")
    t = np.arange(len(gaps))[keep]
    slope = np.polyfit(t, np.log(gaps[keep]), 1)[0]
    return float(np.exp(slope))


def envelope_holds(
    gaps, iters, factor: float, rel_slack: float = 1e-9, abs_slack: float = 1e-12
) -> bool:
    """Whether ``gaps[i] <= factor ** iters[i] * gaps[0]`` at every scored iteration (up to
    ``rel_slack`` / ``abs_slack`` round-off): the theorem's linear-rate envelope. Applied to a
    constant sequence (a run that never moves) it holds only when ``factor ** iters[-1]`` is
    about 1, i.e. when the envelope is vacuous over the run."""
    gaps = np.asarray(gaps, float)
    iters = np.asarray(iters, float)
    if gaps.shape != iters.shape or gaps.ndim != 1 or len(gaps) < 2:
        raise ValueError("gaps and iters must be 1-D of the same length >= 2")
    if not 0 <= factor <= 1:
        return False  # mu <= 0 or eta mu > 1: no contraction is claimed
    env = factor**iters * gaps[0]
    return bool(
        np.all(np.isfinite(gaps)) and np.all(gaps <= env * (1 + rel_slack) + abs_slack)
    )
