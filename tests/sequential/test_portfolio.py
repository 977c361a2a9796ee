"""Mean-variance weights: KKT conditions and the plug-in from many scenarios."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from diffctrl.sequential.gaussian import gaussian_paths
from diffctrl.sequential.portfolio import (
    factor_market,
    mean_variance_weights,
    myopic_weights,
    portfolio_stats,
    quadratic_utility,
    scenario_weights,
)


def test_weights_solve_the_constrained_problem():
    mu, S = factor_market(5, seed=1)
    w = mean_variance_weights(mu, S, gamma=4.0).numpy()
    assert w.sum() == pytest.approx(1.0)
    m, C = mu.numpy(), S.numpy()
    obj = lambda v: -(v @ m) + 2.0 * v @ C @ v  # noqa: E731
    res = minimize(
        obj,
        np.full(5, 0.2),
        constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1}],
        tol=1e-12,
    )
    assert abs(w - res.x).max() < 1e-5


def test_plugin_from_many_scenarios_is_near_optimal():
    mu, S = factor_market(6, seed=2)
    opt = portfolio_stats(mean_variance_weights(mu, S), mu, S)
    x = gaussian_paths(S, 200_000, mean=mu, generator=torch.Generator().manual_seed(0))
    got = portfolio_stats(scenario_weights(x), mu, S)
    assert got["sharpe"] == pytest.approx(opt["sharpe"], rel=0.02)
    assert got["mean"] == pytest.approx(opt["mean"], rel=0.05)


def test_bad_arguments():
    mu, S = factor_market(3)
    with pytest.raises(ValueError, match="gamma"):
        mean_variance_weights(mu, S, gamma=0.0)
    with pytest.raises(ValueError, match="mu must have shape"):
        mean_variance_weights(mu[:2], S)
    with pytest.raises(ValueError, match="n > d"):
        scenario_weights(torch.randn(3, 3))


def test_myopic_weight_maximises_the_expected_quadratic_utility():
    # E[w r - g/2 (w r)^2] for r ~ N(m, v) is w m - g/2 w^2 (v + m^2): maximiser m / (g (v + m^2))
    m, v, g = 0.3, 1.5, 5.0
    r = m + v**0.5 * torch.randn(200_000, generator=torch.Generator().manual_seed(0))
    w = float(myopic_weights(r, g))
    assert w == pytest.approx(m / (g * (v + m**2)), rel=0.03)
    res = minimize(lambda x: -quadratic_utility(torch.tensor(x[0]), r, g), [0.0])
    assert res.x[0] == pytest.approx(w, abs=1e-4)
    with pytest.raises(ValueError, match="gamma"):
        myopic_weights(r, 0.0)
