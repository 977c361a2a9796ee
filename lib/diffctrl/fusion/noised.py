"""The fused score at a noise level above zero, against the noised barycenter.

At a level k > 0 the fused score ``sum_i lambda_i s_{i,k}`` is the score of the geometric
mixture of the *noised* auxiliaries, not of the noised barycenter ``q_{lambda,k}`` (Liu, Ye,
Blanchet & Si 2025, Sec. 3; the book's chapter). Measured here:

- :func:`noised_barycenter_score` (quadrature, Tweedie) and :func:`relative_score_gap` between
  two score functions level by level;
- :func:`sample_from_level`: the reverse chain run from an exact draw of the noised barycenter
  at level ``k_c`` down to 0 with the fused score (the law drawn when the fused score is used
  on the levels ``1..k_c`` only; :func:`truncated` the schedule of those levels);
- :func:`law_distance` to the barycenter (W1 in 1-D, W2 in 2-D) and :func:`barycenter_gap`, the
  distance as a function of ``k_c`` with its exact-sample floor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..diffusion.exact import GaussianMixture
from ..diffusion.metrics import ot_distance
from ..diffusion.samplers import sample
from ..diffusion.schedules import Schedule
from .barycenter import Barycenter, w1_to_cdf_1d

__all__ = [
    "barycenter_gap",
    "exact_score_sampler",
    "law_distance",
    "noised_barycenter_score",
    "relative_score_gap",
    "sample_from_level",
    "truncated",
]


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


def noised_barycenter_score(bary: Barycenter, sched: Schedule) -> Callable:
    """``s(x, k)``: the score of the noised barycenter ``q_{lambda,k}`` (quadrature, Tweedie)."""

    def score(x, k):
        return bary.noised_score(float(sched.alpha_bar[int(k)]), x)

    return score


def exact_score_sampler(
    bary: Barycenter,
    sched: Schedule,
    n: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, int]:
    """The positive control of the fused sampler: the same DDPM chain driven by the exact score
    of the noised barycenter ``q_{lambda,k}`` (:func:`noised_barycenter_score`) from level N
    down to ``k_min``, the lowest level whose noise sd the quadrature grid resolves (>= twice its
    spacing), then an exact draw of ``Y | X_{k_min} = x`` from the grid posterior
    ``q_lambda(y) N(x; sqrt(ab) y, (1 - ab) I)``. If the chain is exact down to ``k_min`` the
    result is an exact draw of ``q_lambda``; any distance left is the sampler's error.
    Returns (samples (n, d), k_min)."""
    sd = (1 - sched.alpha_bar).sqrt()
    ok = [k for k in range(1, sched.N + 1) if float(sd[k]) >= 2 * bary.grid.h]
    if not ok:
        raise ValueError("the grid resolves no noise level: refine the grid")
    k_min, exact = ok[0], noised_barycenter_score(bary, sched)

    def score(x, k):
        return exact(x, k) if int(k) >= k_min else torch.zeros_like(x)

    d = bary.grid.dim
    path = sample(
        score, sched, n, d, generator=generator, dtype=torch.float64, return_path=True
    )
    x = path[sched.N - k_min]
    ab = float(sched.alpha_bar[k_min])
    keep = bary.log_q > bary.log_q.max() - 60
    y, logq, out = bary.grid.points[keep], bary.log_q[keep], []
    chunk = max(1, int(4e6 // y.shape[0]))
    for i in range(0, n, chunk):
        xb = x[i : i + chunk]
        logk = -((xb[:, None, :] - ab**0.5 * y[None]) ** 2).sum(-1) / (2 * (1 - ab))
        pick = torch.multinomial(
            torch.softmax(logk + logq[None], 1), 1, generator=generator
        )[:, 0]
        u = torch.rand(xb.shape, generator=generator, dtype=torch.float64) - 0.5
        out.append(
            y[pick] + bary.grid.h * u
        )  # uniform in the cell, as Barycenter.sample
    return torch.cat(out), k_min


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


def law_distance(
    x: torch.Tensor, bary: Barycenter, reference: torch.Tensor | None = None
) -> float:
    """Distance of samples x (n, d) to the barycenter: exact W1 to its CDF in 1-D; in 2-D the
    exact W2 (POT) to ``reference`` (an exact sample of q_lambda of the same size)."""
    if x.shape[1] == 1:
        return w1_to_cdf_1d(x, *bary.cdf_1d())
    if reference is None:
        raise ValueError("reference (an exact sample of q_lambda) is needed in 2-D")
    return ot_distance(x, reference, p=2)


def barycenter_gap(
    fused: nn.Module,
    bary: Barycenter,
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
