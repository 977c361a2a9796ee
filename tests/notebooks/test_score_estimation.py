"""The score-estimation notebook's headline numbers (whichever profile's records
exist: smoke in CI, full after the book command)."""

import pytest


@pytest.fixture(scope="module")
def rec(notebook_results):
    data = notebook_results("score_estimation")
    return data["values"]


def test_dsm_is_regression_plus_a_constant(rec):
    assert rec["tweedie_rel_err"] < 1e-8
    assert rec["dsm_minus_noisy_max"] < 1e-10
    assert rec["dsm_cross_max_se"] < 4.5
    assert rec["dsm_minus_excess_spread"] < 0.2 * rec["dsm_spread"]
    assert 1.0 < rec["dsm_const"] < 4.0  # E tr Cov(X0 | Xt) of the d=2 mixture, ~2.7


def test_network_approaches_kernel_gd_with_width(rec):
    assert -0.75 < rec["ntk_gap_slope"] < -0.3  # Monte Carlo rate m^{-1/2}
    assert rec["gap_slope_early"] < -0.3
    assert rec["gap_slope_late"] < -0.1
    assert rec["gap_late_at_max_width"] < 0.15


def test_kernel_gd_overfits_and_early_stopping_helps(rec):
    assert rec["u_ratio_kernel_min"] > 1.5
    assert rec["u_err_oracle_kernel"] < 0.5 * rec["u_err_init"]
    assert rec["u_err_oracle_net"] < 0.5 * rec["u_err_init"]
    assert 0 <= rec["u_k_rwy"] < rec["u_k_oracle_kernel"]


def test_early_stopped_error_falls_with_n(rec):
    assert -1.0 < rec["slope_err_oracle"] < -0.15
    assert rec["slope_err_oracle_max"] < 0
    assert rec["slope_delta2"] < -0.3
    assert rec["theory_exponent"] == pytest.approx(-4 / 7)
