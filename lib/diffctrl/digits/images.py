"""Images as states of the controlled chain: a trained image score model as the pre-trained
chain, its samples scored, and images tiled for a figure.

:func:`model_chain` wraps an eps-, x0- or score-predicting network (e.g.
:class:`diffctrl.diffusion.models.SmallUNet`) as a
:class:`diffctrl.control.chain.ControlledChain` over vectors of ``prod(image_shape)`` pixels, so
that the 2-D machinery (:class:`diffctrl.finetune.nets.ControlMLP`,
:class:`diffctrl.finetune.nets.ValueMLP`, every method of :mod:`diffctrl.finetune.losses`) runs
unchanged. Unlike :func:`diffctrl.diffusion.models.model_score`, the score is differentiable in
its input (the network's parameters frozen): reward backpropagation and Adjoint Matching need
``D m_t(y)`` (``book/notation.md``, *The controlled chain*; the mean is
``m_t(y) = (y + b_k s_k(y)) / sqrt(1 - b_k)``, ``k = N - t``).

:func:`score_samples` draws terminal samples of such a chain and scores them with the digit
classifiers (:mod:`.classifiers`); :func:`to_images` and :func:`image_grid` turn flattened
states back into images and tile them. Nothing here needs the ``large`` extra (the LoRA control
of such a model is :class:`diffctrl.finetune.large.lora.AdapterControl`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..control.chain import ControlledChain
from ..diffusion.models import to_score
from ..diffusion.schedules import Schedule
from ..finetune.metrics import mean_se
from ..finetune.trajectories import rollout
from .classifiers import class_entropy, mean_pairwise_distance, predict

__all__ = ["image_grid", "model_chain", "score_samples", "to_images"]


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
    out["reward"], out["reward_se"] = mean_se(roll.r)
    out["kl"], out["kl_se"] = mean_se(roll.kl.sum(0))
    out["target_frac"] = float((labels == target).double().mean())
    out["class_entropy"] = class_entropy(labels, classifier.n_classes)
    out["pairwise"] = mean_pairwise_distance(y)
    return out, y
