"""Checkpoint merging: one network whose parameters are the weighted average of the auxiliaries'.

``theta_bar = sum_i lambda_i theta_i`` (model soups / weight averaging), the comparison Liu et al.
(2025) discuss: to first order in the spread of the ``theta_i`` around a common point, the merged
network's output is ``sum_i lambda_i f_{theta_i}`` — the fused score — so the two agree when the
auxiliaries are close in parameter space (fine-tuned from one base) and differ otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from .barycenter import check_weights
from .scores import _check_auxiliaries

__all__ = ["merge_checkpoints"]


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
