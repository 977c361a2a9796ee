"""Feature maps ``phi`` of the nearly linear-quadratic regulator.

Han, Razaviyayn, Xu (arXiv 2303.08431), Sec. 2 and 5 (chapter ``book/nearly_lq.md``): the
nonlinearity enters the dynamics as ``C phi(x)`` with a kernel ``phi: R^n -> R^d`` of small
Lipschitz constant. A :class:`Kernel` is ``phi(x) = scale * base(x)``, batched over leading
dims ``(..., n) -> (..., d)``; the paper's experiments use ``l * sin(x)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Kernel", "product_kernel", "sine_kernel", "stack_kernels"]

Tensor = torch.Tensor


@dataclass(frozen=True)
class Kernel:
    """A feature map ``phi(x) = scale * base(x)``, ``(..., n) -> (..., d)``.

    ``base`` is written in torch (autograd differentiates through it); ``lipschitz`` bounds the
    Lipschitz constant of ``base`` (so ``phi`` has ``|scale| * lipschitz``). ``scale`` is a float,
    or a tensor ``(R,)`` in a stacked system (one scale per system, see
    :func:`~diffctrl.lqr.system.stack_systems`).
    """

    base: Callable[[Tensor], Tensor]
    n: int
    d: int
    lipschitz: float
    scale: float | Tensor = 1.0
    name: str = "kernel"

    def __call__(self, x: Tensor) -> Tensor:
        """``phi(x)``; with a tensor ``scale (R,)``, ``x`` must be ``(R, ..., n)``."""
        out = self.base(x)
        if isinstance(self.scale, Tensor):
            return out * self.scale.to(out).view(-1, *([1] * (out.ndim - 1)))
        return self.scale * out

    @property
    def lipschitz_phi(self):
        """Lipschitz constant of ``phi`` itself: ``|scale| * lipschitz``."""
        return abs(self.scale) * self.lipschitz


def sine_kernel(n: int, scale: float = 1.0) -> Kernel:
    """Entrywise ``phi(x) = l * sin(x)`` (paper Sec. 5), ``d = n``; Lipschitz constant ``l``."""
    _check_dim(n, "n")
    return Kernel(torch.sin, n=n, d=n, lipschitz=1.0, scale=float(scale), name="sin")


def product_kernel(
    n: int, pairs: Sequence[tuple[int, int]], scale: float = 1.0
) -> Kernel:
    """Product features ``phi_k(x) = l * sin(x_i) * sin(x_j)`` for ``(i, j)`` in ``pairs``.

    Bounded and globally Lipschitz (constant ``<= l * sqrt(2 * len(pairs))``), so it fits the
    paper's small-Lipschitz kernel assumption; ``d = len(pairs)``.
    """
    _check_dim(n, "n")
    pairs = [(int(i), int(j)) for i, j in pairs]
    if not pairs:
        raise ValueError("pairs must name at least one (i, j) index pair")
    for i, j in pairs:
        if not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"pairs: index pair {(i, j)} is out of range for n={n}")
    idx_i = [i for i, _ in pairs]
    idx_j = [j for _, j in pairs]

    def base(x: Tensor) -> Tensor:
        s = torch.sin(x)
        return s[..., idx_i] * s[..., idx_j]

    return Kernel(
        base,
        n=n,
        d=len(pairs),
        lipschitz=math.sqrt(2 * len(pairs)),
        scale=float(scale),
        name=f"sin(x_i)sin(x_j) {pairs}",
    )


def stack_kernels(*kernels: Kernel) -> Kernel:
    """Concatenate feature maps of the same state dimension: ``phi = [phi_1; phi_2; ...]``."""
    if not kernels:
        raise ValueError("stack_kernels needs at least one kernel")
    n = kernels[0].n
    if any(k.n != n for k in kernels):
        raise ValueError("stack_kernels: kernels act on different state dimensions")
    if any(isinstance(k.scale, Tensor) for k in kernels):
        raise ValueError(
            "stack_kernels: kernels of stacked systems cannot be concatenated"
        )
    return Kernel(
        lambda x: torch.cat([k(x) for k in kernels], dim=-1),
        n=n,
        d=sum(k.d for k in kernels),
        lipschitz=math.sqrt(sum(k.lipschitz_phi**2 for k in kernels)),
        name=" ; ".join(f"{k.scale:g}*{k.name}" for k in kernels),
    )


def _check_dim(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
