"""Fine-tuning across processes with ``torch.distributed`` and DistributedDataParallel.

Run with any launcher that sets ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` / ``MASTER_PORT``::

    torchrun --nproc_per_node 2 -m diffctrl.finetune.large.ddp --out run/ --sd-path /models/sd15
    accelerate launch --num_processes 2 -m diffctrl.finetune.large.ddp --out run/ --steps 3

(``torchrun --nnodes ... --node_rank ...`` across nodes). With ``--sd-path`` (a local Stable
Diffusion folder) and ``--prompt`` the command trains the paper's problem
(:func:`.sd.build_objective`) with the paper's hyper-parameters unless an option overrides them
(Han, Razaviyayn, Xu 2025, Sec. 6; :data:`diffctrl.finetune.defaults.PAPER_DEFAULTS`: 1000 steps of AdamW at lr 3e-4,
10 trajectories x 50 transitions per step, beta = 0.01, LoRA rank 4), e.g.
``torchrun --nproc_per_node 2 -m diffctrl.finetune.large.ddp --out run/ --sd-path /models/sd15
--prompt "A green colored rabbit"``. Without ``--sd-path`` it trains a demo (a tiny random
diffusers UNet with LoRA adapters and a differentiable toy reward) with the small
:data:`DEMO_DEFAULTS`.

Every option is checked before any weight is loaded: ``--n-traj`` must be divisible by the
number of processes, the folder must hold every part of the diffusers layout, ``--T`` must fit
the scheduler's training levels, ``--out`` must be a writable folder. Every rank draws the same
global batch of noise from the same seed and keeps its shard
(:func:`diffctrl.finetune.trajectories.rollout`); the
loss is a mean over the shard and DDP averages gradients, so the update equals a single
process's on the global batch. Backend: ``nccl`` on GPUs, ``gloo`` on CPUs.

Rank 0 prints the resolved options, a progress bar with the loss (the mean over ranks) and the
paths it wrote. ``--out`` receives ``config.json`` (the resolved options), ``metrics.jsonl``
(one line per step: ``step``, ``loss``, ``nfe`` and ``reward_evals`` summed over ranks,
``wall`` seconds) and ``lora_rank<r>.pt`` (the adapters as every rank holds them; identical
across ranks, load ``lora_rank0.pt``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ...diffusion.schedules import vp_sde_schedule
from ..budget import Budget
from ..defaults import PAPER_DEFAULTS
from ..losses import LOSSES, METHODS
from ..nets import ValueCNN
from ..objective import FinetuneObjective
from ..trainer import finetune
from .lora import DiffusersChain, LoRAControl, add_lora, lora_state, tiny_unet

__all__ = [
    "DEMO_DEFAULTS",
    "PAPER_CLI_DEFAULTS",
    "build",
    "main",
    "parse_args",
    "toy_reward",
    "train",
]

#: The paper's settings (Sec. 6) as command-line defaults with ``--sd-path``.
PAPER_CLI_DEFAULTS = dict(
    steps=PAPER_DEFAULTS["steps"],
    n_traj=PAPER_DEFAULTS["n_traj"],
    T=PAPER_DEFAULTS["n_steps"],
    beta=PAPER_DEFAULTS["beta"],
    lr=PAPER_DEFAULTS["lr"],
    lora_rank=PAPER_DEFAULTS["rank"],
)
#: The demo's (no ``--sd-path``) defaults: a few seconds on a CPU.
DEMO_DEFAULTS = dict(steps=2, n_traj=4, T=4, beta=0.01, lr=3e-4, lora_rank=2)


def toy_reward(y: torch.Tensor) -> torch.Tensor:
    """A smooth differentiable image reward: minus the mean squared distance to a fixed ramp."""
    ramp = torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype, device=y.device)
    return -((y - ramp) ** 2).reshape(y.shape[0], -1).mean(1)


def build(
    method: str = "pift_ac",
    n_traj: int = 4,
    T: int = 4,
    beta: float = 0.01,
    rank: int = 2,
    seed: int = 0,
    shard=(0, 1),
    device="cpu",
) -> FinetuneObjective:
    """The demo objective: tiny UNet (8x8, 1 channel) + LoRA, ``T`` steps, toy reward."""
    unet = add_lora(tiny_unet(seed=seed), rank=rank, seed=seed).to(device)
    chain = DiffusersChain(unet, vp_sde_schedule(T), beta, (1, 8, 8))
    control = LoRAControl(chain)
    critic = None
    if LOSSES[method].critic:
        with torch.random.fork_rng():
            torch.manual_seed(seed + 1)
            critic = ValueCNN(1, T + 1, width=8, emb_dim=8).to(device)
    return FinetuneObjective(
        chain,
        toy_reward,
        control,
        method,
        critic=critic,
        n_traj=n_traj,
        shard=shard,
        budget=Budget(),
        device=device,
    )


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def train(objective: FinetuneObjective, steps: int, **kw):
    """:func:`diffctrl.finetune.trainer.finetune` through a DDP wrapper when a process group is initialised."""
    if _distributed():
        from torch.nn.parallel import DistributedDataParallel as DDP

        dev = objective.device
        model = DDP(objective, device_ids=[dev.index] if dev.type == "cuda" else None)
        return finetune(objective, steps, model=model, **kw)
    return finetune(objective, steps, **kw)


class _Logged(nn.Module):
    """Runs ``inner(generator)`` and logs the loss (mean over ranks) and the budget (summed over
    ranks) of each step: a line of ``metrics.jsonl`` and the progress bar, on rank 0."""

    def __init__(
        self,
        inner: nn.Module,
        objective: FinetuneObjective,
        steps: int,
        log_path,
        rank: int,
        world: int,
    ):
        super().__init__()
        self.inner, self.objective, self.rank, self.world = (
            inner,
            objective,
            rank,
            world,
        )
        self.step, self.t0, self.last = 0, time.perf_counter(), float("nan")
        self.log = open(log_path, "w", encoding="utf-8") if rank == 0 else None
        self.bar = tqdm(
            total=steps,
            desc=f"fine-tuning ({objective.method})",
            file=sys.stderr,
            disable=rank != 0,
            mininterval=1.0,
            dynamic_ncols=True,
        )

    def forward(self, generator: torch.Generator) -> torch.Tensor:
        loss = self.inner(generator)
        b = self.objective.budget
        stats = torch.tensor(
            [float(loss.detach()), b.nfe, b.reward_evals],
            dtype=torch.float64,
            device=loss.device,
        )
        if self.world > 1:
            torch.distributed.all_reduce(stats)
            stats[0] /= self.world
        self.step += 1
        self.last = float(stats[0])
        if self.rank == 0:
            row = dict(
                step=self.step,
                loss=float(stats[0]),
                nfe=int(stats[1]),
                reward_evals=int(stats[2]),
                wall=round(time.perf_counter() - self.t0, 3),
            )
            self.log.write(json.dumps(row) + "\n")
            self.log.flush()
            self.bar.set_postfix(loss=f"{row['loss']:.4g}", refresh=False)
            self.bar.update(1)
        return loss

    def close(self) -> None:
        self.bar.close()
        if self.log is not None:
            self.log.close()


def parse_args(argv=None) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    """The command line (``--help`` documents every option), with the mode's defaults filled in
    (:data:`PAPER_CLI_DEFAULTS` with ``--sd-path``, :data:`DEMO_DEFAULTS` without); returns
    ``(args, parser)``."""
    p, d = PAPER_CLI_DEFAULTS, DEMO_DEFAULTS

    def dflt(key):
        return (
            f"(default: {p[key]}, the paper's, with --sd-path; {d[key]} for the demo)"
        )

    ap = argparse.ArgumentParser(
        prog="python -m diffctrl.finetune.large.ddp",
        description="KL-regularised fine-tuning (PI-FT and baselines) of a diffusion model's LoRA "
        "adapters on one or several processes (launch with torchrun for several).",
        epilog="Writes config.json, metrics.jsonl and lora_rank<r>.pt to --out. Every option is "
        "checked before any weight is loaded.",
    )
    ap.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder (created if missing): config.json, metrics.jsonl, "
        "lora_rank<r>.pt",
    )
    ap.add_argument(
        "--sd-path",
        default=None,
        metavar="DIR",
        help="local Stable Diffusion folder in the diffusers layout (unet/, vae/, "
        "text_encoder/, tokenizer/, scheduler/); nothing is downloaded. Without "
        "it, a tiny random demo model is trained",
    )
    ap.add_argument(
        "--prompt",
        default="A green colored rabbit",
        help="text prompt of the fine-tuned model, with --sd-path "
        "(default: %(default)r, one of the paper's four)",
    )
    ap.add_argument(
        "--method",
        default="pift_ac",
        choices=METHODS,
        help="fine-tuning method (default: %(default)s): parametric PI-FT, DRaFT "
        "(+KL), DPOK or Adjoint Matching (diffctrl.finetune.losses)",
    )
    ap.add_argument(
        "--steps", type=int, default=None, help=f"gradient steps {dflt('steps')}"
    )
    ap.add_argument(
        "--n-traj",
        type=int,
        default=None,
        help="trajectories per gradient step, over all processes; must be divisible "
        f"by the number of processes {dflt('n_traj')}",
    )
    ap.add_argument(
        "--T",
        type=int,
        default=None,
        help=f"transitions of the sampling chain {dflt('T')}",
    )
    ap.add_argument(
        "--beta",
        type=float,
        default=None,
        help=f"KL regularisation weight {dflt('beta')}",
    )
    ap.add_argument(
        "--lr", type=float, default=None, help=f"AdamW learning rate {dflt('lr')}"
    )
    ap.add_argument(
        "--lora-rank",
        type=int,
        default=None,
        help=f"rank of the LoRA adapters {dflt('lora_rank')}",
    )
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the adapters' initialisation and of the noise (default: 0)",
    )
    args = ap.parse_args(argv)
    defaults = PAPER_CLI_DEFAULTS if args.sd_path else DEMO_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args, ap


def _world() -> tuple[int, int, int]:
    def env_int(name, default):
        raw = os.environ.get(name, str(default))
        try:
            return int(raw)
        except ValueError:
            raise ValueError(
                f"environment variable {name} must be an integer, got {raw!r}"
            ) from None

    world, rank, local = (
        env_int("WORLD_SIZE", 1),
        env_int("RANK", 0),
        env_int("LOCAL_RANK", 0),
    )
    if world < 1 or not 0 <= rank < world:
        raise ValueError(
            f"RANK={rank} and WORLD_SIZE={world} must satisfy 0 <= RANK < WORLD_SIZE"
        )
    return world, rank, local


def _check(args, world: int, local: int) -> None:
    """Every check that needs no weights; raises ``ValueError`` / ``FileNotFoundError``."""
    for name in ("steps", "n_traj", "T", "lora_rank"):
        if getattr(args, name) < 1:
            raise ValueError(
                f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}"
            )
    if args.n_traj < 2:
        raise ValueError(
            f"--n-traj must be >= 2 (the baselines average over the batch), "
            f"got {args.n_traj}"
        )
    if args.n_traj % world:
        raise ValueError(
            f"--n-traj {args.n_traj} must be divisible by the number of processes "
            f"{world} (each process keeps n_traj / {world} trajectories)"
        )
    for name in ("beta", "lr"):
        v = getattr(args, name)
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"--{name} must be finite and > 0, got {v}")
    if not args.prompt.strip():
        raise ValueError("--prompt must be a non-empty string")
    if torch.cuda.is_available() and local >= torch.cuda.device_count():
        raise ValueError(
            f"LOCAL_RANK={local} but only {torch.cuda.device_count()} GPUs are visible"
        )
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    parent = (
        out
        if out.exists()
        else next((q for q in out.resolve().parents if q.exists()), None)
    )
    if parent is None or not os.access(parent, os.W_OK):
        raise ValueError(f"--out {out}: {parent} is not writable")
    if args.sd_path:
        from .sd import check_sd_folder

        check_sd_folder(args.sd_path, n_steps=args.T)


def main(argv=None) -> int:
    args, ap = parse_args(argv)
    try:
        world, rank, local = _world()
        _check(args, world, local)
    except (ValueError, FileNotFoundError) as err:
        ap.error(str(err))  # exits with status 2 before any weight is loaded
    say = print if rank == 0 else (lambda *a, **k: None)
    device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL's communicator and DDP on this rank's GPU
    if world > 1:
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
    out = Path(args.out)
    config = {k: v for k, v in vars(args).items()}
    config.update(
        world_size=world,
        device=str(device),
        mode="stable-diffusion" if args.sd_path else "demo",
    )
    say(f"diffctrl.finetune.large.ddp: {json.dumps(config)}", flush=True)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(
            json.dumps(config, indent=1) + "\n", encoding="utf-8"
        )
    if args.sd_path:
        from .sd import build_objective, load_sd

        say(f"loading {args.sd_path} ...", flush=True)
        obj = build_objective(
            load_sd(args.sd_path, device=device),
            args.prompt,
            method=args.method,
            rank=args.lora_rank,
            n_steps=args.T,
            beta=args.beta,
            n_traj=args.n_traj,
            seed=args.seed,
            shard=(rank, world),
            device=device,
        )
    else:
        obj = build(
            args.method,
            args.n_traj,
            args.T,
            beta=args.beta,
            rank=args.lora_rank,
            seed=args.seed,
            shard=(rank, world),
            device=device,
        )
    out.mkdir(parents=True, exist_ok=True)
    if _distributed():
        from torch.nn.parallel import DistributedDataParallel as DDP

        inner = DDP(obj, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        inner = obj
    logged = _Logged(inner, obj, args.steps, out / "metrics.jsonl", rank, world)
    try:
        finetune(obj, args.steps, lr=args.lr, seed=args.seed, model=logged)
    finally:
        logged.close()
    torch.save(lora_state(obj.control.unet), out / f"lora_rank{rank}.pt")
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    say(
        f"final loss {logged.last:.4g} (mean over ranks); wrote {out / 'config.json'}, "
        f"{out / 'metrics.jsonl'}, {out}/lora_rank<r>.pt for {world} rank(s)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
