"""Data sets of the book: Gaussian mixtures (exact laws) and scikit-learn's bundled 8x8 digits."""

from __future__ import annotations

import torch

from .exact import GaussianMixture

__all__ = ["load_digits", "ring_mixture"]


def ring_mixture(
    K: int = 8,
    radius: float = 2.5,
    var: float = 0.05,
    dtype=torch.float64,
    device="cpu",
) -> GaussianMixture:
    """K equal-weight isotropic Gaussians with variance ``var`` on a circle of ``radius``."""
    if K < 1 or radius < 0 or var <= 0:
        raise ValueError(f"need K >= 1, radius >= 0, var > 0; got {K}, {radius}, {var}")
    ang = torch.arange(K, dtype=torch.float64) * (2 * torch.pi / K)
    means = radius * torch.stack([ang.cos(), ang.sin()], 1)
    return GaussianMixture.create(
        torch.full((K,), 1 / K),
        means,
        torch.full((K,), var),
        dtype=dtype,
        device=device,
    )


def load_digits(
    scale: bool = True, dtype=torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 digits (1797 images, no download): images (n, 1, 8, 8) in
    [-1, 1] (pixel / 8 - 1) and labels (n,)."""
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    x = torch.tensor(bunch.images, dtype=dtype)[:, None]
    if scale:
        x = x / 8.0 - 1.0
    return x, torch.tensor(bunch.target, dtype=torch.long)
