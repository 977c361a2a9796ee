"""The stopping rules on a kernel GD curve, the RKHS-norm lower bound against the norm of a
kernel expansion, the rate exponent."""

import pytest
import torch

from diffctrl.score_theory import (
    KernelFit,
    bimodal_mixture,
    fit_kernel_gd,
    fit_ntk,
    kernel_curves,
    log_checkpoints,
    make_problem,
    ntk_rate_exponent,
    relu_ntk,
    rkhs_norm_lower_bound,
    stopping_summary,
)


def test_ntk_rate_exponent():
    # d = 2: inputs (x, t, 1) on S^3, eigenvalues j^(-4/3): rate n^(-4/7)
    assert ntk_rate_exponent(2) == pytest.approx(4 / 7)
    assert ntk_rate_exponent(1) == pytest.approx(3 / 5)


def test_kernel_curve_has_a_minimum_inside_and_the_rules_are_reported():
    data = bimodal_mixture(2)
    prob = make_problem(data, 200, 50, 500, 1e-3, 1.0, seed=0)
    fit = fit_ntk(prob)
    ck = log_checkpoints(10**6, 40)
    curves = kernel_curves(prob, fit, ck)
    summ = stopping_summary(curves, fit, prob)
    assert 0 < summ["k_oracle"] < 10**6
    assert (
        summ["err_oracle"] < 0.5 * summ["err_last"]
    )  # noisy labels: long training overfits
    assert summ["err_oracle"] < 0.5 * summ["err_init"]
    assert summ["err_oracle"] <= min(summ["err_val"], summ["err_rwy"])
    assert float(curves["train"][-1]) < 1e-6  # interpolation


def test_rkhs_norm_lower_bound_is_the_norm_of_a_kernel_expansion():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(30, 4, generator=gen, dtype=torch.float64)
    K = relu_ntk(z, z)
    a = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    c = float(K.diagonal().max())
    fit = KernelFit(fit_kernel_gd(K, K @ a), lr=1.0, kernel_scale=c)
    exact = float((c * (a * (K @ a)).sum()).sqrt())  # |f|_H of f = sum_i a_i k(z_i, .)
    assert abs(rkhs_norm_lower_bound(fit, K @ a, rel_cutoff=0.0) - exact) < 1e-6 * exact
    assert rkhs_norm_lower_bound(fit, K @ a, rel_cutoff=1e-2) <= exact
