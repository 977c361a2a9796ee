"""A small digit classifier, its class log-probability as a fine-tuning reward, and the
diversity scores of a set of images (the digits experiment of the chapter ``book/finetune.md``,
on the 8x8 digits; the classifiers of the Preliminaries and of ScoreFusion too).

- :class:`DigitClassifier`: an MLP ``f(x) -> logits`` over flattened images, shape (B, n_classes),
  with ``features(x)`` its last hidden layer; :class:`DigitCNN` a small convolutional network of
  the same interface, the *judge* of the fine-tuned samples (never trained against);
- :func:`train_classifier`: cross-entropy with AdamW, trained on clean images plus Gaussian pixel
  noise of standard deviation ``noise_std`` (so that its gradient is tamer off the data manifold:
  [ours], the paper's ImageReward is a fixed network);
- :class:`ClassLogProb`: the reward ``r(x) = log softmax(f(x))_c`` of a target class ``c``,
  shape (B,), differentiable in ``x``, the classifier frozen. With ``beta = 1`` the tilted target
  ``p* ∝ p0 exp(r / beta) = p0(x) p(c | x)`` is the class-conditional law when ``p(c | x)`` is the
  Bayes classifier of ``p0`` (classifier guidance, Dhariwal & Nichol 2021);
- :func:`class_entropy` (entropy in nats of the predicted-label histogram, ``log K`` for K equally
  frequent classes, 0 for one class) and :func:`mean_pairwise_distance` (mean Euclidean distance
  over the ``n (n - 1) / 2`` pairs);
- whether a set of images looks like the data, each score beside its data-vs-data floor
  (:func:`digit_quality`): :func:`label_tv` (total variation between predicted-class
  histograms), :func:`nearest_distance` (distance to the nearest data image, beside the data's
  own :func:`data_nn_floor`) and :func:`frechet_distance` (Fréchet distance between Gaussians
  fitted to classifier features, Heusel et al. 2017).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = [
    "ClassLogProb",
    "DigitCNN",
    "DigitClassifier",
    "accuracy",
    "class_entropy",
    "data_nn_floor",
    "digit_quality",
    "frechet_distance",
    "label_tv",
    "max_entropy",
    "mean_pairwise_distance",
    "nearest_distance",
    "predict",
    "train_classifier",
]


def _flat(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise ValueError(
            f"x must be a tensor of shape (B, ...) with B samples, got {type(x).__name__}"
        )
    return x.reshape(x.shape[0], -1)


class DigitClassifier(nn.Module):
    """``logits = MLP(flatten(x))`` for images x of ``dim`` pixels (B, dim) or (B, C, H, W)."""

    def __init__(
        self, dim: int = 64, n_classes: int = 10, hidden: int = 128, depth: int = 2
    ):
        super().__init__()
        if dim < 1 or n_classes < 2 or hidden < 1 or depth < 1:
            raise ValueError(
                f"need dim >= 1, n_classes >= 2, hidden >= 1, depth >= 1; "
                f"got {dim}, {n_classes}, {hidden}, {depth}"
            )
        self.dim, self.n_classes = dim, n_classes
        layers: list[nn.Module] = [nn.Linear(dim, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _flat(x)
        if x.shape[1] != self.dim:
            raise ValueError(
                f"x must have {self.dim} pixels per sample, got {x.shape[1]}"
            )
        return self.net(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations (B, hidden): the feature space of
        :func:`frechet_distance`."""
        x = _flat(x)
        if x.shape[1] != self.dim:
            raise ValueError(
                f"x must have {self.dim} pixels per sample, got {x.shape[1]}"
            )
        return self.net[:-1](x)


