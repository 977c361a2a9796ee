"""The Bellman equation of one step, and its residuals at given states.

``book/notation.md``, *The tilted target and the Bellman recursion*: ``V_T = r`` and

    V_t(y) = max_u { -beta_t |u|^2 / (2 sigma_t^2) + E_W V_{t+1}(m_t(y) + u + sigma_t W) },

whose maximiser solves the first-order condition
``u = (sigma_t^2 / beta_t) E_W grad V_{t+1}(m_t(y) + u + sigma_t W)``.
:func:`one_step_objective` is the bracket as a function of the control;
:func:`bellman_residuals` and :func:`foc_residuals` check a policy of the LQ case
(:class:`~.affine_policy.AffinePolicy`) against the equation and the condition, with
``E_W`` by Gauss-Hermite quadrature.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .grid import gauss_hermite

__all__ = ["bellman_residuals", "foc_residuals", "one_step_objective"]


def one_step_objective(
    value: Callable[[torch.Tensor], torch.Tensor],
    m: torch.Tensor,
    sigma: float,
    beta: float,
    u: torch.Tensor,
    n_gh: int = 20,
) -> torch.Tensor:
    """``-beta |u|^2 / (2 sigma^2) + E_W V(m + u + sigma W)`` for controls ``u`` (B, d) at one
    state whose pre-trained mean is ``m`` (d,); ``E_W`` by Gauss-Hermite quadrature."""
    d = m.shape[-1]
    nodes, w = gauss_hermite(n_gh, d, u.dtype, u.device)
    z = (m + u)[:, None, :] + sigma * nodes[None]
    EV = value(z.reshape(-1, d)).reshape(u.shape[0], -1) @ w
    return -beta * (u**2).sum(-1) / (2 * sigma**2) + EV


def foc_residuals(problem, sol, y: torch.Tensor, n_nodes: int = 3) -> list[float]:
    """Relative residual of the first-order condition of an LQ policy at the points ``y`` (n, d).

    For every step t: ``max |u_t(y) - (sigma_t^2/beta_t) E_W grad V_{t+1}(m_t(y) + u_t(y) +
    sigma_t W)| / (1 + |u_t(y)|)`` with ``V_{t+1}`` the policy's own value (Gauss-Hermite
    quadrature, exact for the affine gradient with 3 nodes). Zero for the optimum; the
    pre-trained policy (u = 0) fails it wherever its value has a gradient.
    """
    if y.ndim != 2 or y.shape[1] != problem.d:
        raise ValueError(f"y must have shape (n, {problem.d}), got {tuple(y.shape)}")
    A, c = problem.pretrained_affine()
    nodes, w = gauss_hermite(n_nodes, problem.d)
    out = []
    for t in range(problem.T):
        s, b = float(problem.sigma[t]), float(problem.beta[t])
        u = sol.control(t, y)
        z = (y @ A[t].T + c[t] + u)[:, None, :] + s * nodes[None]
        g = sol.value_grad(t + 1, z.reshape(-1, problem.d)).reshape(
            y.shape[0], -1, problem.d
        )
        rhs = (s**2 / b) * torch.einsum("nkd,k->nd", g, w)
        out.append(float(((u - rhs).norm(dim=-1) / (1 + u.norm(dim=-1))).max()))
    return out


def bellman_residuals(problem, sol, y: torch.Tensor, n_nodes: int = 3) -> list[float]:
    """Relative residual of the Bellman equation of an LQ solution at the points ``y`` (n, d).

    For every step t: ``max |rhs - V_t(y)| / (1 + |V_t(y)|)`` with
    ``rhs = -beta_t |u_t(y)|^2 / (2 sigma_t^2) + E_W V_{t+1}(m_t(y) + u_t(y) + sigma_t W)``, the
    expectation by Gauss-Hermite quadrature (exact for the quadratic value with 3 nodes).
    """
    if y.ndim != 2 or y.shape[1] != problem.d:
        raise ValueError(f"y must have shape (n, {problem.d}), got {tuple(y.shape)}")
    A, c = problem.pretrained_affine()
    nodes, w = gauss_hermite(n_nodes, problem.d)
    out = []
    for t in range(problem.T):
        s, b = float(problem.sigma[t]), float(problem.beta[t])
        u = sol.control(t, y)
        z = (y @ A[t].T + c[t] + u)[:, None, :] + s * nodes[None]
        nxt = sol.value(t + 1, z.reshape(-1, problem.d)).reshape(y.shape[0], -1) @ w
        rhs = -b * (u**2).sum(-1) / (2 * s**2) + nxt
        lhs = sol.value(t, y)
        out.append(float(((rhs - lhs).abs() / (1 + lhs.abs())).max()))
    return out
