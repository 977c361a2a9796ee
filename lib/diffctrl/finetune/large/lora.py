"""Low-rank adapters (peft LoRA) as the control, on a diffusers UNet or on the book's own image
models.

A diffusers UNet (``UNet2DModel`` or Stable Diffusion's ``UNet2DConditionModel``) is the
pre-trained chain of :class:`DiffusersChain`; :class:`AdapterControl` puts the adapters on the
book's own image models (the digits experiment).

With the adapters on, the UNet predicts ``eps_theta``; with them off, the pre-trained ``eps``. The
control of PI-FT is the difference of the two ancestral means (``book/notation.md``, *The controlled chain*):

    u_theta(t, y) = m_t^theta(y) - m_t(y) = -b_k / (sqrt(alpha_k) sqrt(1 - abar_k)) (eps_theta - eps),

``k = N - t``; the LoRA ``B`` matrices start at zero, so training starts at ``u = 0`` (the
pre-trained model). diffusers' timestep index ``i`` is our level ``k = i + 1`` (``alphas_cumprod[i]
= alpha_bar[i + 1]``). The paper's defaults (Han et al. 2025, Sec. 6, Stable Diffusion 1.5 +
LoRA + ImageReward): beta = 0.01, AdamW lr 3e-4, 10 trajectories x 50 transitions per gradient step,
1000 steps: :data:`diffctrl.finetune.defaults.PAPER_DEFAULTS`.

:class:`AdapterControl` is the same parametrisation on a score model of the book (e.g. the digit
U-Net, :class:`diffctrl.diffusion.models.SmallUNet`) read as the chain of
:func:`diffctrl.digits.images.model_chain` on flattened images: a copy of the pre-trained network
with LoRA adapters, ``u_theta = m^theta_t - m_t``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ...control.chain import beta_schedule, step_sigmas
from ...diffusion.models import to_score
from ...diffusion.schedules import Schedule

__all__ = [
    "SD_TARGETS",
    "AdapterControl",
    "DiffusersChain",
    "LoRAControl",
    "add_lora",
    "load_pretrained_unet",
    "lora_state",
    "schedule_from_diffusers",
    "set_adapters",
    "tiny_unet",
]

#: The attention projections of a diffusers UNet that carry the LoRA adapters.
SD_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def add_lora(
    unet: nn.Module,
    rank: int = 4,
    alpha: float | None = None,
    target_modules=SD_TARGETS,
    seed: int = 0,
) -> nn.Module:
    """Inject LoRA adapters (peft) of ``rank`` into ``unet``'s ``target_modules``, freeze every
    other parameter; returns ``unet`` (changed in place). ``B = 0`` at the start."""
    from peft import LoraConfig, inject_adapter_in_model

    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"LoRA rank must be an int >= 1, got {rank!r}")
    for p in unet.parameters():
        p.requires_grad_(False)
    cfg = LoraConfig(
        r=rank,
        lora_alpha=alpha if alpha is not None else rank,
        target_modules=list(target_modules),
        init_lora_weights=True,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        inject_adapter_in_model(cfg, unet)
    if not any(p.requires_grad for p in unet.parameters()):
        raise ValueError(
            f"no module of the UNet matches target_modules={list(target_modules)}"
        )
    return unet


def lora_state(unet: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter weights (the trainable parameters), detached copies."""
    return {k: v.detach().clone() for k, v in unet.named_parameters() if "lora_" in k}


