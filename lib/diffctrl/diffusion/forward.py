"""The forward (noising) process of a DDPM schedule."""

from __future__ import annotations

import torch

from .schedules import Schedule

__all__ = ["q_sample", "q_step"]


def _levels(k, batch: int, N: int, device) -> torch.Tensor:
    k = torch.as_tensor(k, device=device)
    if k.ndim == 0:
        k = k.expand(batch)
    if k.shape != (batch,):
        raise ValueError(
            f"k must be an int or a tensor of shape ({batch},), got {tuple(k.shape)}"
        )
    if torch.any((k < 0) | (k > N)):
        raise ValueError(f"levels k must lie in 0..{N}")
    return k.long()


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (x.ndim - 1))).to(x)


def q_sample(
    sched: Schedule,
    x0: torch.Tensor,
    k,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample x_k | x_0 = sqrt(alpha_bar_k) x_0 + sqrt(1 - alpha_bar_k) eps; return (x_k, eps).

    ``x0``: (B, *event); ``k``: int or (B,) levels in 0..N.
    """
    k = _levels(k, x0.shape[0], sched.N, x0.device)
    if noise is None:
        noise = torch.randn(
            x0.shape, generator=generator, dtype=x0.dtype, device=x0.device
        )
    elif noise.shape != x0.shape:
        raise ValueError(
            f"noise shape {tuple(noise.shape)} != x0 shape {tuple(x0.shape)}"
        )
    ab = _bcast(sched.alpha_bar.to(x0.device)[k], x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise, noise


def q_step(
    sched: Schedule,
    x_prev: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One forward step x_k | x_{k-1} = sqrt(alpha_k) x_{k-1} + sqrt(beta_k) eps, k in 1..N."""
    if not 1 <= int(k) <= sched.N:
        raise ValueError(f"k must lie in 1..{sched.N}, got {k}")
    beta = float(sched.betas[int(k)])
    eps = torch.randn(
        x_prev.shape, generator=generator, dtype=x_prev.dtype, device=x_prev.device
    )
    return (1 - beta) ** 0.5 * x_prev + beta**0.5 * eps
