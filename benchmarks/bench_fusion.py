"""Benchmark: fused sampling cost against the number K of auxiliaries, vmapped vs a Python loop.

    python benchmarks/bench_fusion.py [--K 2 4 8 16 32] [--batch 1024] [--levels 100] [--device cpu]

K ScoreMLPs of one architecture are fused (:class:`diffctrl.fusion.FusedScore`); one row per K:
the wall time of a full DDPM sampling run (best of --repeats) with the K networks evaluated in
one ``torch.func.vmap`` call and with a loop over the models, and the ratio. Not a test: the
numbers depend on the machine; the book's closing note quotes them with the machine's
description. On CUDA (``--device cuda``) each run ends with ``torch.cuda.synchronize()``.
"""

import argparse

from diffctrl.fusion.bench import fusion_timings
from diffctrl.repro import environment, pick_device


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
    env = environment(dev)
    print(
        f"# {env['device']}, torch {env['torch']}, {env['torch_threads']} threads, "
        f"N={args.levels}, batch={args.batch}, hidden={args.hidden}"
    )
    print(f"{'K':>4} {'vmap s':>9} {'loop s':>9} {'loop/vmap':>10}")
    rows = fusion_timings(
        args.K,
        batch=args.batch,
        dim=args.dim,
        levels=args.levels,
        hidden=args.hidden,
        repeats=args.repeats,
        device=dev,
    )
    for r in rows:
        print(
            f"{r['K']:>4} {r['vmap_s']:>9.3f} {r['loop_s']:>9.3f} {r['ratio']:>10.2f}"
        )


if __name__ == "__main__":
    main()
