"""The Bellman equation of one step (diffctrl.control.bellman): the residuals are round-off
for the Riccati solution and detect a wrong value; only the first-order condition separates
the optimum from the pre-trained policy; the bracket peaks at the Riccati control."""

import pytest
import torch

from diffctrl.control.bellman import (
    bellman_residuals,
    foc_residuals,
    one_step_objective,
)
from diffctrl.control.lq import pretrained_policy, random_lq_problem, solve_lq


def test_bellman_residuals_helper_is_round_off_and_detects_a_wrong_value():
    pb = random_lq_problem(2, 10, 3)
    sol = solve_lq(pb)
    y = torch.randn(
        50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    assert max(bellman_residuals(pb, sol, y)) < 1e-10

    class Shifted:  # a value function off by a non-constant term must fail the check
        def control(self, t, y):
            return sol.control(t, y)

        def value(self, t, y):
            return sol.value(t, y) + (0.1 * y[:, 0] if t == 5 else 0.0)

    assert max(bellman_residuals(pb, Shifted(), y)) > 1e-3


def test_first_order_residuals_separate_the_optimum_from_the_pretrained_policy():
    """The Bellman residual checks a policy's own evaluation equation, so u = 0 passes it; the
    first-order condition u_t = (sigma^2/beta) E grad V_{t+1} holds only at the optimum."""
    pb = random_lq_problem(2, 10, 3)
    y = 2 * torch.randn(
        50, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    sol, pre = solve_lq(pb), pretrained_policy(pb)
    assert max(foc_residuals(pb, sol, y)) < 1e-10
    assert max(bellman_residuals(pb, pre, y)) < 1e-10  # the old criterion cannot tell
    assert max(foc_residuals(pb, pre, y)) > 1e-2
    with pytest.raises(ValueError, match="y must have shape"):
        foc_residuals(pb, sol, y[:, :1])


def test_the_bracket_is_maximal_at_the_riccati_control():
    pb = random_lq_problem(1, 8, 2, beta=0.4)
    sol = solve_lq(pb)
    A, c = pb.pretrained_affine()
    t = 5
    y = torch.tensor([[0.7]], dtype=torch.float64)
    s, b = float(pb.sigma[t]), float(pb.beta[t])
    m = (y @ A[t].T + c[t])[0]
    u_star = sol.control(t, y)
    us = u_star + torch.linspace(-0.5, 0.5, 101, dtype=torch.float64)[:, None]
    obj = one_step_objective(lambda z: sol.value(t + 1, z), m, s, b, us, n_gh=3)
    assert int(obj.argmax()) == 50
    assert float(obj[50]) == pytest.approx(float(sol.value(t, y)[0]), abs=1e-10)
