"""Sampling cost per sequence against the length L: the adapted samplers and the baseline.

Used by ``benchmarks/bench_sequential.py`` and the Benchmarks page. Samplers: the sequential
sampler with the window MLP (``d_trunc = min(8, L)``), the causal transformer with and without
prefix reuse, and the whole-sequence model (a ScoreMLP on R^L with the window MLP's parameter
count); all use the probability-flow ODE (Heun). Untrained networks: the cost does not depend
on the weights. Each row: batched network evaluations per draw (head and prefix encoder) and
wall milliseconds per sequence (best of ``repeats``; CUDA synchronised).
:func:`prefix_reuse_cost` counts and times prefix reuse on a trained causal transformer (the
chapter's section on the sampling cost).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from ..diffusion.schedules import Schedule, vp_sde_schedule
from .gaussian import gaussian_paths
from .generators import make_sequential
from .networks import CausalTransformerScoreNet, WindowScoreNet, param_count
from .sampling import (
    draw_noise,
    sample_sequential,
    sample_whole,
    train_sequential,
    whole_sequence_model,
)

__all__ = ["SAMPLERS", "prefix_reuse_cost", "sampling_costs"]

#: the samplers of :func:`sampling_costs`, in the order of its rows
SAMPLERS = (
    "window MLP",
    "transformer, reuse",
    "transformer, no reuse",
    "whole-sequence",
)


def _best_time(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def sampling_costs(
    lengths: list[int],
    levels: int = 30,
    batch: int = 256,
    repeats: int = 2,
    device="cpu",
    seed: int = 0,
) -> list[dict]:
    """Rows ``{sampler, L, head, encoder, ms_per_sequence}`` for every L in ``lengths``."""
    if not lengths or min(lengths) < 1:
        raise ValueError(
            f"lengths must be a non-empty list of positive ints, got {lengths!r}"
        )
    if repeats < 1 or batch < 1:
        raise ValueError(f"repeats and batch must be >= 1, got {repeats}, {batch}")
    dev = torch.device(device)
    sched = vp_sde_schedule(levels)
    rows = []
    for L in lengths:
        torch.manual_seed(seed)
        window = WindowScoreNet(L, levels, d_trunc=min(8, L), hidden=64).to(dev)
        trans = CausalTransformerScoreNet(
            L, levels, d_model=32, nhead=4, layers=2, hidden=64
        ).to(dev)
        whole = whole_sequence_model(L, levels, param_count(window)).to(dev)
        noise = draw_noise(batch, L, torch.Generator().manual_seed(seed))
        for name, net, reuse in (
            (SAMPLERS[0], window, True),
            (SAMPLERS[1], trans, True),
            (SAMPLERS[2], trans, False),
        ):
            cnt: dict[str, int] = {}
            sample_sequential(
                net,
                sched,
                batch,
                noise=noise,
                method="ode",
                reuse_prefix=reuse,
                device=dev,
                counter=cnt,
            )
            sec = _best_time(
                lambda net=net, reuse=reuse: sample_sequential(
                    net,
                    sched,
                    batch,
                    noise=noise,
                    method="ode",
                    reuse_prefix=reuse,
                    device=dev,
                ),
                repeats,
                dev,
            )
            rows.append(
                {
                    "sampler": name,
                    "L": L,
                    "head": cnt["head"],
                    "encoder": cnt.get("context", 0),
                    "ms_per_sequence": 1e3 * sec / batch,
                }
            )
        sec = _best_time(
            lambda: sample_whole(
                whole, sched, batch, noise=noise, method="ode", device=dev
            ),
            repeats,
            dev,
        )
        rows.append(
            {
                "sampler": SAMPLERS[3],
                "L": L,
                "head": 2 * levels - 1,
                "encoder": 0,
                "ms_per_sequence": 1e3 * sec / batch,
            }
        )
    return rows


def prefix_reuse_cost(
    cov: torch.Tensor,
    sched: Schedule,
    *,
    n_train: int,
    n: int = 512,
    steps: int,
    batch_size: int,
    lr: float,
    hidden: int,
    method: str,
    device,
    seed: int = 0,
) -> dict:
    """The causal transformer trained on ``n_train`` paths of N(0, cov), then ``n``
    sequences drawn with and without prefix reuse from the same noise: the batched head and
    encoder evaluations, the wall time and the largest difference of the samples."""
    data = gaussian_paths(cov, n_train, generator=torch.Generator().manual_seed(seed))
    L = cov.shape[0]
    tr = make_sequential(L, sched.N, None, hidden, transformer=True, seed=seed)
    train_sequential(
        tr,
        sched,
        data,
        steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        progress=False,
    )
    noise = draw_noise(n, L, torch.Generator().manual_seed(seed))
    cost = {}
    for reuse in (True, False):
        cnt = {}
        t0 = time.perf_counter()
        x = sample_sequential(
            tr,
            sched,
            n,
            noise=noise,
            method=method,
            reuse_prefix=reuse,
            counter=cnt,
            device=device,
        )
        cost[reuse] = (cnt, time.perf_counter() - t0, x)
    return {
        "values": {
            "reuse_head_evals": cost[True][0]["head"],
            "reuse_encoder_evals": cost[True][0]["context"],
            "noreuse_encoder_evals": cost[False][0]["context"],
            "reuse_max_sample_diff": float(
                (cost[True][2] - cost[False][2]).abs().max()
            ),
            "reuse_speedup": cost[False][1] / cost[True][1],
        },
        "seconds": {"reuse": cost[True][1], "no reuse": cost[False][1]},
    }
