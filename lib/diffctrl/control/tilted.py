"""The tilted target ``p* ∝ p0 exp(r / beta)`` in closed form, for a quadratic reward.

``book/notation.md``, *The tilted target and the Bellman recursion* (Han, Razaviyayn, Xu 2025,
Sec. 2): the law KL-regularised fine-tuning aims at. For a quadratic (or linear) reward
``r(y) = -1/2 y^T Q y + h^T y + const`` (:class:`~.rewards.QuadraticReward`, ``h = Q a + g``)
a Gaussian ``p0`` stays Gaussian (:func:`tilted_gaussian`) and a Gaussian mixture stays a
Gaussian mixture (:func:`tilted_mixture`); :func:`law_gap` measures a Gaussian law against it.
Any other reward: :class:`diffctrl.finetune.targets.GridTarget` (quadrature in 1-D / 2-D).
"""

from __future__ import annotations

import math

import torch

from ..checks import check_data
from ..diffusion.exact import GaussianMixture
from ..diffusion.metrics import gaussian_kl
from .moments import _sym
from .rewards import QuadraticReward, check_psd

__all__ = ["law_gap", "tilted_gaussian", "tilted_mixture"]


def tilted_gaussian(
    mu0, S0, reward: QuadraticReward, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``p* ∝ N(mu0, S0) exp(r / beta)`` for a quadratic reward, the Gaussian ``N(mu*, S*)``:
    ``S* = (S0^{-1} + Q/beta)^{-1}``, ``mu* = S* (S0^{-1} mu0 + (Q a + g)/beta)``, written as
    ``S* = (I + S0 Q/beta)^{-1} S0`` so a singular S0 is allowed. mu0 (d,), S0 (d, d) or a
    scalar (times I); returns ``(mu* (d,), S* (d, d))``."""
    beta = float(beta)
    if not beta > 0 or not math.isfinite(beta):
        raise ValueError(f"beta must be finite and > 0, got {beta}")
    S0 = torch.as_tensor(S0, dtype=reward.Q.dtype, device=reward.Q.device)
    mu0 = (
        check_data(mu0, "mu0", ndim=(1, 2), dtype=reward.Q.dtype)
        .to(reward.Q.device)
        .reshape(-1)
    )
    d = mu0.shape[0]
    if S0.ndim == 0:
        S0 = S0 * torch.eye(d, dtype=S0.dtype, device=S0.device)
    if S0.shape != (d, d) or reward.dim != d:
        raise ValueError(
            f"shapes: mu0 ({d},), S0 {tuple(S0.shape)}, reward dim {reward.dim}"
        )
    check_psd(S0, "S0")
    eye = torch.eye(d, dtype=S0.dtype, device=S0.device)
    Qm, h, _ = reward.quadratic_form()
    Minv = torch.linalg.inv(eye + S0 @ Qm / beta)
    return Minv @ (mu0 + S0 @ h / beta), _sym(Minv @ S0)


def tilted_mixture(
    data: GaussianMixture, reward: QuadraticReward, beta: float
) -> GaussianMixture:
    """``p* ∝ p0 exp(r / beta)`` for a Gaussian mixture p0 and a quadratic (or linear) reward: a
    Gaussian mixture again; component j becomes ``N(m_j*, S_j*)`` with weight
    ``∝ w_j |I + S_j Q/beta|^{-1/2} exp(1/2 eta_j^T m_j* - 1/2 m_j^T S_j^{-1} m_j)``,
    ``eta_j = S_j^{-1} m_j + h/beta``, ``h = Q a + g``."""
    beta = float(beta)
    if not beta > 0 or not math.isfinite(beta):
        raise ValueError(f"beta must be finite and > 0, got {beta}")
    if reward.dim != data.dim:
        raise ValueError(
            f"reward has dimension {reward.dim}, data has dimension {data.dim}"
        )
    reward = reward.to(dtype=data.means.dtype, device=data.means.device)
    Qm, h, _ = reward.quadratic_form()
    Qb, hb = Qm / beta, h / beta
    Lam = torch.linalg.inv(data.covs)  # (K, d, d)
    Lam_star = Lam + Qb
    S_star = _sym(torch.linalg.inv(Lam_star))
    eta = torch.einsum("kij,kj->ki", Lam, data.means) + hb
    m_star = torch.einsum("kij,kj->ki", S_star, eta)
    eye = torch.eye(data.dim, dtype=Qm.dtype, device=Qm.device)
    logdet = torch.linalg.slogdet(eye + data.covs @ Qb)[1]
    logz = (
        -0.5 * logdet
        + 0.5 * (eta * m_star).sum(-1)
        - 0.5 * torch.einsum("ki,kij,kj->k", data.means, Lam, data.means)
    )
    w = torch.softmax(torch.log(data.weights) + logz, 0)
    return GaussianMixture(w, m_star, S_star)


def law_gap(mean, cov, mean_ref, cov_ref) -> dict[str, float]:
    """Distances between two Gaussian laws: max |mean diff|, max |cov diff| and KL(law || ref)."""
    mean, mean_ref = (
        check_data(mean, "mean", ndim=1),
        check_data(mean_ref, "mean_ref", ndim=1),
    )
    d = mean.shape[0]
    cov = check_data(cov, "cov", shape=(d, d))
    cov_ref = check_data(cov_ref, "cov_ref", shape=(d, d))
    if mean_ref.shape != (d,):
        raise ValueError(
            f"mean_ref must have shape ({d},) like mean, got {tuple(mean_ref.shape)}"
        )
    return {
        "mean": float((mean - mean_ref).abs().max()),
        "cov": float((cov - cov_ref).abs().max()),
        "kl": gaussian_kl(mean, cov, mean_ref, cov_ref),
    }
