"""Entry points of diffctrl.control that take a reward or data refuse a wrong shape or a
non-finite value, naming the argument (instead of returning NaN or broadcasting); and a
well-formed call still gives the closed-form answer. Also the regularity chapter's verdict
helpers of diffctrl.control.analysis (bound_test, regularity_verdict) on concrete ratios."""

import math

import numpy as np
import pytest
import torch

from diffctrl.checks import call_reward, check_data, check_reward_values
from diffctrl.repro import judge
from diffctrl.control.analysis import (
    bound_test,
    regularity_verdict,
    sample_density_1d,
    tilted_density_1d,
    w1_to_density,
)
from diffctrl.control.chain import ControlledChain, estimate_objective
from diffctrl.control.continuous import cole_hopf_value
from diffctrl.control.grid import Grid
from diffctrl.control.lq import law_gap, tilted_target
from diffctrl.control.pift import pift_grid
from diffctrl.control.rewards import QuadraticReward
from diffctrl.diffusion.exact import GaussianMixture
from diffctrl.diffusion.schedules import vp_sde_schedule

DATA = GaussianMixture.create([0.3, 0.7], [[-1.0, 0.0], [1.0, 0.5]], [0.2, 0.3])
DATA1 = GaussianMixture.create([0.5, 0.5], [[-1.0], [1.0]], [0.3, 0.3])


def nan_reward(y):
    r = -(y**2).sum(-1)
    r[0] = float("nan")
    return r


def column_reward(y):
    return -(y**2).sum(-1, keepdim=True)  # (n, 1): would broadcast against the (n,) KL


def test_checks_helpers():
    assert torch.equal(check_reward_values(torch.ones(3), 3), torch.ones(3))
    with pytest.raises(ValueError, match=r"reward must return shape \(3,\).*\(3, 1\)"):
        check_reward_values(torch.ones(3, 1), 3)
    with pytest.raises(ValueError, match="my_r returned 1 non-finite"):
        check_reward_values(torch.tensor([0.0, math.inf, 1.0]), 3, "my_r")
    with pytest.raises(TypeError, match="reward"):
        check_reward_values([1.0, 2.0], 2)
    with pytest.raises(TypeError, match="reward must be callable"):
        call_reward(3.0, torch.zeros(2, 1))
    with pytest.raises(ValueError, match="x has non-finite"):
        check_data([[0.0, float("nan")]], "x")
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 2\)"):
        check_data(torch.zeros(4, 3), "x", shape=(None, 2))
    with pytest.raises(TypeError, match="x must be an array"):
        check_data("abc", "x")


def test_estimate_objective_refuses_nan_and_column_rewards():
    chain = ControlledChain.from_data(DATA, vp_sde_schedule(5), 0.5)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    with pytest.raises(ValueError, match="reward returned 1 non-finite"):
        estimate_objective(chain, nan_reward, None, 50, generator=gen())
    with pytest.raises(
        ValueError, match=r"reward must return shape \(50,\).*\(50, 1\)"
    ):
        estimate_objective(chain, column_reward, None, 50, generator=gen())
    with pytest.raises(ValueError, match="n"):
        estimate_objective(chain, lambda y: y[:, 0], None, 0)
    # well formed: the uncontrolled chain's objective is the mean reward of its samples, KL 0
    est = estimate_objective(chain, lambda y: y[:, 0], None, 400, generator=gen())
    assert est.kl == 0 and est.value == pytest.approx(est.reward, abs=1e-15)


def test_pift_grid_checks_the_reward_on_the_grid():
    chain = ControlledChain.from_data(DATA1, vp_sde_schedule(3), 1.0)
    grid = Grid((-3.0,), (3.0,), (21,))
    with pytest.raises(ValueError, match="reward returned 1 non-finite"):
        pift_grid(chain, nan_reward, grid, 1, record=False)
    with pytest.raises(ValueError, match=r"reward must return shape \(21,\)"):
        pift_grid(chain, column_reward, grid, 1, record=False)


def test_cole_hopf_value_checks_reward_and_states():
    y = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="reward returned"):
        cole_hopf_value(DATA, nan_reward, 1.0, 0.5, y, n_gh=4)
    with pytest.raises(ValueError, match="reward must return shape"):
        cole_hopf_value(DATA, column_reward, 1.0, 0.5, y, n_gh=4)
    with pytest.raises(ValueError, match=r"y must have shape \(\*, 2\)"):
        cole_hopf_value(DATA, lambda x: x[:, 0], 1.0, 0.5, torch.zeros(3, 1), n_gh=4)
    # a zero reward has value 0 at every state (log E[exp 0] = 0)
    v = cole_hopf_value(
        DATA, lambda x: torch.zeros(x.shape[0], dtype=x.dtype), 1.0, 0.5, y, n_gh=4
    )
    assert torch.allclose(v, torch.zeros(3, dtype=torch.float64), atol=1e-12)


def test_density_helpers_check_their_arrays():
    x = torch.linspace(-4, 4, 401, dtype=torch.float64)
    with pytest.raises(ValueError, match="reward returned"):
        tilted_density_1d(DATA1, nan_reward, 1.0, x)
    with pytest.raises(ValueError, match="beta"):
        tilted_density_1d(DATA1, lambda y: y[:, 0], 0.0, x)
    with pytest.raises(ValueError, match="x has non-finite"):
        tilted_density_1d(
            DATA1, lambda y: y[:, 0], 1.0, torch.tensor([0.0, float("nan")])
        )
    p = tilted_density_1d(
        DATA1, lambda y: torch.zeros(y.shape[0], dtype=y.dtype), 1.0, x
    )
    ref = DATA1.log_prob(x[:, None]).exp()
    assert torch.allclose(p, ref / (ref.sum() * (x[1] - x[0])), atol=1e-12)
    with pytest.raises(ValueError, match=r"density must have shape \(401,\)"):
        w1_to_density(torch.zeros(5), x, p[:-1])
    with pytest.raises(ValueError, match="samples has non-finite"):
        w1_to_density(torch.tensor([0.0, float("nan")]), x, p)
    with pytest.raises(ValueError, match="density must be >= 0"):
        sample_density_1d(x, -p, 10)


