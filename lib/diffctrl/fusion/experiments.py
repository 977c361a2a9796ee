"""The chapter's experiments as functions (the notebook sets parameters, calls these, plots).

- :func:`paper_1d_setting`: the paper's 1-D target and two auxiliaries (Sec. 5.1 of Liu et al.);
- :func:`sample_from_level`: run the reverse DDPM chain from an exact sample of the noised
  barycenter at level ``k_c`` down to 0 with the fused score — the law sampled when the fused
  score is used only at the levels ``1..k_c``;
- :func:`train_score_mlp`, :func:`kde_sample`: the auxiliaries, the from-scratch model and the KDE
  baseline;
- :func:`digit_mixture_sampler`, :func:`fused_class_share`: the 8x8-digits version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..diffusion.exact import GaussianMixture
from ..diffusion.models import ScoreMLP, to_score
from ..diffusion.samplers import sample
from ..diffusion.schedules import Schedule
from ..diffusion.training import train_dsm


def paper_1d_setting() -> tuple[GaussianMixture, list[GaussianMixture]]:
    """Target 0.6 N(-6, 0.8^2) + 0.4 N(6, 0.8^2); auxiliaries 0.5 N(-3, 1) + 0.5 N(10, 1) and
    0.7 N(-7, 1) + 0.3 N(9, 1) (Liu et al. 2025, the 1-D experiment)."""
    target = GaussianMixture.create([0.6, 0.4], [[-6.0], [6.0]], [0.64, 0.64])
    aux = [
        GaussianMixture.create([0.5, 0.5], [[-3.0], [10.0]], [1.0, 1.0]),
        GaussianMixture.create([0.7, 0.3], [[-7.0], [9.0]], [1.0, 1.0]),
    ]
    return target, aux


def truncated(sched: Schedule, k_c: int) -> Schedule:
    """The schedule's levels ``0..k_c`` as a schedule of its own (same betas)."""
    if not isinstance(k_c, int) or not 1 <= k_c <= sched.N:
        raise ValueError(f"k_c must be an int level in 1..N={sched.N}, got {k_c!r}")
    return Schedule(sched.name, sched.betas[: k_c + 1], sched.times[: k_c + 1])


def sample_from_level(
    score: Callable,
    sched: Schedule,
    x0_exact: torch.Tensor,
    k_c: int,
    generator: torch.Generator,
    method: str = "ddpm",
) -> torch.Tensor:
    """Noise exact samples ``x0_exact`` (n, d) to level ``k_c`` (``x = sqrt(ab) x0 + sqrt(1-ab) z``,
    an exact draw of the noised law) and run the reverse chain ``k_c -> 0`` with ``score``.

    ``k_c = 0`` returns ``x0_exact``; ``k_c = N`` starts from (almost) pure noise, i.e. the usual
    sampler. Returns (n, d).
    """
    if k_c == 0:
        return x0_exact.clone()
    sub = truncated(sched, k_c)
    ab = float(sched.alpha_bar[k_c])
    z = torch.randn(x0_exact.shape, generator=generator, dtype=x0_exact.dtype)
    x = ab**0.5 * x0_exact + (1 - ab) ** 0.5 * z

    def s(xx, k):
        with torch.no_grad():
            return score(xx, k)

    return sample(
        s,
        sub,
        x.shape[0],
        tuple(x.shape[1:]),
        method,
        generator=generator,
        x_N=x,
        dtype=x0_exact.dtype,
    )


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


def digit_mixture_sampler(
    images: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[int],
    proportions: Sequence[float],
) -> Callable:
    """``data(n, generator)``: n images (n, 64), the class drawn with ``proportions`` among
    ``classes``, then an image of that class uniformly from ``images`` (m, 64)."""
    p = torch.as_tensor(proportions, dtype=torch.float64)
    if p.shape != (len(classes),) or torch.any(p < 0) or abs(float(p.sum()) - 1) > 1e-6:
        raise ValueError(
            f"proportions must be {len(classes)} non-negative numbers summing to 1"
        )
    pools = [torch.nonzero(labels == c).reshape(-1) for c in classes]
    if any(len(q) == 0 for q in pools):
        raise ValueError(f"images hold no example of some class in {list(classes)}")

    def data(n: int, generator: torch.Generator) -> torch.Tensor:
        c = torch.multinomial(p.float(), n, replacement=True, generator=generator)
        idx = torch.empty(n, dtype=torch.long)
        for j, pool in enumerate(pools):
            m = c == j
            pick = torch.randint(0, len(pool), (int(m.sum()),), generator=generator)
            idx[m] = pool[pick]
        return images[idx]

    return data


