"""The chapter's experiment drivers and their verdicts: constants checked against independent
computations, criteria judged against their baselines."""

import numpy as np
import pytest
import scipy.linalg
import torch

from diffctrl.lqr import (
    envelope_holds,
    hessian_extremes,
    k_lin,
    random_system,
    sphere_points,
)
from diffctrl.lqr.experiments import (
    c_zero_check,
    c_zero_verdict,
    convexity_verdict,
    hessian_values,
    paper_run_specs,
    rate_experiment,
    rate_verdict,
)


def test_c_zero_check_is_the_lqr_of_scipy():
    """With C = 0, K^lin is scipy's DARE gain and Newton from four starts lands on [K*, 0]
    (horizon long enough); the starts themselves are far from it, so the baseline fails."""
    x0 = sphere_points(3, 24)
    cz = c_zero_check(0, x0, 40, spectral_radius=0.5)
    assert cz["dare_klin_maxdiff"] < 1e-12
    assert cz["dare_newton_dist_max"] < 1e-5 and cz["dare_newton_grad_max"] < 1e-8
    assert cz["dare_start_dist_max"] > 0.1
    # the same DARE gain, from scipy directly
    s = random_system(3, 3, scale=1.0, seed=0, spectral_radius=0.5)
    A, B = s.A.numpy(), s.B.numpy()
    P = scipy.linalg.solve_discrete_are(A, B, np.eye(3), np.eye(3))
    K = np.linalg.solve(np.eye(3) + B.T @ P @ B, B.T @ P @ A)
    assert (
        np.abs(k_lin(s.replace(C=torch.zeros_like(s.C)))[:, :3].numpy() - K).max()
        < 1e-12
    )
    v = c_zero_verdict(cz, 40)
    assert (v["verdict"], v["baseline_passes"]) == ("confirmed", False)
    assert v["evidence"]["horizon"] == 40
    bad = dict(cz, dare_newton_dist_max=1e-2)
    assert c_zero_verdict(bad, 40)["verdict"] == "not reproduced"


def test_paper_run_specs_hold_every_figure_once():
    specs = paper_run_specs(0.5, [1, 3, 5], 2, 1, 3, 0.01, b_norm=1.0, c_norm=0.4)
    assert len(specs) == 2 * 3 + 2 * 1 + 1 + 2
    assert all(
        (s.b_norm, s.c_norm, s.spectral_radius) == (1.0, 0.4, 0.5) for s in specs
    )
    assert sorted((s.seed, s.scale) for s in specs if s.init == "klin") == [
        (0, 1.0),
        (0, 3.0),
        (0, 5.0),
        (1, 1.0),
        (1, 3.0),
        (1, 5.0),
        (2, 3.0),
    ]
    assert [(s.seed, s.init_seed) for s in specs if s.init == "random"] == [
        (0, 0),
        (1, 0),
    ]
    mf = [s for s in specs if s.init == "model_free"]
    assert [(s.n_samples, s.noise_std) for s in mf] == [(9, 0.0), (300, 0.01)]
    # Figs. 1(a) and 2 need l = 1 and l = 3: added when the grid lacks them
    no_one = paper_run_specs(0.5, [2], 2, 0, 2, 0.01)
    assert sorted(s.scale for s in no_one if s.init == "klin") == [
        1.0,
        1.0,
        2.0,
        2.0,
        3.0,
        3.0,
    ]


def test_hessian_values_read_the_grid_up_to_the_first_failure():
    h = dict(
        scales=np.array([0.5, 1.0, 2.0, 3.0]),
        mu=np.array([0.1, 0.05, -0.01, 0.02]),
        L=np.array([10.0, 20.0, 30.0, 40.0]),
        rho=np.array([0.5, 0.8, 1.2, 0.9]),
    )
    v = hessian_values(h)
    assert v["hess_klin_l_convex_max"] == 1.0 and v["klin_l_stable_max"] == 1.0
    assert v["hess_klin_cond_l1"] == pytest.approx(20.0 / 0.05)
    assert v["hess_l_grid_max"] == 3.0
    c = convexity_verdict([0.05, 0.02], [0, 1])
    assert (c["verdict"].verdict, c["verdict"].per_seed) == ("confirmed", [True, True])
    assert c["evidence"]["model_seeds"] == [0, 1]
    assert convexity_verdict([-0.05, -0.02], [0, 1])["verdict"].verdict == (
        "not reproduced"
    )


def test_rate_verdict_claims_nothing_without_a_positive_mu():
    rate = dict(
        scales=np.array([0.5, 1.0]),
        theory=np.array([1.01, 1.02]),
        observed=np.array([0.9, 0.95]),
        applies=np.array([False, False]),
        bound_holds=np.array([True, True]),
        baseline_bound_holds=np.array([True, True]),
    )
    v = rate_verdict(rate)
    assert (v["verdict"], v["baseline_passes"]) == ("inconclusive", False)
    assert v["diagnosis"].cause == "setting"
    rate.update(
        applies=np.array([True, True]), baseline_bound_holds=np.array([False] * 2)
    )
    j = rate_verdict(rate)["verdict"]
    assert (j.verdict, j.baseline_passes, j.per_seed) == (
        "confirmed",
        False,
        [True, True],
    )
    # a constant gap that meets the envelope too: the criterion decides nothing
    rate.update(baseline_bound_holds=np.array([True] * 2))
    j = rate_verdict(rate)["verdict"]
    assert (j.verdict, j.why) == ("inconclusive", "baseline passes")


def test_rate_experiment_uses_the_constants_at_klin():
    x0 = sphere_points(3, 24)
    r = rate_experiment(
        0,
        [1.0],
        0.2,
        x0,
        horizon=6,
        n_iter=40,
        eval_every=5,
        newton_iter=10,
        newton_starts=("klin",),
    )
    s = random_system(3, 3, scale=1.0, seed=0, spectral_radius=0.2)
    mu, L = hessian_extremes(s, k_lin(s), x0, 6)
    assert r["mu"][0] == pytest.approx(mu, rel=1e-9) and r["L"][0] == pytest.approx(
        L, rel=1e-9
    )
    assert r["eta"][0] == pytest.approx(1 / L, rel=1e-12)
    assert r["theory"][0] == pytest.approx(1 - mu / L, rel=1e-12)
    assert r["mu_star"][0] != pytest.approx(mu, rel=1e-6)  # K* is another point
    assert r["applies"][0] == (mu > 0)
    # the record states the baseline's outcome too: a run that never moves
    assert r["baseline_bound_holds"][0] == envelope_holds(
        np.full(len(r["iters"]), r["gaps"][0, 0]), r["iters"], float(r["theory"][0])
    )
    assert r["bound_holds"][0] == envelope_holds(
        r["gaps"][:, 0], r["iters"], float(r["theory"][0])
    )
