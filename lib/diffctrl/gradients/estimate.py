"""The result every gradient estimator returns (:class:`GradientEstimate`), and the helpers
the estimators share (book chapter ``book/gradient_estimators.md``).

An estimate of ``grad_theta E[C]`` from ``M`` paths holds the per-path estimates
``samples (M, n)`` (i.i.d.; their mean is the estimate) or, in the path-averaged mode, only
``mean (n,)``; and the per-path costs ``cost (M,)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .sde import ControlledSDE

__all__ = ["GradientEstimate"]


@dataclass
class GradientEstimate:
    """One gradient estimate from ``n_paths`` paths.

    ``samples (M, n)`` are i.i.d. per-path estimates (``None`` when ``per_path=False``),
    ``mean (n,)`` their average, ``cost (M,)`` the per-path costs ``C``.
    """

    method: str
    mean: torch.Tensor
    samples: torch.Tensor | None
    cost: torch.Tensor
    n_steps: int

    @property
    def n_paths(self) -> int:
        return self.cost.shape[0]

    @property
    def stderr(self) -> torch.Tensor:
        """Per-coordinate standard error ``std / sqrt(M)`` of ``mean``."""
        if self.samples is None:
            raise ValueError(
                "no per-path samples: call the estimator with per_path=True"
            )
        m = self.samples.shape[0]
        if m < 2:
            raise ValueError("a standard error needs n_paths >= 2")
        return self.samples.std(0) / math.sqrt(m)


def _finish(method, samples, cost, n_steps, mean=None) -> GradientEstimate:
    if mean is None:
        mean = samples.mean(0)
    return GradientEstimate(
        method=method,
        mean=mean.detach(),
        samples=None if samples is None else samples.detach(),
        cost=cost.detach(),
        n_steps=n_steps,
    )


def _x0(problem: ControlledSDE, theta: torch.Tensor, n_paths: int) -> torch.Tensor:
    return problem.x0.to(dtype=theta.dtype, device=theta.device).expand(n_paths, -1)


def _terminal3(problem: ControlledSDE):
    return lambda th, t, x: problem.terminal_cost(th, x)
