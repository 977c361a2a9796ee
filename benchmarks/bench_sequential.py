"""Benchmark: sampling cost per sequence against the length L, sequential vs whole-sequence.

    python benchmarks/bench_sequential.py [--lengths 8 16 32 64] [--levels 30] [--batch 256]
                                          [--device cpu|cuda|auto] [--repeats 2]

One row per (sampler, L): batched network evaluations per draw (head and prefix encoder),
wall seconds per sequence (best of --repeats, batch of --batch sequences). Samplers: the
sequential sampler with the window MLP (d_trunc = 8), the causal transformer with and without
prefix reuse, and the whole-sequence DDPM (a ScoreMLP on R^L with the window MLP's parameter
count); all use the probability-flow ODE (Heun) of ``diffctrl.diffusion.samplers``. Untrained
networks: the cost does not depend on the weights. Not a test: numbers depend on the machine.
"""

import argparse
import time

import torch

from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.runtime import environment, pick_device
from diffctrl.sequential.networks import CausalTransformerScoreNet, WindowScoreNet, param_count
from diffctrl.sequential.sampling import (draw_noise, sample_sequential, sample_whole,
                                          whole_sequence_model)


def _time(fn, repeats: int, device: torch.device) -> float:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--levels", type=int, default=30)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    dev = pick_device(args.device)
    sched = vp_sde_schedule(args.levels)
    env = environment(dev)
    print(f"# {env['device']}, torch {env['torch']}, {env['torch_threads']} threads, "
          f"N={args.levels}, batch={args.batch}, ODE (Heun)")
    print(f"{'sampler':>24} {'L':>4} {'head evals':>10} {'encoder':>8} {'ms/sequence':>12}")
    for L in args.lengths:
        torch.manual_seed(0)
        window = WindowScoreNet(L, args.levels, d_trunc=min(8, L), hidden=64).to(dev)
        trans = CausalTransformerScoreNet(L, args.levels, d_model=32, nhead=4, layers=2,
                                          hidden=64).to(dev)
        whole = whole_sequence_model(L, args.levels, param_count(window)).to(dev)
        noise = draw_noise(args.batch, L, torch.Generator().manual_seed(0))
        runs = {
            "sequential, window MLP": (window, True),
            "transformer, reuse": (trans, True),
            "transformer, no reuse": (trans, False),
        }
        for name, (net, reuse) in runs.items():
            cnt: dict[str, int] = {}
            sample_sequential(net, sched, args.batch, noise=noise, method="ode",
                              reuse_prefix=reuse, device=dev, counter=cnt)
            sec = _time(lambda: sample_sequential(net, sched, args.batch, noise=noise,
                                                  method="ode", reuse_prefix=reuse, device=dev),
                        args.repeats, dev)
            print(f"{name:>24} {L:>4} {cnt['head']:>10} {cnt['context']:>8} "
                  f"{1e3 * sec / args.batch:>12.3f}")
        sec = _time(lambda: sample_whole(whole, sched, args.batch, noise=noise, method="ode",
                                         device=dev), args.repeats, dev)
        print(f"{'whole-sequence DDPM':>24} {L:>4} {2 * args.levels - 1:>10} {0:>8} "
              f"{1e3 * sec / args.batch:>12.3f}")


if __name__ == "__main__":
    main()
