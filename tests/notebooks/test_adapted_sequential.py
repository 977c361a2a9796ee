"""The sequential chapter's smoke-profile record: exact facts that hold at any training budget."""

import pytest

from diffctrl.repro import VERDICTS


@pytest.fixture(scope="module")
def rec(notebook_results):
    data = notebook_results("adapted_sequential")
    return data


def test_sequential_sampler_is_adapted_and_the_whole_sequence_ddpm_is_not(rec):
    v = rec["values"]
    assert v["adapt_seq_max_past_change"] == 0.0
    assert v["adapt_seq_min_future_change"] > 1e-3
    assert v["adapt_whole_min_past_change"] > 1e-3
    c = rec["claims"]["adapted"]
    assert c["verdict"] == "confirmed" and c["baseline_passes"] is False


def test_exact_score_floor_prefers_the_ode_sampler(rec):
    v = rec["values"]
    assert abs(v["floor_ode_var_ratio"] - 1) < 0.1
    assert abs(v["floor_ode_var_ratio"] - 1) < abs(v["floor_ddpm_var_ratio"] - 1)


def test_oracle_matches_the_exact_laws_within_monte_carlo_error(rec):
    v = rec["values"]
    n, L = rec["params"]["n_gen"], rec["params"]["L"]
    for proc in ("ar1", "arma11", "arma21"):
        assert v[f"arma_{proc}_oracle_acf_err"] < 5 / (n * L) ** 0.5 * 3
        assert v[f"arma_{proc}_oracle_mean_err"] < 5 * (L / n) ** 0.5
        assert v[f"arma_{proc}_oracle_var_dev"] < 5 * (2 / n) ** 0.5
    # the Monte Carlo floor of the TV proxy for exact samples is about sqrt(L (L + 3) / (8 n))
    assert v["gp_matern_oracle_tv"] < 2 * (L * (L + 3) / (8 * n)) ** 0.5


def test_truncation_is_exact_for_brownian_motion_and_lossy_for_rough_fbm(rec):
    v = rec["values"]
    assert v["trunc_exact_h05_d1"] < 1e-6
    assert v["trunc_exact_h02_d1"] > 0.05


def test_prefix_reuse_changes_the_cost_not_the_samples(rec):
    v = rec["values"]
    L, N = rec["params"]["L"], rec["params"]["levels"]
    assert v["reuse_max_sample_diff"] < 1e-5
    assert v["reuse_head_evals"] == L * (2 * N - 1)
    assert v["reuse_encoder_evals"] == L and v["noreuse_encoder_evals"] == L * (
        2 * N - 1
    )


def test_plugin_portfolio_is_near_optimal(rec):
    v = rec["values"]
    assert abs(v["port_plugin_sharpe"] - v["port_optimal_sharpe"]) < 0.1


def test_every_claim_is_judged(rec):
    assert set(rec["claims"]) == {
        "adapted",
        "arma",
        "gp",
        "rate_n",
        "trunc_fbm",
        "portfolio",
    }
    for key, c in rec["claims"].items():
        assert c["verdict"] in VERDICTS, key
        assert c["baseline"], key
