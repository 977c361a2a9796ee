"""The mixture fine-tuning notebook's record (whichever profile's record exists: smoke in CI,
full after the book command): every declared claim judged, the verdicts the prose relies on,
and the headline numbers."""

import pytest

CLAIMS = (
    "reaches_optimum",
    "samples_pstar",
    "pift_vs_dpok",
    "linear_convergence",
    "beta_faster",
    "boundary",
    "beta_closer",
)


@pytest.fixture(scope="module")
def record(notebook_results):
    return notebook_results("finetune_mixture")


@pytest.fixture(scope="module")
def rec(record):
    return record["values"]


@pytest.fixture(scope="module")
def claims(record):
    return record["claims"]


def test_every_declared_claim_is_judged_and_baselines_fail(claims):
    assert set(claims) == set(CLAIMS)
    for key, c in claims.items():
        assert c.get("verdict"), key
        assert c["baseline_passes"] is False, key


def test_seed_comparisons_need_several_seeds(claims, rec):
    if rec["n_seeds"] < 2:
        assert claims["pift_vs_dpok"]["verdict"] == "inconclusive"
    # a gap inside the seed spread is never "confirmed"
    if rec["pift_beats_dpok_rewards"] < 3:
        assert claims["pift_vs_dpok"]["verdict"] in ("inconclusive", "not reproduced")
    # the head-to-head: the same search, the same budget
    for r in ("linear", "quadratic", "bump"):
        assert rec[f"lr_pift_{r}"] > 0 and rec[f"lr_dpok_{r}"] > 0
        fe_pift = rec[f"forward_equivalents_pift_{r}"]
        fe_dpok = rec[f"forward_equivalents_dpok_{r}"]
        assert abs(fe_dpok - fe_pift) <= 0.05 * fe_pift + 1, r  # equal budgets


def _in_band(rate, rho, band):
    return rho / band <= rate <= rho * band


def test_sweep_rate_verdicts_follow_their_rule(claims, record):
    band = record["params"]["rate_band"]
    ev = claims["linear_convergence"]["evidence"]
    want = [_in_band(r, e["theory"], band) for e in ev.values() for r in e["factors"]]
    assert claims["linear_convergence"]["per_seed"] == want
    assert claims["linear_convergence"]["baseline_passes"] is False
    # the theorem's factor falls as 1/beta, so its control passes
    assert claims["beta_faster"]["control_passes"] is True
    b = claims["boundary"]["evidence"]
    for e in b.values():  # outside the regime the plain error grows on every seed
        assert all(g > 1 for g in e["plain_final_over_start"])
    assert claims["beta_closer"]["verdict"] == "confirmed"


def test_the_sweep_follows_the_theorem_factor_in_the_full_profile(record, rec):
    if record["profile"] != "full":
        pytest.skip("the smoke profile's regressions are too small to resolve a rate")
    for tag in ("0p2", "0p5", "1p0", "2p0"):
        assert rec[f"sweep_final_err_{tag}"] < 0.2, tag  # the pre-trained model: 1
    for tag in ("0p2", "0p5"):  # where rho is well above the regression floor
        assert _in_band(rec[f"sweep_rate_{tag}"], rec[f"sweep_rho_{tag}"], 1.5), tag
    # larger beta, smaller factor (the fitted ones, seed means)
    rates = [rec[f"sweep_rate_{t}"] for t in ("0p2", "0p5", "1p0", "2p0")]
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert rec["sweep_rho_0p05"] > 1 and rec["sweep_growth_0p05"] > 10


def test_optimum_approaches_p_star_only_as_T_grows(claims, rec):
    assert rec["mode_gap_slope"] < rec["mode_gap_pre_slope"]  # the baseline stays put
    assert claims["samples_pstar"]["verdict"] != "confirmed"


def test_grid_sensitivity_is_computed(rec):
    for r in ("linear", "quadratic", "bump"):
        for k in ("reward", "kl", "w2"):
            assert 0 <= rec[f"grid_sens_{k}_{r}"] < 0.5, (k, r)


def test_every_method_moves_towards_p_star(rec):
    for m in ("pift", "draft", "dpok", "adjoint"):
        assert rec[f"w2_{m}_linear"] < 0.7 * rec["w2_pre_linear"], m
        # no method reaches the noise floor (the optimum itself does not)
        assert rec[f"w2_{m}_linear"] > rec["w2_floor_linear"], m


def test_every_method_approaches_the_grid_optimum(rec, record):
    # relative control error: 1 = the pre-trained chain, 0 = the T-step optimum (grid PI-FT)
    for r in ("linear", "quadratic", "bump"):
        for m in ("pift", "draft", "dpok", "adjoint"):
            if (m, r) != ("adjoint", "bump"):  # the prose: Adjoint Matching fails there
                # full: well inside; smoke (a few iterations): better than not moving
                bound = 0.8 if record["profile"] == "full" else 1.0
                assert rec[f"err_{m}_{r}"] < bound, (m, r, rec[f"err_{m}_{r}"])
            # no method beats the optimum of the problem it solves (up to Monte Carlo error)
            assert rec[f"J_{m}_{r}"] < rec[f"J_opt_{r}"] + 0.05, (m, r)
        assert rec[f"J_opt_{r}"] > rec[f"J_pre_{r}"]
    assert rec["err_adjoint_bump"] > rec["err_pift_bump"]


def test_the_optimum_is_not_p_star_at_finite_T_but_gets_closer(rec):
    assert rec["w2_opt_linear"] > 1.2 * rec["w2_floor_linear"]
    assert rec["mode_gap_last"] < rec["mode_gap_first"]
    assert rec["mode_gap_slope"] < 0


def test_larger_beta_stays_closer_to_the_pretrained_model(rec):
    # exact optimal path KL (part 1's LQ solver): decreasing in beta
    assert rec["lq_kl_0p05"] > rec["lq_kl_0p2"] > rec["lq_kl_0p5"] > rec["lq_kl_1p0"]
    assert rec["lq_kl_1p0"] > rec["lq_kl_2p0"] > 0


# Dropped: ``0 < lora_B_max < 1e-2`` could not fail. AdamW moves a zero-initialised LoRA B by
# about lr = 3e-4 per step along the sign of any nonzero gradient, right or wrong, so the value
# only says that the path ran. Whether the LoRA control's gradient is right is a unit test
# (tests/finetune: DRaFT with a LoRA control against finite differences of the chain's mean).
