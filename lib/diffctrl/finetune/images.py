"""A trained image score model as the pre-trained chain of fine-tuning, on flattened states.

:func:`model_chain` wraps an eps-, x0- or score-predicting network (e.g.
:class:`diffctrl.diffusion.models.SmallUNet`) as a
:class:`diffctrl.control.chain.ControlledChain` over vectors of ``prod(image_shape)`` pixels, so
that the 2-D machinery (``nets.ControlMLP``, ``nets.ValueMLP``, every method of
:mod:`.parametric`) runs unchanged. Unlike :func:`diffctrl.diffusion.models.model_score`, the
score is differentiable in its input (the network's parameters frozen): reward backpropagation
and Adjoint Matching need ``D m_t(y)`` (``book/notation.md``, *The controlled chain*; the mean is
``m_t(y) = (y + b_k s_k(y)) / sqrt(1 - b_k)``, ``k = N - t``).

:class:`AdapterControl` is the paper's parametrisation of the control on such a model: a copy of
the pre-trained network with low-rank adapters (peft LoRA), ``u_theta = m^theta_t - m_t``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..control.chain import ControlledChain
from ..diffusion.models import to_score
from ..diffusion.schedules import Schedule


def model_chain(
    model: nn.Module, sched: Schedule, beta, image_shape, *, variance: str = "large"
) -> ControlledChain:
    """The chain of ``model`` (attributes ``N`` and ``parametrisation``) on states (B, dim),
    ``dim = prod(image_shape)``; the model is put in eval mode with frozen parameters."""
    if getattr(model, "N", None) != sched.N:
        raise ValueError(
            f"model was built for N={getattr(model, 'N', None)} levels, schedule has N={sched.N}"
        )
    image_shape = tuple(int(s) for s in image_shape)
    dim = math.prod(image_shape)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    def score(y: torch.Tensor, k: int) -> torch.Tensor:
        if y.ndim != 2 or y.shape[1] != dim:
            raise ValueError(f"states must have shape (B, {dim}), got {tuple(y.shape)}")
        x = y.reshape(-1, *image_shape)
        s = to_score(model(x, k), x, k, sched, model.parametrisation)
        return s.reshape(y.shape[0], dim)

    return ControlledChain.create(sched, score, beta, dim, variance)


class AdapterControl(nn.Module):
    """``u_theta(t, y) = m^theta_t(y) - m_t(y) = b_k / sqrt(1 - b_k) (s^theta_k(y) - s_k(y))``,
    ``k = N - t``, where ``s^theta`` is a copy of the pre-trained ``model`` carrying LoRA adapters
    of ``rank`` on ``target_modules`` (:func:`.lora.add_lora`; ``B = 0`` at the start, so ``u = 0``:
    the pre-trained model) and ``s`` the frozen original. States are flattened images (B, dim);
    ``t`` is an int or a (B,) tensor of reverse steps. Each call runs both networks; the budget of
    :mod:`.parametric` counts it as one network evaluation, like any control."""

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
        from .lora import add_lora

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


def to_images(y: torch.Tensor, image_shape) -> torch.Tensor:
    """Flattened states (B, dim) back to images (B, *image_shape)."""
    return y.reshape(y.shape[0], *image_shape)


def image_grid(
    y: torch.Tensor, side: int, pad: int = 1, background: float = -1.0
) -> torch.Tensor:
    """The first ``side**2`` single-channel images of ``y`` ((B, H, W), (B, 1, H, W) or
    flattened square (B, H*H)) tiled row by row into one (side (H + pad) + pad, ...) image,
    with ``pad`` pixels of ``background`` between tiles so that neighbours do not touch."""
    y = y.detach().cpu()
    if y.ndim == 2:
        h = math.isqrt(y.shape[1])
        if h * h != y.shape[1]:
            raise ValueError(
                f"flattened images must be square, got {y.shape[1]} pixels"
            )
        y = y.reshape(-1, h, h)
    y = y.reshape(y.shape[0], y.shape[-2], y.shape[-1])
    if y.shape[0] < side * side or side < 1 or pad < 0:
        raise ValueError(
            f"need side >= 1, pad >= 0 and at least side**2 = {side * side} "
            f"images, got side={side}, pad={pad}, {y.shape[0]} images"
        )
    t = nn.functional.pad(y[: side * side], (pad, 0, pad, 0), value=background)
    H, W = t.shape[-2:]
    g = t.reshape(side, side, H, W).permute(0, 2, 1, 3).reshape(side * H, side * W)
    return nn.functional.pad(g, (0, pad, 0, pad), value=background)


def score_samples(
    chain: ControlledChain,
    control,
    reward,
    classifier: nn.Module,
    target: int,
    n: int,
    *,
    seed: int = 0,
    device="cpu",
    judge: nn.Module | None = None,
) -> tuple[dict, torch.Tensor]:
    """``n`` terminal samples of the (controlled) chain (``control=None``: pre-trained) and their
    scores: mean reward and path KL (each with ``_se``), fraction classified as ``target``,
    entropy of the predicted labels (nats) and mean pairwise distance; with a ``judge`` (a
    second classifier, never trained against) also its ``judge_target_frac``, ``judge_logp``
    (mean ``log p(target | x)``) and ``judge_entropy``. Returns (scores, samples (n, dim))."""
    from .classifier import class_entropy, mean_pairwise_distance, predict
    from .metrics import _mean_se
    from .parametric import rollout

    ctrl = (lambda t, y: torch.zeros_like(y)) if control is None else control
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        roll = rollout(chain, ctrl, reward, n, gen, device=device)
        y = roll.y[-1]
        labels = predict(classifier, y)
        out = {}
        if judge is not None:
            logits = judge(y)
            jl = logits.argmax(1)
            out["judge_target_frac"] = float((jl == target).double().mean())
            out["judge_logp"] = float(
                torch.log_softmax(logits.double(), 1)[:, target].mean()
            )
            out["judge_entropy"] = class_entropy(jl, judge.n_classes)
    out["reward"], out["reward_se"] = _mean_se(roll.r)
    out["kl"], out["kl_se"] = _mean_se(roll.kl.sum(0))
    out["target_frac"] = float((labels == target).double().mean())
    out["class_entropy"] = class_entropy(labels, classifier.n_classes)
    out["pairwise"] = mean_pairwise_distance(y)
    return out, y


def finetune_guarded(
    make, steps: int, *, lr: float, lr_factors=(1.0,), check=None, **kwargs
) -> tuple[object, object, list[dict]]:
    """Train ``make()`` (a fresh :class:`.parametric.FinetuneObjective`) with
    :func:`.parametric.finetune` at ``lr * f`` for the first factor ``f`` of ``lr_factors``
    whose run neither raises ``FloatingPointError`` (a non-finite loss) nor fails
    ``check(objective)`` (e.g. samples far out of the pixel range). Returns ``(objective,
    result, attempts)``; ``objective`` and ``result`` are ``None`` when every attempt diverged,
    ``attempts`` lists ``{"lr", "diverged", "reason"}`` per try."""
    from .parametric import finetune

    if not lr_factors or any(not f > 0 for f in lr_factors):
        raise ValueError(f"lr_factors must be positive numbers, got {lr_factors!r}")
    attempts = []
    for f in lr_factors:
        obj = make()
        try:
            res = finetune(obj, steps, lr=lr * f, **kwargs)
        except FloatingPointError as err:
            attempts.append({"lr": lr * f, "diverged": True, "reason": str(err)})
            continue
        if check is not None and not check(obj):
            attempts.append({"lr": lr * f, "diverged": True, "reason": "check failed"})
            continue
        attempts.append({"lr": lr * f, "diverged": False, "reason": ""})
        return obj, res, attempts
    return None, None, attempts
