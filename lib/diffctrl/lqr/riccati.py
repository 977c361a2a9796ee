"""The linear-quadratic pieces: DARE, the LQR gain, the K^lin initialisation, exact LQ costs,
and the cancelling policy ``[K_lqr, B^+ C]``.

Han, Razaviyayn, Xu (arXiv 2303.08431), Sec. 3 (chapter ``book/nearly_lq.md``): the initial policy
folds the nonlinearity's coefficient into the LQR solution of ``(A, B, Q, R)``,

    P = Q + A'PA - A'PB (R + B'PB)^{-1} B'PA                      (DARE)
    K1^lin = (R + B'PB)^{-1} B'P A,     K2^lin = (R + B'PB)^{-1} B'P C.

With ``C = 0`` this is the LQR optimum ``[K*, 0]`` (Fazel et al. 2018): the linear feedback
is optimal over all policies, so the kernel part must vanish.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from .rollout import join_policy
from .system import NearlyLQ

__all__ = [
    "cancellation_policy",
    "k_lin",
    "linear_part_optimal",
    "lqr_cost",
    "lqr_gain",
    "solve_dare",
]


def _np(x) -> np.ndarray:
    return (
        x.detach().cpu().numpy()
        if isinstance(x, torch.Tensor)
        else np.asarray(x, float)
    )


def solve_dare(A, B, Q, R) -> np.ndarray:
    """Stabilising solution ``P (n, n)`` of the DARE (scipy.linalg.solve_discrete_are)."""
    A, B, Q, R = map(_np, (A, B, Q, R))
    for name, M in zip("ABQR", (A, B, Q, R)):
        if M.ndim != 2:
            raise ValueError(f"{name} must be a matrix, got shape {M.shape}")
        if not np.isfinite(M).all():
            raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    n, p = B.shape
    for name, M, want in (("A", A, (n, n)), ("Q", Q, (n, n)), ("R", R, (p, p))):
        if M.shape != want:
            raise ValueError(
                f"{name} must have shape {want} for B of shape (n, p) = {B.shape}, "
                f"got {M.shape}"
            )
    P = scipy.linalg.solve_discrete_are(A, B, Q, R)
    if not np.isfinite(P).all():
        raise ValueError(
            "the DARE has no finite stabilising solution for these (A, B, Q, R)"
        )
    return P


def lqr_gain(A, B, Q, R) -> np.ndarray:
    """Optimal LQR gain ``K* = (R + B'PB)^{-1} B'PA``, shape ``(p, n)``."""
    A, B, Q, R = map(_np, (A, B, Q, R))
    P = solve_dare(A, B, Q, R)
    return np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)


def k_lin(system: NearlyLQ) -> torch.Tensor:
    """The paper's initial policy ``K^lin = [K1^lin, K2^lin]``, shape ``(p, n + d)``."""
    A, B, C, Q, R = (_np(getattr(system, k)) for k in "ABCQR")
    P = solve_dare(A, B, Q, R)
    G = R + B.T @ P @ B
    K1 = np.linalg.solve(G, B.T @ P @ A)
    K2 = np.linalg.solve(G, B.T @ P @ C)

    def t(M):
        return torch.as_tensor(M, dtype=system.dtype, device=system.device)

    return join_policy(t(K1), t(K2))


def lqr_cost(A, B, Q, R, K, sigma0=None, horizon: int | None = None) -> float:
    """Exact cost of the linear policy ``u = -K x`` on ``x' = A x + B u`` (no kernel).

    ``E x0' P_K x0 = tr(P_K Sigma0)`` with ``P_K = sum_{t < horizon} (A-BK)'^t (Q + K'RK) (A-BK)^t``
    (the discrete Lyapunov equation when ``horizon`` is None). ``Sigma0 = E x0 x0'`` defaults to
    ``I / n`` (``x0`` uniform on the unit sphere).
    """
    A, B, Q, R, K = map(_np, (A, B, Q, R, K))
    n = A.shape[0]
    sigma0 = np.eye(n) / n if sigma0 is None else _np(sigma0)
    M = A - B @ K
    S = Q + K.T @ R @ K
    if horizon is None:
        if np.max(np.abs(np.linalg.eigvals(M))) >= 1:
            return float("inf")
        P = scipy.linalg.solve_discrete_lyapunov(M.T, S)
    else:
        P, Mt = np.zeros_like(S), np.eye(n)
        for _ in range(horizon):
            P += Mt.T @ S @ Mt
            Mt = M @ Mt
    return float(np.trace(P @ sigma0))


def linear_part_optimal(system: NearlyLQ) -> torch.Tensor:
    """``[K*, 0]``: the LQR optimum of ``(A, B, Q, R)`` with zero kernel gain, ``(p, n + d)``."""
    K = lqr_gain(system.A, system.B, system.Q, system.R)
    K1 = torch.as_tensor(K, dtype=system.dtype, device=system.device)
    return join_policy(
        K1, torch.zeros(system.p, system.d, dtype=system.dtype, device=system.device)
    )


def cancellation_policy(system: NearlyLQ) -> torch.Tensor:
    """``[K_lqr, B^+ C]``, shape ``(p, n + d)``: the LQR gain plus the kernel gain that cancels
    ``C phi`` as far as ``B`` allows (exactly when ``B`` is invertible). A second, stabilising
    start of the multi-start Newton search (:func:`~diffctrl.lqr.landscape.reference_optima`)."""
    K1 = torch.as_tensor(
        lqr_gain(system.A, system.B, system.Q, system.R),
        dtype=system.dtype,
        device=system.device,
    )
    return join_policy(K1, torch.linalg.pinv(system.B) @ system.C)
