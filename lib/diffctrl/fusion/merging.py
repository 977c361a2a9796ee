"""Checkpoint merging: one network whose parameters are the weighted average of the auxiliaries'.

``theta_bar = sum_i lambda_i theta_i`` (model soups / weight averaging), the comparison Liu et al.
(2025) discuss: to first order in the spread of the ``theta_i`` around a common point, the merged
network's output is ``sum_i lambda_i f_{theta_i}`` — the fused score — so the two agree when the
auxiliaries are close in parameter space (fine-tuned from one base) and differ otherwise.

- :func:`merge_checkpoints` the merged network;
- :func:`fine_tune` a copy of a pre-trained base trained further by DSM on new data (all
  parameters, or the output layer alone: the network is then linear in what was fine-tuned,
  and merging such checkpoints gives the fused score exactly).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..diffusion.schedules import Schedule
from ..diffusion.training import train_dsm
from .barycenter import check_weights
from .scores import _check_auxiliaries

__all__ = ["fine_tune", "merge_checkpoints"]


def merge_checkpoints(
    models: Sequence[nn.Module], weights: Sequence[float] | torch.Tensor | None = None
) -> nn.Module:
    """A copy of ``models[0]`` with parameters ``sum_i w_i theta_i`` (default: uniform weights).

    The K models must share one architecture (same type and parameter shapes).
    """
    if _check_auxiliaries(models) != "network":
        raise TypeError("models must be nn.Module score networks")
    K = len(models)
    w = check_weights(torch.full((K,), 1.0 / K) if weights is None else weights, K)
    states = [m.state_dict() for m in models]
    merged = copy.deepcopy(models[0])
    avg = {}
    for name, ref in states[0].items():
        if torch.is_floating_point(ref):
            avg[name] = sum(
                float(wi) * s[name].to(torch.float64) for wi, s in zip(w, states)
            ).to(ref.dtype)
        else:
            avg[name] = ref.clone()
    merged.load_state_dict(avg)
    return merged.eval()


def _output_layer(model: nn.Module) -> nn.Module:
    last = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    if not last:
        raise ValueError("model has no Linear or Conv2d layer to fine-tune")
    return last[-1]


def fine_tune(
    base: nn.Module,
    sched: Schedule,
    data: torch.Tensor | Callable,
    steps: int,
    *,
    lr: float = 1e-3,
    seed: int = 0,
    batch_size: int = 256,
    output_layer_only: bool = False,
    device="cpu",
) -> nn.Module:
    """A copy of the pre-trained ``base`` trained ``steps`` further DSM steps on ``data``
    (:func:`~diffctrl.diffusion.training.train_dsm`); ``base`` itself is left unchanged. With
    ``output_layer_only`` every parameter but those of the last ``Linear``/``Conv2d`` layer is
    frozen: the output ``f_theta = W h(x, k) + b`` is then linear in the fine-tuned ``(W, b)``,
    so merged and fused scores of such checkpoints coincide (up to rounding)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    model = copy.deepcopy(base).train()
    if output_layer_only:
        keep = {id(p) for p in _output_layer(model).parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in keep)
    train_dsm(
        model,
        sched,
        data,
        steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        progress=False,
    )
    for p in model.parameters():
        p.requires_grad_(True)
    return model.eval()
