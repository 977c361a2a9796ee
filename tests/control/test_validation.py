"""Entry points of diffctrl.control that take a reward or data refuse a wrong shape or a
non-finite value, naming the argument (instead of returning NaN or broadcasting); and a
well-formed call still gives the closed-form answer."""

import math

import pytest
import torch

from diffctrl.checks import call_reward, check_data, check_reward_values
from diffctrl.control.chain import ControlledChain, estimate_objective
from diffctrl.control.continuous import cole_hopf_value
from diffctrl.control.grid import Grid
from diffctrl.control.pift import pift_grid
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
