"""One score-regression problem: data, training / validation / test sets, and its errors
(chapter ``book/score_estimation.md``; notation ``book/notation.md``, *Score estimation as
regression*; Han, Razaviyayn & Xu 2024).

A *problem* is a training set of ``n`` denoising pairs ``((X_t, t), X_0)`` on a Gaussian
mixture (:func:`bimodal_mixture`), a hold-out set of ``n_val`` pairs (noisy labels, for the
validation stopping rule) and a test set of inputs with their exact regression targets
``f*(X_t, t) = E[X_0 | X_t]``; the test error ``mean ||f - f*||^2`` (:func:`mse`) is therefore
the exact excess risk up to Monte Carlo over the inputs only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..diffusion.exact import GaussianMixture
from .network import features
from .regression import DenoisingSample, posterior_moments, sample_denoising

__all__ = ["Problem", "bimodal_mixture", "log_checkpoints", "make_problem", "mse"]


def bimodal_mixture(
    d: int,
    separation: float = 2.0,
    var: float = 0.25,
    dtype=torch.float64,
    device="cpu",
) -> GaussianMixture:
    """``0.5 N(+mu, var I) + 0.5 N(-mu, var I)`` in R^d with ``mu = separation (1, ..., 1)/sqrt(d)``
    (the modes are ``2 separation`` apart whatever the dimension)."""
    if not isinstance(d, int) or d < 1:
        raise ValueError(f"d must be an int >= 1, got {d!r}")
    mu = torch.full((d,), separation / d**0.5, dtype=torch.float64)
    return GaussianMixture.create(
        [0.5, 0.5], torch.stack([mu, -mu]), [var, var], dtype=dtype, device=device
    )


@dataclass(frozen=True)
class Problem:
    """Training, validation and test data of one score-regression problem (float64)."""

    z: torch.Tensor  # (n, d + 2) training inputs (x_t, t, 1)
    y: torch.Tensor  # (n, d) noisy labels X_0
    z_val: torch.Tensor
    y_val: torch.Tensor
    z_test: torch.Tensor
    f_test: torch.Tensor  # (n_test, d) exact targets E[X_0 | X_t]
    sigma2: (
        float  # label-noise variance per coordinate, E tr Cov(X_0 | X_t) / d (exact)
    )
    bayes_risk: float  # E tr Cov(X_0 | X_t): the noisy-label loss of f* (test inputs)
    test: DenoisingSample  # the test draws (X_0, t, X_t, Z) behind z_test

    @property
    def n(self) -> int:
        return self.z.shape[0]

    @property
    def d(self) -> int:
        return self.y.shape[1]


def make_problem(
    data: GaussianMixture,
    n: int,
    n_val: int,
    n_test: int,
    t0: float,
    T: float,
    seed: int,
    device="cpu",
) -> Problem:
    """Draw a problem with a CPU generator seeded by ``seed`` (same data on every device)."""
    gen = torch.Generator().manual_seed(int(seed))
    tr = sample_denoising(data, n, t0, T, gen, device)
    va = sample_denoising(data, n_val, t0, T, gen, device)
    te = sample_denoising(data, n_test, t0, T, gen, device)
    _, trc_train = posterior_moments(data, tr.t, tr.xt)
    f_test, trc_test = posterior_moments(data, te.t, te.xt)
    return Problem(
        features(tr.xt, tr.t),
        tr.x0,
        features(va.xt, va.t),
        va.x0,
        features(te.xt, te.t),
        f_test,
        float(trc_train.mean()) / data.dim,
        float(trc_test.mean()),
        te,
    )


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean_i ||pred_i - target_i||^2`` over the last two dims: (..., n, p) -> (...)."""
    return ((pred - target) ** 2).sum(-1).mean(-1)


def log_checkpoints(max_steps: int, num: int = 40) -> list[int]:
    """0 and about ``num`` log-spaced step counts up to ``max_steps`` (distinct, increasing)."""
    if max_steps < 1 or num < 2:
        raise ValueError(f"need max_steps >= 1 and num >= 2, got {max_steps}, {num}")
    grid = torch.logspace(
        0, torch.log10(torch.tensor(float(max_steps))), num, dtype=torch.float64
    )
    return sorted({0, *[int(round(float(v))) for v in grid]})
