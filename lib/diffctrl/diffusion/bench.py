"""Sampling throughput: our ancestral sampler against a loop over diffusers' DDPMScheduler.step.

Both run the same eps-prediction model, the same schedule (diffusers gets our betas through
``trained_betas``) and the same number of network evaluations; only the step arithmetic and its
Python overhead differ. Used by ``benchmarks/bench_samplers.py`` and the Benchmarks page.
"""

from __future__ import annotations

import statistics
import time

import torch

from .models import model_score
from .samplers import sample
from .schedules import Schedule

__all__ = ["diffusers_loop", "ours", "time_samplers"]


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
    """The same draw with our sampler: :func:`~diffctrl.diffusion.samplers.sample`, DDPM."""
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
    """Best-of-``repeats`` wall time (s) of both samplers and of the network evaluations alone
    (interleaved within each repeat), the speed-up (diffusers / ours) and the overhead: ours
    over the network evaluations, paired within a repeat, median over the repeats."""
    if repeats < 1 or batch < 1:
        raise ValueError(f"repeats and batch must be >= 1, got {repeats}, {batch}")
    model = model.to(device).eval()
    cuda = torch.device(device).type == "cuda"
    x = torch.randn(batch, dim, device=device)

    def network_only(model, sched, batch, dim, gen, device):
        with torch.no_grad():
            for k in range(sched.N, 0, -1):
                model(x, k)

    runs = (("diffusers", diffusers_loop), ("ours", ours), ("model_only", network_only))
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    # the three interleaved within each repeat, so that a slow spell of a shared machine hits
    # all of them alike; the best of the repeats is each one's time
    for r in range(repeats):
        for name, fn in runs:
            gen = torch.Generator().manual_seed(seed + r)
            t0 = time.perf_counter()
            fn(model, sched, batch, dim, gen, device)
            if cuda:  # wait for the GPU before reading the clock
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
    out = {name: min(ts) for name, ts in times.items()}
    out["speedup"] = out["diffusers"] / out["ours"]
    # ours / network, paired within each repeat, median over the repeats (steadier than the
    # ratio of two minima on a noisy machine)
    out["overhead"] = statistics.median(
        o / m for o, m in zip(times["ours"], times["model_only"], strict=True)
    )
    return out
