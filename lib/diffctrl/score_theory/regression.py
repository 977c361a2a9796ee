"""Denoising score matching as regression with noisy labels (Han, Razaviyayn & Xu 2024;
chapter ``book/score_estimation.md``).

Forward process (the VP-SDE of :mod:`diffctrl.diffusion.schedules`, read in continuous time)::

    X_t = a_t X_0 + s_t Z,   a_t = sqrt(alpha_bar(t)),   s_t^2 = 1 - alpha_bar(t),   Z ~ N(0, I).

Tweedie's formula gives ``grad log p_t(x) = (a_t E[X_0 | X_t = x] - x) / s_t^2``, so the score is
an affine function of the *denoiser* ``f*(x, t) = E[X_0 | X_t = x]``. Parametrising
``s_f(x, t) = (a_t f(x, t) - x) / s_t^2`` and weighting the denoising score-matching (DSM) loss
with ``lambda(t) = s_t^4 / a_t^2`` turns DSM into plain least squares with input ``(X_t, t)``,
label ``X_0`` and regression function ``f*``::

    lambda(t) || s_f(X_t, t) - grad log p_{t|0}(X_t | X_0) ||^2 = || f(X_t, t) - X_0 ||^2,

pointwise, and ``E||f - X_0||^2 = E||f - f*||^2 + E tr Cov(X_0 | X_t)`` (the label noise
``X_0 - f*(X_t, t)`` has conditional mean zero). Times are drawn uniformly on ``[t0, T]``.

Shapes: ``x``, ``x0``, ``f`` are ``(n, d)``; ``t`` is ``(n,)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..diffusion.exact import GaussianMixture
from ..diffusion.exact import posterior_moments as _exact_posterior_moments
from ..diffusion.schedules import vp_log_alpha_bar

__all__ = [
    "denoiser_from_score",
    "DenoisingSample",
    "dsm_loss",
    "dsm_weight",
    "posterior_mean",
    "posterior_moments",
    "regression_loss",
    "sample_denoising",
    "score_from_denoiser",
    "vp_coefficients",
]

BETA_MIN, BETA_MAX = 0.1, 20.0


def _check_t(t: torch.Tensor) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim != 1:
        raise ValueError(f"t must have shape (n,), got {tuple(t.shape)}")
    if torch.any(t <= 0):
        raise ValueError(
            "t must be > 0 (at t = 0 there is no noise and no score to learn)"
        )
    return t


def vp_coefficients(
    t: torch.Tensor, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a_t, s_t^2)`` of the linear VP-SDE at times ``t`` (n,): ``a_t^2 = alpha_bar(t)``,
    ``s_t^2 = 1 - alpha_bar(t)`` (computed with ``expm1`` for small t)."""
    log_ab = vp_log_alpha_bar(_check_t(t), beta_min, beta_max)
    return torch.exp(0.5 * log_ab), -torch.expm1(log_ab)


class DenoisingSample(NamedTuple):
    """``n`` draws of ``(X_0, t, X_t, Z)`` with ``X_t = a_t X_0 + s_t Z``."""

    x0: torch.Tensor  # (n, d) labels
    t: torch.Tensor  # (n,)
    xt: torch.Tensor  # (n, d) inputs
    noise: torch.Tensor  # (n, d)


