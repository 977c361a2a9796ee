"""A small digit classifier, its class log-probability as a fine-tuning reward, and the
diversity scores of a set of images (experiment 2 of ``papers.md`` Sec. 1, on the 8x8 digits).

- :class:`DigitClassifier`: an MLP ``f(x) -> logits`` over flattened images, shape (B, n_classes);
- :func:`train_classifier`: cross-entropy with AdamW, trained on clean images plus Gaussian pixel
  noise of standard deviation ``noise_std`` (so that its gradient is tamer off the data manifold:
  [ours], the paper's ImageReward is a fixed network);
- :class:`ClassLogProb`: the reward ``r(x) = log softmax(f(x))_c`` of a target class ``c``,
  shape (B,), differentiable in ``x``, the classifier frozen. With ``beta = 1`` the tilted target
  ``p* ∝ p0 exp(r / beta) = p0(x) p(c | x)`` is the class-conditional law when ``p(c | x)`` is the
  Bayes classifier of ``p0`` (classifier guidance, Dhariwal & Nichol 2021);
- :func:`class_entropy` (entropy in nats of the predicted-label histogram, ``log K`` for K equally
  frequent classes, 0 for one class) and :func:`mean_pairwise_distance` (mean Euclidean distance
  over the ``n (n - 1) / 2`` pairs).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from tqdm.auto import tqdm


def _flat(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise ValueError(f"x must be a tensor of shape (B, ...) with B samples, got {type(x).__name__}")
    return x.reshape(x.shape[0], -1)


class DigitClassifier(nn.Module):
    """``logits = MLP(flatten(x))`` for images x of ``dim`` pixels (B, dim) or (B, C, H, W)."""

    def __init__(self, dim: int = 64, n_classes: int = 10, hidden: int = 128, depth: int = 2):
        super().__init__()
        if dim < 1 or n_classes < 2 or hidden < 1 or depth < 1:
            raise ValueError(f"need dim >= 1, n_classes >= 2, hidden >= 1, depth >= 1; "
                             f"got {dim}, {n_classes}, {hidden}, {depth}")
        self.dim, self.n_classes = dim, n_classes
        layers: list[nn.Module] = [nn.Linear(dim, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _flat(x)
        if x.shape[1] != self.dim:
            raise ValueError(f"x must have {self.dim} pixels per sample, got {x.shape[1]}")
        return self.net(x)


def train_classifier(model: DigitClassifier, x: torch.Tensor, labels: torch.Tensor, steps: int, *,
                     batch_size: int = 128, lr: float = 3e-3, noise_std: float = 0.0,
                     weight_decay: float = 1e-4, seed: int = 0, device="cpu",
                     progress: bool = False) -> list[float]:
    """Minimise the cross-entropy of ``model`` on ``(x, labels)`` (mini-batches drawn with
    replacement, Gaussian pixel noise of std ``noise_std`` added) with AdamW; returns the losses."""
    x, labels = _flat(x), torch.as_tensor(labels)
    if labels.shape != (x.shape[0],) or labels.dtype != torch.long:
        raise ValueError(f"labels must be a long tensor of shape ({x.shape[0]},)")
    if int(labels.min()) < 0 or int(labels.max()) >= model.n_classes:
        raise ValueError(f"labels must lie in 0..{model.n_classes - 1}")
    if not isinstance(steps, int) or steps < 0 or batch_size < 1 or lr <= 0 or noise_std < 0:
        raise ValueError(f"need steps >= 0, batch_size >= 1, lr > 0, noise_std >= 0; "
                         f"got {steps}, {batch_size}, {lr}, {noise_std}")
    model.to(device)
    x, labels = x.to(device), labels.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(int(seed))
    losses = []
    for _ in tqdm(range(steps), desc="classifier", disable=not progress):
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=gen).to(device)
        xb = x[idx]
        if noise_std > 0:
            xb = xb + noise_std * torch.randn(xb.shape, generator=gen, dtype=xb.dtype).to(device)
        loss = nn.functional.cross_entropy(model(xb), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Predicted labels ``argmax f(x)``, shape (B,)."""
    return model(x).argmax(1)


def accuracy(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``x`` whose predicted label equals ``labels``."""
    return float((predict(model, x) == labels.to(x.device)).double().mean())


class ClassLogProb:
    """Reward ``r(x) = log p(target | x) = log softmax(f(x))_target``, shape (B,), for x of shape
    (B, dim) or (B, C, H, W); differentiable in x, the classifier's parameters are frozen."""

    def __init__(self, classifier: DigitClassifier, target: int):
        if not isinstance(target, int) or not 0 <= target < classifier.n_classes:
            raise ValueError(f"target must be an int class in 0..{classifier.n_classes - 1}, got {target!r}")
        self.classifier, self.target = classifier.eval(), target
        for p in self.classifier.parameters():
            p.requires_grad_(False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(x)
        return torch.log_softmax(logits, 1)[:, self.target]


def class_entropy(labels: torch.Tensor, n_classes: int) -> float:
    """Entropy (nats) of the empirical distribution of integer ``labels`` over ``n_classes``."""
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.numel() == 0:
        raise ValueError("labels must be a non-empty 1-D tensor")
    p = torch.bincount(labels.long().cpu(), minlength=n_classes).double()
    p = p[p > 0] / labels.numel()
    return float(-(p * p.log()).sum())


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean Euclidean distance between the rows of ``flatten(x)`` over all distinct pairs."""
    x = _flat(x).double()
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 samples, got {n}")
    return float(torch.pdist(x).sum() / (n * (n - 1) / 2))


def max_entropy(n_classes: int) -> float:
    """``log n_classes``: the entropy of a uniform label distribution."""
    return math.log(n_classes)
