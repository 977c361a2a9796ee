"""Distances between laws and between samples.

Closed forms for Gaussians (KL, W2), sample-based distances (sliced Wasserstein, MMD, exact W1/W2
by optimal transport with POT, 1-D W1 from sorted samples), and moment errors.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "gaussian_kl",
    "gaussian_w2",
    "mmd2",
    "moment_errors",
    "ot_distance",
    "sliced_wasserstein",
    "w1_1d",
]


def _check_gaussian(m: torch.Tensor, S: torch.Tensor, name: str) -> None:
    if m.ndim != 1 or S.shape != (m.shape[0], m.shape[0]):
        raise ValueError(
            f"{name}: mean must be (d,) and cov (d, d); got {tuple(m.shape)}, {tuple(S.shape)}"
        )


def gaussian_kl(
    m1: torch.Tensor, S1: torch.Tensor, m2: torch.Tensor, S2: torch.Tensor
) -> float:
    """KL(N(m1,S1) || N(m2,S2)) = 1/2 [tr(S2^{-1}S1) + (m2-m1)^T S2^{-1} (m2-m1) - d + log det S2/det S1]."""
    m1, S1, m2, S2 = (torch.as_tensor(a, dtype=torch.float64) for a in (m1, S1, m2, S2))
    _check_gaussian(m1, S1, "first law")
    _check_gaussian(m2, S2, "second law")
    if m1.shape != m2.shape:
        raise ValueError(f"dimension mismatch: {m1.shape[0]} vs {m2.shape[0]}")
    d = m1.shape[0]
    L2 = torch.linalg.cholesky(S2)
    L1 = torch.linalg.cholesky(S1)
    A = torch.cholesky_solve(S1, L2)
    dm = (m2 - m1)[:, None]
    quad = float(dm.T @ torch.cholesky_solve(dm, L2))
    logdet = 2 * (
        torch.log(torch.diagonal(L2)).sum() - torch.log(torch.diagonal(L1)).sum()
    )
    return 0.5 * (float(torch.trace(A)) + quad - d + float(logdet))


def _sqrtm_psd(S: torch.Tensor) -> torch.Tensor:
    w, V = torch.linalg.eigh(S)
    return (V * w.clamp_min(0).sqrt()) @ V.T


def gaussian_w2(m1, S1, m2, S2) -> float:
    """W2(N(m1,S1), N(m2,S2))^2 = |m1-m2|^2 + tr(S1 + S2 - 2 (S2^{1/2} S1 S2^{1/2})^{1/2})."""
    m1, S1, m2, S2 = (torch.as_tensor(a, dtype=torch.float64) for a in (m1, S1, m2, S2))
    _check_gaussian(m1, S1, "first law")
    _check_gaussian(m2, S2, "second law")
    r2 = _sqrtm_psd(S2)
    cross = _sqrtm_psd(r2 @ S1 @ r2)
    val = float(((m1 - m2) ** 2).sum() + torch.trace(S1 + S2 - 2 * cross))
    return math.sqrt(max(val, 0.0))


def moment_errors(
    x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor
) -> tuple[float, float]:
    """(max |mean_hat - mean|, max |cov_hat - cov|) of samples x (n, d)."""
    if x.ndim != 2 or x.shape[1] != mean.shape[0]:
        raise ValueError(f"x must be (n, {mean.shape[0]}), got {tuple(x.shape)}")
    x = x.double()
    return (
        float((x.mean(0) - mean.double()).abs().max()),
        float((torch.cov(x.T).reshape(cov.shape) - cov.double()).abs().max()),
    )


def _pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"samples must be (n, d) and (m, d) with equal d; got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    return x.double(), y.double()


def w1_1d(x, y) -> float:
    """W1 between two 1-D samples of equal size from the sorted samples: mean |x_(i) - y_(i)|."""
    x, y = _pair(x, y)
    if x.shape[1] != 1 or x.shape[0] != y.shape[0]:
        raise ValueError("w1_1d needs two 1-D samples of the same size")
    return float((x[:, 0].sort().values - y[:, 0].sort().values).abs().mean())


def sliced_wasserstein(
    x, y, n_projections: int = 256, p: int = 2, generator: torch.Generator | None = None
) -> float:
    """Sliced W_p: (E_theta W_p^p(theta^T x, theta^T y))^{1/p}, theta uniform on the sphere.

    Equal sample sizes; projections drawn from ``generator``.
    """
    x, y = _pair(x, y)
    if x.shape[0] != y.shape[0]:
        raise ValueError("sliced_wasserstein needs samples of equal size")
    theta = torch.randn(
        x.shape[1], n_projections, generator=generator, dtype=torch.float64
    )
    theta = theta / theta.norm(dim=0, keepdim=True)
    px = (x @ theta.to(x.device)).sort(0).values
    py = (y @ theta.to(y.device)).sort(0).values
    return float(((px - py).abs() ** p).mean() ** (1 / p))


def ot_distance(x, y, p: int = 2) -> float:
    """Exact W_p between two empirical measures (uniform weights) by linear programming (POT)."""
    import ot

    x, y = _pair(x, y)
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p}")
    xn, yn = x.cpu().numpy(), y.cpu().numpy()
    M = ot.dist(xn, yn, metric="sqeuclidean" if p == 2 else "euclidean")
    a = np.full(len(xn), 1 / len(xn))
    b = np.full(len(yn), 1 / len(yn))
    val = float(ot.emd2(a, b, M, numItermax=1_000_000))
    return math.sqrt(max(val, 0.0)) if p == 2 else val


def mmd2(x, y, bandwidth: float | None = None) -> float:
    """Unbiased MMD^2 with the Gaussian kernel exp(-|a-b|^2 / (2 h^2)); h = median distance."""
    x, y = _pair(x, y)
    xy = torch.cat([x, y])
    D = torch.cdist(xy, xy) ** 2
    if bandwidth is None:
        bandwidth = float(D[D > 0].median().sqrt()) if torch.any(D > 0) else 1.0
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    Kxy = torch.exp(-D / (2 * bandwidth**2))
    n, m = len(x), len(y)
    Kxx, Kyy, Kx_y = Kxy[:n, :n], Kxy[n:, n:], Kxy[:n, n:]
    return float(
        (Kxx.sum() - Kxx.diagonal().sum()) / (n * (n - 1))
        + (Kyy.sum() - Kyy.diagonal().sum()) / (m * (m - 1))
        - 2 * Kx_y.mean()
    )
