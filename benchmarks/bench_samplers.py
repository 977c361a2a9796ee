"""Benchmark: DDPM ancestral sampling throughput, ours vs a diffusers DDPMScheduler.step loop.

    python benchmarks/bench_samplers.py [--batch 100 1000 10000] [--levels 1000] [--device cpu]

Prints one row per batch size: wall time of each sampler (best of --repeats), the time of the
network evaluations alone, samples per second, the speed-up, and our time over the network's
(the sampler's overhead). The target: at most 1.2x the network evaluations at every batch from
100 up; the last line says whether it held. Not a test: numbers depend on the machine; the
book's Benchmarks page records them with the machine's description.
"""

import argparse

import torch

from diffctrl.diffusion.bench import time_samplers
from diffctrl.diffusion.models import ScoreMLP
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.repro import environment, pick_device

TARGET = 1.2  # our sampler / network evaluations alone, at every batch >= 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--batch", type=int, nargs="+", default=[100, 300, 1000, 3000, 10_000]
    )
    ap.add_argument("--levels", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    dev = pick_device(args.device)
    torch.manual_seed(0)
    model = ScoreMLP(2, args.levels, hidden=args.hidden, depth=3)
    sched = vp_sde_schedule(args.levels)
    env = environment(dev)
    print(
        f"# {env['device']}, torch {env['torch']}, {env['torch_threads']} threads, N={args.levels}"
    )
    print(
        f"{'batch':>7} {'diffusers s':>12} {'ours s':>8} {'model s':>8} {'ours samples/s':>15} "
        f"{'speed-up':>9} {'ours/model':>11}"
    )
    worst = 0.0
    time_samplers(model, sched, 16, 2, 1, dev)  # warm-up: imports, allocator
    for b in args.batch:
        r = time_samplers(model, sched, b, 2, args.repeats, dev)
        print(
            f"{b:>7} {r['diffusers']:>12.3f} {r['ours']:>8.3f} {r['model_only']:>8.3f} "
            f"{b / r['ours']:>15.0f} {r['speedup']:>9.2f} {r['overhead']:>11.2f}"
        )
        if b >= 100:
            worst = max(worst, r["overhead"])
    print(f"# worst ours/model at batch >= 100: {worst:.2f} (target <= {TARGET})")
    print(f"# {'within' if worst <= TARGET else 'OVER'} the target")


if __name__ == "__main__":
    main()
