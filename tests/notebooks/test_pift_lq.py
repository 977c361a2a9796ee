"""The LQ chapter's record (whichever profile's record exists: smoke in CI, full after the
book command): every declared claim judged, the verdicts the prose relies on, and the headline
numbers against the closed forms."""

import pytest

CLAIMS = (
    "kl_cost",
    "bellman",
    "wellposed",
    "unique",
    "tilted",
    "tradeoff",
    "continuous",
)


@pytest.fixture(scope="module")
def record(notebook_results):
    return notebook_results("pift_lq")


@pytest.fixture(scope="module")
def rec(record):
    return record["values"]


@pytest.fixture(scope="module")
def claims(record):
    return record["claims"]


def test_every_declared_claim_is_judged(claims):
    assert set(claims) == set(CLAIMS)
    for key, c in claims.items():
        assert c.get("verdict"), key
        assert c["baseline_passes"] is not True or c["verdict"] not in (
            "confirmed",
            "confirmed with caveat",
        ), key
        assert c.get("baseline") or c.get("no_baseline"), key
        assert c.get("control") or c.get("no_control"), key
        if c["verdict"] in ("not reproduced", "inconclusive"):
            assert c.get("diagnosis"), key
    # the book's own derivations are marked as such, the identity as a check
    assert claims["tilted"]["kind"] == "ours" and claims["continuous"]["kind"] == "ours"
    assert claims["kl_cost"]["kind"] == "check"


def test_kl_identity_and_bellman_equation(rec, claims):
    assert rec["kl_identity_gap"] < 1e-12
    assert claims["kl_cost"]["verdict"] == "confirmed"
    assert rec["bellman_residual_max"] < 1e-10 and rec["foc_residual_max"] < 1e-10
    # the Bellman residual alone cannot tell u = 0 from the optimum; the FOC can
    assert rec["pretrained_bellman_residual_max"] < 1e-10
    assert rec["pretrained_foc_residual_min"] > 1e-3
    assert claims["bellman"]["verdict"] == "confirmed"
    assert claims["bellman"]["baseline_passes"] is False


def test_monte_carlo_matches_the_exact_value(rec):
    assert abs(rec["J_mc_first"] - rec["J_exact"]) < 3 * rec["J_mc_se_first"]
    assert rec["mc_max_abs_z"] < 3.5


def test_bounded_reward_is_well_posed_beyond_the_sufficient_condition(rec, claims):
    assert rec["wellposed_bump_all"] and rec["wellposed_concave_all"]
    assert rec["wellposed_bump_beyond_condition"] >= 1  # beta < sigma^2 l_+ was tested
    assert rec["wellposed_convex_fails"] >= 1  # the baseline fails the same test
    assert claims["wellposed"]["verdict"] == "confirmed"
    assert claims["wellposed"]["control_passes"] is True


def test_the_maximiser_is_not_unique_at_small_beta(rec, claims):
    # a maximiser exists for every beta, but for the bump it is not unique at some state
    # for some small beta; the two-bump baseline jumps, the concave control does not
    assert 0 < rec["unique_bump_frac"] < 1
    assert rec["unique_two_bumps_fails"] >= 1
    assert claims["unique"]["verdict"] == "not reproduced"
    assert claims["unique"]["control_passes"] is True
    assert claims["unique"]["diagnosis"]["cause"] == "setting"


def test_fine_tuned_law_reaches_the_tilted_target_at_rate_T_minus_2(rec, claims):
    for key in ("kl_slope_finetuned", "kl_slope_random_min", "kl_slope_random_max"):
        assert -2.2 < rec[key] < -1.8, key
    assert abs(rec["kl_slope_pretrained_target"]) < 0.3  # u = 0 does not approach p*
    assert 1.0 < rec["meanshift_over_full_Tmax"] < 10.0  # a constant factor, not a rate
    assert rec["kl_full_Tmax"] < rec["kl_finetuned_Tmax"] < 1e-3
    assert claims["tilted"]["verdict"] == "confirmed with caveat"
    assert claims["tilted"]["control_passes"] is True


def test_a_schedule_with_memory_has_a_floor(rec):
    assert rec["kl_slope_short"] > -1.0
    assert rec["kl_short_floor"] > 3e-4
    assert rec["kl_short_exact_start_floor"] > 1e-4  # even from the exact start
    assert rec["log_alphabar_book"] < -10 and 0.05 < rec["alphabar_short"] < 0.1


def test_tradeoff(rec, claims):
    assert rec["tradeoff_reward_monotone"] and rec["tradeoff_kl_monotone"]
    assert rec["tradeoff_monotone_frac"] == 1.0
    assert rec["path_kl_ge_terminal_kl"]
    assert rec["reward_gap_to_target_max"] < 0.02
    assert claims["tradeoff"]["verdict"] == "confirmed"


def test_continuous_limit(rec, claims):
    assert -1.3 < rec["cont_J_slope"] < -0.8
    assert -1.2 < rec["cont_mean_slope"] < -0.8
    assert -1.4 < rec["cont_gmm_slope"] < -0.7
    assert abs(rec["cont_pretrained_J_slope"]) < 0.3
    assert rec["cont_exact_start_mean_gap"] < 1e-5
    assert claims["continuous"]["verdict"] == "confirmed"
