"""The continuous-time limit: the controlled reverse VP-SDE and its HJB equation.

Han, Razaviyayn, Xu (2025) (the paper's continuous-time extension; notation of ``book/notation.md``; the equations below are [ours]).
Forward VP-SDE ``dX = -b(s) X/2 ds + sqrt(b(s)) dB`` on s in [0, 1], ``b(s) = b_min + s (b_max - b_min)``
(:func:`~diffctrl.diffusion.schedules.vp_sde_schedule` reads it at N levels). In reverse time
``tau = 1 - s`` the pre-trained model is ``dY = b (Y/2 + score_s(Y)) dtau + sqrt(b) dW``; the
fine-tuned one adds ``sqrt(b) v dtau`` and pays the running cost ``beta |v|^2 / 2`` (Girsanov: the
path KL is ``E int |v|^2/2 dtau``; the DDPM step with ``sigma_t^2 = b_k`` and ``u = sqrt(b) v dtau``
has KL ``|u|^2/(2 sigma^2) = |v|^2 dtau / 2``, so the discrete problem with "large" variance is
its Euler scheme). The value solves the HJB equation

    d_tau V + (b (y/2 + score)) . grad V + b/2 Lap V + b/(2 beta) |grad V|^2 = 0,   V(1) = r,

with optimal ``v* = sqrt(b) grad V / beta``. Two exact solutions:

- Gaussian data and quadratic reward (:func:`solve_hjb_lq`): ``V = -1/2 y^T P y + p^T y + c`` with
  the Riccati ODEs ``P' = -(F^T P + P F) + (b/beta) P^2``, ``p' = -F^T p + P f + (b/beta) P p``,
  ``c' = -f^T p + (b/2) tr P - b/(2 beta) |p|^2`` (``F = b (I/2 - Sigma_s^{-1})``,
  ``f = b Sigma_s^{-1} sqrt(abar_s) mu0``), integrated backwards, then the closed-loop moments
  forwards;
- any Gaussian-mixture data and any reward in d <= 2 (:func:`cole_hopf_value`): the substitution
  ``exp(V/beta)`` linearises the HJB, and the exact reverse SDE's law of ``Y_1`` given ``Y_tau = y``
  is the data posterior ``X_0 | X_s = y`` (a Gaussian mixture), so
  ``V_tau(y) = beta log E[exp(r(X_0)/beta) | X_s = y]`` (Gauss-Hermite quadrature per component).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.integrate
import torch

from ..checks import call_reward, check_data
from ..diffusion.exact import GaussianMixture
from .moments import _np, quadratic_mean
from .rewards import QuadraticReward, check_psd

__all__ = [
    "ContinuousLQSolution",
    "cole_hopf_value",
    "posterior_mixture",
    "solve_hjb_lq",
    "vp_alpha_bar",
    "vp_rate",
]


def _check_vp(beta_min: float, beta_max: float):
    if not 0 < beta_min <= beta_max:
        raise ValueError(f"need 0 < beta_min <= beta_max, got {beta_min}, {beta_max}")


def vp_rate(s, beta_min: float = 0.1, beta_max: float = 20.0):
    """b(s) = b_min + s (b_max - b_min)."""
    return beta_min + s * (beta_max - beta_min)


def vp_alpha_bar(s: float, beta_min: float = 0.1, beta_max: float = 20.0) -> float:
    """abar(s) = exp(-int_0^s b) (as :func:`~diffctrl.diffusion.schedules.vp_log_alpha_bar`)."""
    return math.exp(-(beta_min * s + 0.5 * (beta_max - beta_min) * s * s))


@dataclass
class ContinuousLQSolution:
    """The HJB solution of the LQ problem: ``P(tau)``, ``p(tau)``, ``c(tau)`` (dense ODE output),
    the closed-loop law ``(mean(tau), cov(tau))`` and the optimal value ``J``."""

    d: int
    beta: float
    _back: object
    _fwd: object
    J: float
    init_mean: np.ndarray
    init_cov: np.ndarray
    beta_min: float
    beta_max: float

    def value_params(self, tau: float) -> tuple[np.ndarray, np.ndarray, float]:
        z = self._back.sol(tau)
        d = self.d
        return z[: d * d].reshape(d, d), z[d * d : d * d + d], float(z[-1])

    def value(self, tau: float, y: torch.Tensor) -> torch.Tensor:
        P, p, c = (
            torch.as_tensor(x, dtype=torch.float64) for x in self.value_params(tau)
        )
        y = y.to(torch.float64)
        return -0.5 * ((y @ P) * y).sum(-1) + y @ p + c

    def value_grad(self, tau: float, y: torch.Tensor) -> torch.Tensor:
        P, p, _ = (
            torch.as_tensor(x, dtype=torch.float64) for x in self.value_params(tau)
        )
        return -y.to(torch.float64) @ P + p

    def law(self, tau: float) -> tuple[np.ndarray, np.ndarray]:
        z = self._fwd.sol(tau)
        d = self.d
        C = z[d:].reshape(d, d)
        return z[:d], 0.5 * (C + C.T)

    def terminal_law(self) -> tuple[np.ndarray, np.ndarray]:
        return self.law(1.0)


def solve_hjb_lq(
    mu0,
    S0,
    reward: QuadraticReward,
    beta: float,
    *,
    beta_min: float = 0.1,
    beta_max: float = 20.0,
    init="standard",
    rtol: float = 1e-10,
    atol: float = 1e-12,
    method: str = "LSODA",
) -> ContinuousLQSolution:
    """Solve the continuous-time LQ problem (module docstring) for data ``N(mu0, S0)`` (S0 PD)
    and a quadratic reward; ``init`` is ``"standard"`` (Y_0 ~ N(0, I)), ``"exact"`` (the
    marginal at s = 1) or ``(mean, cov)``."""
    _check_vp(beta_min, beta_max)
    beta = float(beta)
    if not beta > 0 or not math.isfinite(beta):
        raise ValueError(f"beta must be finite and > 0, got {beta}")
    mu0 = _np(mu0).reshape(-1)
    d = mu0.shape[0]
    S0 = _np(S0)
    if S0.ndim == 0:
        S0 = S0 * np.eye(d)
    if S0.shape != (d, d):
        raise ValueError(f"S0 must be ({d}, {d}), got {S0.shape}")
    check_psd(torch.as_tensor(S0), "S0")
    if np.linalg.eigvalsh(S0).min() <= 0:
        raise ValueError("the continuous-time solver needs S0 positive definite")
    if reward.dim != d:
        raise ValueError(f"reward has dimension {reward.dim}, data has dimension {d}")
    Q, q, c0 = (_np(x) for x in reward.quadratic_form())
    eye = np.eye(d)

    def coeffs(tau):
        s = 1.0 - tau
        b = vp_rate(s, beta_min, beta_max)
        ab = vp_alpha_bar(s, beta_min, beta_max)
        Si = np.linalg.inv(ab * S0 + (1 - ab) * eye)
        return b, b * (0.5 * eye - Si), b * math.sqrt(ab) * Si @ mu0

    def back(tau, z):
        b, F, f = coeffs(tau)
        P = z[: d * d].reshape(d, d)
        p = z[d * d : d * d + d]
        dP = -(F.T @ P + P @ F) + (b / beta) * P @ P
        dp = -F.T @ p + P @ f + (b / beta) * P @ p
        dc = -f @ p + 0.5 * b * np.trace(P) - 0.5 * (b / beta) * (p @ p)
        return np.concatenate([dP.reshape(-1), dp, [dc]])

    z1 = np.concatenate([Q.reshape(-1), q, [float(c0)]])
    bsol = scipy.integrate.solve_ivp(
        back, (1.0, 0.0), z1, method=method, rtol=rtol, atol=atol, dense_output=True
    )
    if not bsol.success:
        raise RuntimeError(f"backward Riccati ODE failed: {bsol.message}")

    if isinstance(init, str):
        if init == "standard":
            m0, C0 = np.zeros(d), eye.copy()
        elif init == "exact":
            ab1 = vp_alpha_bar(1.0, beta_min, beta_max)
            m0, C0 = math.sqrt(ab1) * mu0, ab1 * S0 + (1 - ab1) * eye
        else:
            raise ValueError(
                f"init must be 'standard', 'exact' or (mean, cov), got {init!r}"
            )
    else:
        m0, C0 = (_np(x) for x in init)

    def fwd(tau, z):
        b, F, f = coeffs(tau)
        zb = bsol.sol(tau)
        P = zb[: d * d].reshape(d, d)
        p = zb[d * d : d * d + d]
        Fc = F - (b / beta) * P
        m = z[:d]
        C = z[d:].reshape(d, d)
        dm = Fc @ m + f + (b / beta) * p
        dC = Fc @ C + C @ Fc.T + b * eye
        return np.concatenate([dm, dC.reshape(-1)])

    fsol = scipy.integrate.solve_ivp(
        fwd,
        (0.0, 1.0),
        np.concatenate([m0, C0.reshape(-1)]),
        method=method,
        rtol=rtol,
        atol=atol,
        dense_output=True,
    )
    if not fsol.success:
        raise RuntimeError(f"forward moment ODE failed: {fsol.message}")
    zb0 = bsol.sol(0.0)
    J = float(
        quadratic_mean(
            torch.as_tensor(zb0[: d * d].reshape(d, d)),
            torch.as_tensor(zb0[d * d : d * d + d]),
            float(zb0[-1]),
            torch.as_tensor(m0),
            torch.as_tensor(C0),
        )
    )
    return ContinuousLQSolution(d, beta, bsol, fsol, J, m0, C0, beta_min, beta_max)


def posterior_mixture(
    data: GaussianMixture, alpha_bar: float, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The law of ``X_0 | X_s = y`` for mixture data: responsibilities (B, K), means (B, K, d) and
    covariances (K, d, d), ``m_j(y) = m_j + sqrt(ab) S_j Sigma_j^{-1} (y - sqrt(ab) m_j)``,
    ``C_j = S_j - ab S_j Sigma_j^{-1} S_j``, ``Sigma_j = ab S_j + (1 - ab) I``."""
    ab = float(alpha_bar)
    marg = data.marginal(ab)
    resp = marg.responsibilities(y)  # (B, K), public API of the diffusion core
    Sig_inv = torch.linalg.inv(marg.covs)  # (K, d, d)
    prec_diff = torch.einsum("kij,bkj->bki", Sig_inv, y[:, None, :] - marg.means[None])
    means = data.means[None] + ab**0.5 * torch.einsum(
        "kij,bkj->bki", data.covs, prec_diff
    )
    C = data.covs - ab * data.covs @ Sig_inv @ data.covs
    return resp, means, 0.5 * (C + C.transpose(-1, -2))


