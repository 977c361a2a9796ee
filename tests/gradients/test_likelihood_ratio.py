"""The likelihood ratio refuses a theta-dependent sigma and a drift that leaves sigma's
range."""

import dataclasses

import pytest
import torch

from diffctrl.gradients import (
    estimate_gradient,
    likelihood_ratio,
)
from diffctrl.gradients.problems import cir, volatility_net

F64 = torch.float64


@pytest.mark.parametrize(
    "make", [lambda: cir(dtype=F64), lambda: volatility_net(dtype=F64)]
)
def test_likelihood_ratio_refuses_theta_dependent_sigma(make):
    problem, theta = make()
    with pytest.raises(ValueError, match="sigma depends on theta"):
        likelihood_ratio(problem, theta, n_paths=4, n_steps=3)
    with pytest.raises(ValueError, match="sigma depends on theta"):
        estimate_gradient("lr", problem, theta, n_paths=4, n_steps=3)


def test_likelihood_ratio_refuses_drift_outside_the_noise_range(linear_lq):
    problem, theta = linear_lq

    def drift_cost(
        th, t, x
    ):  # theta now also pushes the positions, which carry no noise
        mu, rho = problem.drift_cost(th, t, x)
        return mu + th[0] * torch.tensor([1.0, 0, 0, 0], dtype=x.dtype), rho

    bad = dataclasses.replace(problem, drift_cost=drift_cost, prepare=None)
    with pytest.raises(ValueError, match="leaves the range of sigma"):
        likelihood_ratio(bad, theta, n_paths=4, n_steps=3)
