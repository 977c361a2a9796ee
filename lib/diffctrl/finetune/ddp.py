"""Fine-tuning across processes with ``torch.distributed`` and DistributedDataParallel.

Run with any launcher that sets ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` / ``MASTER_PORT``::

    torchrun --nproc_per_node 2 -m diffctrl.finetune.ddp --out run/ --steps 3
    accelerate launch --num_processes 2 -m diffctrl.finetune.ddp --out run/ --steps 3

(``torchrun --nnodes ... --node_rank ...`` across nodes). With ``--sd-path`` (a local Stable
Diffusion folder) and ``--prompt`` the same command trains the paper's problem
(:func:`.sd.build_objective`, the paper's hyper-parameters unless given), e.g.
``torchrun --nproc_per_node 8 -m diffctrl.finetune.ddp --out run/ --sd-path /models/sd15
--prompt "A green colored rabbit" --steps 1000 --n-traj 16 --T 50 --beta 0.01``. Every rank draws the same global batch of
noise from the same seed and keeps its shard (:func:`.parametric.rollout`); the loss is a mean
over the shard and DDP averages gradients, so the update equals a single process's on the global
batch. Backend: ``nccl`` on GPUs, ``gloo`` on CPUs. The demo model is the tiny diffusers UNet
with LoRA adapters and a differentiable toy reward; :func:`train` takes any objective.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from .budget import Budget
from .lora import DiffusersChain, LoRAControl, add_lora, lora_state, tiny_unet
from .nets import ValueCNN
from .parametric import FinetuneObjective, finetune
from ..diffusion.schedules import vp_sde_schedule


def toy_reward(y: torch.Tensor) -> torch.Tensor:
    """A smooth differentiable image reward: minus the mean squared distance to a fixed ramp."""
    ramp = torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype, device=y.device)
    return -((y - ramp) ** 2).reshape(y.shape[0], -1).mean(1)


def build(method: str = "pift", n_traj: int = 4, T: int = 4, beta: float = 0.01, rank: int = 2,
          seed: int = 0, shard=(0, 1), device="cpu") -> FinetuneObjective:
    """The demo objective: tiny UNet (8x8, 1 channel) + LoRA, ``T`` steps, toy reward."""
    unet = add_lora(tiny_unet(seed=seed), rank=rank, seed=seed).to(device)
    chain = DiffusersChain(unet, vp_sde_schedule(T), beta, (1, 8, 8))
    control = LoRAControl(chain)
    critic = None
    if method == "pift":
        with torch.random.fork_rng():
            torch.manual_seed(seed + 1)
            critic = ValueCNN(1, T + 1, width=8, emb_dim=8).to(device)
    return FinetuneObjective(chain, toy_reward, control, method, critic=critic, n_traj=n_traj,
                             shard=shard, budget=Budget(), device=device)


def train(objective: FinetuneObjective, steps: int, **kw):
    """:func:`.parametric.finetune` through a DDP wrapper when a process group is initialised."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        from torch.nn.parallel import DistributedDataParallel as DDP

        dev = objective.device
        model = DDP(objective, device_ids=[dev.index] if dev.type == "cuda" else None)
        return finetune(objective, steps, model=model, **kw)
    return finetune(objective, steps, **kw)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--n-traj", type=int, default=4)
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--method", default="pift")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--beta", type=float, default=0.01)
    ap.add_argument("--sd-path", default=None, help="local Stable Diffusion folder (diffusers layout)")
    ap.add_argument("--prompt", default="A green colored rabbit")
    args = ap.parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    if args.sd_path:
        from .sd import build_objective, load_sd

        obj = build_objective(load_sd(args.sd_path, device=device), args.prompt, method=args.method,
                              n_steps=args.T, beta=args.beta, n_traj=args.n_traj, seed=args.seed,
                              shard=(rank, world), device=device)
    else:
        obj = build(args.method, args.n_traj, args.T, beta=args.beta, seed=args.seed,
                    shard=(rank, world), device=device)
    train(obj, args.steps, lr=args.lr, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(lora_state(obj.control.unet), out / f"lora_rank{rank}.pt")
    if world > 1:
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
