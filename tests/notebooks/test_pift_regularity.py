"""The regularity chapter's headline numbers (whichever profile's records
exist: smoke in CI, full after the book command) against the bounds."""

import pytest


@pytest.fixture(scope="module")
def rec(notebook_results):
    data = notebook_results("pift_regularity")
    return data


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
    assert v["rho_max_2d"] < 1


def test_a_priori_bound_is_vacuous_for_a_multimodal_model(rec):
    v = rec["values"]
    assert v["ell_max_1d"] > 1
    assert v["a_priori_finite_steps"] < rec["params"]["T1"]


def test_linear_convergence_on_the_grid(rec):
    assert rec["values"]["grid_rate_ratio_max"] <= 1.01


def test_fine_tuned_model_is_close_to_the_tilted_target(rec):
    v = rec["values"]
    assert v["w1_finetuned_max"] < 0.3 * v["w1_pretrained_bump"]
    assert v["w1_finetuned_max"] < 0.1
    assert (
        abs(v["reward_2d_finetuned"] - v["reward_2d_target"])
        < 4 * v["reward_2d_finetuned_se"] + 0.05
    )
