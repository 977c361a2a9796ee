"""Test, validation and training error along the GD trajectories of NTK kernel regression
and of the two-layer network, on one problem (chapter ``book/score_estimation.md``; Han,
Razaviyayn & Xu 2024, Sec. 4).

Both start from the zero function with the same loss ``(1/2n) sum_i ||f(z_i) - y_i||^2`` and
the same step ``eta = lr_scale n / lambda_max(K)`` (:func:`fit_ntk`); kernel GD with the
infinite-width NTK is evaluated in closed form through the Gram matrix's eigendecomposition.
Curves are tensors of shape ``(S,)`` over the checkpoints, on the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .kernels import KernelGD, fit_kernel_gd, kernel_gd_predict, relu_ntk
from .network import init_two_layer, train_gd
from .problems import Problem, mse

__all__ = [
    "KernelFit",
    "fit_ntk",
    "kernel_curves",
    "kernel_test_error",
    "network_curves",
]


@dataclass(frozen=True)
class KernelFit:
    kgd: KernelGD
    lr: float
    kernel_scale: (
        float  # max_i K(z_i, z_i): normalises the kernel to sup <= 1 on the sample
    )


def fit_ntk(problem: Problem, lr_scale: float = 1.0) -> KernelFit:
    """Eigendecompose the infinite-width NTK Gram matrix; ``lr = lr_scale n / lambda_max(K)``."""
    if not 0 < lr_scale < 2:
        raise ValueError(f"lr_scale must lie in (0, 2) for stable GD, got {lr_scale}")
    K = relu_ntk(problem.z, problem.z)
    kgd = fit_kernel_gd(K, problem.y)
    return KernelFit(
        kgd, lr_scale * problem.n / float(kgd.eigvals[0]), float(K.diagonal().max())
    )


def kernel_curves(problem: Problem, fit: KernelFit, checkpoints: Sequence[int]) -> dict:
    """Kernel GD test error (exact target), validation loss (noisy labels) and training loss at
    each checkpoint: tensors of shape (S,), on the CPU whatever the problem's device."""
    kgd = fit.kgd
    test = kernel_gd_predict(
        kgd, relu_ntk(problem.z_test, problem.z), checkpoints, fit.lr
    )
    val = kernel_gd_predict(
        kgd, relu_ntk(problem.z_val, problem.z), checkpoints, fit.lr
    )
    train = kernel_gd_predict(kgd, None, checkpoints, fit.lr)
    return {
        "steps": torch.as_tensor(list(checkpoints)),
        "test": mse(test, problem.f_test).cpu(),
        "val": mse(val, problem.y_val).cpu(),
        "train": mse(train, problem.y).cpu(),
    }


def kernel_test_error(problem: Problem, fit: KernelFit, steps) -> torch.Tensor:
    """Kernel GD test error (exact target) after each of ``steps`` (may be fractional): (S,)."""
    pred = kernel_gd_predict(
        fit.kgd, relu_ntk(problem.z_test, problem.z), steps, fit.lr
    )
    return mse(pred, problem.f_test)


def network_curves(
    problem: Problem,
    width: int,
    lr: float,
    checkpoints: Sequence[int],
    seed: int,
    dtype=torch.float64,
    progress: bool = False,
    antisymmetric: bool = True,
) -> dict:
    """Network GD (init from ``seed``, antisymmetric unless ``antisymmetric=False``; parameters
    in ``dtype``) test error, validation and training loss at each checkpoint (float64, on the
    CPU); also returns the test predictions (S, n_test, d) as ``"pred"`` (on the problem's
    device)."""
    gen = torch.Generator().manual_seed(int(seed))
    net = init_two_layer(
        problem.z.shape[1],
        problem.d,
        width,
        gen,
        dtype=dtype,
        device=problem.z.device,
        antisymmetric=antisymmetric,
    )
    z_eval = torch.cat([problem.z_test, problem.z_val]).to(dtype)
    _, train_pred, pred = train_gd(
        net,
        problem.z.to(dtype),
        problem.y.to(dtype),
        lr,
        list(checkpoints),
        z_eval,
        progress,
    )
    nt = problem.z_test.shape[0]
    pred, train_pred = pred.double(), train_pred.double()
    return {
        "steps": torch.as_tensor(list(checkpoints)),
        "test": mse(pred[:, :nt], problem.f_test).cpu(),
        "val": mse(pred[:, nt:], problem.y_val).cpu(),
        "train": mse(train_pred, problem.y).cpu(),
        "pred": pred[:, :nt],
    }
