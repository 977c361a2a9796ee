"""Training a score model by denoising score matching, with checkpoint save/resume.

The run is a pure function of (model init, data, seed, hyper-parameters): minibatch indices and
noise come from one ``torch.Generator`` whose state is saved in the checkpoint, so a resumed run
continues the same trajectory as an uninterrupted one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..atomic import atomic_save
from .models import check_levels, dsm_loss
from .schedules import Schedule

__all__ = ["train_dsm"]


def train_dsm(
    model: torch.nn.Module,
    sched: Schedule,
    data: torch.Tensor | Callable[[int, torch.Generator], torch.Tensor],
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 500,
    progress: bool = True,
    weight_decay: float = 0.0,
    levels: tuple[int, int] | None = None,
    *,
    cond: torch.Tensor | None = None,
    per_entry: bool = False,
) -> list[float]:
    """Train ``model`` with :func:`~diffctrl.diffusion.models.dsm_loss` and Adam(W).

    ``data`` is a tensor (N_data, *event) sampled with replacement, or a callable
    ``data(n, generator)`` returning fresh samples. With ``checkpoint`` set, the state (model,
    optimiser, generator, step, losses) is written there (atomically,
    :func:`diffctrl.atomic.atomic_save`) every ``checkpoint_every`` steps and at the end, and
    an existing checkpoint is resumed. ``levels=(lo, hi)`` restricts the noise
    levels of the loss (see :func:`~diffctrl.diffusion.models.dsm_loss`). ``cond`` (a tensor
    with one row per row of the tensor ``data``, drawn with the same minibatch indices) is the
    model's conditioning input and ``per_entry=True`` noises every entry at its own level (both
    passed to ``dsm_loss``). Returns the per-step losses.
    """
    if steps < 0 or batch_size < 1 or lr <= 0:
        raise ValueError(
            f"need steps >= 0, batch_size >= 1, lr > 0; got {steps}, {batch_size}, {lr}"
        )
    check_levels(levels, sched.N)
    if cond is not None:
        if (
            not isinstance(data, torch.Tensor)
            or not torch.is_tensor(cond)
            or cond.shape[0] != data.shape[0]
        ):
            raise ValueError(
                "cond must be a tensor with one row per row of the tensor data"
            )
    if isinstance(data, torch.Tensor) and data.shape[0] < 1:
        raise ValueError("data must hold at least one sample")
    device = torch.device(device)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    start = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        losses, start = list(state["losses"]), int(state["step"])
        if start > steps:
            raise ValueError(f"checkpoint {ckpt} is at step {start} > steps={steps}")

    def save(step: int) -> None:
        if ckpt is not None:
            atomic_save(
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    "losses": losses,
                    "step": step,
                },
                ckpt,
            )

    model.train()
    bar = tqdm(
        range(start, steps),
        desc="DSM training",
        disable=not progress,
        initial=start,
        total=steps,
    )
    for step in bar:
        if isinstance(data, torch.Tensor):
            idx = torch.randint(0, data.shape[0], (batch_size,), generator=gen)
            x0 = data[idx].to(device)
            c = None if cond is None else cond[idx].to(device)
        else:
            x0, c = data(batch_size, gen).to(device), None
        if c is not None and c.dtype == torch.float64:
            c = c.float()
        loss = dsm_loss(
            model,
            sched,
            x0.float() if x0.dtype == torch.float64 else x0,
            generator=gen,
            levels=levels,
            cond=c,
            per_entry=per_entry,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 50 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / 50:.4f}")
        if ckpt is not None and (step + 1) % checkpoint_every == 0:
            save(step + 1)
    save(steps)
    model.eval()
    return losses
