"""Existence and uniqueness of the Bellman step's maximiser
(diffctrl.control.wellposed_experiments) against the closed form of the concave case."""

import torch

from diffctrl.control import LQProblem, QuadraticReward
from diffctrl.control.rewards import BumpReward
from diffctrl.control.wellposed_experiments import maximiser_path, uniqueness
from diffctrl.diffusion.schedules import vp_sde_schedule

F64 = torch.float64


def _problem():
    return LQProblem.create(
        vp_sde_schedule(20), [0.3], [[0.4]], QuadraticReward.create(Q=1.0, a=[1.0]), 0.5
    )


def test_maximiser_path_matches_the_closed_form_for_a_concave_reward():
    # r = -(y - 1)^2 / 2: u*(m) = sigma^2 (1 - m) / (beta + sigma^2) (Riccati at P = 1)
    z = torch.arange(-6.0, 6.0, 0.001, dtype=F64)
    means = torch.linspace(-2, 2, 41, dtype=F64)
    reward = QuadraticReward.create(Q=1.0, a=[1.0])
    for sigma, beta in ((0.3, 0.05), (0.1, 1.0)):
        u = maximiser_path(reward, sigma, beta, means, z)
        exact = sigma**2 * (1 - means) / (beta + sigma**2)
        assert torch.allclose(u, exact, atol=1e-3)


def test_two_equal_bumps_have_two_maximisers_at_small_beta():
    z = torch.arange(-8.0, 8.0, 0.005, dtype=F64)
    means = torch.linspace(-1, 1, 201, dtype=F64)
    left = BumpReward.create([-1.5], height=1.0, width=0.6)
    right = BumpReward.create([1.5], height=1.0, width=0.6)
    two = lambda y: left(y) + right(y)  # noqa: E731
    u = maximiser_path(two, 0.07, 1e-3, means, z)
    assert u.diff().abs().max() > 2.5  # jumps from one bump to the other at m = 0
    # with a strong KL weight the control stays near 0 and moves continuously
    u = maximiser_path(two, 0.07, 1.0, means, z)
    assert u.diff().abs().max() < 0.05


def test_uniqueness_verdict_on_a_small_beta_grid():
    out = uniqueness(_problem(), [1e-2, 1.0], n_states=301)
    v = out.verdicts["unique"]
    j = v["verdict"]
    assert j.control_passes is True and j.baseline_passes is False
    assert j.per_seed == [all(x <= 0.2 for x in v["evidence"]["bump_largest_jump"])]
    assert out.values["unique_two_bumps_fails"] == 1  # at beta = 0.01, not at 1
