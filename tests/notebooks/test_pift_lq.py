"""The LQ chapter's headline numbers (whichever profile's records
exist: smoke in CI, full after the book command) against the closed forms."""

import pytest


@pytest.fixture(scope="module")
def rec(notebook_results):
    data = notebook_results("pift_lq")
    return data["values"]


def test_kl_identity_and_bellman_equation(rec):
    assert rec["kl_identity_gap"] < 1e-12
    assert rec["bellman_residual_max"] < 1e-10


def test_monte_carlo_matches_the_exact_value(rec):
    assert abs(rec["J_mc_first"] - rec["J_exact"]) < 3 * rec["J_mc_se_first"]
    assert rec["mc_max_abs_z"] < 3.5


def test_fine_tuned_law_reaches_the_tilted_target_at_rate_T_minus_2(rec):
    for key in ("kl_slope_finetuned", "kl_slope_random_min", "kl_slope_random_max"):
        assert -2.2 < rec[key] < -1.8, key
    assert 1.0 < rec["meanshift_over_full_Tmax"] < 10.0  # a constant factor, not a rate
    assert rec["kl_full_Tmax"] < rec["kl_finetuned_Tmax"] < 1e-3


def test_a_schedule_with_memory_has_a_floor(rec):
    assert rec["kl_short_floor"] > 3e-4
    assert rec["kl_short_exact_start_floor"] > 1e-4  # even from the exact start


def test_tradeoff(rec):
    assert rec["tradeoff_reward_monotone"] and rec["tradeoff_kl_monotone"]
    assert rec["path_kl_ge_terminal_kl"]
    assert rec["reward_gap_to_target_max"] < 0.02


def test_continuous_limit(rec):
    assert -1.3 < rec["cont_J_slope"] < -0.8
    assert -1.2 < rec["cont_mean_slope"] < -0.8
    assert -1.4 < rec["cont_gmm_slope"] < -0.7
    assert rec["cont_exact_start_mean_gap"] < 1e-5
