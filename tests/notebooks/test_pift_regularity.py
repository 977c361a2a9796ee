"""The regularity chapter's record (whichever profile's record exists: smoke in CI, full
after the book command): every declared claim judged, the verdicts the prose relies on, and
the headline numbers against the bounds."""

import pytest


@pytest.fixture(scope="module")
def rec(notebook_results):
    data = notebook_results("pift_regularity")
    return data


CLAIMS = (
    "lip_controls",
    "lip_values",
    "uniform_apriori",
    "apriori_bound",
    "linear_beyond_lq",
    "tilted_w1",
)


def test_every_declared_claim_is_judged(rec):
    claims = rec["claims"]
    assert set(claims) == set(CLAIMS)
    for key, c in claims.items():
        assert c.get("verdict"), key
        assert c.get("baseline") or c.get("no_baseline"), key
        assert c.get("control") or c.get("no_control"), key
        if c["verdict"] in ("not reproduced", "inconclusive"):
            assert c.get("diagnosis"), key
    assert claims["tilted_w1"]["kind"] == "ours"
    assert claims["apriori_bound"]["kind"] == "ours"


def test_verdicts_the_prose_relies_on(rec):
    c = rec["claims"]
    full = rec["profile"] == "full"
    assert c["lip_controls"]["verdict"] == "confirmed"
    assert c["lip_controls"]["baseline_passes"] is False
    assert c["lip_controls"]["control_passes"] is True
    # the baseline that should lose regularity (PI-FT outside its regime) does
    assert c["lip_values"]["baseline_passes"] is False
    assert c["lip_values"]["control_passes"] is True
    assert c["lip_values"]["verdict"] == "confirmed"
    assert c["uniform_apriori"]["baseline_passes"] is False
    if full:  # T/2 -> T settles only on the full chain (T = 100; smoke T = 30)
        assert c["uniform_apriori"]["control_passes"] is True
        assert c["uniform_apriori"]["verdict"] in ("confirmed", "confirmed with caveat")
    # our a priori bound fails even with a log-concave model: a limit of our proof
    assert c["apriori_bound"]["control_passes"] is False
    assert c["apriori_bound"]["verdict"] == "inconclusive"
    assert c["apriori_bound"]["diagnosis"]["cause"] == "underpowered"
    assert c["linear_beyond_lq"]["verdict"] == "confirmed"
    assert c["linear_beyond_lq"]["control_passes"] is True
    assert c["tilted_w1"]["verdict"] in ("confirmed", "confirmed with caveat")
    assert c["tilted_w1"]["baseline_passes"] is False
    assert c["tilted_w1"]["control_passes"] is True


def test_grid_solver_is_exact_on_the_lq_class(rec):
    assert rec["values"]["grid_vs_lq_max_err"] < 1e-10


def test_lipschitz_constants_stay_below_the_bounds(rec):
    v = rec["values"]
    for key in (
        "ratio_u_max_1d",
        "ratio_v_max_1d",
        "ratio_u_max_2d",
        "ratio_v_max_2d",
        "grid_halved_ratio_max",
    ):
        assert v[key] <= 1.001, key
    assert v["fixed_point_bound_holds"]
    assert (
        v["L_max_1d"] <= 1.001 * v["bump_lip_grad"]
    )  # steps t < T: the bump never exceeds it
    assert v["rho_max_2d"] < 1


def test_a_priori_bound_is_vacuous_for_a_multimodal_model(rec):
    v = rec["values"]
    assert v["ell_max_1d"] > 1
    assert v["a_priori_finite_steps"] < rec["params"]["T1"]
    # and with a log-concave model, whose reverse mean contracts, it is still finite only
    # for a minority of the steps; the measured constants stay below Lip(grad r) there
    assert v["log_concave_ell_max"] <= 1
    assert v["log_concave_finite_frac_max"] < 0.5
    assert v["log_concave_L_over_lip_r_max"] <= 1.001


def test_measured_regularity(rec):
    v = rec["values"]
    # the bump's constant stays below the reward's own; the log-sigmoid's does not (the
    # mixture separates its modes): the constant depends on the model, as the paper says
    assert v["uniform_L_over_lip_r_bump_max"] <= 1.001
    assert v["uniform_L_over_lip_r_max"] > 1
    assert v["iterates_growth_max"] <= 1.5
    assert v["diverging_nonfinite_steps"] >= 1
    assert v["lq_control_ratio_u_max"] == pytest.approx(1.0, abs=1e-6)


def test_linear_convergence_on_the_grid(rec):
    assert rec["values"]["grid_rate_ratio_max"] <= 1.01


def test_fine_tuned_model_is_close_to_the_tilted_target(rec):
    v = rec["values"]
    assert v["w1_finetuned_max"] < 0.3 * v["w1_pretrained_bump"]
    assert v["w1_finetuned_max"] < 0.1
    assert v["w1_finetuned_max"] < 0.25 * v["w1_pretrained_min"]
    assert (
        abs(v["reward_2d_finetuned"] - v["reward_2d_target"])
        < 4 * v["reward_2d_finetuned_se"] + 0.05
    )
