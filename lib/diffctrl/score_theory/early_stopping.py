"""Where to stop GD on noisy labels: the oracle, validation and Raskutti-Wainwright-Yu choices
on an error curve, a lower bound on the target's RKHS norm (the rule's assumption), and the
rate the early-stopped error should follow (chapter ``book/score_estimation.md``; Han,
Razaviyayn & Xu 2024, v4 Sec. 5; Raskutti, Wainwright & Yu 2014).
"""

from __future__ import annotations

import torch

from .kernels import rwy_stopping_step, validation_stop
from .problems import Problem
from .trajectories import KernelFit, kernel_test_error

__all__ = ["ntk_rate_exponent", "rkhs_norm_lower_bound", "stopping_summary"]


def stopping_summary(
    curves: dict, fit: KernelFit, problem: Problem, kernel_error_at_rwy: bool = True
) -> dict:
    """Oracle, validation and Raskutti-Wainwright-Yu choices on a kernel or network curve.

    The RWY time is computed on the NTK (the rule is stated for the kernel dynamics that the
    network tracks). With ``kernel_error_at_rwy`` its error is that of kernel GD at that
    (fractional) step count; otherwise the curve is read at the last checkpoint not after it.
    """
    steps, test = curves["steps"], curves["test"]
    i_orc = int(torch.argmin(test))
    i_val = validation_stop(curves["val"])
    k_rwy = rwy_stopping_step(
        fit.kgd.eigvals, problem.n, fit.lr, problem.sigma2**0.5, fit.kernel_scale
    )
    if kernel_error_at_rwy:
        err_rwy = float(kernel_test_error(problem, fit, [k_rwy])[0])
    else:
        i_rwy = (
            int(torch.searchsorted(steps.double(), torch.tensor(k_rwy), right=True)) - 1
        )
        err_rwy = float(test[max(i_rwy, 0)])
    return {
        "k_oracle": int(steps[i_orc]),
        "err_oracle": float(test[i_orc]),
        "k_val": int(steps[i_val]),
        "err_val": float(test[i_val]),
        "k_rwy": float(k_rwy),
        "err_rwy": err_rwy,
        "err_last": float(test[-1]),
        "err_init": float(test[0]),
    }


def rkhs_norm_lower_bound(
    fit: KernelFit, f_train: torch.Tensor, rel_cutoff: float = 1e-8
) -> float:
    """A lower bound on ``||f*||_H`` in the RKHS of the normalised kernel ``K / c`` (the one
    the Raskutti-Wainwright-Yu rule assumes of norm <= 1), from ``f_train = f*(z_i)`` (n, p).

    Every ``f`` in ``H`` with these values has at least the norm of the minimum-norm
    interpolant, ``(c sum_i |u_i^T f_train|^2 / lambda_i)^(1/2)`` (``(lambda_i, u_i)`` the Gram
    matrix's eigenpairs); keeping only the terms with ``lambda_i >= rel_cutoff lambda_max``
    (the rest is round-off) lowers the sum, so the bound stays valid.
    """
    if f_train.shape[0] != fit.kgd.n:
        raise ValueError(f"f_train must have {fit.kgd.n} rows, got {f_train.shape[0]}")
    lam, U = fit.kgd.eigvals.double(), fit.kgd.eigvecs.double()
    keep = lam >= rel_cutoff * lam[0]
    coef = U[:, keep].T @ f_train.double().reshape(fit.kgd.n, -1)
    return float((fit.kernel_scale * (coef**2).sum(1) / lam[keep]).sum().sqrt())


def ntk_rate_exponent(d: int) -> float:
    """Exponent of the early-stopped kernel-regression rate ``n^{-alpha/(alpha+1)}`` for the
    ReLU NTK on inputs ``(x, t, 1)`` in R^{d+2}: its eigenvalues decay like ``j^{-alpha}`` with
    ``alpha = (d + 2)/(d + 1)`` (NTK on the sphere S^{d+1}; Bietti & Mairal 2019), giving
    ``(d + 2)/(2d + 3)`` — our reconstruction of the rate of the paper's bound for this kernel."""
    return (d + 2) / (2 * d + 3)