def cole_hopf_value(
    data: GaussianMixture,
    reward: Callable[[torch.Tensor], torch.Tensor],
    beta: float,
    tau: float,
    y: torch.Tensor,
    *,
    beta_min: float = 0.1,
    beta_max: float = 20.0,
    n_gh: int = 40,
) -> torch.Tensor:
    """Continuous-time optimal value ``V_tau(y) = beta log E[exp(r(X_0)/beta) | X_{1-tau} = y]``
    for mixture data (exact pre-trained reverse SDE), shape (B,); tau in [0, 1).

    The inner expectation per component by an ``n_gh``-point (per axis) Gauss-Hermite rule,
    combined in log space (stable for small beta)."""
    _check_vp(beta_min, beta_max)
    if not 0 <= tau < 1:
        raise ValueError(f"tau must lie in [0, 1), got {tau}")
    beta = float(beta)
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    from .grid import gauss_hermite

    data = data.to(dtype=torch.float64)
    y = check_data(y, "y", shape=(None, data.dim), dtype=torch.float64)
    d = data.dim
    ab = vp_alpha_bar(1.0 - tau, beta_min, beta_max)
    resp, means, C = posterior_mixture(data, ab, y)
    L = torch.linalg.cholesky(C)
    nodes, w = gauss_hermite(n_gh, d, torch.float64)
    B, K = resp.shape
    pts = (
        means[:, :, None, :] + torch.einsum("kij,nj->kni", L, nodes)[None]
    )  # (B, K, n, d)
    r = call_reward(reward, pts.reshape(-1, d)).reshape(B, K, -1) / beta
    log_inner = torch.logsumexp(r + torch.log(w), dim=-1)  # (B, K)
    return beta * torch.logsumexp(log_inner + torch.log(resp.clamp_min(1e-300)), dim=-1)