def sample_denoising(
    data: GaussianMixture,
    n: int,
    t0: float,
    T: float,
    generator: torch.Generator | None = None,
    device="cpu",
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> DenoisingSample:
    """Draw ``X_0 ~ data``, ``t ~ U[t0, T]``, ``Z ~ N(0, I)`` and ``X_t = a_t X_0 + s_t Z``.

    ``generator`` is a CPU generator: all draws are made on the CPU (float64) and then moved to
    ``device``, so a seed gives the same sample on every device.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if not 0 < t0 <= T:
        raise ValueError(
            f"need 0 < t0 <= T (t0 = T fixes the time), got t0={t0}, T={T}"
        )
    cpu = data.to(dtype=torch.float64, device="cpu")
    x0 = cpu.sample(n, generator=generator)
    t = t0 + (T - t0) * torch.rand(n, generator=generator, dtype=torch.float64)
    z = torch.randn(n, data.dim, generator=generator, dtype=torch.float64)
    a, s2 = vp_coefficients(t, beta_min, beta_max)
    xt = a[:, None] * x0 + s2.sqrt()[:, None] * z
    dev = torch.device(device)
    return DenoisingSample(x0.to(dev), t.to(dev), xt.to(dev), z.to(dev))


def posterior_moments(
    data: GaussianMixture,
    t: torch.Tensor,
    x: torch.Tensor,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact ``E[X_0 | X_t = x]`` (n, d) and ``tr Cov(X_0 | X_t = x)`` (n,), one time per row.

    ``X_0 | X_t = x`` is the Gaussian mixture with responsibilities
    ``r_j ∝ w_j N(x; a m_j, Sigma_j)``, ``Sigma_j = a^2 S_j + s^2 I``, component means
    ``mu_j = m_j + a S_j Sigma_j^{-1} (x - a m_j)`` and covariances
    ``C_j = S_j - a^2 S_j Sigma_j^{-1} S_j`` (Gaussian conditioning). For a fixed ``t`` this is
    :func:`diffctrl.diffusion.exact.posterior_moments` at ``alpha_bar = a_t^2``, which is
    what this calls (one implementation).
    """
    t = _check_t(t)
    if x.ndim != 2 or x.shape != (t.shape[0], data.dim):
        raise ValueError(
            f"x must have shape ({t.shape[0]}, {data.dim}), got {tuple(x.shape)}"
        )
    a, _ = vp_coefficients(
        t.to(device=x.device, dtype=torch.float64), beta_min, beta_max
    )
    return _exact_posterior_moments(data, a**2, x)


def posterior_mean(
    data: GaussianMixture,
    t: torch.Tensor,
    x: torch.Tensor,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> torch.Tensor:
    """The regression function ``f*(x, t) = E[X_0 | X_t = x]`` (n, d), one time per row
    (:func:`diffctrl.diffusion.exact.posterior_mean` at the levels ``alpha_bar(t)``)."""
    return posterior_moments(data, t, x, beta_min, beta_max)[0]


def score_from_denoiser(
    f: torch.Tensor,
    x: torch.Tensor,
    t: torch.Tensor,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> torch.Tensor:
    """Tweedie: ``s(x, t) = (a_t f(x, t) - x) / s_t^2`` (n, d); exact when ``f = f*``."""
    a, s2 = vp_coefficients(t, beta_min, beta_max)
    return (a[:, None].to(x) * f - x) / s2[:, None].to(x)


def denoiser_from_score(
    score: torch.Tensor,
    x: torch.Tensor,
    t: torch.Tensor,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> torch.Tensor:
    """Inverse of :func:`score_from_denoiser`: ``f = (x + s_t^2 score) / a_t``."""
    a, s2 = vp_coefficients(t, beta_min, beta_max)
    return (x + s2[:, None].to(x) * score) / a[:, None].to(x)


def dsm_weight(
    t: torch.Tensor, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX
) -> torch.Tensor:
    """``lambda(t) = s_t^4 / a_t^2`` (n,): the DSM weighting that makes DSM plain regression."""
    a, s2 = vp_coefficients(t, beta_min, beta_max)
    return s2**2 / a**2


def dsm_loss(
    score: torch.Tensor,
    sample: DenoisingSample,
    weight: torch.Tensor | None = None,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> torch.Tensor:
    """Denoising score matching ``mean_i lambda(t_i) || score_i - grad log p_{t|0}(x_t | x_0) ||^2``
    with ``grad log p_{t|0}(x_t | x_0) = -(x_t - a_t x_0) / s_t^2 = -Z / s_t`` (Vincent 2011).

    ``score`` (n, d) are the model's scores at ``(sample.xt, sample.t)``; ``weight`` (n,)
    defaults to :func:`dsm_weight`.
    """
    if score.shape != sample.xt.shape:
        raise ValueError(
            f"score must have shape {tuple(sample.xt.shape)}, got {tuple(score.shape)}"
        )
    _, s2 = vp_coefficients(sample.t, beta_min, beta_max)
    target = -(sample.noise / s2.sqrt()[:, None]).to(score)
    w = dsm_weight(sample.t, beta_min, beta_max) if weight is None else weight
    return (w.to(score) * ((score - target) ** 2).sum(-1)).mean()


def regression_loss(f: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``mean_i || f_i - labels_i ||^2``: with labels ``X_0`` the noisy-label loss, with labels
    ``f*(X_t, t)`` the excess risk (exact test error)."""
    if f.shape != labels.shape:
        raise ValueError(
            f"f and labels must have the same shape, got {tuple(f.shape)} and "
            f"{tuple(labels.shape)}"
        )
    return ((f - labels.to(f)) ** 2).sum(-1).mean()
