"""Noise schedules: DDPM linear and cosine, and the VP-SDE read at N levels.

Arrays have length ``N + 1`` and are indexed by the noise level ``k = 0..N`` (level 0 = data,
``betas[0] = 0``, ``alpha_bar[0] = 1``), matching beta_k, alpha_k = 1 - beta_k and
alpha_bar_k = prod_{j<=k} alpha_j of Ho et al. (2020). ``sched.alpha_bar[1:]`` equals diffusers'
``DDPMScheduler.alphas_cumprod``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch

__all__ = [
    "SCHEDULES",
    "Schedule",
    "cosine_schedule",
    "linear_schedule",
    "make_schedule",
    "vp_beta",
    "vp_log_alpha_bar",
    "vp_sde_schedule",
]


@dataclass(frozen=True)
class Schedule:
    """A discrete noise schedule with ``N`` levels (all tensors of shape ``(N + 1,)``, float64).

    ``times`` are the continuous times t_k in [0, 1] the levels correspond to (``k / N`` unless
    the schedule comes from a VP-SDE); ``b`` is the integrated VP-SDE rate per step,
    ``b_k = -log(alpha_bar_k / alpha_bar_{k-1}) = -log(alpha_k)`` (the Euler-Maruyama increment).
    """

    name: str
    betas: torch.Tensor
    times: torch.Tensor

    def __post_init__(self):
        b = self.betas
        if b.ndim != 1 or b.numel() < 2:
            raise ValueError("betas must be 1-D with N + 1 >= 2 entries (betas[0] = 0)")
        if b[0] != 0:
            raise ValueError("betas[0] must be 0 (level 0 is the data)")
        if not torch.all((b[1:] > 0) & (b[1:] < 1)):
            raise ValueError("betas[1:] must lie in (0, 1)")
        if self.times.shape != b.shape:
            raise ValueError("times must have the same shape as betas")

    @property
    def N(self) -> int:
        return self.betas.numel() - 1

    @cached_property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @cached_property
    def alpha_bar(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, 0)

    @cached_property
    def b(self) -> torch.Tensor:
        return -torch.log(self.alphas)

    @cached_property
    def posterior_variance(self) -> torch.Tensor:
        """tilde beta_k = (1 - alpha_bar_{k-1}) / (1 - alpha_bar_k) beta_k (0 at k = 0 and 1)."""
        ab = self.alpha_bar
        out = torch.zeros_like(ab)
        out[1:] = (1 - ab[:-1]) / (1 - ab[1:]) * self.betas[1:]
        return out

    def to(self, dtype: torch.dtype) -> Schedule:
        return Schedule(self.name, self.betas.to(dtype), self.times.to(dtype))


def _check_N(N: int) -> int:
    if not isinstance(N, int) or isinstance(N, bool) or N < 1:
        raise ValueError(f"N (number of noise levels) must be an int >= 1, got {N!r}")
    return N


def linear_schedule(
    N: int = 1000,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    scale_with_N: bool = False,
) -> Schedule:
    """DDPM linear schedule, beta_k = linspace(beta_start, beta_end, N)[k-1] (Ho et al. 2020).

    ``scale_with_N=True`` multiplies both ends by ``1000 / N`` so the total noise
    sum_k beta_k stays that of the 1000-step schedule (the chain stays memoryless as N changes).
    Computed in float32 first, like diffusers, then stored as float64.
    """
    _check_N(N)
    if not 0 < beta_start <= beta_end:
        raise ValueError(
            f"need 0 < beta_start <= beta_end, got {beta_start}, {beta_end}"
        )
    if scale_with_N:
        beta_start, beta_end = beta_start * 1000 / N, beta_end * 1000 / N
    if beta_end >= 1:
        raise ValueError(
            f"beta_end must be < 1, got {beta_end}"
            + (
                " (scale_with_N multiplies by 1000 / N: use a larger N)"
                if scale_with_N
                else ""
            )
        )
    betas = torch.linspace(beta_start, beta_end, N, dtype=torch.float32).double()
    return Schedule(
        "linear",
        torch.cat([torch.zeros(1, dtype=torch.float64), betas]),
        torch.arange(N + 1, dtype=torch.float64) / N,
    )


def cosine_schedule(
    N: int = 1000, s: float = 0.008, max_beta: float = 0.999
) -> Schedule:
    """Cosine schedule (Nichol & Dhariwal 2021): alpha_bar(t) = cos^2(((t + s)/(1 + s)) pi/2),
    beta_k = min(1 - alpha_bar(k/N) / alpha_bar((k-1)/N), max_beta) — diffusers' squaredcos_cap_v2."""
    _check_N(N)
    if s < 0 or not 0 < max_beta < 1:
        raise ValueError(
            f"need s >= 0 and 0 < max_beta < 1, got s={s}, max_beta={max_beta}"
        )

    def f(t):
        return math.cos((t + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - f((i + 1) / N) / f(i / N), max_beta) for i in range(N)]
    betas = torch.tensor(betas, dtype=torch.float32).double()
    return Schedule(
        "cosine",
        torch.cat([torch.zeros(1, dtype=torch.float64), betas]),
        torch.arange(N + 1, dtype=torch.float64) / N,
    )


def vp_beta(t: torch.Tensor | float, beta_min: float = 0.1, beta_max: float = 20.0):
    """VP-SDE rate beta(t) = beta_min + t (beta_max - beta_min), t in [0, 1] (Song et al. 2021)."""
    return beta_min + t * (beta_max - beta_min)


def vp_log_alpha_bar(t: torch.Tensor, beta_min: float = 0.1, beta_max: float = 20.0):
    """log alpha_bar(t) = -int_0^t beta(s) ds for the linear VP-SDE."""
    return -(beta_min * t + 0.5 * (beta_max - beta_min) * t**2)


def vp_sde_schedule(
    N: int = 1000, beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0
) -> Schedule:
    """The VP-SDE dX = -beta(t) X / 2 dt + sqrt(beta(t)) dW read at t_k = k T / N.

    alpha_bar_k = exp(-int_0^{t_k} beta) exactly, so the discrete chain with these betas has the
    same marginals x_k | x_0 as the SDE at time t_k, for any N.
    """
    _check_N(N)
    if not 0 < beta_min <= beta_max or T <= 0:
        raise ValueError(
            f"need 0 < beta_min <= beta_max and T > 0, got {beta_min}, {beta_max}, {T}"
        )
    times = torch.arange(N + 1, dtype=torch.float64) * (T / N)
    log_ab = vp_log_alpha_bar(times, beta_min, beta_max)
    betas = torch.zeros(N + 1, dtype=torch.float64)
    betas[1:] = -torch.expm1(log_ab[1:] - log_ab[:-1])
    return Schedule("vp-sde", betas, times)


#: the schedules :func:`make_schedule` builds by name
SCHEDULES = {
    "linear": linear_schedule,
    "cosine": cosine_schedule,
    "vp-sde": vp_sde_schedule,
}


def make_schedule(name: str, N: int, **kwargs) -> Schedule:
    """Build a schedule by name: ``"linear"``, ``"cosine"`` or ``"vp-sde"``."""
    if name not in SCHEDULES:
        raise ValueError(
            f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}"
        )
    return SCHEDULES[name](N, **kwargs)
