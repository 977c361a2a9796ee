"""Training and sampling the sequential forward-backward diffusion, its baseline and the oracle.

- :func:`train_sequential`: :func:`~diffctrl.diffusion.training.train_dsm` with per-entry
  noising and the clean sequences as conditioning input (all positions of a sequence are
  examples of the same minibatch, each entry at its own level);
- :func:`sample_sequential`: entry by entry, each entry by a full reverse chain
  (:func:`~diffctrl.diffusion.samplers.sample`) conditioned on the generated prefix, batched
  over sequences; with ``reuse_prefix`` the context of the prefix is computed once per entry,
  not once per level;
- :func:`train_whole` / :func:`sample_whole`: the non-adapted baseline, a plain DDPM on whole
  sequences (:class:`~diffctrl.diffusion.models.ScoreMLP` on R^L);
- :func:`sampler_floor`: what the per-entry sampler does with the exact score of a Gaussian
  conditional, computed exactly (the floor of every learned model).

Noise is explicit: ``x_N`` (n, L), the starting noise of each entry, and ``seeds`` (L,), the
seed of the generator of entry j's per-level noise. Entry j of the sequential sampler uses only
``x_N[:, j]`` and ``seeds[j]`` (plus the prefix), which is what makes it adapted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from ..diffusion.exact import GaussianMixture, exact_score_fn
from ..diffusion.models import ScoreMLP, model_score, to_score
from ..diffusion.samplers import propagate_gaussian, sample
from ..diffusion.schedules import Schedule
from ..diffusion.training import train_dsm

__all__ = [
    "adaptedness_gaps",
    "data_scale",
    "draw_noise",
    "perturb_future",
    "sample_next",
    "sample_sequential",
    "sample_whole",
    "sampler_floor",
    "train_sequential",
    "train_whole",
    "whole_sequence_model",
]


def draw_noise(
    n: int, L: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_N (n, L) standard normal, seeds (L,) int64) for the samplers below."""
    if n < 1 or L < 1:
        raise ValueError(f"need n >= 1 and L >= 1, got {n}, {L}")
    x_N = torch.randn(n, L, generator=generator)
    seeds = torch.randint(0, 2**62, (L,), generator=generator)
    return x_N, seeds


def _check_noise(noise, n: int, L: int):
    x_N, seeds = noise
    if tuple(x_N.shape) != (n, L) or tuple(seeds.shape) != (L,):
        raise ValueError(
            f"noise must be (x_N ({n}, {L}), seeds ({L},)), got "
            f"{tuple(x_N.shape)}, {tuple(seeds.shape)}"
        )
    return x_N, seeds


def data_scale(data: torch.Tensor) -> float:
    """One scalar scale (the pooled standard deviation) used to standardise sequences."""
    return float(data.double().std())


