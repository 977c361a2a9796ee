"""Entry points of diffctrl.gradients that take a cost (the reward's counterpart) or data refuse
a wrong shape or a non-finite value, naming the argument; well-formed calls still agree with
scipy."""

from dataclasses import replace

import pytest
import torch

from diffctrl.gradients.problems import point_mass_lq
from diffctrl.gradients.sde import simulate


@pytest.fixture(scope="module")
def problem():
    return point_mass_lq(
        hidden=(4,), dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )


def test_simulate_checks_the_terminal_cost(problem):
    prob, theta = problem
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    column = replace(prob, terminal_cost=lambda p, x: (x**2).sum(-1, keepdim=True))
    with pytest.raises(
        ValueError, match=r"terminal_cost must return shape \(8,\).*\(8, 1\)"
    ):
        simulate(column, theta, n_paths=8, n_steps=3, generator=gen())

    def nan_cost(p, x):
        c = (x**2).sum(-1)
        return torch.where(torch.arange(c.shape[0]) == 0, torch.nan, c)

    with pytest.raises(ValueError, match="terminal_cost returned 1 non-finite"):
        simulate(
            replace(prob, terminal_cost=nan_cost),
            theta,
            n_paths=8,
            n_steps=3,
            generator=gen(),
        )
    bad = theta.clone()
    bad[0] = float("inf")
    with pytest.raises(ValueError, match="theta has non-finite"):
        simulate(prob, bad, n_paths=8, n_steps=3, generator=gen())
    with pytest.raises(ValueError, match="x0 has non-finite"):
        replace(
            prob, x0=torch.tensor([float("nan"), 0.0, 0.0, 0.0], dtype=torch.float64)
        )
    out = simulate(prob, theta, n_paths=8, n_steps=3, generator=gen())
    assert out["cost"].shape == (8,) and bool(torch.isfinite(out["cost"]).all())
