"""The one trainer of every fine-tuning method: AdamW on a :class:`.objective.FinetuneObjective`
from a fixed seed, with evaluations, checkpoints that resume the same trajectory, and a guard
that retries a diverged run at a smaller step.

The paper's settings (Han, Razaviyayn, Xu 2025, Sec. 6): AdamW at lr 3e-4,
10 trajectories x 50 transitions per gradient step (:data:`.defaults.PAPER_DEFAULTS`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ..atomic import atomic_save
from .budget import Budget, Timer
from .objective import FinetuneObjective

__all__ = ["FinetuneResult", "finetune", "finetune_guarded"]


@dataclass
class FinetuneResult:
    """Losses per iteration, the evaluation history (dicts with ``step``, ``nfe``,
    ``reward_evals``, ``wall`` and the callback's metrics) and the final budget."""

    losses: list = field(default_factory=list)
    history: list = field(default_factory=list)
    budget: Budget = field(default_factory=Budget)


def finetune(
    objective: FinetuneObjective,
    steps: int,
    *,
    lr: float = 3e-4,
    critic_lr: float | None = None,
    weight_decay: float = 0.0,
    seed: int = 0,
    max_grad_norm: float | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 100,
    callback: Callable | None = None,
    eval_every: int = 0,
    model: nn.Module | None = None,
    progress: bool = False,
) -> FinetuneResult:
    """Train with AdamW (the paper: lr 3e-4) for ``steps`` iterations from the fixed ``seed``.

    ``model`` is what the forward runs through (default ``objective``; a
    ``DistributedDataParallel`` wrapper of it under :mod:`.large.ddp`). ``callback(objective)``
    returns a dict of metrics, recorded at step 0, every ``eval_every`` steps and at the end
    (its time is not charged). With ``checkpoint``, the whole state (parameters, optimiser,
    generator, budget, history) is saved atomically every ``checkpoint_every`` steps and at the
    end, and resumed if present, so a resumed run continues the same trajectory as an
    uninterrupted one.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    model = objective if model is None else model
    groups = [
        {
            "params": [p for p in objective.control.parameters() if p.requires_grad],
            "lr": lr,
        }
    ]
    if objective.critic is not None:
        groups.append(
            {"params": list(objective.critic.parameters()), "lr": critic_lr or lr}
        )
    if not groups[0]["params"]:
        raise ValueError("the control has no trainable parameters")
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(int(seed))
    res = FinetuneResult(budget=objective.budget)
    start = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        st = torch.load(ckpt, map_location=objective.device, weights_only=False)
        objective.control.load_state_dict(st["control"])
        if objective.critic is not None:
            objective.critic.load_state_dict(st["critic"])
        opt.load_state_dict(st["optimizer"])
        gen.set_state(st["generator"])
        objective.budget.load(st["budget"])
        res.losses, res.history, start = (
            list(st["losses"]),
            list(st["history"]),
            int(st["step"]),
        )
        if start > steps:
            raise ValueError(f"checkpoint {ckpt} is at step {start} > steps={steps}")

    def save(step):
        if ckpt is not None:
            atomic_save(
                {
                    "control": objective.control.state_dict(),
                    "critic": objective.critic.state_dict()
                    if objective.critic is not None
                    else None,
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    "budget": objective.budget.as_dict(),
                    "losses": res.losses,
                    "history": res.history,
                    "step": step,
                },
                ckpt,
            )

    def record(step):
        if callback is not None and (
            not res.history or res.history[-1]["step"] != step
        ):
            row = {"step": step, **objective.budget.as_dict()}
            row.update(callback(objective))
            res.history.append(row)

    if start == 0:
        record(0)
    params = [p for g in groups for p in g["params"]]
    bar = tqdm(
        range(start, steps),
        desc=f"fine-tuning ({objective.method})",
        disable=not progress,
        initial=start,
        total=steps,
    )
    for step in bar:
        with Timer(objective.budget):
            loss = model(gen)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{objective.method}: non-finite loss at step {step}"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            opt.step()
        res.losses.append(float(loss.detach()))
        if eval_every and (step + 1) % eval_every == 0:
            record(step + 1)
        if ckpt is not None and (step + 1) % checkpoint_every == 0:
            save(step + 1)
    record(steps)
    save(steps)
    return res


def finetune_guarded(
    make: Callable[[], FinetuneObjective],
    steps: int,
    *,
    lr: float,
    lr_factors=(1.0,),
    check: Callable[[FinetuneObjective], bool] | None = None,
    **kwargs,
) -> tuple[FinetuneObjective | None, FinetuneResult | None, list[dict]]:
    """Train ``make()`` (a fresh :class:`.objective.FinetuneObjective`) with :func:`finetune` at
    ``lr * f`` for the first factor ``f`` of ``lr_factors`` whose run neither raises
    ``FloatingPointError`` (a non-finite loss) nor fails ``check(objective)`` (e.g. samples far
    out of the pixel range). Returns ``(objective, result, attempts)``; ``objective`` and
    ``result`` are ``None`` when every attempt diverged, ``attempts`` lists
    ``{"lr", "diverged", "reason"}`` per try."""
    if not lr_factors or any(not f > 0 for f in lr_factors):
        raise ValueError(f"lr_factors must be positive numbers, got {lr_factors!r}")
    attempts = []
    for f in lr_factors:
        obj = make()
        try:
            res = finetune(obj, steps, lr=lr * f, **kwargs)
        except FloatingPointError as err:
            attempts.append({"lr": lr * f, "diverged": True, "reason": str(err)})
            continue
        if check is not None and not check(obj):
            attempts.append({"lr": lr * f, "diverged": True, "reason": "check failed"})
            continue
        attempts.append({"lr": lr * f, "diverged": False, "reason": ""})
        return obj, res, attempts
    return None, None, attempts
