"""A trained image score model as the pre-trained chain of fine-tuning, on flattened states.

:func:`model_chain` wraps an eps-, x0- or score-predicting network (e.g.
:class:`diffctrl.diffusion.models.SmallUNet`) as a
:class:`diffctrl.control.chain.ControlledChain` over vectors of ``prod(image_shape)`` pixels, so
that the 2-D machinery (``nets.ControlMLP``, ``nets.ValueMLP``, every method of
:mod:`.parametric`) runs unchanged. Unlike :func:`diffctrl.diffusion.models.model_score`, the
score is differentiable in its input (the network's parameters frozen): reward backpropagation
and Adjoint Matching need ``D m_t(y)`` (``papers.md`` Sec. 1; the mean is
``m_t(y) = (y + b_k s_k(y)) / sqrt(1 - b_k)``, ``k = N - t``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..control.chain import ControlledChain
from ..diffusion.models import to_score
from ..diffusion.schedules import Schedule


def model_chain(model: nn.Module, sched: Schedule, beta, image_shape, *,
                variance: str = "large") -> ControlledChain:
    """The chain of ``model`` (attributes ``N`` and ``parametrisation``) on states (B, dim),
    ``dim = prod(image_shape)``; the model is put in eval mode with frozen parameters."""
    if getattr(model, "N", None) != sched.N:
        raise ValueError(f"model was built for N={getattr(model, 'N', None)} levels, schedule has N={sched.N}")
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


def score_samples(chain: ControlledChain, control, reward, classifier: nn.Module, target: int,
                  n: int, *, seed: int = 0, device="cpu") -> tuple[dict, torch.Tensor]:
    """``n`` terminal samples of the (controlled) chain (``control=None``: pre-trained) and their
    scores: mean reward and path KL (each with ``_se``), fraction classified as ``target``,
    entropy of the predicted labels (nats) and mean pairwise distance. Returns (scores, samples
    (n, dim))."""
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
    out["reward"], out["reward_se"] = _mean_se(roll.r)
    out["kl"], out["kl_se"] = _mean_se(roll.kl.sum(0))
    out["target_frac"] = float((labels == target).double().mean())
    out["class_entropy"] = class_entropy(labels, classifier.n_classes)
    out["pairwise"] = mean_pairwise_distance(y)
    return out, y
