"""One exact Bellman step of the LQ case: the Riccati-type recursion and policy evaluation.

``book/notation.md``, *The linear-quadratic case* (closed form, [ours]). With the pre-trained
mean ``m_t(y) = A y + c_t`` and a quadratic ``V_{t+1}(y) = -1/2 y^T P y + p^T y + c``, one
Bellman step is (``K = (I + s^2 P/beta)^{-1}``, ``s = sigma_t``, ``beta = beta_t``):

    u*_t(y)  = s^2 (beta I + s^2 P)^{-1} (p - P m_t(y))          (first-order condition)
    P_t      = A^T K P A
    p_t      = A^T (K p - K P c_t)
    c_t      = c + s^2/(2 beta) p^T K p - 1/2 c_t^T K P c_t + p^T K c_t - s^2/2 tr P      (mean shift)

With ``kernel="full"`` the fine-tuned kernel may also change its covariance (the
unrestricted soft-Bellman optimum, kernel ``N(m + u*, s^2 K)``): ``P_t`` and ``p_t`` are the
same and only the constant changes, ``- s^2/2 tr P -> - beta/2 log det(I + s^2 P/beta)``.
:func:`policy_value_step` is the same step for a *given* affine control (policy evaluation).

The recursions run over T steps with d x d matrices: sequential and tiny, so they are computed
in NumPy float64 on the CPU (3-4x less per-step overhead than torch); the public functions
return float64 tensors.
"""

from __future__ import annotations

import numpy as np
import torch

from .moments import _np

__all__ = ["KERNELS", "bellman_step", "policy_value_step"]

KERNELS = ("mean-shift", "full")


def _bellman_np(P, p, c, A, cvec, s2: float, beta: float, kernel: str):
    d = P.shape[0]
    eye = np.eye(d)
    Minv = np.linalg.inv(beta * eye + s2 * P)  # (beta I + s^2 P)^{-1}
    K = beta * Minv
    K = 0.5 * (K + K.T)
    KP = K @ P
    KP = 0.5 * (KP + KP.T)
    G = -s2 * Minv @ P @ A
    g = s2 * Minv @ (p - P @ cvec)
    P_new = A.T @ KP @ A
    P_new = 0.5 * (P_new + P_new.T)
    Kp = K @ p
    p_new = A.T @ (Kp - KP @ cvec)
    c_new = c + s2 / (2 * beta) * (p @ Kp) - 0.5 * (cvec @ KP @ cvec) + Kp @ cvec
    if kernel == "mean-shift":
        c_new = c_new - 0.5 * s2 * np.trace(P)
        kcov = s2 * eye
    elif kernel == "full":
        c_new = c_new - 0.5 * beta * np.linalg.slogdet(eye + s2 * P / beta)[1]
        kcov = s2 * K
    else:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {KERNELS}")
    return P_new, p_new, c_new, G, g, kcov


def bellman_step(
    P, p, c, A, cvec, sigma: float, beta: float, kernel: str = "mean-shift"
):
    """The exact Bellman step for a quadratic ``V_{t+1} = (P, p, c)`` and ``m_t(y) = A y + cvec``
    (module docstring): P, A (d, d), p, cvec (d,), c scalar.

    Returns ``(P_t, p_t, c_t, G, g, kernel_cov)`` (float64 tensors): the value at step t, the
    optimal affine control ``u*(y) = G y + g`` and the fine-tuned kernel's covariance
    (``s^2 I`` for the mean shift, ``s^2 K`` for the full kernel).
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    out = _bellman_np(
        _np(P),
        _np(p),
        float(c),
        _np(A),
        _np(cvec),
        float(sigma) ** 2,
        float(beta),
        kernel,
    )
    return tuple(torch.as_tensor(np.asarray(x, dtype=np.float64)) for x in out)


def _policy_value_np(P, p, c, A, cvec, s2: float, beta: float, G, g):
    F = A + G
    f = cvec + g
    if s2 == 0:
        if np.any(G != 0) or np.any(g != 0):
            raise ValueError(
                "a nonzero control at a step with sigma_t = 0 has infinite KL cost"
            )
        w = 0.0
    else:
        w = beta / s2
    P_new = w * G.T @ G + F.T @ P @ F
    P_new = 0.5 * (P_new + P_new.T)
    p_new = -w * G.T @ g + F.T @ (p - P @ f)
    c_new = c - 0.5 * w * (g @ g) - 0.5 * (f @ P @ f) + p @ f - 0.5 * s2 * np.trace(P)
    return P_new, p_new, c_new


def policy_value_step(P, p, c, A, cvec, sigma: float, beta: float, G, g):
    """Value at step t of the affine control ``u(y) = G y + g`` (mean-shift kernel), given
    ``V_{t+1} = (P, p, c)``: ``V_t(y) = -beta |u|^2 / (2 s^2) + E V_{t+1}(m + u + s W)``.
    Returns ``(P_t, p_t, c_t)`` (float64 tensors)."""
    out = _policy_value_np(
        _np(P),
        _np(p),
        float(c),
        _np(A),
        _np(cvec),
        float(sigma) ** 2,
        float(beta),
        _np(G),
        _np(g),
    )
    return tuple(torch.as_tensor(np.asarray(x, dtype=np.float64)) for x in out)
