"""The generators the chapter compares, trained on n exact paths of one Gaussian sequence.

:func:`fit_and_generate` trains the sequential model (window MLP or causal transformer) and,
on request, the whole-sequence DDPM with the same parameter budget on the same n paths, then
draws ``n_gen`` sequences from each (``sequential_ddpm``: the same trained sequential network
sampled with DDPM ancestral steps instead of ``method``), from an untrained copy of the
sequential network, from the moment-matched AR(1) of the same paths (``ar1_fit``,
:func:`~diffctrl.sequential.arma.fit_ar1`: two numbers, pooled variance and lag-1
autocorrelation) and from the oracle (:func:`~diffctrl.sequential.gaussian.oracle_sample`).
Everything is seeded by ``seed``.
"""

from __future__ import annotations

import torch

from ..diffusion.schedules import Schedule
from .arma import arma_cov, fit_ar1
from .gaussian import gaussian_paths, oracle_sample
from .networks import CausalTransformerScoreNet, WindowScoreNet, param_count
from .sampling import (
    data_scale,
    draw_noise,
    sample_sequential,
    sample_whole,
    train_sequential,
    train_whole,
    whole_sequence_model,
)

__all__ = ["GENERATORS", "fit_and_generate", "make_sequential"]

#: the generators :func:`fit_and_generate` can train and sample
GENERATORS = (
    "sequential",
    "sequential_ddpm",
    "transformer",
    "whole",
    "untrained",
    "ar1_fit",
    "oracle",
)


def make_sequential(
    L: int,
    N: int,
    d_trunc: int | None,
    hidden: int,
    depth: int = 3,
    transformer: bool = False,
    seed: int = 0,
) -> torch.nn.Module:
    """A freshly initialised sequential score network (``torch.manual_seed(seed)`` first):
    a :class:`~diffctrl.sequential.networks.WindowScoreNet` on the last ``d_trunc`` entries
    (``None``: the whole prefix) or, with ``transformer``, a
    :class:`~diffctrl.sequential.networks.CausalTransformerScoreNet`."""
    torch.manual_seed(seed)
    if transformer:
        return CausalTransformerScoreNet(
            L, N, d_model=32, nhead=4, layers=2, hidden=hidden, depth=depth
        )
    return WindowScoreNet(
        L, N, d_trunc=L if d_trunc is None else d_trunc, hidden=hidden, depth=depth
    )


def fit_and_generate(
    cov: torch.Tensor,
    sched: Schedule,
    n_train: int,
    n_gen: int,
    *,
    seed: int = 0,
    mean: torch.Tensor | None = None,
    d_trunc: int | None = None,
    steps: int = 500,
    batch_size: int = 128,
    lr: float = 2e-3,
    hidden: int = 64,
    which=("sequential", "untrained", "oracle"),
    method: str = "ode",
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """Samples (n_gen, L) float64 of each generator in ``which`` (see ``GENERATORS``) for
    the law N(mean, cov), every model trained on the same ``n_train`` exact paths. The
    whole-sequence network gets the parameter count of the window network."""
    bad = set(which) - set(GENERATORS)
    if bad:
        raise ValueError(f"unknown generators {sorted(bad)}; choose from {GENERATORS}")
    L = cov.shape[0]
    g = torch.Generator().manual_seed(seed)
    data = gaussian_paths(cov, n_train, mean=mean, generator=g)
    noise = draw_noise(n_gen, L, torch.Generator().manual_seed(seed + 10_000))
    out: dict[str, torch.Tensor] = {}
    seqnet = make_sequential(L, sched.N, d_trunc, hidden, seed=seed)
    if "untrained" in which:
        base = make_sequential(L, sched.N, d_trunc, hidden, seed=seed)
        base.scale.fill_(data_scale(data))
        out["untrained"] = (
            sample_sequential(
                base, sched, n_gen, noise=noise, method=method, device=device
            )
            .double()
            .cpu()
        )
    if "sequential" in which or "sequential_ddpm" in which:
        train_sequential(
            seqnet,
            sched,
            data,
            steps,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            device=device,
            progress=progress,
        )
        for name, m in (("sequential", method), ("sequential_ddpm", "ddpm")):
            if name in which:
                out[name] = (
                    sample_sequential(
                        seqnet, sched, n_gen, noise=noise, method=m, device=device
                    )
                    .double()
                    .cpu()
                )
    if "transformer" in which:
        tr = make_sequential(L, sched.N, None, hidden, transformer=True, seed=seed)
        train_sequential(
            tr,
            sched,
            data,
            steps,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            device=device,
            progress=progress,
        )
        out["transformer"] = (
            sample_sequential(
                tr, sched, n_gen, noise=noise, method=method, device=device
            )
            .double()
            .cpu()
        )
    if "whole" in which:
        torch.manual_seed(seed)
        wm = whole_sequence_model(L, sched.N, param_count(seqnet))
        _, s = train_whole(
            wm,
            sched,
            data,
            steps,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            device=device,
            progress=progress,
        )
        out["whole"] = (
            sample_whole(wm, sched, n_gen, s, noise=noise, method=method, device=device)
            .double()
            .cpu()
        )
    if "ar1_fit" in which:
        proc, m = fit_ar1(data)
        out["ar1_fit"] = m + gaussian_paths(
            arma_cov(proc, L),
            n_gen,
            generator=torch.Generator().manual_seed(seed + 30_000),
        )
    if "oracle" in which:
        out["oracle"] = oracle_sample(
            cov,
            n_gen,
            mean=mean,
            d_trunc=d_trunc,
            generator=torch.Generator().manual_seed(seed + 20_000),
        )
    return out
