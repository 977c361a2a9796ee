"""Runtime and peak memory per gradient estimate vs parameter count (the paper's Fig. 1).

Wang, Blanchet & Glynn (NeurIPS 2024), Fig. 1: on the point-mass LQ problem with a 4-layer MLP
force of growing width, the generator gradient's runtime per estimate stays nearly flat in the
parameter count n while pathwise differentiation (forward sensitivities, a d + d n dimensional
SDE) grows. This script times all four estimators of ``diffctrl.gradients`` on this machine
(CPU or CUDA) and reports, per (n, method): seconds per estimate (median of ``--repeats``),
peak memory above the level before the call, the simulated state dimension, and why a run was
skipped (predicted memory over ``--max-gb``, or a linearly extrapolated time over
``--max-seconds``). Speed claims live here, never in the unit tests.

    python benchmarks/bench_gradients.py                       # n = 1e2 ... 1e8
    python benchmarks/bench_gradients.py --ns 1e2 1e4 1e6 --methods gg pathwise_reverse
    python benchmarks/bench_gradients.py --device cuda --out _build/benchmarks/gpu.json
    python benchmarks/bench_gradients.py --flops --ns 1e2 1e3 1e4 1e5 --steps 20

``--flops``: the work of one estimate in units of one network evaluation on the same batch
(``torch.utils.flop_counter``, matmul-type kernels; deterministic), and its wall time, for the
generator gradient as implemented (tangents propagated only from the random step ``kappa + 1``
on), the same estimator with ``kappa = 0`` on every path (tangents from the first step: the
cost of the former all-step implementation, up to one step), and reverse-mode autograd through
the path (``pathwise_reverse``); all with path-averaged output (one backward pass).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from diffctrl.gradients import (
    METHODS,
    benchmark_estimators,
    count_flops,
    estimate_gradient,
    mlp_width_for,
    network_eval_flops,
    point_mass_lq,
    time_call,
)
from diffctrl.repro import environment, pick_device


def flops_table(
    ns, n_paths: int, n_steps: int, repeats: int, seed: int, device: torch.device
) -> list[dict]:
    """Flops (in network evaluations on ``n_paths`` paths) and seconds per estimate of GG
    (random kappa), GG with every kappa = 0, and reverse mode, per target ``n``."""
    rows = []
    for target in ns:
        width = mlp_width_for(target)
        problem, theta = point_mass_lq(
            hidden=(width,) * 3,
            dtype=torch.float32,
            device=device,
            generator=torch.Generator(device=device).manual_seed(seed),
        )
        unit = network_eval_flops(problem, theta, n_paths)
        zero = torch.zeros(n_paths, dtype=torch.long, device=device)
        calls = {
            "gg": dict(method="gg"),
            "gg_kappa0": dict(method="gg", kappa=zero),
            "pathwise_reverse": dict(method="pathwise_reverse"),
        }
        row = dict(n=problem.n_params, width=width, unit_flops=unit)
        for name, kw in calls.items():
            kw = dict(kw)
            method = kw.pop("method")

            def run():
                g = torch.Generator(device=device).manual_seed(seed + 1)
                return estimate_gradient(
                    method,
                    problem,
                    theta,
                    n_paths=n_paths,
                    n_steps=n_steps,
                    generator=g,
                    per_path=False,
                    **kw,
                )

            row[f"{name}_flops"] = count_flops(run) / unit
            row[f"{name}_seconds"] = time_call(
                run, repeats=repeats, warmup=1, device=device
            )
        rows.append(row)
        print(
            f"n={row['n']:>11,d}  flops / network eval: gg {row['gg_flops']:7.1f}, "
            f"gg kappa=0 {row['gg_kappa0_flops']:7.1f}, reverse "
            f"{row['pathwise_reverse_flops']:7.1f};  seconds: gg {row['gg_seconds']:.3g}, "
            f"gg kappa=0 {row['gg_kappa0_seconds']:.3g}, reverse "
            f"{row['pathwise_reverse_seconds']:.3g}",
            flush=True,
        )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--ns",
        nargs="+",
        type=float,
        default=[1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 3e7, 1e8],
        help="target parameter counts (the MLP width is the smallest reaching each)",
    )
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--paths", type=int, default=16, help="paths per gradient estimate")
    ap.add_argument("--steps", type=int, default=20, help="Euler steps (T = 1)")
    ap.add_argument(
        "--repeats", type=int, default=2, help="timed calls per point (median)"
    )
    ap.add_argument(
        "--max-gb",
        type=float,
        default=8.0,
        help="skip a method once its predicted memory exceeds this",
    )
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=120.0,
        help="skip a method once its extrapolated time exceeds this",
    )
    ap.add_argument(
        "--per-path",
        action="store_true",
        help="return per-path samples (memory M n) instead of the path average",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: torch's default)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="_build/benchmarks/bench_gradients.json")
    ap.add_argument(
        "--figure", default="", help="also save a log-log figure (png) here"
    )
    ap.add_argument(
        "--flops",
        action="store_true",
        help="flops and time of GG (random kappa, kappa = 0) vs reverse mode only",
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = pick_device(args.device)
    print(
        f"device {dev}, torch threads {torch.get_num_threads()}, {args.paths} paths, "
        f"{args.steps} steps",
        flush=True,
    )
    start = time.perf_counter()
    if args.flops:
        rows = flops_table(
            args.ns, args.paths, args.steps, args.repeats, args.seed, dev
        )
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                dict(
                    args=vars(args),
                    environment=environment(dev),
                    rows=rows,
                    seconds_total=time.perf_counter() - start,
                ),
                indent=2,
                default=str,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"wrote {out}")
        return 0
    rows: list[dict] = []
    skipped: dict[str, str] = {}  # method -> why it stopped
    for i, target in enumerate(
        args.ns
    ):  # one n at a time, so results print as they come
        methods = [m for m in args.methods if m not in skipped]
        new = benchmark_estimators(
            [target],
            methods,
            n_paths=args.paths,
            n_steps=args.steps,
            repeats=args.repeats,
            per_path=args.per_path,
            max_bytes=args.max_gb * 1e9,
            max_seconds=math.inf,
            seed=args.seed,
            device=dev,
        )
        for m in args.methods:
            if m in skipped:
                new.append(
                    dict(
                        n=new[0]["n"] if new else int(target),
                        width=0,
                        method=m,
                        seconds=math.nan,
                        peak_bytes=math.nan,
                        state_dim=math.nan,
                        status=skipped[m],
                    )
                )
        for r in new:
            rows.append(r)
            print(
                f"n={r['n']:>11,d}  W={r['width']:>5d}  {r['method']:<17s} "
                f"{r['seconds']:9.4g} s  {r['peak_bytes'] / 1e6:10.4g} MB  {r['status']}",
                flush=True,
            )
            if r["status"] != "ok":
                skipped.setdefault(r["method"], r["status"])
            elif i + 1 < len(args.ns):  # extrapolate linearly in n to the next size
                predicted = r["seconds"] * args.ns[i + 1] / r["n"]
                if predicted > args.max_seconds:
                    skipped[r["method"]] = (
                        f"skipped: predicted {predicted:.0f} s > "
                        f"{args.max_seconds:.0f} s"
                    )
    largest = {
        m: max(
            [r["n"] for r in rows if r["method"] == m and r["status"] == "ok"],
            default=0,
        )
        for m in args.methods
    }
    print("largest n reached: " + ", ".join(f"{m} {n:,d}" for m, n in largest.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(
        args=vars(args),
        environment=environment(dev),
        rows=rows,
        largest_n=largest,
        seconds_total=time.perf_counter() - start,
    )
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for m in args.methods:
            ok = [r for r in rows if r["method"] == m and r["status"] == "ok"]
            axes[0].loglog(
                [r["n"] for r in ok], [r["seconds"] for r in ok], "o-", label=m
            )
            axes[1].loglog(
                [r["n"] for r in ok],
                [max(r["peak_bytes"], 1e4) / 1e6 for r in ok],
                "o-",
                label=m,
            )
        axes[0].set(xlabel="parameters n", ylabel="seconds per estimate")
        axes[1].set(xlabel="parameters n", ylabel="peak memory above baseline (MB)")
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(args.figure, dpi=120)
        print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
