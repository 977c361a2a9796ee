"""PI-FT in the LQ class, exactly: affine controls, quadratic values, no sampling.

Han, Razaviyayn, Xu 2025, Algorithm 1 as we read it (``book/pift_formulation.md``; the grid
version for any score and reward is :mod:`.pift`). Backward sweep ``t = T-1, ..., 0`` from
``V_T = r``; at each step start from the pre-trained model ``u^(0) = 0`` and iterate the
(damped) policy-improvement map against the sweep's own ``V_{t+1} = (P, p, c)``. For an affine
control ``G y + g`` and the pre-trained mean ``m_t(y) = A y + c_t`` the map is affine,

    G <- (1 - eta) G + eta (-(s^2/beta) P (A + G)),
    g <- (1 - eta) g + eta ((s^2/beta) (p - P (c_t + g))),

and each ``V_t^(m)`` is the exact value of the current control (:mod:`diffctrl.control.riccati`), so the
iteration's error is multiplied by ``(1 - eta) I - eta (s^2/beta) P_{t+1}`` at every step: its
rate is :func:`~.rates.lq_iteration_rate`, ``rho_t`` for ``eta = 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from .affine_policy import AffinePolicy
from .lq import LQProblem, pretrained_policy
from .moments import _np, affine_rms, quadratic_rms
from .rates import _check_eta, _iterations, lq_iteration_rate, optimal_damping
from .riccati import _policy_value_np

__all__ = ["PIFTDivergence", "PIFTLQResult", "pift_lq", "pift_lq_step", "pift_lq_work"]


class PIFTDivergence(ArithmeticError):
    """PI-FT's iterates left the floating-point range: the one-step iteration at some step
    does not contract (its factor, and the damping that makes it contract, in the message)."""


def _divergence_message(t: int, Pn, s2: float, beta: float, eta: float, m: int) -> str:
    a = s2 * np.linalg.eigvalsh(Pn) / beta  # eigenvalues of (sigma^2 / beta) P_{t+1}
    factor = float(np.max(np.abs(1 - eta * (1 + a))))
    msg = (
        f"PI-FT diverges at step t = {t}: with damping eta = {eta:g} the one-step iteration's "
        f"contraction factor is {factor:.4g} >= 1 (sigma_t^2 lambda_max(P_t+1) / beta_t = "
        f"{a.max():.4g}); its iterates overflowed after {m} iterations."
    )
    if a.min() > -1:
        eta_star, rate = optimal_damping(float(a.max()), float(max(-a.min(), 0.0)))
        msg += (
            f" Damping eta < {2 / (1 + a.max()):.4g} makes it contract; eta* = {eta_star:.4g} "
            f"gives the factor {rate:.4g}."
        )
    return msg


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
    init: tuple[np.ndarray, np.ndarray] | None = None,
    allow_divergence: bool = False,
    progress: bool = False,
) -> PIFTLQResult:
    """PI-FT in the LQ class, exactly (no sampling, no quadrature).

    ``n_iter``: iterations m_t per step (an int >= 0 or T of them); with ``tol`` a step stops early once
    the residual ``sqrt(E|u^(m+1) - u^(m)|^2)`` is below ``tol``. ``reference`` (e.g.
    :func:`~.lq.solve_lq`) turns on the error histories. ``init = (G0, g0)``, arrays (T, d, d)
    and (T, d): the starting control ``u_t^(0)(y) = G0_t y + g0_t`` of every step (default
    ``u^(0) = 0``, the pre-trained model, the paper's start). Where the one-step iteration does
    not contract (factor >= 1, e.g. plain PI-FT, ``eta = 1``, at small beta) and its iterates
    overflow, :class:`PIFTDivergence` says at which step, with the factor and the damping
    that makes it contract; ``allow_divergence=True`` returns the overflowed iterates instead
    (a study of the divergence itself).
    """
    pb = problem
    T, d = pb.T, pb.d
    n_it = _iterations(n_iter, T)
    eta = _check_eta(eta)
    A, cv = (_np(x) for x in pb.pretrained_affine())
    s2 = _np(pb.sigma) ** 2
    beta = _np(pb.beta)
    pre_means, pre_covs = (_np(x) for x in pretrained_policy(pb).marginals())
    if init is not None:
        G0, g0 = (np.asarray(_np(x), dtype=float) for x in init)
        if G0.shape != (T, d, d) or g0.shape != (T, d):
            raise ValueError(
                f"init must be (G0, g0) of shapes ({T}, {d}, {d}) and ({T}, {d}), got "
                f"{G0.shape} and {g0.shape}"
            )
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
        if init is None:
            Gm, gm = np.zeros((d, d)), np.zeros(d)
        else:
            Gm, gm = G0[t].copy(), g0[t].copy()
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
        if not allow_divergence and not all(
            np.all(np.isfinite(x)) for x in (Pm, pm, Gm, gm)
        ):
            raise PIFTDivergence(_divergence_message(t, Pn, s2[t], beta[t], eta, m))
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
    :func:`~.rates.lq_iteration_rate`. Diverging iterates are reported as they are (inf/nan)."""
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


def pift_lq_work(result: PIFTLQResult) -> int:
    """One-step operations done by a PI-FT sweep: (m_t + 1) evaluations + m_t improvements."""
    return int(np.sum(2 * result.n_iter + 1))