class DigitCNN(nn.Module):
    """``logits = CNN(x)`` for 8x8 images (B, 64) or (B, 1, 8, 8): two 3x3 convolutions (the
    second of stride 2), a hidden linear layer, the logits. A second architecture beside
    :class:`DigitClassifier`: the *judge* that scores fine-tuned samples and is never trained
    against."""

    def __init__(self, n_classes: int = 10, width: int = 16, hidden: int = 64):
        super().__init__()
        if n_classes < 2 or width < 1 or hidden < 1:
            raise ValueError(
                f"need n_classes >= 2, width >= 1, hidden >= 1; "
                f"got {n_classes}, {width}, {hidden}"
            )
        self.dim, self.n_classes = 64, n_classes
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Flatten(),
            nn.Linear(2 * width * 16, hidden),
            nn.SiLU(),
        )
        self.head = nn.Linear(hidden, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = _flat(x)
        if x.shape[1] != 64:
            raise ValueError(f"x must have 64 pixels per sample, got {x.shape[1]}")
        return self.body(x.reshape(-1, 1, 8, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    *,
    batch_size: int = 128,
    lr: float = 3e-3,
    noise_std: float = 0.0,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device="cpu",
    progress: bool = False,
) -> list[float]:
    """Minimise the cross-entropy of ``model`` on ``(x, labels)`` (mini-batches drawn with
    replacement, Gaussian pixel noise of std ``noise_std`` added) with AdamW; returns the losses."""
    x, labels = _flat(x), torch.as_tensor(labels)
    if labels.shape != (x.shape[0],) or labels.dtype != torch.long:
        raise ValueError(f"labels must be a long tensor of shape ({x.shape[0]},)")
    if int(labels.min()) < 0 or int(labels.max()) >= model.n_classes:
        raise ValueError(f"labels must lie in 0..{model.n_classes - 1}")
    if (
        not isinstance(steps, int)
        or steps < 0
        or batch_size < 1
        or lr <= 0
        or noise_std < 0
    ):
        raise ValueError(
            f"need steps >= 0, batch_size >= 1, lr > 0, noise_std >= 0; "
            f"got {steps}, {batch_size}, {lr}, {noise_std}"
        )
    model.to(device)
    x, labels = x.to(device), labels.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(int(seed))
    losses = []
    for _ in tqdm(range(steps), desc="classifier", disable=not progress):
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=gen).to(device)
        xb = x[idx]
        if noise_std > 0:
            xb = xb + noise_std * torch.randn(
                xb.shape, generator=gen, dtype=xb.dtype
            ).to(device)
        loss = nn.functional.cross_entropy(model(xb), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def _device_of(model: nn.Module, x: torch.Tensor) -> torch.device:
    """The device of ``model``'s parameters (``x``'s for a model without any)."""
    p = next(model.parameters(), None)
    return x.device if p is None else p.device


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Predicted labels ``argmax f(x)``, shape (B,): the model runs on its own device, the
    labels are returned on ``x``'s."""
    return model(x.to(_device_of(model, x))).argmax(1).to(x.device)


def accuracy(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``x`` whose predicted label equals ``labels``."""
    return float((predict(model, x) == labels.to(x.device)).double().mean())


class ClassLogProb:
    """Reward ``r(x) = log p(target | x) = log softmax(f(x))_target``, shape (B,), for x of shape
    (B, dim) or (B, C, H, W); differentiable in x, the classifier's parameters are frozen. The
    classifier runs on the device it is on at the call (moving it, e.g. ``.cpu()`` for scoring,
    does not break the reward); ``r`` is returned on ``x``'s device."""

    def __init__(self, classifier: DigitClassifier, target: int):
        if not isinstance(target, int) or not 0 <= target < classifier.n_classes:
            raise ValueError(
                f"target must be an int class in 0..{classifier.n_classes - 1}, got {target!r}"
            )
        self.classifier, self.target = classifier.eval(), target
        for p in self.classifier.parameters():
            p.requires_grad_(False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(x.to(_device_of(self.classifier, x)))
        return torch.log_softmax(logits, 1)[:, self.target].to(x.device)


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


def frechet_distance(fa: torch.Tensor, fb: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (n_a, d), (n_b, d):
    ``|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a^{1/2} C_b C_a^{1/2})^{1/2})`` (Heusel et al. 2017,
    FID), unbiased covariances, float64."""
    if (
        fa.ndim != 2
        or fb.ndim != 2
        or fa.shape[1] != fb.shape[1]
        or min(len(fa), len(fb)) < 2
    ):
        raise ValueError(
            f"need feature sets (n, d) with the same d and n >= 2, got "
            f"{tuple(fa.shape)}, {tuple(fb.shape)}"
        )
    fa, fb = fa.detach().double().cpu(), fb.detach().double().cpu()
    ca, cb = (
        torch.cov(fa.T).reshape(fa.shape[1], -1),
        torch.cov(fb.T).reshape(fb.shape[1], -1),
    )
    w, v = torch.linalg.eigh(ca)
    root = (v * w.clamp(min=0).sqrt()) @ v.T
    cross = torch.linalg.eigvalsh(root @ cb @ root).clamp(min=0).sqrt().sum()
    return float(
        ((fa.mean(0) - fb.mean(0)) ** 2).sum() + ca.trace() + cb.trace() - 2 * cross
    )


def label_tv(a: torch.Tensor, b: torch.Tensor, n_classes: int) -> float:
    """Total-variation distance between the histograms of two label sets (1-D int tensors)."""
    pa = torch.bincount(torch.as_tensor(a).long().cpu(), minlength=n_classes).double()
    pb = torch.bincount(torch.as_tensor(b).long().cpu(), minlength=n_classes).double()
    if pa.sum() == 0 or pb.sum() == 0:
        raise ValueError("label sets must be non-empty")
    return float(0.5 * (pa / pa.sum() - pb / pb.sum()).abs().sum())


def nearest_distance(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Euclidean distance of each row of ``flatten(x)`` to its nearest row of ``flatten(ref)``
    (n,)."""
    return torch.cdist(_flat(x).double().cpu(), _flat(ref).double().cpu()).min(1).values


def data_nn_floor(data: torch.Tensor) -> float:
    """The data's own distance to the nearest digit: the median over the rows of
    ``flatten(data)`` (n, ...) of the Euclidean distance to the nearest *other* row (the lower
    of the two middle values for an even n, as ``torch.median``), the floor of
    :func:`nearest_distance` for samples that look like the data."""
    x = _flat(data).double()
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 data images, got {x.shape[0]}")
    dd = torch.cdist(x, x)
    return float(dd.fill_diagonal_(float("inf")).min(1).values.median())


@torch.no_grad()
def digit_quality(
    samples: torch.Tensor, data: torch.Tensor, classifier: nn.Module, *, seed: int = 0
) -> dict[str, float]:
    """How much ``samples`` (n, 64 or 1x8x8) look like the ``data``, each score beside its
    data-vs-data floor at the same size: two disjoint random subsets ``A``, ``B`` of ``n``
    data images (``2 n <= len(data)``) are drawn with ``seed``; the samples and ``B`` are each
    compared with ``A`` by the total-variation distance of their predicted-class histograms
    (``tv``, ``tv_floor``), the median distance to the nearest image of ``A`` (``nn``,
    ``nn_floor``) and the Fréchet distance in ``classifier.features`` space (``fd``,
    ``fd_floor``)."""
    n = samples.shape[0]
    if 2 * n > data.shape[0] or n < 2:
        raise ValueError(f"need 2 <= 2 n <= {data.shape[0]} (data size), got n = {n}")
    perm = torch.randperm(
        data.shape[0], generator=torch.Generator().manual_seed(int(seed))
    )
    A, B = data[perm[:n]], data[perm[n : 2 * n]]
    dev = next(classifier.parameters()).device
    x, A, B = (
        _flat(samples).float().to(dev),
        _flat(A).float().to(dev),
        _flat(B).float().to(dev),
    )
    k = classifier.n_classes
    la, lb, lx = predict(classifier, A), predict(classifier, B), predict(classifier, x)
    fa, fb, fx = classifier.features(A), classifier.features(B), classifier.features(x)
    return {
        "tv": label_tv(lx, la, k),
        "tv_floor": label_tv(lb, la, k),
        "nn": float(nearest_distance(x, A).median()),
        "nn_floor": float(nearest_distance(B, A).median()),
        "fd": frechet_distance(fx, fa),
        "fd_floor": frechet_distance(fb, fa),
    }
