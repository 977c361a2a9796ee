"""The T-step optimum by grid PI-FT: equal to the exact LQ control, and its terminal mode weights
approach those of the tilted target p* as T grows (but are not p*'s at finite T)."""

import pytest
import torch

from diffctrl.control.chain import ControlledChain
from diffctrl.control.lq import LQProblem, solve_lq
from diffctrl.control.rewards import QuadraticReward
from diffctrl.diffusion import data as ddata
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.finetune.metrics import control_error
from diffctrl.finetune.optimum import grid_optimum, mode_fractions
from diffctrl.finetune.targets import tilted_target
from diffctrl.finetune.trajectories import rollout


def _zero(t, y):
    return torch.zeros_like(y)


def test_grid_optimum_is_the_exact_lq_control():
    pb = LQProblem.create(
        vp_sde_schedule(6),
        [0.5, -0.5],
        [[0.6, 0.1], [0.1, 0.4]],
        QuadraticReward.create(Q=1.0, a=[1.0, 1.0]),
        0.5,
        variance="large",
    )
    chain, exact = pb.chain(), solve_lq(pb).as_control()
    opt = grid_optimum(chain, pb.reward, n=31, n_iter=80, n_gh=4)
    err, _ = control_error(
        chain, opt.as_control(), exact, 2000, seed=0, dtype=torch.float64
    )
    size, _ = control_error(chain, _zero, exact, 2000, seed=0, dtype=torch.float64)
    assert size > 0.1
    assert err < 1e-8 * size  # quadratic values are represented exactly on the grid


def _mode_gap(T, n=5000):
    p0 = ddata.ring_mixture(K=4, radius=2.0, var=0.1)
    reward = QuadraticReward.linear([0.6, 0.3])
    chain = ControlledChain.from_data(p0, vp_sde_schedule(T), 0.5, variance="large")
    opt = grid_optimum(chain, reward, n=41, n_iter=40, n_gh=8)
    roll = rollout(chain, opt.as_control(), reward, n, torch.Generator().manual_seed(0))
    w_star = tilted_target(p0, reward, 0.5).weights
    return 0.5 * float((mode_fractions(roll.y[-1], p0.means) - w_star).abs().sum())


def test_optimal_chain_mode_weights_approach_the_tilted_target():
    g4, g32 = _mode_gap(4), _mode_gap(32)
    assert (
        g4 > 0.05
    )  # at small T the optimum is visibly not p* (Monte Carlo error ~ 0.007)
    assert g32 < 0.6 * g4


def test_bad_inputs():
    with pytest.raises(ValueError, match="means"):
        mode_fractions(torch.zeros(5, 2), torch.zeros(3))
    p0 = ddata.ring_mixture(K=4, radius=2.0, var=0.1)
    chain = ControlledChain.from_data(p0, vp_sde_schedule(3), 0.5, variance="large")
    with pytest.raises(ValueError, match="box"):
        grid_optimum(chain, QuadraticReward.linear([1.0, 0.0]), box=0.0)


def test_mode_fractions_are_float64_beside_the_means():
    means = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[-0.9, 0.1], [1.2, 0.0], [0.8, -0.3]])
    frac = mode_fractions(y, means)
    assert frac.device == means.device and frac.dtype == torch.float64
    assert frac.tolist() == [1 / 3, 2 / 3]
