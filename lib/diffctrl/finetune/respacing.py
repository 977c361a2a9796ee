"""The strided sub-chain that fine-tuning trains: ``n_steps`` transitions of an ``N``-level model.

The paper fine-tunes a 50-transition sub-chain of Stable Diffusion's 1000-level model (Han,
Razaviyayn, Xu 2025, Sec. 6); the digits experiment reads the book's digit U-Net the same way
(:func:`diffctrl.digits.unet.strided`). Levels ``k = 1..n`` sit at the model's timesteps
``offset + (k - 1) * (N // n)`` (diffusers' "leading" spacing), with ``alpha_bar_k`` read off the
model's schedule and ``beta_k = 1 - alpha_bar_k / alpha_bar_{k-1}``: the DDPM chain of the
respaced schedule (``book/notation.md``, *Noise levels, schedules and the forward process*).
"""

from __future__ import annotations

import torch

from ..diffusion.schedules import Schedule

__all__ = ["strided_schedule"]


def strided_schedule(
    alphas_cumprod: torch.Tensor, n_steps: int, offset: int = 1
) -> tuple[Schedule, torch.Tensor]:
    """The respaced schedule of ``alphas_cumprod`` (N,) (the model's ``alpha_bar_1..N``; module
    docstring): ``(Schedule with n_steps levels, the model's timestep index of each level
    (n_steps,))``."""
    ac = torch.as_tensor(alphas_cumprod, dtype=torch.float64).reshape(-1)
    n_train = ac.numel()
    if not isinstance(n_steps, int) or not 1 <= n_steps <= n_train:
        raise ValueError(f"n_steps must be an int in 1..{n_train}, got {n_steps!r}")
    ts = torch.arange(n_steps) * (n_train // n_steps) + offset
    if ts[-1] >= n_train or offset < 0:
        raise ValueError(f"offset={offset} puts the last timestep past {n_train - 1}")
    ab = torch.cat([torch.ones(1, dtype=torch.float64), ac[ts]])
    betas = torch.cat([torch.zeros(1, dtype=torch.float64), 1 - ab[1:] / ab[:-1]])
    times = torch.cat(
        [torch.zeros(1, dtype=torch.float64), (ts + 1).double() / n_train]
    )
    return Schedule("strided", betas, times), ts
