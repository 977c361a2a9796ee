"""The 1-D density tools of diffctrl.control.analysis: W1 against a density on a grid is
exact for a sample of its own quantiles and does not depend on the density's
normalisation (the GridTarget density of p* gives the W1 of p0 exp(r/beta) normalised on
the grid), sampling inverts the CDF, and bad arrays are refused."""

import math

import pytest
import torch

from diffctrl.control.analysis import sample_density_1d, w1_to_density
from diffctrl.control.rewards import BumpReward
from diffctrl.diffusion.exact import GaussianMixture
from diffctrl.finetune.targets import GridTarget

F64 = torch.float64
DATA1 = GaussianMixture.create([0.5, 0.5], [[-1.0], [1.0]], [0.3, 0.3])


def test_w1_of_a_shifted_sample_is_the_shift():
    x = torch.linspace(-8, 8, 16001, dtype=F64)
    dens = torch.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    q = torch.special.ndtri(
        (torch.arange(20000, dtype=F64) + 0.5) / 20000
    )  # the N(0, 1) quantiles: W1 ~ 0
    assert w1_to_density(q, x, dens) < 2e-3
    assert w1_to_density(q + 0.3, x, dens) == pytest.approx(0.3, abs=3e-3)


def test_w1_does_not_depend_on_the_normalisation_of_the_density():
    x = torch.linspace(-4, 5, 2001, dtype=F64)
    reward = BumpReward.create([2.0], height=1.0, width=0.6)
    beta = 0.5
    target = GridTarget.create(DATA1, reward, beta)
    p_grid = target.log_prob(x[:, None]).exp()  # normalised by its own quadrature
    logp = DATA1.log_prob(x[:, None]) + reward(x[:, None]) / beta
    p_sum = torch.exp(logp - logp.max())
    p_sum = p_sum / (p_sum.sum() * (x[1] - x[0]))  # normalised by the Riemann sum
    assert float((p_grid / p_sum).std() / (p_grid / p_sum).mean()) < 1e-13
    gen = torch.Generator().manual_seed(0)
    y = 0.5 + torch.randn(3000, generator=gen, dtype=F64)
    assert w1_to_density(y, x, p_grid) == pytest.approx(
        w1_to_density(y, x, p_sum), rel=1e-12
    )
    # sampling inverts the same normalised CDF
    a = sample_density_1d(x, p_grid, 500, torch.Generator().manual_seed(1))
    b = sample_density_1d(x, p_sum, 500, torch.Generator().manual_seed(1))
    assert torch.allclose(a, b, atol=1e-12)


def test_samples_of_a_gaussian_density_have_its_moments():
    x = torch.linspace(-6, 8, 4001, dtype=F64)
    dens = torch.exp(-0.5 * ((x - 1.0) / 0.7) ** 2)
    s = sample_density_1d(x, dens, 40000, torch.Generator().manual_seed(0))
    assert float(s.mean()) == pytest.approx(1.0, abs=0.02)
    assert float(s.std()) == pytest.approx(0.7, abs=0.02)


def test_density_helpers_check_their_arrays():
    x = torch.linspace(-4, 4, 401, dtype=F64)
    p = DATA1.log_prob(x[:, None]).exp()
    with pytest.raises(ValueError, match=r"density must have shape \(401,\)"):
        w1_to_density(torch.zeros(5), x, p[:-1])
    with pytest.raises(ValueError, match="samples has non-finite"):
        w1_to_density(torch.tensor([0.0, float("nan")]), x, p)
    with pytest.raises(ValueError, match="x has non-finite"):
        w1_to_density(torch.zeros(5), torch.tensor([0.0, float("nan")]), p[:2])
    with pytest.raises(ValueError, match="density must be >= 0"):
        sample_density_1d(x, -p, 10)
