"""Benchmark: per-iteration cost of parametric PI-FT and each baseline at equal batch, and the
compute each needs to reach a fixed W2 to the exact tilted target and a fixed control error to the
T-step optimum (2-D mixture, linear reward; the optimum by grid PI-FT).

    python benchmarks/bench_finetune.py [--T 20] [--n-traj 64] [--iters 300] [--lr 1e-2] [--seeds 0 1 2] [--device cpu]

Prints one row per method: wall time per iteration (best of --repeats over 10 iterations),
network and reward evaluations per iteration, and, per seed, the network evaluations / wall time
at the first evaluation where W2 to p* <= --factor x the W2 of the T-step optimum (same sample size
and noise; the optimum itself is not at the noise floor at finite T) and where the relative control
error (path KL to the optimal chain over the optimum's own KL) <= --err-goal.
Not a test: numbers depend on the machine.
"""

import argparse
import math
import time

import torch

from diffctrl.control import ControlledChain, QuadraticReward
from diffctrl.diffusion import data as ddata
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.finetune import (
    LOSSES,
    METHODS,
    ControlMLP,
    FinetuneObjective,
    ValueMLP,
    control_error,
    evaluate,
    finetune,
    grid_optimum,
    tilted_target,
)
from diffctrl.repro import environment, pick_device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=20)
    ap.add_argument("--n-traj", type=int, default=64)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--factor", type=float, default=1.25)
    ap.add_argument("--err-goal", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--beta", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    dev = pick_device(args.device)
    p0 = ddata.ring_mixture(K=4, radius=2.0, var=0.1)
    reward = QuadraticReward.linear([0.6, 0.3])
    chain = ControlledChain.from_data(
        p0, vp_sde_schedule(args.T), args.beta, variance="large"
    )
    target = tilted_target(p0, reward, args.beta)
    floor = evaluate(chain, None, reward, 1000, target=target, seed=1)["w2_floor"]
    t0 = time.perf_counter()
    u_opt = grid_optimum(chain, reward, device=dev).as_control()
    t_grid = time.perf_counter() - t0
    w2_opt = evaluate(chain, u_opt, reward, 1000, target=target, seed=1, floor=False)[
        "w2"
    ]
    size = control_error(chain, lambda t, y: torch.zeros_like(y), u_opt, 1000, seed=2)[
        0
    ]
    print(environment(dev))
    print(
        f"T={args.T} n_traj={args.n_traj}; grid optimum in {t_grid:.1f} s, its W2 to p* {w2_opt:.3g} "
        f"(noise floor {floor:.3g}); targets: W2 <= {args.factor} x {w2_opt:.3g}, control error <= {args.err_goal}"
    )
    print(
        f"{'method':8s} {'s/iter':>9s} {'nfe/iter':>10s} {'reward/iter':>12s} {'nfe to W2':>12s} {'wall to W2':>11s}"
        f" {'nfe to err':>12s} {'wall to err':>11s}"
    )
    for method in METHODS:

        def make(s=0):
            torch.manual_seed(s)
            ctrl = ControlMLP(2, chain.sigma, chain.beta).to(dev)
            critic = ValueMLP(2, args.T + 1).to(dev) if LOSSES[method].critic else None
            return FinetuneObjective(
                chain,
                reward,
                ctrl,
                method,
                critic=critic,
                n_traj=args.n_traj,
                device=dev,
            )

        best = math.inf
        for _ in range(args.repeats):
            obj = make()
            t0 = time.perf_counter()
            finetune(obj, 10, lr=args.lr)
            best = min(best, (time.perf_counter() - t0) / 10)
        per_nfe, per_rew = obj.budget.nfe / 10, obj.budget.reward_evals / 10
        for s in args.seeds:
            obj = make(s)

            def cb(o):
                out = evaluate(
                    chain, o.control, reward, 1000, target=target, seed=1, floor=False
                )
                out["err"] = (
                    control_error(chain, o.control, u_opt, 1000, seed=2)[0] / size
                )
                return out

            res = finetune(
                obj,
                args.iters,
                lr=args.lr,
                seed=s,
                eval_every=args.eval_every,
                callback=cb,
            )
            reach = []
            for key, goal in (("w2", args.factor * w2_opt), ("err", args.err_goal)):
                hit = next((r for r in res.history if r[key] <= goal), None)
                reach.append(
                    f"{hit['nfe']:12,d} {hit['wall']:10.2f}s"
                    if hit
                    else f"{'-':>12s} {'-':>11s}"
                )
            print(
                f"{method:8s} {best:9.4f} {per_nfe:10,.0f} {per_rew:12,.0f} {' '.join(reach)}  seed {s}"
            )


if __name__ == "__main__":
    main()
