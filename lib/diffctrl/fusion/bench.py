"""Fused sampling cost against the number K of auxiliaries: one vmapped call against a loop.

Used by ``benchmarks/bench_fusion.py`` and the Benchmarks page. K ScoreMLPs of one architecture
are fused (:class:`~diffctrl.fusion.scores.FusedScore`); each row is the best-of-``repeats``
wall time of a full DDPM sampling run with the K networks evaluated in one ``torch.func.vmap``
call and with a Python loop over the models. On CUDA each run ends with a synchronisation.
"""

from __future__ import annotations

import time

import torch

from ..diffusion.models import ScoreMLP
from ..diffusion.samplers import sample
from ..diffusion.schedules import Schedule, vp_sde_schedule
from .scores import FusedScore

__all__ = ["fusion_timings", "time_fused"]


def time_fused(
    models: list[torch.nn.Module],
    sched: Schedule,
    batch: int,
    dim: int,
    evaluation: str,
    repeats: int,
    device,
) -> float:
    """Best-of-``repeats`` seconds of ``sample`` with the fused score of ``models``."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    fused = FusedScore(models, sched, evaluation=evaluation).to(device)
    best = float("inf")
    for r in range(repeats):
        gen = torch.Generator().manual_seed(r)
        t0 = time.perf_counter()
        sample(fused, sched, batch, dim, generator=gen, device=device)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def fusion_timings(
    Ks: list[int],
    batch: int = 1024,
    dim: int = 2,
    levels: int = 100,
    hidden: int = 128,
    repeats: int = 3,
    device="cpu",
    seed: int = 0,
) -> list[dict[str, float]]:
    """One row ``{K, vmap_s, loop_s, ratio}`` per K (ratio = loop / vmap), after a warm-up."""
    if not Ks or min(Ks) < 1:
        raise ValueError(f"Ks must be a non-empty list of positive ints, got {Ks!r}")
    sched = vp_sde_schedule(levels)
    torch.manual_seed(seed)
    warm = [ScoreMLP(dim, levels, hidden=hidden) for _ in range(2)]
    time_fused(warm, sched, 16, dim, "vmap", 1, device)  # imports, allocator
    rows = []
    for K in Ks:
        models = [ScoreMLP(dim, levels, hidden=hidden) for _ in range(K)]
        tv = time_fused(models, sched, batch, dim, "vmap", repeats, device)
        tl = time_fused(models, sched, batch, dim, "loop", repeats, device)
        rows.append({"K": K, "vmap_s": tv, "loop_s": tl, "ratio": tl / tv})
    return rows
