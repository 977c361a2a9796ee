"""The sequential chapter's second record (Gaussian processes, sample size, portfolios): exact
facts that hold at any training budget."""

import pytest


@pytest.fixture(scope="module")
def rec(notebook_results):
    return notebook_results("adapted_sequential_gp")


def test_oracle_kl_sits_at_its_monte_carlo_floor(rec):
    v = rec["values"]
    n, L = rec["params"]["n_gen"], rec["params"]["L"]
    # the Monte Carlo floor of the fitted KL for exact samples is about L (L + 3) / (4 n)
    assert v["gp_matern32_oracle_kl"] < 3 * L * (L + 3) / (4 * n)
    for k in ("rbf", "matern32", "fbmh02"):
        assert 0.0 <= v[f"gp_{k}_power"] <= 1.0


def test_truncation_bias_is_the_exact_kl_of_the_one_entry_law(rec):
    v = rec["values"]
    assert v["trunc_d"] == 1 and v["trunc_bias_kl"] > 0.05


def test_exact_conditional_weights_beat_ignoring_the_past(rec):
    v = rec["values"]
    assert v["mp_exact_utility"] > v["mp_exact_marginal_utility"]


def test_every_claim_is_judged(rec, check_claims):
    gp = {f"gp_{k}" for k in ("rbf", "matern32", "fbmh02")}
    assert set(rec["claims"]) == gp | {
        "gp_beats_whole",
        "rate_n",
        "trunc_fbm",
        "portfolio",
    }
    check_claims(rec)
