"""Policy optimisation of a controlled SDE driven by one of the gradient estimators.

Adam on ``theta`` with the estimator's path-averaged gradient (``per_path=False``); the cost is
evaluated on a fixed set of Brownian increments (common random numbers across estimators), and
the clock counts only the gradient estimates and the optimiser steps, not the evaluations.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from tqdm.auto import tqdm

from .estimators import estimate_gradient
from .sde import ControlledSDE, check_steps, check_theta, path_costs

__all__ = [
    "optimise_policy",
]


def optimise_policy(
    problem: ControlledSDE,
    theta0: torch.Tensor,
    method: str,
    *,
    n_iters: int,
    n_paths: int,
    n_steps: int,
    eval_noise: torch.Tensor,
    lr: float = 1e-2,
    eval_every: int = 1,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Run ``n_iters`` Adam steps; return ``{"iters", "seconds", "cost", "theta"}``.

    ``cost[j]`` is the mean path cost on ``eval_noise (N, M_eval, m)`` after ``iters[j]`` steps
    (``iters[0] = 0``), ``seconds[j]`` the estimator + optimiser time spent until then.
    The gradient noise of step ``i`` comes from a generator seeded with ``(seed, i)``, so two
    methods see the same Brownian increments.
    """
    check_theta(problem, theta0)
    check_steps(n_iters, "n_iters")
    check_steps(eval_every, "eval_every")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    dev = theta0.device
    param = torch.nn.Parameter(theta0.detach().clone())
    opt = torch.optim.Adam([param], lr=lr)

    def evaluate() -> float:
        return float(path_costs(problem, param.detach(), eval_noise).mean())

    iters, seconds, costs = [0], [0.0], [evaluate()]
    elapsed = 0.0
    for i in tqdm(range(n_iters), disable=not progress, desc=method, leave=False):
        gen = torch.Generator(device=dev).manual_seed(int(seed) * 1_000_003 + i)
        start = time.perf_counter()
        est = estimate_gradient(
            method,
            problem,
            param.detach(),
            n_paths=n_paths,
            n_steps=n_steps,
            generator=gen,
            per_path=False,
        )
        opt.zero_grad(set_to_none=True)
        param.grad = est.mean.to(param.dtype)
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        elapsed += time.perf_counter() - start
        if (i + 1) % eval_every == 0 or i + 1 == n_iters:
            iters.append(i + 1)
            seconds.append(elapsed)
            costs.append(evaluate())
    return dict(iters=iters, seconds=seconds, cost=costs, theta=param.detach().clone())
