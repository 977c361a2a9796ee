"""The paper's experiment on the same code: Stable Diffusion + LoRA + a differentiable image reward.

Han, Razaviyayn, Xu (2025, Sec. 6) fine-tune Stable Diffusion 1.5 with LoRA adapters towards
ImageReward on DPOK's four prompts (:data:`PAPER_PROMPTS`), beta = 0.01, AdamW lr 3e-4,
10 trajectories x 50 transitions per gradient step, 1000 steps
(:data:`diffctrl.finetune.defaults.PAPER_DEFAULTS`). Here that is one call,
:func:`build_objective`, returning the same :class:`diffctrl.finetune.objective.FinetuneObjective`
every other experiment trains (any method, any process count under :mod:`.ddp`):

- :func:`load_sd` reads a *local* copy in the diffusers layout (``unet/``, ``vae/``,
  ``text_encoder/``, ``tokenizer/``, ``scheduler/``); nothing is downloaded;
- :func:`diffctrl.finetune.respacing.strided_schedule` the 50-transition sub-chain of the 1000-level model: levels k = 1..n
  at the UNet timesteps ``offset + (k - 1) * (1000 // n)`` (diffusers' "leading" spacing), with
  ``alpha_bar_k`` read off the scheduler and ``beta_k = 1 - alpha_bar_k / alpha_bar_{k-1}``
  (the DDPM chain of the respaced schedule);
- the chain runs in SD's latent space, (4, H/8, W/8); the reward sees decoded images,
  ``r(y) = image_reward(vae.decode(y / scaling_factor))`` (:class:`DecodedReward`);
- ImageReward's weights cannot be fetched here: any differentiable ``image_reward`` (B, 3, H, W)
  -> (B,) can be passed; :func:`green_reward` is a stand-in that runs anywhere.

[ours] We sample without classifier-free guidance (our reading of the paper does not say), so the
pre-trained chain is the prompt-conditional model itself. :func:`tiny_sd_folder` writes a tiny
random model in the same layout: CI runs the whole path on it, and the notebook falls back to it
when no weights are given.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from ..defaults import PAPER_DEFAULTS
from ..losses import LOSSES
from ..nets import ValueCNN
from ..objective import FinetuneObjective
from ..respacing import strided_schedule
from .lora import DiffusersChain, LoRAControl, add_lora

__all__ = [
    "PAPER_PROMPTS",
    "SD_PARTS",
    "DecodedReward",
    "build_objective",
    "check_sd_folder",
    "encode_prompt",
    "green_reward",
    "load_sd",
    "tiny_sd_folder",
]

#: DPOK's four prompts, the paper's (Sec. 6).
PAPER_PROMPTS = (
    "A green colored rabbit",
    "A cat and a dog",
    "Four wolves in the park",
    "A dog on the moon",
)


#: The parts of a diffusers Stable Diffusion folder and the config file each must hold.
SD_PARTS = {
    "unet": "config.json",
    "vae": "config.json",
    "text_encoder": "config.json",
    "tokenizer": "tokenizer_config.json",
    "scheduler": "scheduler_config.json",
}


def check_sd_folder(path: str | os.PathLike, n_steps: int | None = None) -> dict:
    """Check a local diffusers folder *without loading any weights*: every part of
    :data:`diffctrl.finetune.large.sd.SD_PARTS` present with its config file, and (``n_steps``) that the strided sub-chain
    of :func:`diffctrl.finetune.respacing.strided_schedule` fits the scheduler's training levels. Returns the scheduler's
    config (a dict); raises ``FileNotFoundError`` / ``ValueError`` naming what is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"sd_path: no Stable Diffusion folder at {path}")
    missing = [
        f"{part}/{cfg}"
        for part, cfg in SD_PARTS.items()
        if not (path / part / cfg).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"sd_path: {path} lacks {', '.join(missing)} (diffusers layout)"
        )
    cfg = json.loads(
        (path / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8")
    )
    if n_steps is not None:
        n_train = int(cfg.get("num_train_timesteps", 1000))
        offset = int(cfg.get("steps_offset", 0))
        if (
            isinstance(n_steps, bool)
            or not isinstance(n_steps, int)
            or not 1 <= n_steps <= n_train
        ):
            raise ValueError(
                f"n_steps must be an int in 1..{n_train} (the scheduler's "
                f"num_train_timesteps), got {n_steps!r}"
            )
        if (n_steps - 1) * (n_train // n_steps) + offset >= n_train:
            raise ValueError(
                f"n_steps={n_steps} with steps_offset={offset} puts the last timestep "
                f"past {n_train - 1}"
            )
    return cfg


def load_sd(
    path: str | os.PathLike, device="cpu", dtype=torch.float32
) -> SimpleNamespace:
    """UNet, VAE, text encoder, tokenizer and scheduler from a local diffusers folder (no download);
    the networks frozen and in eval mode."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    path = Path(path)
    check_sd_folder(path)
    kw = dict(local_files_only=True)
    sd = SimpleNamespace(
        unet=UNet2DConditionModel.from_pretrained(path, subfolder="unet", **kw),
        vae=AutoencoderKL.from_pretrained(path, subfolder="vae", **kw),
        text_encoder=CLIPTextModel.from_pretrained(
            path, subfolder="text_encoder", **kw
        ),
        tokenizer=CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", **kw),
        scheduler=DDPMScheduler.from_pretrained(path, subfolder="scheduler", **kw),
    )
    for m in (sd.unet, sd.vae, sd.text_encoder):
        m.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return sd


@torch.no_grad()
def encode_prompt(sd: SimpleNamespace, prompt: str) -> torch.Tensor:
    """The text encoder's last hidden state for ``prompt``, (1, L, D)."""
    if not isinstance(prompt, str) or not prompt:
        raise ValueError(f"prompt must be a non-empty string, got {prompt!r}")
    tok = sd.tokenizer
    ids = tok(
        prompt,
        padding="max_length",
        max_length=tok.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return sd.text_encoder(ids.to(sd.text_encoder.device))[0]


class DecodedReward(nn.Module):
    """``r(y) = image_reward(vae.decode(y / scaling_factor))`` on latents y (B, 4, h, w);
    differentiable in y (the VAE frozen)."""

    def __init__(self, vae: nn.Module, image_reward):
        super().__init__()
        self.vae, self.image_reward = vae, image_reward
        self.scale = float(vae.config.scaling_factor)

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(y / self.scale).sample

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.image_reward(self.decode(y))


def green_reward(images: torch.Tensor) -> torch.Tensor:
    """A differentiable stand-in for ImageReward on images in [-1, 1], (B, 3, H, W) -> (B,): the mean
    excess of green over the other two channels (for "A green colored rabbit")."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images must have shape (B, 3, H, W), got {tuple(images.shape)}"
        )
    r, g, b = images.clamp(-1, 1).unbind(1)
    return (g - 0.5 * (r + b)).mean(dim=(1, 2))


def build_objective(
    sd: SimpleNamespace,
    prompt: str,
    image_reward=green_reward,
    *,
    method: str = "pift_ac",
    rank: int = PAPER_DEFAULTS["rank"],
    n_steps: int = PAPER_DEFAULTS["n_steps"],
    beta: float = PAPER_DEFAULTS["beta"],
    n_traj: int = PAPER_DEFAULTS["n_traj"],
    seed: int = 0,
    shard=(0, 1),
    device="cpu",
) -> FinetuneObjective:
    """The paper's fine-tuning problem for ``prompt`` as a
    :class:`diffctrl.finetune.objective.FinetuneObjective`:
    LoRA adapters of ``rank`` on the UNet's attention projections as the control
    (:class:`.lora.LoRAControl`), the ``n_steps``-transition DDPM sub-chain, the decoded-image reward,
    and (PI-FT) a small convolutional critic on the latents."""
    sched, ts = strided_schedule(
        sd.scheduler.alphas_cumprod,
        n_steps,
        int(getattr(sd.scheduler.config, "steps_offset", 0)),
    )
    unet = add_lora(sd.unet, rank=rank, seed=seed).to(device)
    c = unet.config
    shape = (c.in_channels, c.sample_size, c.sample_size)
    chain = DiffusersChain(
        unet,
        sched,
        beta,
        shape,
        cond=encode_prompt(sd, prompt).to(device),
        timesteps=ts,
    )
    critic = None
    if LOSSES[method].critic:
        with torch.random.fork_rng():
            torch.manual_seed(seed + 1)
            critic = ValueCNN(c.in_channels, n_steps + 1).to(device)
    return FinetuneObjective(
        chain,
        DecodedReward(sd.vae, image_reward),
        LoRAControl(chain),
        method,
        critic=critic,
        n_traj=n_traj,
        shard=shard,
        device=device,
    )


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins of the bytes used by CLIP's byte-level BPE (GPT-2's table)."""
    keep = (
        set(range(ord("!"), ord("~") + 1))
        | set(range(0xA1, 0xAD))
        | set(range(0xAE, 0x100))
    )
    out, extra = [], 0
    for b in range(256):
        if b in keep:
            out.append(chr(b))
        else:
            out.append(chr(256 + extra))
            extra += 1
    return out


def tiny_sd_folder(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a tiny randomly initialised Stable-Diffusion-shaped model to ``path`` (latents
    4 x 8 x 8, images 16 x 16, a byte-level tokenizer without merges): the code path of
    :func:`load_sd` / :func:`build_objective` without any download."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    path = Path(path)
    (path / "tokenizer").mkdir(parents=True, exist_ok=True)
    chars = _byte_chars()
    vocab = {ch: i for i, ch in enumerate(chars)}
    vocab.update({ch + "</w>": i + 256 for i, ch in enumerate(chars)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = 512, 513
    (path / "tokenizer" / "vocab.json").write_text(json.dumps(vocab))
    (path / "tokenizer" / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(
        str(path / "tokenizer" / "vocab.json"),
        str(path / "tokenizer" / "merges.txt"),
        model_max_length=8,
    ).save_pretrained(path / "tokenizer")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        CLIPTextModel(
            CLIPTextConfig(
                vocab_size=514,
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                max_position_embeddings=8,
                bos_token_id=512,
                eos_token_id=513,
                pad_token_id=513,
            )
        ).save_pretrained(path / "text_encoder")
        UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(8, 16),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=16,
            norm_num_groups=4,
            attention_head_dim=4,
        ).save_pretrained(path / "unet")
        AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=(8, 16),
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            norm_num_groups=4,
            sample_size=16,
        ).save_pretrained(path / "vae")
    DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        steps_offset=1,
    ).save_pretrained(path / "scheduler")
    return path
