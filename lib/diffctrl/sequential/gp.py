"""Gaussian processes on a grid: RBF, Matérn-3/2 and fractional Brownian motion covariances.

Grid t_k = k / L, k = 1..L (t = 0 excluded: fBm starts at 0). Kernels (Rasmussen & Williams
2006, eqs. 4.9 and 4.17; Mandelbrot & Van Ness 1968):

- RBF:        k(s, t) = exp(-(s - t)^2 / (2 l^2))
- Matérn-3/2: k(s, t) = (1 + sqrt(3) r / l) exp(-sqrt(3) r / l), r = |s - t|
- fBm(H):     k(s, t) = (s^{2H} + t^{2H} - |s - t|^{2H}) / 2, H in (0, 1)

A ``nugget`` (white-noise variance added to the diagonal) keeps the near-singular RBF matrix
well conditioned; the exact conditionals are those of the matrix with the nugget.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .gaussian import F64

__all__ = [
    "KERNELS",
    "fbm_kernel",
    "gp_cov",
    "grid",
    "matern32_kernel",
    "rbf_kernel",
]

#: the kernel names :func:`gp_cov` accepts
KERNELS = ("rbf", "matern32", "fbm")


def grid(L: int) -> torch.Tensor:
    """t_k = k / L, k = 1..L, (L,) float64."""
    if isinstance(L, bool) or not isinstance(L, int) or L < 1:
        raise ValueError(f"L must be an int >= 1, got {L!r}")
    return torch.arange(1, L + 1, dtype=F64) / L


def _check_positive(name: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return float(value)


def rbf_kernel(
    s: torch.Tensor, t: torch.Tensor, lengthscale: float = 0.2
) -> torch.Tensor:
    """RBF kernel matrix (len(s), len(t)) (Rasmussen & Williams 2006, eq. 4.9)."""
    _check_positive("lengthscale", lengthscale)
    return torch.exp(-((s[:, None] - t[None, :]) ** 2) / (2 * lengthscale**2))


def matern32_kernel(
    s: torch.Tensor, t: torch.Tensor, lengthscale: float = 0.2
) -> torch.Tensor:
    """Matérn-3/2 kernel matrix (len(s), len(t)) (Rasmussen & Williams 2006, eq. 4.17)."""
    _check_positive("lengthscale", lengthscale)
    r = math.sqrt(3) * (s[:, None] - t[None, :]).abs() / lengthscale
    return (1 + r) * torch.exp(-r)


def fbm_kernel(s: torch.Tensor, t: torch.Tensor, hurst: float = 0.5) -> torch.Tensor:
    """Fractional Brownian motion covariance (len(s), len(t)) with Hurst index ``hurst``
    (Mandelbrot & Van Ness 1968)."""
    if not 0 < hurst < 1:
        raise ValueError(f"hurst (H) must lie in (0, 1), got {hurst}")
    h2 = 2 * hurst
    return 0.5 * (
        s[:, None].abs() ** h2
        + t[None, :].abs() ** h2
        - (s[:, None] - t[None, :]).abs() ** h2
    )


def gp_cov(
    kernel: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    L: int,
    nugget: float = 0.0,
    **params,
) -> torch.Tensor:
    """Covariance (L, L) of the GP on :func:`~diffctrl.sequential.gp.grid` plus ``nugget`` I.

    ``kernel`` is one of ``"rbf"``, ``"matern32"``, ``"fbm"`` (``params``: ``lengthscale`` or
    ``hurst``) or a callable ``k(s, t) -> (len(s), len(t))``. A matrix that is not symmetric
    positive definite raises ValueError naming ``kernel``.
    """
    if nugget < 0:
        raise ValueError(f"nugget must be >= 0, got {nugget}")
    t = grid(L)
    if isinstance(kernel, str):
        fns = {"rbf": rbf_kernel, "matern32": matern32_kernel, "fbm": fbm_kernel}
        if kernel not in fns:
            raise ValueError(
                f"unknown kernel {kernel!r}; choose one of {KERNELS} or pass a callable"
            )
        K = fns[kernel](t, t, **params)
    elif callable(kernel):
        K = torch.as_tensor(kernel(t, t), dtype=F64)
    else:
        raise TypeError(
            f"kernel must be a name or a callable, got {type(kernel).__name__}"
        )
    K = K + nugget * torch.eye(L, dtype=F64)
    if K.shape != (L, L) or not torch.allclose(K, K.T, atol=1e-12):
        raise ValueError(
            f"kernel {kernel!r} does not give a symmetric ({L}, {L}) matrix"
        )
    if torch.linalg.cholesky_ex(K).info != 0:
        raise ValueError(
            f"kernel {kernel!r} is not positive definite on the grid "
            f"(smallest eigenvalue {float(torch.linalg.eigvalsh(K)[0]):.3g})"
        )
    return K
