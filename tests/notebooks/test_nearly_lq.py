"""The nearly-LQ chapter's headline numbers (smoke profile) against closed forms and theory."""

import pytest


@pytest.fixture(scope="module")
def rec(notebook_results):
    data = notebook_results("nearly_lq")
    assert data["profile"] == "smoke"
    return data["values"]


def test_c_zero_is_the_lqr(rec):
    assert rec["dare_klin_maxdiff"] < 1e-12            # K^lin = [K_dare, 0], bit for bit
    assert rec["dare_newton_dist_max"] < 1e-5          # Newton from random starts lands there
    assert rec["dare_newton_grad_max"] < 1e-8


def test_zeroth_order_estimator_is_unbiased_but_noisy(rec):
    assert rec["zo_max_abs_z"] < 4.5                   # mean vs autograd grad of C_r
    assert rec["zo_rel_error_l3"] > 1.0                # one estimate: error > the gradient
    assert rec["zo_smoothing_bias_l3"] > 0.1           # r = 0.6 is not small


def test_model_free_variant_is_exact_without_noise(rec):
    assert rec["mf_clean_error_max"] < 1e-10
    assert rec["mf_clean_k_error_max"] < 1e-10
    assert rec["mf_pg_start_diff"] < 1e-10


def test_landscape_near_klin(rec):
    for tag in ("", "_cal"):
        assert rec[f"hess_klin_mu_l1{tag}"] > 0        # locally strongly convex at l = 1
        assert rec[f"hess_klin_cond_l1{tag}"] > 100    # ... but badly conditioned
    # the convexity / stability range grows when the matrices are smaller
    assert rec["hess_klin_l_convex_max_cal"] > rec["hess_klin_l_convex_max"]
    assert rec["klin_l_stable_max_cal"] > rec["klin_l_stable_max"]


def test_linear_rate_of_exact_gradient_descent(rec):
    assert rec["rate_bound_holds_all"]                 # gap <= (1 - eta mu)^t gap_0
    assert rec["rate_observed_dec_l1"] >= rec["rate_theory_dec_l1"]
    assert rec["rate_paper_step_dec_l1"] < 1e-5        # at eta = 1e-4 the rate is invisible


def test_convergence_follows_stability_of_klin(rec):
    assert rec["fig1b_conv_iff_stable_cal"]
    assert rec["fig1b_agree_frac"] >= 0.8
    assert rec["fig1b_stable_frac_by_l"][0] == 1.0     # l = 1: K^lin stabilises every model
    assert rec["fig1b_stable_frac_by_l"][-1] == 0.0    # largest l: none
    assert rec["fig1a_klin_conv_frac_cal"] == 1.0
    assert rec["fig2_conv_frac_cal"] == rec["fig2_stable_frac_cal"]
    assert rec["fig1a_klin_gap_cal"] < 0.05