def set_adapters(unet: nn.Module, enabled: bool) -> None:
    """Switch every LoRA adapter of ``unet`` on (``enabled``) or off (the pre-trained model)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for mod in unet.modules():
        if isinstance(mod, BaseTunerLayer):
            mod.enable_adapters(enabled)


def schedule_from_diffusers(scheduler) -> Schedule:
    """Our :class:`~diffctrl.diffusion.schedules.Schedule` from a diffusers ``DDPMScheduler`` (its ``betas``)."""
    b = scheduler.betas.double()
    N = b.numel()
    return Schedule(
        "diffusers",
        torch.cat([torch.zeros(1, dtype=torch.float64), b]),
        torch.arange(N + 1, dtype=torch.float64) / N,
    )


class DiffusersChain:
    """The pre-trained chain of an eps-predicting diffusers UNet: ``mean(t, y)`` runs it with the
    adapters off. ``cond``: encoder hidden states for a conditional UNet (e.g. a prompt's
    embedding (1, L, D), repeated over the batch), ``None`` for ``UNet2DModel``. ``timesteps``
    (N,): the UNet's timestep index of each level k = 1..N (default ``k - 1``: a schedule with the
    UNet's own training levels; a strided sub-chain passes the indices it keeps, see
    :func:`diffctrl.finetune.respacing.strided_schedule`)."""

    def __init__(
        self,
        unet: nn.Module,
        sched: Schedule,
        beta,
        event_shape,
        cond=None,
        variance: str = "large",
        timesteps: torch.Tensor | None = None,
    ):
        self.unet, self.sched, self.cond = unet, sched.to(torch.float64), cond
        self.T = sched.N
        self.variance = variance
        self.sigma = step_sigmas(self.sched, variance)
        self.beta = beta_schedule(beta, self.T)
        self.event_shape = tuple(event_shape)
        ts = (
            torch.arange(self.T)
            if timesteps is None
            else torch.as_tensor(timesteps).long().cpu()
        )
        if ts.shape != (self.T,):
            raise ValueError(
                f"timesteps must have shape ({self.T},) (one per level), got {tuple(ts.shape)}"
            )
        self.timesteps = ts

    def eps(self, t, y: torch.Tensor, adapters: bool) -> torch.Tensor:
        t = torch.as_tensor(t, device=y.device)
        if t.ndim == 0:
            t = t.expand(y.shape[0])
        timesteps = self.timesteps.to(y.device)[(self.T - t) - 1]
        kw = {}
        if self.cond is not None:
            kw["encoder_hidden_states"] = self.cond.to(y).expand(
                y.shape[0], *self.cond.shape[1:]
            )
        set_adapters(self.unet, adapters)
        try:
            return self.unet(y, timesteps, **kw).sample
        finally:
            set_adapters(self.unet, True)

    def _coef(self, t, y):
        # the levels index the (CPU) schedule: an int step stays on the host (no round trip
        # through y's device), a tensor of steps is brought over once
        t = torch.as_tensor(t)
        if t.ndim == 0:
            t = t.expand(y.shape[0])
        k = (self.T - t).cpu()
        b, ab = self.sched.betas[k], self.sched.alpha_bar[k]
        shp = (-1,) + (1,) * (y.ndim - 1)
        return (
            (1 - b).rsqrt().reshape(shp).to(y),
            (b / ((1 - b).sqrt() * (1 - ab).sqrt())).reshape(shp).to(y),
        )

    def mean(self, t, y: torch.Tensor) -> torch.Tensor:
        """m_t(y) = (y - b_k eps / sqrt(1 - abar_k)) / sqrt(alpha_k), adapters off."""
        a, c = self._coef(t, y)
        return a * y - c * self.eps(t, y, adapters=False)


class LoRAControl(nn.Module):
    """``u_theta(t, y) = m^theta_t(y) - m_t(y)`` for a :class:`DiffusersChain` whose UNet carries
    LoRA adapters (:func:`add_lora`); ``t`` an int or a (B,) tensor of reverse steps."""

    def __init__(self, chain: DiffusersChain):
        super().__init__()
        self.chain = chain
        self.unet = chain.unet

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        # The base network's parameters are frozen (requires_grad False), but it is NOT run under
        # no_grad: d u / d y = -c (d eps_theta / d y - d eps / d y) needs both input Jacobians,
        # or reward backpropagation through the chain (DRaFT) gets d(m + u)/dy wrong.
        _, c = self.chain._coef(t, y)
        base = self.chain.eps(t, y, adapters=False)
        return -c * (self.chain.eps(t, y, adapters=True) - base)


class AdapterControl(nn.Module):
    """``u_theta(t, y) = m^theta_t(y) - m_t(y) = b_k / sqrt(1 - b_k) (s^theta_k(y) - s_k(y))``,
    ``k = N - t``, where ``s^theta`` is a copy of the pre-trained ``model`` carrying LoRA adapters
    of ``rank`` on ``target_modules`` (:func:`add_lora`; ``B = 0`` at the start, so ``u = 0``:
    the pre-trained model) and ``s`` the frozen original. States are flattened images (B, dim);
    ``t`` is an int or a (B,) tensor of reverse steps. Each call runs both networks; the budget of
    :mod:`diffctrl.finetune.losses` counts it as one network evaluation, like any control."""

    def __init__(
        self,
        model: nn.Module,
        sched: Schedule,
        image_shape,
        *,
        rank: int = 4,
        target_modules=("conv1", "conv2"),
        seed: int = 0,
    ):
        super().__init__()
        if getattr(model, "N", None) != sched.N:
            raise ValueError(
                f"model was built for N={getattr(model, 'N', None)} levels, schedule has N={sched.N}"
            )
        self.image_shape = tuple(int(s) for s in image_shape)
        self.dim = math.prod(self.image_shape)
        self.N, self.parametrisation = sched.N, model.parametrisation
        self.sched = sched.to(torch.float64)
        self.tuned = add_lora(
            copy.deepcopy(model), rank, target_modules=target_modules, seed=seed
        )
        self._base = [
            model.eval()
        ]  # a list: not a submodule, so not in parameters() or state_dict()
        for p_ in model.parameters():
            p_.requires_grad_(False)
        b = self.sched.betas
        self.register_buffer("coef", (b / (1 - b).sqrt()).float(), persistent=False)

    def _score(self, net: nn.Module, x: torch.Tensor, k) -> torch.Tensor:
        return to_score(net(x, k), x, k, self.sched, self.parametrisation)

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        if y.ndim != 2 or y.shape[1] != self.dim:
            raise ValueError(
                f"states must have shape (B, {self.dim}), got {tuple(y.shape)}"
            )
        k = (
            self.N - t
            if isinstance(t, int)
            else self.N - torch.as_tensor(t, device=y.device)
        )
        x = y.reshape(-1, *self.image_shape)
        base = self._base[0].to(y.device)
        # frozen parameters, not a cut graph: D_y u = D_y(m^theta - m) needs the base's input
        # derivative too (reward backpropagation, Adjoint Matching, the LoRA chain's Jacobian)
        s0 = self._score(base, x, k)
        s1 = self._score(self.tuned, x, k)
        c = self.coef.to(y.device)[torch.as_tensor(k, device=y.device)]
        c = c.reshape(-1, *([1] * (x.ndim - 1))) if c.ndim else c
        return (c * (s1 - s0)).reshape(y.shape[0], self.dim).to(y.dtype)


def tiny_unet(sample_size: int = 8, channels: int = 1, seed: int = 0) -> nn.Module:
    """A tiny randomly initialised diffusers ``UNet2DModel`` with attention (for tests; no
    download)."""
    from diffusers import UNet2DModel

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return UNet2DModel(
            sample_size=sample_size,
            in_channels=channels,
            out_channels=channels,
            layers_per_block=1,
            block_out_channels=(8, 16),
            down_block_types=("DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D"),
            norm_num_groups=4,
            attention_head_dim=4,
        )


def load_pretrained_unet(
    path: str, subfolder: str | None = "unet", conditional: bool = True
):
    """Load a UNet from a local folder (no download: ``local_files_only``); Stable Diffusion 1.5
    keeps it in ``<path>/unet``."""
    from diffusers import UNet2DConditionModel, UNet2DModel

    cls = UNet2DConditionModel if conditional else UNet2DModel
    return cls.from_pretrained(path, subfolder=subfolder, local_files_only=True)
