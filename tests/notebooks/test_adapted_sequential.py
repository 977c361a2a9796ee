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
    n, L = rec["params"]["n_gen"], rec["params"]["L_arma"]
    for proc in ("ar1", "ar1persistent", "arma11", "arma21"):
        assert v[f"arma_{proc}_oracle_acf_err"] < 5 / (n * L) ** 0.5 * 3
        assert v[f"arma_{proc}_oracle_mean_err"] < 5 * (L / n) ** 0.5
        assert v[f"arma_{proc}_oracle_var_dev"] < 5 * (2 / n) ** 0.5
        assert 0.0 <= v[f"arma_{proc}_power"] <= 1.0
    # the Monte Carlo floor of the fitted KL for exact samples is about L (L + 3) / (4 n)
    Lg = rec["params"]["L"]
    assert v["gp_matern32_oracle_kl"] < 3 * Lg * (Lg + 3) / (4 * n)


def test_truncation_bias_is_the_exact_kl_of_the_one_entry_law(rec):
    v = rec["values"]
    assert v["trunc_d"] == 1 and v["trunc_bias_kl"] > 0.05


def test_prefix_reuse_changes_the_cost_not_the_samples(rec):
    v = rec["values"]
    L, N = rec["params"]["L"], rec["params"]["levels"]
    assert v["reuse_max_sample_diff"] < 1e-5
    assert v["reuse_head_evals"] == L * (2 * N - 1)
    assert v["reuse_encoder_evals"] == L and v["noreuse_encoder_evals"] == L * (
        2 * N - 1
    )


def test_exact_conditional_weights_beat_ignoring_the_past(rec):
    v = rec["values"]
    assert v["mp_exact_utility"] > v["mp_exact_marginal_utility"]


def test_every_claim_is_judged(rec):
    arma = {f"arma_{k}" for k in ("ar1", "ar1persistent", "arma11", "arma21")}
    gp = {f"gp_{k}" for k in ("rbf", "matern32", "fbmh02")}
    assert set(rec["claims"]) == arma | gp | {
        "adapted",
        "arma_beats_whole",
        "gp_beats_whole",
        "rate_n",
        "trunc_fbm",
        "portfolio",
    }
    for key, c in rec["claims"].items():
        assert c["verdict"] in VERDICTS, key
        assert c["baseline"] or c["no_baseline"], key
        assert c["control"] or c["no_control"], key
        if c["verdict"] != "confirmed":
            assert c["diagnosis"], key
