"""The settings of the ScoreFusion chapter: the paper's 1-D mixtures, a 2-D pair, the digit
mixtures, and the naive fusion the barycenter is compared with.

- :func:`paper_1d_setting`: the target and the two auxiliaries of Liu, Ye, Blanchet & Si
  (2025), Sec. 5.1; :func:`paper_2d_auxiliaries`: a 2-D pair whose components have unequal
  covariances (ours);
- :func:`linear_mixture`: the linear mixture ``sum_i lambda_i p_i``;
- :func:`digit_mixture_sampler`: a sampler of 8x8 digits with given class proportions;
  :func:`geometric_class_share`: the class shares of the barycenter of such mixtures when
  the classes have disjoint supports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..diffusion.exact import GaussianMixture

__all__ = [
    "digit_mixture_sampler",
    "geometric_class_share",
    "linear_mixture",
    "paper_1d_setting",
    "paper_2d_auxiliaries",
]


def paper_1d_setting() -> tuple[GaussianMixture, list[GaussianMixture]]:
    """Target 0.6 N(-6, 0.8^2) + 0.4 N(6, 0.8^2); auxiliaries 0.5 N(-3, 1) + 0.5 N(10, 1) and
    0.7 N(-7, 1) + 0.3 N(9, 1) (Liu et al. 2025, the 1-D experiment)."""
    target = GaussianMixture.create([0.6, 0.4], [[-6.0], [6.0]], [0.64, 0.64])
    aux = [
        GaussianMixture.create([0.5, 0.5], [[-3.0], [10.0]], [1.0, 1.0]),
        GaussianMixture.create([0.7, 0.3], [[-7.0], [9.0]], [1.0, 1.0]),
    ]
    return target, aux


def paper_2d_auxiliaries() -> list[GaussianMixture]:
    """Two 2-D mixtures whose components have unequal covariances (so the fused score differs
    from the noised barycenter's at every level): 0.5 N((-2, 0), [[1, 0.3], [0.3, 1]]) +
    0.5 N((2, 1), same) and 0.4 N((0, -1), [[2, 0.5], [0.5, 0.8]]) + 0.6 N((1, 2), same)."""
    return [
        GaussianMixture.create(
            [0.5, 0.5], [[-2.0, 0.0], [2.0, 1.0]], [[1.0, 0.3], [0.3, 1.0]]
        ),
        GaussianMixture.create(
            [0.4, 0.6], [[0.0, -1.0], [1.0, 2.0]], [[2.0, 0.5], [0.4, 0.8]]
        ),
    ]


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
