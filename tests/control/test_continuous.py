import numpy as np
import pytest
import torch

from diffctrl.control.chain import ControlledChain
from diffctrl.control.continuous import (
    cole_hopf_value,
    posterior_mixture,
    solve_hjb_lq,
    vp_alpha_bar,
)
from diffctrl.control.grid import Grid
from diffctrl.control.lq import LQProblem, solve_lq
from diffctrl.control.pift import pift_grid
from diffctrl.control.rewards import BumpReward, QuadraticReward
from diffctrl.control.tilted import tilted_gaussian
from diffctrl.diffusion.exact import GaussianMixture, posterior_mean
from diffctrl.diffusion.schedules import vp_sde_schedule

F64 = torch.float64
MU = torch.tensor([1.0, -0.5], dtype=F64)
S0 = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=F64)
REW = QuadraticReward.create(Q=[[2.0, 0.5], [0.5, 1.0]], a=[2.0, 1.0])


def test_hjb_riccati_matches_cole_hopf():
    cs = solve_hjb_lq(MU, S0, REW, 0.3)
    data = GaussianMixture.gaussian(MU, S0)
    y = torch.randn(6, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    for tau in (0.0, 0.5, 0.95):
        ch = cole_hopf_value(data, REW, 0.3, tau, y, n_gh=60)
        assert torch.allclose(ch, cs.value(tau, y), atol=1e-7), tau


def test_posterior_mixture_mean_is_tweedie():
    data = GaussianMixture.create([0.3, 0.7], [[-1.0, 0.0], [1.0, 0.5]], [0.2, 0.3])
    y = torch.randn(5, 2, dtype=F64)
    ab = vp_alpha_bar(0.4)
    r, m, _ = posterior_mixture(data, ab, y)
    assert torch.allclose(
        (r[:, :, None] * m).sum(1), posterior_mean(data, ab, y), atol=1e-12
    )


def test_discrete_optimum_converges_to_the_continuous_one_at_rate_1_over_N():
    beta = 0.2
    cs = solve_hjb_lq(MU, S0, REW, beta)
    errs = []
    for N in (100, 200, 400):
        sol = solve_lq(LQProblem.create(vp_sde_schedule(N), MU, S0, REW, beta))
        errs.append(abs(sol.objective() - cs.J))
    assert 1.8 < errs[0] / errs[1] < 2.2 and 1.8 < errs[1] / errs[2] < 2.2


def test_continuous_terminal_law_is_the_tilted_target_up_to_the_start():
    mus, Ss = tilted_gaussian(MU, S0, REW, 0.1)
    m, C = solve_hjb_lq(MU, S0, REW, 0.1, init="exact").terminal_law()
    # only the residual memory of Y_0 remains (abar(1) = e^{-10.05})
    assert np.abs(m - mus.numpy()).max() < 1e-5 and np.abs(C - Ss.numpy()).max() < 1e-8
    m2, _ = solve_hjb_lq(MU, S0, REW, 0.1, init="exact", beta_max=30.0).terminal_law()
    assert np.abs(m2 - mus.numpy()).max() < 0.01 * np.abs(m - mus.numpy()).max()


def test_grid_pift_approaches_the_continuous_value_on_a_mixture():
    data = GaussianMixture.create([0.5, 0.5], [[-1.0], [1.0]], [0.1, 0.2])
    reward = BumpReward.create([1.5], height=1.0, width=0.6)
    grid = Grid.create(-5, 5, 161)
    y = torch.linspace(-2, 2, 21, dtype=F64)[:, None]
    exact = cole_hopf_value(data, reward, 0.5, 0.0, y, n_gh=60)
    errs = []
    for N in (25, 50):
        chain = ControlledChain.from_data(data, vp_sde_schedule(N), 0.5)
        res = pift_grid(chain, reward, grid, 30, n_gh=10, tol=1e-12, record=False)
        errs.append(float((res.value(0, y) - exact).abs().max()))
    assert errs[1] < 0.65 * errs[0]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="beta"):
        solve_hjb_lq(MU, S0, REW, 0.0)
    with pytest.raises(ValueError, match="positive"):
        solve_hjb_lq(MU, torch.zeros(2, 2), REW, 0.1)
    with pytest.raises(ValueError, match="dimension"):
        solve_hjb_lq(torch.zeros(3), torch.eye(3), REW, 0.1)
    with pytest.raises(ValueError, match="tau"):
        cole_hopf_value(
            GaussianMixture.gaussian(MU, S0), REW, 0.1, 1.0, torch.zeros(2, 2)
        )
