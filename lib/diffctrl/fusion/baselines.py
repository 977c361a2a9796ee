"""The models fusion is compared with, and the two sweeps of the paper's experiments.

- :func:`train_score_mlp`: a ScoreMLP trained by DSM (the auxiliaries and the model trained
  from scratch); :func:`network_score` a network as a score function; :func:`kde_sample`: the
  Gaussian-KDE baseline;
- :func:`size_sweep`: Liu, Ye, Blanchet & Si (2025), Sec. 5.1: W1 to the target of the fused
  model, the model trained from scratch and the KDE against the target sample size;
- :func:`class_shares`: the class proportions a digit model samples, under a classifier.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..diffusion.exact import GaussianMixture
from ..diffusion.metrics import w1_1d
from ..diffusion.models import ScoreMLP, to_score
from ..diffusion.samplers import sample
from ..diffusion.schedules import Schedule
from ..diffusion.training import train_dsm
from ..digits.classifiers import predict
from .scores import FusedScore, fit_weights

__all__ = [
    "class_shares",
    "kde_sample",
    "network_score",
    "size_sweep",
    "train_score_mlp",
]


def network_score(model: nn.Module, sched: Schedule) -> Callable:
    """A network (any parametrisation) as a score function of the full schedule ``sched``."""

    def score(x, k):
        with torch.no_grad():
            return to_score(model(x, k), x, k, sched, model.parametrisation)

    return score


def train_score_mlp(
    data: torch.Tensor | Callable,
    sched: Schedule,
    dim: int,
    steps: int,
    *,
    hidden: int = 128,
    depth: int = 3,
    init_seed: int = 0,
    seed: int = 0,
    batch_size: int = 256,
    lr: float = 2e-3,
    device="cpu",
    progress: bool = False,
) -> ScoreMLP:
    """A ScoreMLP (eps-parametrised) initialised from ``init_seed`` and trained by DSM on ``data``
    (all levels) with ``seed``; auxiliaries sharing ``init_seed`` start from one network."""
    torch.manual_seed(init_seed)
    model = ScoreMLP(dim, sched.N, hidden=hidden, depth=depth)
    train_dsm(
        model,
        sched,
        data,
        steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        progress=progress,
    )
    return model.eval()


def kde_sample(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n draws from scipy's Gaussian KDE (Scott's bandwidth) of the sample x (m, d): (n, d)."""
    from scipy.stats import gaussian_kde

    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"x must be (m, d) with m >= 2, got {tuple(x.shape)}")
    kde = gaussian_kde(x.double().numpy().T)
    return torch.as_tensor(kde.resample(n, seed=np.random.default_rng(seed)).T.copy())


def size_sweep(
    nets: Sequence[nn.Module],
    target: GaussianMixture,
    sched: Schedule,
    sizes: Sequence[int],
    seeds: Sequence[int],
    *,
    n_test: int,
    cutoff: int,
    fit_steps: int,
    scratch_steps: int,
    hidden: int,
    batch_size: int = 256,
    progress: bool = False,
) -> dict:
    """The paper's 1-D experiment: for each seed and target size n, W1 to ``n_test`` fresh target
    points of (a) the fused model with lambda fitted on the n points, (b) a ScoreMLP trained from
    scratch on them, (c) a Gaussian KDE of them; plus the untrained fusion (lambda uniform) per
    seed and the fitted lambda. Returns lists indexed [seed][size]."""
    out = {k: [] for k in ("fused", "scratch", "kde", "uniform", "lam")}
    for s in tqdm(seeds, desc="seeds", disable=not progress):
        g = torch.Generator().manual_seed(1000 + int(s))
        test = target.sample(n_test, g).float()
        fz = FusedScore(nets, sched)
        x = sample(
            fz, sched, n_test, 1, generator=torch.Generator().manual_seed(int(s))
        )
        out["uniform"].append(w1_1d(x.detach(), test))
        rows = {k: [] for k in ("fused", "scratch", "kde", "lam")}
        for n in sizes:
            data = target.sample(int(n), g).float()
            fz = FusedScore(nets, sched)
            fit_weights(fz, data, cutoff, fit_steps, batch_size=batch_size, seed=int(s))
            x = sample(
                fz, sched, n_test, 1, generator=torch.Generator().manual_seed(int(s))
            )
            rows["fused"].append(w1_1d(x.detach(), test))
            rows["lam"].append(fz.weights.detach().tolist())
            m = train_score_mlp(
                data,
                sched,
                1,
                scratch_steps,
                hidden=hidden,
                init_seed=int(s),
                seed=int(s),
                batch_size=batch_size,
            )
            x = sample(
                network_score(m, sched),
                sched,
                n_test,
                1,
                generator=torch.Generator().manual_seed(int(s)),
            )
            rows["scratch"].append(w1_1d(x, test))
            rows["kde"].append(w1_1d(kde_sample(data, n_test, int(s)).float(), test))
        for k, v in rows.items():
            out[k].append(v)
    return out


def class_shares(
    score: Callable,
    sched: Schedule,
    classifier: nn.Module,
    n: int,
    dim: int,
    classes: Sequence[int],
    seed: int,
) -> tuple[float, float, torch.Tensor]:
    """Sample n images (n, dim) with ``score``; return (share of ``classes[0]`` among the samples
    classified as one of ``classes``, share classified as none of them, the samples)."""
    x = sample(score, sched, n, dim, generator=torch.Generator().manual_seed(int(seed)))
    x = x.detach().clamp(-1, 1)
    pred = predict(classifier, x)
    inside = (pred == classes[0]) | (pred == classes[1])
    share = (
        float((pred[inside] == classes[0]).double().mean())
        if inside.any()
        else float("nan")
    )
    return share, float(1 - inside.double().mean()), x