def train_sequential(
    model: torch.nn.Module,
    sched: Schedule,
    data: torch.Tensor,
    steps: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[float]:
    """Fit a sequential score network on sequences ``data`` (n, L) by per-entry DSM.

    Sets ``model.scale`` to :func:`~diffctrl.sequential.sampling.data_scale`, then calls ``train_dsm`` with
    ``cond = data / scale`` and ``per_entry=True``: each of the ``batch_size * L`` entries of a
    minibatch gets its own level and noise, its own prefix clean. Checkpoint/resume as
    ``train_dsm``. Returns the per-step losses (summed over the L entries).
    """
    if data.ndim != 2 or data.shape[1] != model.L:
        raise ValueError(f"data must be (n, {model.L}), got {tuple(data.shape)}")
    model.scale.fill_(data_scale(data))
    x = (data.double() / float(model.scale)).float()
    return train_dsm(
        model,
        sched,
        x,
        steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        checkpoint=checkpoint,
        progress=progress,
        cond=x,
        per_entry=True,
    )


def sample_sequential(
    model: torch.nn.Module,
    sched: Schedule,
    n: int,
    *,
    noise: tuple[torch.Tensor, torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
    method: str = "ddpm",
    reuse_prefix: bool = True,
    device: str | torch.device = "cpu",
    counter: dict[str, int] | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Adapted sampling (n, L): X_j = reverse chain of entry j given the generated X_{<j}.

    ``noise`` from :func:`draw_noise` (drawn from ``generator`` when None). ``reuse_prefix``:
    compute ``model.context(prefix)`` once per entry (L encoder passes in all) instead of at
    each of the N levels (L N passes); both give the same samples. ``counter`` (a dict) gets
    the number of batched ``head`` and ``context`` evaluations added.
    """
    L = model.L
    x_N, seeds = _check_noise(
        noise if noise is not None else draw_noise(n, L, generator), n, L
    )
    device = torch.device(device)
    model.to(device).eval()
    cnt = counter if counter is not None else {}
    cnt.setdefault("head", 0)
    cnt.setdefault("context", 0)
    out = torch.zeros(n, 0, device=device)
    with torch.no_grad():
        for j in tqdm(range(L), desc="sequential sampling", disable=not progress):
            prefix = out

            def encode(prefix=prefix):
                cnt["context"] += 1
                return model.context(prefix)

            ctx = encode() if reuse_prefix else None

            def score(x, k, ctx=ctx, encode=encode):
                cnt["head"] += 1
                c = ctx if ctx is not None else encode()
                return to_score(model.head(x, k, c), x, k, sched, model.parametrisation)

            gen = torch.Generator().manual_seed(int(seeds[j]))
            xj = sample(
                score,
                sched,
                n,
                1,
                method,
                generator=gen,
                device=device,
                x_N=x_N[:, j : j + 1],
            )
            out = torch.cat([out, xj], dim=1)
    return out * model.scale


def sample_next(
    model: torch.nn.Module,
    sched: Schedule,
    prefix: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    method: str = "ddpm",
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """One draw of X_j | X_{<j} = prefix for each row of ``prefix`` (n, j), 1 <= j < L, in
    data units: the reverse chain of entry j conditioned on a given (observed) history — the
    step of :func:`sample_sequential` with the prefix supplied instead of generated. (n,)."""
    if prefix.ndim != 2 or not 0 <= prefix.shape[1] < model.L:
        raise ValueError(
            f"prefix must be (n, j) with 0 <= j < {model.L}, got {tuple(prefix.shape)}"
        )
    device = torch.device(device)
    model.to(device).eval()
    n = prefix.shape[0]
    with torch.no_grad():
        ctx = model.context((prefix.double() / float(model.scale)).float().to(device))

        def score(x, k):
            return to_score(model.head(x, k, ctx), x, k, sched, model.parametrisation)

        x = sample(score, sched, n, 1, method, generator=generator, device=device)
    return (x[:, 0] * model.scale).double().cpu()


def whole_sequence_model(
    L: int, N: int, budget: int, depth: int = 3, emb_dim: int = 32
) -> ScoreMLP:
    """The whole-sequence baseline: a ScoreMLP on R^L whose width gives about ``budget``
    parameters (the same network budget as the sequential model)."""
    best = None
    for h in range(4, 1025):
        m = (L + emb_dim) * h + h + (depth - 1) * (h * h + h) + h * L + L
        if best is None or abs(m - budget) < abs(best[1] - budget):
            best = (h, m)
    return ScoreMLP(L, N, hidden=best[0], depth=depth, emb_dim=emb_dim)


def train_whole(
    model: ScoreMLP,
    sched: Schedule,
    data: torch.Tensor,
    steps: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[list[float], float]:
    """Plain DSM on whole standardised sequences; returns (losses, scale)."""
    s = data_scale(data)
    x = (data.double() / s).float()
    return train_dsm(
        model,
        sched,
        x,
        steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        progress=progress,
    ), s


def sample_whole(
    model: ScoreMLP,
    sched: Schedule,
    n: int,
    scale: float = 1.0,
    *,
    noise: tuple[torch.Tensor, torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
    method: str = "ddpm",
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Whole-sequence DDPM samples (n, L): all entries denoised jointly from x_N, per-level
    noise from a generator seeded with ``seeds[0]`` (N network evaluations in all)."""
    L = model.dim
    x_N, seeds = _check_noise(
        noise if noise is not None else draw_noise(n, L, generator), n, L
    )
    gen = torch.Generator().manual_seed(int(seeds[0]))
    model.to(device).eval()
    return (
        sample(
            model_score(model, sched),
            sched,
            n,
            L,
            method,
            generator=gen,
            device=device,
            x_N=x_N,
        )
        * scale
    )


def perturb_future(
    noise: tuple[torch.Tensor, torch.Tensor],
    k: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A copy of ``noise`` with the noise of entries k+1.. redrawn (x_N columns and seeds)."""
    x_N, seeds = noise
    L = x_N.shape[1]
    if not 0 <= k < L - 1:
        raise ValueError(f"k must lie in 0..{L - 2}, got {k}")
    x2, s2 = x_N.clone(), seeds.clone()
    x2[:, k + 1 :] = torch.randn(x_N.shape[0], L - k - 1, generator=generator)
    s2[k + 1 :] = torch.randint(0, 2**62, (L - k - 1,), generator=generator)
    return x2, s2


def adaptedness_gaps(
    sampler,
    noise: tuple[torch.Tensor, torch.Tensor],
    ks,
    generator: torch.Generator | None = None,
) -> list[tuple[float, float]]:
    """For each k: (max |change| of entries 0..k, max |change| of entries k+1..) when the noise of
    entries k+1.. is redrawn; ``sampler(noise) -> (n, L)``. Adapted: the first is exactly 0."""
    base = sampler(noise)
    out = []
    for k in ks:
        other = sampler(perturb_future(noise, k, generator))
        d = (other - base).abs()
        out.append((float(d[:, : k + 1].max()), float(d[:, k + 1 :].max())))
    return out


def sampler_floor(
    sched: Schedule, variances: Sequence[float] = (0.36, 0.05)
) -> dict[tuple[str, float], float]:
    """Output over target variance of the DDPM and ODE samplers driven by the exact score of
    N(0, v) (:func:`~diffctrl.diffusion.exact.exact_score_fn`), a conditional variance v in
    standardised units: ``{(method, v): ratio}``, computed exactly
    (:func:`~diffctrl.diffusion.samplers.propagate_gaussian`: every step is affine, no
    sampling). The discretisation error of the sampler alone."""
    out = {}
    for v in variances:
        score = exact_score_fn(GaussianMixture.gaussian([0.0], [[v]]), sched)
        for m in ("ddpm", "ode"):
            out[(m, v)] = float(propagate_gaussian(score, sched, m, d=1)[1]) / v
    return out
