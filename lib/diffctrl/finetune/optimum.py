"""The optimum of the T-step fine-tuning problem itself, the yardstick for every parametric method.

Every method of :mod:`.losses` maximises the same objective over mean-shift controls,
``J(u) = E r(Y_T) - sum_t beta_t E |u_t(Y_t)|^2 / (2 sigma_t^2)``. In 1-D/2-D grid PI-FT
(part 1, :func:`diffctrl.control.pift.pift_grid`: values on a grid, Gauss-Hermite expectations,
policy iteration per step to a tolerance) solves this problem to grid accuracy, so its control
``u*`` is the answer a parametric method should converge to. Two distances follow:

- the *optimisation gap* of a method: the path KL to the optimal chain,
  ``1/2 E sum_t |u_t - u*_t|^2 / sigma_t^2`` (:func:`diffctrl.finetune.metrics.control_error`);
- the *restriction gap* of the problem: the optimal chain's terminal law is the tilted target
  ``p*`` only up to ``O(1/T)`` (a Gaussian kernel with a shifted mean cannot reweight the modes of
  ``p0`` exactly in finitely many steps), which :func:`mode_fractions` makes visible.
"""

from __future__ import annotations

import torch

from ..control.grid import Grid
from ..control.pift import PIFTGridResult, pift_grid

__all__ = ["grid_optimum", "mode_fractions"]


def grid_optimum(
    chain,
    reward,
    *,
    box: float = 5.0,
    n: int = 61,
    n_iter: int = 60,
    n_gh: int = 10,
    tol: float = 1e-10,
    device="cpu",
    progress: bool = False,
) -> PIFTGridResult:
    """Grid PI-FT on ``[-box, box]^d`` (d = 1, 2) with ``n`` points per axis, at most ``n_iter``
    policy-iteration sweeps per step (stopping when the control moves by less than ``tol``) and
    ``n_gh`` Gauss-Hermite nodes per axis. Use ``.as_control()`` for ``u*(t, y)``."""
    if not box > 0:
        raise ValueError(f"box (half-width of the grid) must be > 0, got {box}")
    grid = Grid.create(-box, box, n, d=chain.dim)
    return pift_grid(
        chain,
        reward,
        grid,
        n_iter,
        n_gh=n_gh,
        tol=tol,
        record=False,
        device=device,
        progress=progress,
    )


def mode_fractions(y: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Fraction of the samples ``y`` (n, d) nearest to each of the K ``means`` (K, d): the mode
    weights of a sample of a well-separated mixture, (K,) float64 on the device of ``means``
    (beside the mixture's own weights, wherever the samples were drawn)."""
    if y.ndim != 2 or means.ndim != 2 or y.shape[1] != means.shape[1]:
        raise ValueError(
            f"y must be (n, d) and means (K, d) with the same d, got {tuple(y.shape)} "
            f"and {tuple(means.shape)}"
        )
    near = torch.cdist(y.double(), means.double().to(y.device)).argmin(1)
    frac = torch.bincount(near, minlength=means.shape[0]).double() / y.shape[0]
    return frac.to(means.device)
