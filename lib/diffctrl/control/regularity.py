"""[ours] Regularity bounds of PI-FT's iterates and their measured/bound ratios.

``book/pift_regularity.md``: with ``L = Lip(grad V_{t+1})``, ``ell = Lip(m_t)``,
``kappa >= ||D^2 m_t||``, ``Gamma = sup |grad V_{t+1}|`` and ``rho = sigma_t^2 L / beta_t < 1``,
the plain iteration from ``u^(0) = 0`` keeps ``Lip(u^(m)) <= B_m``
(:func:`control_lipschitz_bound`) and a bound on ``Lip(grad V^(m))``
(:func:`value_lipschitz_bounds`); at the fixed point ``Lip(grad V_t) <= Gamma kappa +
L ell^2 / (1 - rho)`` (:func:`fixed_point_value_bound`). These are one-step bounds (they use the
measured regularity of ``V_{t+1}``); :func:`a_priori_value_bounds` propagates them from the
reward alone. :func:`regularity_ratios` divides the constants a grid sweep measured
(:class:`~.pift.PIFTGridResult`) by the bounds.
"""

from __future__ import annotations

import math

import numpy as np

from .pift import PIFTGridResult

__all__ = [
    "a_priori_value_bounds",
    "control_lipschitz_bound",
    "fixed_point_value_bound",
    "regularity_ratios",
    "value_lipschitz_bounds",
]


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


def regularity_ratios(result: PIFTGridResult) -> dict[str, np.ndarray]:
    """Measured Lipschitz constants of a :class:`~.pift.PIFTGridResult` divided by the [ours]
    bounds, per (t, m): ``u`` (Lip(u^(m)) / B_m, m >= 1) and ``v`` (Lip(grad V^(m)) / bound),
    NaN-padded to a (T, max m + 1) array; plus the fixed-point bounds per t."""
    T = result.T
    M = max(len(x) for x in result.lip_u)
    ru = np.full((T, M), np.nan)
    rv = np.full((T, M), np.nan)
    fp = np.full(T, np.nan)
    for t in range(T):
        n = len(result.lip_u[t])
        rho, ell = result.rho[t], result.ell[t]
        Bu = np.array([control_lipschitz_bound(rho, ell, m) for m in range(n)])
        with np.errstate(divide="ignore", invalid="ignore"):
            ru[t, 1:n] = np.asarray(result.lip_u[t][1:]) / Bu[1:]
        Bv = value_lipschitz_bounds(
            rho,
            ell,
            result.kappa[t],
            result.L[t + 1],
            result.grad_sup[t + 1],
            result.sigma[t],
            result.beta[t],
            n - 1,
        )
        rv[t, :n] = np.asarray(result.lip_gradV[t]) / Bv
        fp[t] = fixed_point_value_bound(
            rho, ell, result.kappa[t], result.L[t + 1], result.grad_sup[t + 1]
        )
    return {"u": ru, "v": rv, "fixed_point": fp}
