"""The Preliminaries notebook's headline numbers (smoke profile) against theory."""

import pytest


@pytest.fixture(scope="module")
def rec(notebook_results):
    data = notebook_results("preliminaries")
    assert data["profile"] == "smoke"
    return data["values"]


def test_tweedie_identity(rec):
    assert rec["tweedie_max_gap"] < 1e-10


def test_exact_score_samples_reach_the_noise_floor(rec):
    assert rec["ring_w2"] < 1.5 * rec["ring_w2_floor"]


def test_sampler_orders(rec):
    for m in ("ddim", "em"):
        assert -2.4 < rec[f"kl_slope_{m}"] < -1.6, m
    assert -2.4 < rec["kl_slope_ddpm"] < -1.4  # pre-asymptotic on the short smoke grid
    assert -4.5 < rec["kl_slope_ode"] < -3.5
    assert rec["kl_final_ode"] < 1e-3 * rec["kl_final_ddpm"]


def test_deterministic_samplers_keep_the_start_error(rec):
    # from N(0, I) the ODE's output keeps the start's mismatch; the stochastic DDPM forgets it
    assert rec["kl_prior_final_ode"] > 100 * rec["kl_final_ode"]
    assert rec["kl_prior_final_ddpm"] == pytest.approx(rec["kl_final_ddpm"], rel=0.05)


def test_dsm_training_reduces_the_score_error(rec):
    assert rec["mlp_score_error_mean"] < 0.8