def test_tilted_target_and_law_gap_refuse_nan_moments():
    reward = QuadraticReward.create(torch.eye(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="mu0 has non-finite"):
        tilted_target([0.0, float("nan")], torch.eye(2), reward, 1.0)
    with pytest.raises(ValueError, match="S0 has non-finite"):
        tilted_target(
            [0.0, 0.0], torch.tensor([[1.0, 0.0], [0.0, float("nan")]]), reward, 1.0
        )
    # well formed: S* = (S0^-1 + Q/beta)^-1 = I/2 for S0 = Q = I, beta = 1, a = 0
    mu, S = tilted_target([0.0, 0.0], torch.eye(2), reward, 1.0)
    assert torch.allclose(S, 0.5 * torch.eye(2, dtype=torch.float64), atol=1e-12)
    with pytest.raises(ValueError, match="cov_ref must have shape"):
        law_gap(torch.zeros(2), torch.eye(2), torch.zeros(2), torch.eye(3))
    with pytest.raises(ValueError, match="mean has non-finite"):
        law_gap(
            torch.tensor([float("nan"), 0.0]),
            torch.eye(2),
            torch.zeros(2),
            torch.eye(2),
        )


def _ratios(v_max, v_base, T=3, M=4):
    """A regularity_ratios-like dict: ``v`` peaks at ``v_max`` (iterations m >= 1) and holds
    ``v_base`` in the zero-iteration column; ``u`` is NaN there (u^(0) = 0 has no ratio)."""
    v = np.full((T, M), 0.3)
    v[0, 1] = v_max
    v[:, 0] = v_base
    u = np.full((T, M), 0.9)
    u[:, 0] = np.nan
    return {"u": u, "v": v, "fixed_point": np.ones(T)}


def test_bound_test_needs_the_bound_to_hold_and_to_constrain():
    assert bound_test(np.array([[np.nan, 0.6], [0.2, 1.0005]]))
    assert not bound_test(np.array([0.2, 1.01]))  # the bound fails
    assert not bound_test(np.array([0.2, 0.4]))  # holds but never reaches 0.5: vacuous
    assert not bound_test(np.full((2, 2), np.nan))  # nothing measured
    assert bound_test(np.array([0.4]), lo=0.3)


def test_regularity_verdict_baseline_passing_in_one_setting_downgrades_a_positive_verdict():
    good = [_ratios(0.95, 0.2), _ratios(0.9, 0.1), _ratios(0.8, 0.2)]
    v = regularity_verdict(good, "v", names=["a", "b", "c"])
    assert v["verdict"] == "confirmed" and v["baseline_passes"] is False
    assert v["per_seed"] == [True, True, True]
    assert v["evidence"]["settings"] == ["a", "b", "c"]
    assert v["evidence"]["ratio_max"] == [0.95, 0.9, 0.8]
    assert v["evidence"]["baseline_ratio_max"] == [0.2, 0.1, 0.2]
    # zero iterations already pass in one setting of three: the claim is inconclusive,
    # where a per-setting count of the baseline (1/3 < 0.5) would have left it confirmed
    one = [_ratios(0.95, 0.2), _ratios(0.9, 0.7), _ratios(0.8, 0.2)]
    v = regularity_verdict(one, "v")
    assert v["verdict"] == "inconclusive" and v["baseline_passes"] is True
    assert v["per_seed"] == [True, True, True] and "settings" not in v["evidence"]
    assert judge(v["per_seed"], [False, True, False]) == ("confirmed", False)
    # a caveat verdict is downgraded the same way
    v = regularity_verdict([_ratios(0.9, 0.7), _ratios(1.2, 0.1)], "v")
    assert v["verdict"] == "inconclusive" and v["baseline_passes"] is True
    # controls: the zero-iteration column is NaN, so their baseline never passes
    v = regularity_verdict(one, "u")
    assert v["verdict"] == "confirmed" and v["baseline_passes"] is False
    assert v["evidence"]["baseline_ratio_max"] == [0.0, 0.0, 0.0]


def test_regularity_verdict_keeps_a_negative_verdict_and_checks_its_arguments():
    bad = [_ratios(1.2, 0.7), _ratios(1.5, 0.2)]  # the bound fails everywhere
    v = regularity_verdict(bad, "v")
    assert v["verdict"] == "not reproduced" and v["baseline_passes"] is True
    assert v["per_seed"] == [False, False]
    v = regularity_verdict(
        [_ratios(1.2, 0.7), _ratios(1.5, 0.2), _ratios(0.9, 0.2)], "v"
    )
    assert v["verdict"] == "inconclusive" and v["per_seed"] == [False, False, True]
    with pytest.raises(ValueError, match="kind"):
        regularity_verdict(bad, "w")
    with pytest.raises(ValueError, match="at least one"):
        regularity_verdict([], "v")
    with pytest.raises(ValueError, match="2 settings"):
        regularity_verdict(bad, "v", names=["only one"])
