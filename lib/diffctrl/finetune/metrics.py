"""Scores of a fine-tuned chain against the truth (``book/notation.md``, *The controlled chain*).

- mean reward ``E r(Y_T)`` and path KL to the pre-trained chain
  ``E sum_t |u_t(Y_t)|^2 / (2 sigma_t^2)``, each with its standard error over paths;
- ``W2(fine-tuned, p*)`` by exact optimal transport (POT) against an equal-size exact sample of
  p*, beside the noise floor ``W2`` between two independent exact samples of p* of that size;
- the control error ``1/2 E sum_t |u_t - u*_t|^2 / sigma_t^2`` under the reference chain
  (``u*``: grid PI-FT of part 1, :func:`.optimum.grid_optimum`, or the exact LQ control),
  which is the path KL from the reference chain to the fine-tuned one.
"""

from __future__ import annotations

import math

import torch

from ..diffusion.metrics import ot_distance
from .trajectories import chain_arrays, rollout

__all__ = ["control_error", "evaluate", "mean_se"]


def mean_se(x: torch.Tensor) -> tuple[float, float]:
    """Mean of the per-path values ``x`` (n,) and its standard error
    ``std(x, unbiased) / sqrt(n)``, as floats (float64, on ``x``'s device)."""
    x = x.double()
    return float(x.mean()), float(x.std(unbiased=True)) / math.sqrt(x.numel())


def _zero(t, y):
    return torch.zeros_like(y)


def evaluate(
    chain,
    control,
    reward,
    n: int,
    *,
    target=None,
    seed: int = 0,
    device="cpu",
    dtype=torch.float32,
    floor: bool = True,
) -> dict:
    """Reward, KL (each with ``_se``), and, with an exact ``target`` (``sample(n, generator)``),
    ``w2`` to p* and ``w2_floor``. ``control=None`` is the pre-trained chain."""
    gen = torch.Generator().manual_seed(int(seed))
    ctrl = _zero if control is None else control
    with torch.no_grad():
        roll = rollout(chain, ctrl, reward, n, gen, device=device, dtype=dtype)
    out = {}
    out["reward"], out["reward_se"] = mean_se(roll.r)
    out["kl"], out["kl_se"] = mean_se(roll.kl.sum(0))
    if target is not None:
        y = roll.y[-1].reshape(n, -1).double().cpu()
        out["w2"] = ot_distance(y, target.sample(n, gen).reshape(n, -1).cpu())
        if floor:
            out["w2_floor"] = ot_distance(
                target.sample(n, gen).reshape(n, -1).cpu(),
                target.sample(n, gen).reshape(n, -1).cpu(),
            )
    return out


def control_error(
    chain,
    control,
    reference,
    n: int,
    *,
    seed: int = 0,
    device="cpu",
    dtype=torch.float32,
) -> tuple[float, float]:
    """``1/2 E sum_t |u_t(Y_t) - u*_t(Y_t)|^2 / sigma_t^2`` with Y driven by the reference
    control ``u*``; returns (value, standard error)."""
    sigma, _ = chain_arrays(chain)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        roll = rollout(
            chain,
            reference,
            lambda y: torch.zeros(y.shape[0], dtype=y.dtype, device=y.device),
            n,
            gen,
            device=device,
            dtype=dtype,
        )
        err = torch.zeros(n, dtype=torch.float64, device=roll.y.device)
        for t in range(chain.T):
            d = control(t, roll.y[t]) - roll.u[t]
            err += (d**2).reshape(n, -1).sum(1).double() / (2 * float(sigma[t]) ** 2)
    return mean_se(err)
