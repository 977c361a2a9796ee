"""The model-free variant: least-squares estimates of ``(A, B, C)`` from one-step transitions.

Han, Razaviyayn, Xu (arXiv 2303.08431), Sec. 4 (chapter ``book/nearly_lq.md``): regress ``x_{t+1}`` on
``w_t = [x_t; u_t; phi(x_t)]``,

    [A B C]^ = argmin_Theta sum_i || x'_i - Theta w_i ||^2 = X' W (W'W)^{-1},

which recovers ``(A, B, C)`` exactly from ``N >= n + p + d`` noiseless transitions whose ``w_i``
span ``R^{n+p+d}``; then ``K^lin`` is computed from the estimates.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..checks import check_data
from .riccati import k_lin
from .rollout import sample_x0
from .system import NearlyLQ

__all__ = [
    "collect_transitions",
    "estimate_system",
    "identification_curve",
    "least_squares",
    "model_free_k_lin",
]

Tensor = torch.Tensor


def collect_transitions(
    system: NearlyLQ,
    n_samples: int,
    generator: torch.Generator | None = None,
    noise_std: float = 0.0,
    input_std: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """``N`` one-step transitions ``(x (N, n), u (N, p), x' (N, n))``.

    States uniform on the unit sphere (the paper's ``||x0|| = 1``), inputs ``N(0, input_std^2 I)``
    (our exploration choice), and optional process noise ``N(0, noise_std^2 I)`` added to ``x'``.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    if noise_std < 0 or input_std <= 0:
        raise ValueError(
            f"noise_std must be >= 0 and input_std > 0, got {noise_std}, {input_std}"
        )
    dt, dev = system.dtype, system.device
    kw = dict(
        generator=generator, dtype=dt, device=generator.device if generator else dev
    )
    x = sample_x0(system.n, n_samples, generator, dtype=dt, device=dev)
    u = input_std * torch.randn(n_samples, system.p, **kw)
    xn = x @ system.A.T + u @ system.B.T + system.kernel(x) @ system.C.T
    if noise_std > 0:
        xn = xn + noise_std * torch.randn(n_samples, system.n, **kw)
    return x, u, xn


def least_squares(
    system: NearlyLQ, x: Tensor, u: Tensor, x_next: Tensor, min_norm: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """Least-squares ``(A^, B^, C^)`` from transitions (the kernel ``phi`` is known).

    Raises ``ValueError`` for fewer than ``n + p + d`` transitions or a rank-deficient design,
    unless ``min_norm`` (then the minimum-norm solution is returned).
    """
    n, p, d = system.n, system.p, system.d
    x, u, x_next = (
        check_data(v, name, ndim=2)
        for v, name in ((x, "x"), (u, "u"), (x_next, "x_next"))
    )
    if (
        x.ndim != 2
        or x.shape[1] != n
        or u.shape != (x.shape[0], p)
        or x_next.shape != x.shape
    ):
        raise ValueError(
            f"x, u, x_next must have shapes (N, {n}), (N, {p}), (N, {n}); got "
            f"{tuple(x.shape)}, {tuple(u.shape)}, {tuple(x_next.shape)}"
        )
    W = torch.cat([x, u, system.kernel(x)], dim=1)  # (N, n + p + d)
    if not min_norm:
        if W.shape[0] < n + p + d:
            raise ValueError(
                f"need at least n + p + d = {n + p + d} transitions to identify "
                f"(A, B, C), got {W.shape[0]}"
            )
        rank = int(torch.linalg.matrix_rank(W))
        if rank < n + p + d:
            raise ValueError(
                f"the regressors [x, u, phi(x)] have rank {rank} < {n + p + d}: "
                "(A, B, C) is not identifiable from these transitions"
            )
    theta = torch.linalg.pinv(W) @ x_next  # (n + p + d, n)
    theta = theta.T
    return theta[:, :n], theta[:, n : n + p], theta[:, n + p :]


def estimate_system(
    system: NearlyLQ,
    n_samples: int,
    generator: torch.Generator | None = None,
    noise_std: float = 0.0,
    min_norm: bool = False,
) -> NearlyLQ:
    """Collect ``n_samples`` transitions of ``system`` and return the least-squares model."""
    A, B, C = least_squares(
        system,
        *collect_transitions(system, n_samples, generator, noise_std),
        min_norm=min_norm,
    )
    return system.replace(
        A=A, B=B, C=C, meta=dict(system.meta, estimated_from=n_samples)
    )


def model_free_k_lin(
    system: NearlyLQ,
    n_samples: int,
    generator: torch.Generator | None = None,
    noise_std: float = 0.0,
) -> tuple[Tensor, NearlyLQ]:
    """``K^lin`` computed from the least-squares model (the paper's model-free initialisation)."""
    est = estimate_system(system, n_samples, generator, noise_std)
    return k_lin(est), est


def identification_curve(
    system: NearlyLQ, sizes, reps: int, noise_std: float, seed: int = 0
) -> dict:
    """Least-squares error ``||[A B C]^ - [A B C]||_F`` and ``||K^lin^ - K^lin||_F`` versus the
    number of transitions ``N`` (``reps`` independent data sets per size)."""
    K_true = k_lin(system)
    err = np.zeros((len(sizes), reps))
    kerr = np.zeros((len(sizes), reps))
    for i, N in enumerate(sizes):
        for r in range(reps):
            gen = torch.Generator().manual_seed(seed * 100_003 + 1000 * i + r)
            est = estimate_system(system, int(N), gen, noise_std)
            err[i, r] = math.sqrt(
                sum(
                    float((getattr(est, k) - getattr(system, k)).square().sum())
                    for k in "ABC"
                )
            )
            kerr[i, r] = float((k_lin(est) - K_true).norm())
    return dict(sizes=np.asarray(sizes), error=err, k_error=kerr, noise_std=noise_std)
