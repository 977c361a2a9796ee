"""Pathwise differentiation: forward sensitivities and reverse mode agree path by path."""

import torch

from diffctrl.gradients import (
    pathwise_forward,
    pathwise_reverse,
)

F64 = torch.float64


def test_forward_and_reverse_sensitivities_agree_per_path(mlp_lq, noise_for):
    problem, theta = mlp_lq
    noise = noise_for(problem, 6, 8, 1)
    fwd = pathwise_forward(problem, theta, noise=noise)
    rev = pathwise_reverse(problem, theta, noise=noise)
    torch.testing.assert_close(fwd.samples, rev.samples, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(fwd.cost, rev.cost)
