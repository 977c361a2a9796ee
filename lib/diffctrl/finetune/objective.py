"""One fine-tuning problem and method as an ``nn.Module``: ``forward(generator)`` returns the loss
of one iteration (:mod:`.losses`), so the same code runs in one process or under
``DistributedDataParallel`` (:mod:`.large.ddp`): every rank draws the same global batch of noise
and keeps its shard.

The problem is the KL-regularised objective of the controlled chain (``book/notation.md``,
*The controlled chain*; Han, Razaviyayn, Xu 2025, Sec. 2),
``J(theta) = E[r(Y_T)] - sum_t beta_t E[|u_theta(t, Y_t)|^2 / (2 sigma_t^2)]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .budget import Budget
from .losses import LOSSES, METHODS
from .targets import check_beta
from .trajectories import chain_arrays

__all__ = ["FinetuneObjective"]


class FinetuneObjective(nn.Module):
    """One iteration's loss of ``method`` (a name of :data:`.losses.LOSSES`);
    ``forward(generator) -> loss``.

    ``chain``: anything with ``T``, ``sigma`` (T,), ``beta`` (T,), ``mean(t, y)`` and ``dim`` or
    ``event_shape`` (:class:`diffctrl.control.chain.ControlledChain` with ``variance="large"``,
    or :class:`diffctrl.finetune.large.lora.DiffusersChain`); ``control``: an ``nn.Module``
    ``u(t, y)``; ``critic``: an ``nn.Module`` ``V(t, y) -> (B,)`` (the methods that train one,
    e.g. PI-FT). ``truncation``: DRaFT's ``K``. ``shard = (rank, world)``: this process's share
    of the ``n_traj`` trajectories. The budget is charged for the local shard.
    """

    def __init__(
        self,
        chain,
        reward: Callable,
        control: nn.Module,
        method: str = "pift_ac",
        *,
        critic: nn.Module | None = None,
        n_traj: int = 10,
        truncation: int | None = None,
        shard: tuple[int, int] = (0, 1),
        budget: Budget | None = None,
        device="cpu",
        dtype=torch.float32,
    ):
        super().__init__()
        if method not in LOSSES:
            raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
        if LOSSES[method].critic and critic is None:
            raise ValueError(
                f"method {method!r} needs a critic V_phi(t, y) (e.g. nets.ValueMLP)"
            )
        if not isinstance(n_traj, int) or n_traj < 2:
            raise ValueError(f"n_traj must be an int >= 2, got {n_traj!r}")
        if truncation is not None and not (
            isinstance(truncation, int) and 1 <= truncation <= chain.T
        ):
            raise ValueError(
                f"truncation K must be an int in 1..{chain.T} or None, got {truncation!r}"
            )
        for b in torch.as_tensor(chain.beta).reshape(-1).tolist():
            check_beta(b)
        self.sigma, self.beta = chain_arrays(chain)
        self.chain, self.reward, self.method = chain, reward, method
        self.control = control
        self.critic = critic
        self.n_traj, self.truncation, self.shard = n_traj, truncation, shard
        self.budget = budget if budget is not None else Budget()
        self.device, self.dtype = torch.device(device), dtype

    def forward(self, generator: torch.Generator) -> torch.Tensor:
        return LOSSES[self.method](self, generator)
