"""Sampling throughput: our ancestral sampler against a loop over diffusers' DDPMScheduler.step.

Both run the same eps-prediction model, the same schedule (diffusers gets our betas through
``trained_betas``) and the same number of network evaluations; only the step arithmetic and its
Python overhead differ. Used by ``benchmarks/bench_samplers.py`` and the Benchmarks page.
"""

from __future__ import annotations

import time

import torch

from .models import model_score
from .samplers import sample
from .schedules import Schedule


def diffusers_loop(
    model: torch.nn.Module,
    sched: Schedule,
    n: int,
    dim: int,
    generator: torch.Generator,
    device="cpu",
) -> torch.Tensor:
    """The loop a diffusers user writes: ``x = scheduler.step(model(x, t), t, x).prev_sample``."""
    from diffusers import DDPMScheduler

    sch = DDPMScheduler(
        num_train_timesteps=sched.N,
        trained_betas=sched.betas[1:].float().numpy(),
        variance_type="fixed_small",
        clip_sample=False,
        prediction_type="epsilon",
    )
    x = torch.randn(n, dim, generator=generator).to(device)
    with torch.no_grad():  # as in diffctrl's sample()
        for t in sch.timesteps:  # diffusers' timestep t is our level k = t + 1
            eps = model(x, int(t) + 1)
            x = sch.step(eps, t, x, generator=generator).prev_sample
    return x


def ours(
    model: torch.nn.Module,
    sched: Schedule,
    n: int,
    dim: int,
    generator: torch.Generator,
    device="cpu",
) -> torch.Tensor:
    return sample(
        model_score(model, sched),
        sched,
        n,
        dim,
        "ddpm",
        generator=generator,
        device=device,
    )


def time_samplers(
    model: torch.nn.Module,
    sched: Schedule,
    batch: int,
    dim: int,
    repeats: int = 3,
    device="cpu",
    seed: int = 0,
) -> dict[str, float]:
    """Best-of-``repeats`` wall time (s) of both samplers and of the network evaluations alone,
    the speed-up (diffusers / ours) and the overhead (ours / network evaluations)."""
    if repeats < 1 or batch < 1:
        raise ValueError(f"repeats and batch must be >= 1, got {repeats}, {batch}")
    model = model.to(device).eval()
    out = {}
    for name, fn in (("diffusers", diffusers_loop), ("ours", ours)):
        best = float("inf")
        for r in range(repeats):
            gen = torch.Generator().manual_seed(seed + r)
            t0 = time.perf_counter()
            fn(model, sched, batch, dim, gen, device)
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        out[name] = best
    x = torch.randn(batch, dim, device=device)
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            for k in range(sched.N, 0, -1):
                model(x, k)
            # as for the samplers: wait for the GPU before reading the clock
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
    out["model_only"] = best
    out["speedup"] = out["diffusers"] / out["ours"]
    out["overhead"] = out["ours"] / out["model_only"]
    return out
