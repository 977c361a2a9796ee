"""Benchmark: sampling cost per sequence against the length L, sequential vs whole-sequence.

    python benchmarks/bench_sequential.py [--lengths 8 16 32 64] [--levels 30] [--batch 256]
                                          [--device cpu|cuda|auto] [--repeats 2]

One row per (sampler, L) from :func:`diffctrl.sequential.bench.sampling_costs`: batched network
evaluations per draw (head and prefix encoder) and wall milliseconds per sequence. Not a test:
numbers depend on the machine; the Benchmarks page shows the same table.
"""

import argparse

from diffctrl.repro import environment, pick_device
from diffctrl.sequential.bench import sampling_costs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--levels", type=int, default=30)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    dev = pick_device(args.device)
    env = environment(dev)
    print(
        f"# {env['device']}, torch {env['torch']}, {env['torch_threads']} threads, "
        f"N={args.levels}, batch={args.batch}, ODE (Heun)"
    )
    print(
        f"{'sampler':>24} {'L':>4} {'head evals':>10} {'encoder':>8} {'ms/sequence':>12}"
    )
    for r in sampling_costs(args.lengths, args.levels, args.batch, args.repeats, dev):
        print(
            f"{r['sampler']:>24} {r['L']:>4} {r['head']:>10} {r['encoder']:>8} "
            f"{r['ms_per_sequence']:>12.3f}"
        )


if __name__ == "__main__":
    main()
