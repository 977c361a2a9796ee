"""Trajectories of the controlled chain that every fine-tuning method samples.

The controlled chain (``book/notation.md``, *The controlled chain*; Han, Razaviyayn, Xu 2025,
Sec. 2): reverse steps ``t = 0..T-1``, ``Y_0 ~ N(0, I)``,
``Y_{t+1} = m_t(Y_t) + u(t, Y_t) + sigma_t W_t``; the per-step KL to the pre-trained chain is
``KL_t = |u(t, Y_t)|^2 / (2 sigma_t^2)``. :func:`rollout` draws a batch of such paths without
gradients, vectorised over samples, and returns them as :class:`Trajectories`. With
``shard = (rank, world)`` every process draws the same global noise and keeps its rows, so that
the batch over all processes is the one a single process would draw (:mod:`.large.ddp`).

A chain is anything with ``T``, ``sigma`` (T,), ``beta`` (T,), ``mean(t, y)`` and ``dim`` or
``event_shape``: :class:`diffctrl.control.chain.ControlledChain` with ``variance="large"``, the
image chain :func:`diffctrl.digits.images.model_chain`, or
:class:`diffctrl.finetune.large.lora.DiffusersChain`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..checks import call_reward

__all__ = ["Trajectories", "chain_arrays", "event_shape", "rollout", "sqnorm"]


def chain_arrays(chain) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sigma (T,), beta (T,))`` of a chain, float64 on the CPU, checked: ``sigma_t > 0``,
    ``beta_t > 0`` and finite."""
    sigma = torch.as_tensor(chain.sigma, dtype=torch.float64).cpu()
    beta = torch.as_tensor(chain.beta, dtype=torch.float64).cpu()
    if sigma.shape != (chain.T,) or beta.shape != (chain.T,):
        raise ValueError("chain.sigma and chain.beta must have shape (T,)")
    if torch.any(beta <= 0) or not torch.all(torch.isfinite(beta)):
        raise ValueError("beta (KL weight) must be finite and > 0 at every step")
    if torch.any(sigma <= 0):
        raise ValueError("every step needs sigma_t > 0 (use the 'large' DDPM variance)")
    return sigma, beta


def event_shape(chain) -> tuple[int, ...]:
    """The shape of one state of ``chain``: its ``event_shape``, else ``(dim,)``."""
    return tuple(getattr(chain, "event_shape", None) or (chain.dim,))


def sqnorm(x: torch.Tensor) -> torch.Tensor:
    """``|x_i|^2`` of every sample of a batch ``x`` (B, ...), shape (B,)."""
    return (x**2).reshape(x.shape[0], -1).sum(1)


@dataclass
class Trajectories:
    """A batch of ``n`` sampled paths of the controlled chain: states ``y`` (T+1, n, *shape),
    pre-trained means ``m = m_t(Y_t)`` (T, n, *shape), controls ``u`` (T, n, *shape), per-step
    KL ``kl`` (T, n) and terminal rewards ``r = r(Y_T)`` (n,)."""

    y: torch.Tensor
    m: torch.Tensor
    u: torch.Tensor
    kl: torch.Tensor
    r: torch.Tensor


def rollout(
    chain,
    control: Callable,
    reward: Callable,
    n: int,
    generator: torch.Generator,
    *,
    device="cpu",
    dtype=torch.float32,
    shard: tuple[int, int] = (0, 1),
) -> Trajectories:
    """``n`` (global) paths of ``chain`` under ``control(t, y)`` without gradients (module
    docstring); with ``shard = (rank, world)`` every rank draws the same global noise and keeps
    rows ``rank * n / world ...``. The reward is checked by
    :func:`diffctrl.checks.call_reward` (a tensor of shape (n,), finite)."""
    rank, world = shard
    if n % world:
        raise ValueError(
            f"n_traj={n} must be divisible by the number of processes {world}"
        )
    shape = event_shape(chain)
    sigma, _ = chain_arrays(chain)
    loc = slice(rank * (n // world), (rank + 1) * (n // world))
    gdev = generator.device
    y = torch.randn((n, *shape), generator=generator, dtype=dtype, device=gdev)[loc].to(
        device
    )
    ys, ms, us, kls = [y], [], [], []
    with torch.no_grad():
        for t in range(chain.T):
            m = chain.mean(t, y).to(dtype)
            u = control(t, y)
            if u.shape != y.shape:
                raise ValueError(
                    f"control(t, y) must return shape {tuple(y.shape)}, got {tuple(u.shape)}"
                )
            z = torch.randn((n, *shape), generator=generator, dtype=dtype, device=gdev)[
                loc
            ].to(device)
            y = m + u + float(sigma[t]) * z
            ms.append(m)
            us.append(u)
            kls.append(sqnorm(u) / (2 * float(sigma[t]) ** 2))
            ys.append(y)
        r = call_reward(reward, y).to(dtype)
    return Trajectories(
        torch.stack(ys), torch.stack(ms), torch.stack(us), torch.stack(kls), r
    )
