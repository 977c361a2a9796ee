"""Measurements the Preliminaries chapter makes with the diffusion core."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .exact import GaussianMixture, ScoreFn, exact_score_fn
from .metrics import gaussian_kl
from .samplers import propagate_gaussian
from .schedules import Schedule


def terminal_kl_vs_steps(
    data: GaussianMixture,
    steps: Sequence[int],
    methods: Sequence[str],
    make_schedule: Callable[[int], Schedule],
    start: str = "prior",
    eta: float = 0.0,
) -> dict[str, list[float]]:
    """KL(law of the sampler's output || data) for Gaussian data, computed exactly.

    ``start="prior"`` starts the chain from N(0, I) (what a sampler does); ``start="exact"``
    from the exact level-N marginal, which isolates the discretisation error.
    """
    if data.n_components != 1:
        raise ValueError("exact propagation needs Gaussian data (one component)")
    if start not in ("prior", "exact"):
        raise ValueError(f"start must be 'prior' or 'exact', got {start!r}")
    mu, S = data.means[0], data.covs[0]
    out: dict[str, list[float]] = {m: [] for m in methods}
    for N in steps:
        sched = make_schedule(N)
        score = exact_score_fn(data, sched)
        if start == "exact":
            marg = data.marginal(sched.alpha_bar[-1])
            m0, c0 = marg.means[0], marg.covs[0]
        else:
            m0, c0 = torch.zeros(data.dim, dtype=torch.float64), None
        for method in methods:
            m, c = propagate_gaussian(score, sched, method, m0, c0, eta=eta)
            out[method].append(gaussian_kl(m, c, mu, S))
    return out


def score_error_by_level(
    score: ScoreFn,
    data: GaussianMixture,
    sched: Schedule,
    levels: Sequence[int],
    n: int = 2000,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> list[float]:
    """Weighted score error (1 - ab_k) E_{p_k} |s(x, k) - grad log p_k(x)|^2 at each level.

    The weight makes levels comparable: it is the eps-prediction error.
    """
    exact = exact_score_fn(data, sched)
    errs = []
    for k in levels:
        ab = float(sched.alpha_bar[k])
        x = data.marginal(ab).sample(n, generator).to(dtype)
        diff = score(x, k).double() - exact(x.double(), k)
        errs.append(float((1 - ab) * (diff**2).sum(1).mean()))
    return errs
