"""[ours] Regularity bounds (diffctrl.control.regularity): the control bound's closed form,
and on a mixture every measured Lipschitz constant of grid PI-FT below its bound."""

import math

import numpy as np
import pytest

from diffctrl.control.chain import ControlledChain
from diffctrl.control.grid import Grid
from diffctrl.control.pift import pift_grid
from diffctrl.control.regularity import (
    control_lipschitz_bound,
    regularity_ratios,
    value_lipschitz_bounds,
)
from diffctrl.control.rewards import BumpReward
from diffctrl.diffusion.exact import GaussianMixture
from diffctrl.diffusion.schedules import vp_sde_schedule


def test_control_bound_closed_form():
    rho, ell = 0.4, 1.3
    assert control_lipschitz_bound(rho, ell, 7) == pytest.approx(
        rho * ell * (1 - rho**7) / (1 - rho)
    )
    assert control_lipschitz_bound(rho, ell, 0) == 0.0


def test_regularity_bounds_hold_on_a_mixture():
    data = GaussianMixture.create([0.4, 0.6], [[-1.2], [1.0]], [0.15, 0.25])
    chain = ControlledChain.from_data(data, vp_sde_schedule(20), 0.5)
    reward = BumpReward.create([1.5], height=1.0, width=0.5)
    grid = Grid.create(-5, 5, 201)
    res = pift_grid(chain, reward, grid, 8, n_gh=12, region=([-3], [3]))
    for t in range(chain.T):
        rho, ell = res.rho[t], res.ell[t]
        assert rho < 1
        for m, lip in enumerate(res.lip_u[t]):
            assert lip <= control_lipschitz_bound(rho, ell, m) * 1.001 + 1e-9
        bound = value_lipschitz_bounds(
            rho,
            ell,
            res.kappa[t],
            res.L[t + 1],
            res.grad_sup[t + 1],
            res.sigma[t],
            res.beta[t],
            len(res.lip_gradV[t]) - 1,
        )
        assert np.all(res.lip_gradV[t] <= bound * 1.001 + 1e-9)
    assert math.isfinite(res.objective())
    # the ratios divide the same constants by the same bounds
    rt = regularity_ratios(res)
    t = chain.T // 2
    m = len(res.lip_u[t]) - 1
    assert rt["u"][t, m] == pytest.approx(
        res.lip_u[t][m] / control_lipschitz_bound(res.rho[t], res.ell[t], m)
    )
    assert np.all(np.isnan(rt["u"][:, 0]))  # u^(0) = 0: no ratio
    assert np.nanmax(rt["u"]) <= 1.001 and np.nanmax(rt["v"]) <= 1.001