def geometric_class_share(
    proportions: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Class shares of ``prod_i p_i^lambda_i`` when the classes have disjoint supports and every
    auxiliary has the same class-conditional laws: ``pi_c ∝ prod_i w_{ic}^lambda_i``.

    ``proportions`` (K, C) the auxiliaries' class weights, ``weights`` (K,) lambda; returns (C,).
    """
    logw = torch.log(torch.as_tensor(proportions, dtype=torch.float64))
    return torch.softmax(torch.as_tensor(weights, dtype=torch.float64) @ logw, 0)


def linear_mixture(auxiliaries: Sequence[GaussianMixture], weights) -> GaussianMixture:
    """The *linear* mixture ``sum_i lambda_i p_i`` of Gaussian-mixture auxiliaries (the naive
    fusion the barycenter is compared with)."""
    lam = torch.as_tensor(weights, dtype=torch.float64)
    w = torch.cat([l * a.weights.double() for l, a in zip(lam, auxiliaries)])
    keep = w > 0
    return GaussianMixture.create(
        w[keep] / w[keep].sum(),
        torch.cat([a.means.double() for a in auxiliaries])[keep],
        torch.cat([a.covs.double() for a in auxiliaries])[keep],
    )


def law_distance(x: torch.Tensor, bary, reference: torch.Tensor | None = None) -> float:
    """Distance of samples x (n, d) to the barycenter: exact W1 to its CDF in 1-D; in 2-D the
    exact W2 (POT) to ``reference`` (an exact sample of q_lambda of the same size)."""
    from ..diffusion.metrics import ot_distance
    from .barycenter import w1_to_cdf_1d

    if x.shape[1] == 1:
        return w1_to_cdf_1d(x, *bary.cdf_1d())
    if reference is None:
        raise ValueError("reference (an exact sample of q_lambda) is needed in 2-D")
    return ot_distance(x, reference, p=2)


def barycenter_gap(
    fused: nn.Module,
    bary,
    sched: Schedule,
    k_cs: Sequence[int],
    n: int,
    seeds: Sequence[int],
    baseline: GaussianMixture,
) -> dict:
    """Distance to ``q_lambda`` of the law sampled with the fused score on the levels ``1..k_c``
    (exact noised barycenter above, see :func:`sample_from_level`), per ``k_c`` and seed; with the
    exact-sample floor and the distance of ``baseline`` (e.g. the linear mixture) per seed.
    Returns ``{"dist": (len(k_cs), S), "floor": (S,), "baseline": (S,)}`` as lists."""
    dist, floor, base = [], [], []
    for s in seeds:
        g = torch.Generator().manual_seed(int(s))
        ref = bary.sample(n, g) if bary.grid.dim == 2 else None
        floor.append(law_distance(bary.sample(n, g), bary, ref))
        base.append(law_distance(baseline.sample(n, g), bary, ref))
        row = []
        for k_c in k_cs:
            x = sample_from_level(fused, sched, bary.sample(n, g), int(k_c), g)
            row.append(law_distance(x, bary, ref))
        dist.append(row)
    return {"dist": torch.tensor(dist).T.tolist(), "floor": floor, "baseline": base}


def noised_barycenter_score(bary, sched: Schedule) -> Callable:
    """``s(x, k)``: the score of the noised barycenter ``q_{lambda,k}`` (quadrature, Tweedie)."""

    def score(x, k):
        return bary.noised_score(float(sched.alpha_bar[int(k)]), x)

    return score


def relative_score_gap(
    score_a: Callable,
    score_b: Callable,
    x0: torch.Tensor,
    sched: Schedule,
    levels: Sequence[int],
    generator: torch.Generator,
) -> list[float]:
    """``E|s_a - s_b|^2 / E|s_b|^2`` at each level k, over ``x_k = sqrt(ab) x0 + sqrt(1-ab) z``."""
    out = []
    for k in levels:
        ab = float(sched.alpha_bar[int(k)])
        xk = ab**0.5 * x0 + (1 - ab) ** 0.5 * torch.randn(
            x0.shape, generator=generator, dtype=x0.dtype
        )
        a = score_a(xk, int(k)).detach().double()
        b = score_b(xk, int(k)).detach().double()
        out.append(float(((a - b) ** 2).sum() / (b**2).sum()))
    return out


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
    from tqdm.auto import tqdm

    from ..diffusion.metrics import w1_1d
    from .scores import FusedScore, fit_weights

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
    from ..finetune.classifier import predict

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
