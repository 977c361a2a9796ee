"""Benchmark: fused sampling cost against the number K of auxiliaries, vmapped vs a Python loop.

    python benchmarks/bench_fusion.py [--K 2 4 8 16 32] [--batch 1024] [--levels 100] [--device cpu]

K ScoreMLPs of one architecture are fused (:class:`diffctrl.fusion.FusedScore`); one row per K:
the wall time of a full DDPM sampling run (best of --repeats) with the K networks evaluated in
one ``torch.func.vmap`` call and with a loop over the models, and the ratio. Not a test: the
numbers depend on the machine; the book's closing note quotes them with the machine's
description. On CUDA (``--device cuda``) each run ends with ``torch.cuda.synchronize()``.
"""

import argparse
import time

import torch

from diffctrl.diffusion.models import ScoreMLP
from diffctrl.diffusion.samplers import sample
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.fusion import FusedScore
from diffctrl.runtime import environment, pick_device


def time_fused(
    models, sched, batch: int, dim: int, evaluation: str, repeats: int, device
) -> float:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--K", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=2)
    ap.add_argument("--levels", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    dev = pick_device(args.device)
    sched = vp_sde_schedule(args.levels)
    env = environment(dev)
    print(
        f"# {env['device']}, torch {env['torch']}, {env['torch_threads']} threads, "
        f"N={args.levels}, batch={args.batch}, hidden={args.hidden}"
    )
    print(f"{'K':>4} {'vmap s':>9} {'loop s':>9} {'loop/vmap':>10}")
    torch.manual_seed(0)
    warm = [ScoreMLP(args.dim, args.levels, hidden=args.hidden) for _ in range(2)]
    time_fused(warm, sched, 16, args.dim, "vmap", 1, dev)  # warm-up: imports, allocator
    for K in args.K:
        models = [ScoreMLP(args.dim, args.levels, hidden=args.hidden) for _ in range(K)]
        tv = time_fused(models, sched, args.batch, args.dim, "vmap", args.repeats, dev)
        tl = time_fused(models, sched, args.batch, args.dim, "loop", args.repeats, dev)
        print(f"{K:>4} {tv:>9.3f} {tl:>9.3f} {tl / tv:>10.2f}")


if __name__ == "__main__":
    main()
