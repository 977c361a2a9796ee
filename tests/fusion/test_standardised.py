"""The paper's standardised pipeline: exact standardised laws, sample moments, and the exact-
score control of the fused sampler."""

import numpy as np
import pytest
import torch

from diffctrl.diffusion.exact import GaussianMixture as GM
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.fusion import (
    QuadratureGrid,
    exact_score_sampler,
    geometric_class_share,
    law_distance,
    moments,
    paper_1d_setting,
    standardise_mixture,
)

F64 = torch.float64


def _gm_moments(gm):
    w, m, v = gm.weights.double(), gm.means.double()[:, 0], gm.covs.double()[:, 0, 0]
    mean = float(w @ m)
    return mean, float(w @ (v + m**2) - mean**2) ** 0.5


def test_standardise_mixture_has_mean_zero_sd_one_in_closed_form():
    target, aux = paper_1d_setting()
    for gm in [target, *aux]:
        mean, sd = _gm_moments(gm)  # target: mean -1.2, sd sqrt(36.64 - 1.44)
        z = standardise_mixture(gm, mean, sd)
        zm, zs = _gm_moments(z)
        assert abs(zm) < 1e-12 and abs(zs - 1) < 1e-12
    assert abs(_gm_moments(target)[1] - 35.2**0.5) < 1e-12
    with pytest.raises(ValueError, match="sd"):
        standardise_mixture(target, 0.0, 0.0)


def test_standardised_law_is_the_law_of_the_affine_map():
    target, _ = paper_1d_setting()
    z = standardise_mixture(target, -1.2, 5.0)
    x = torch.tensor([[-7.0], [0.3], [6.5]], dtype=F64)
    # density of (X - m) / s at (x - m) / s is s * p(x)
    lhs = z.log_prob((x + 1.2) / 5.0)
    rhs = target.to(F64).log_prob(x) + np.log(5.0)
    torch.testing.assert_close(lhs, rhs)


def test_moments_match_numpy_and_reject_bad_shapes():
    x = torch.randn(100, 1, generator=torch.Generator().manual_seed(0))
    m, s = moments(x)
    assert abs(m - float(np.mean(x.numpy()))) < 1e-6
    assert abs(s - float(np.std(x.numpy()))) < 1e-6
    with pytest.raises(ValueError, match="x must be"):
        moments(torch.zeros(5, 2))


def test_exact_score_sampler_draws_the_barycenter_of_two_gaussians():
    # equal variances: q_lambda = N(sum lam_i m_i, 1) = N(0.5, 1) at lambda = (1/2, 1/2)
    aux = [GM.create([1.0], [[-1.0]], [1.0]), GM.create([1.0], [[2.0]], [1.0])]
    sched = vp_sde_schedule(50)
    bary = QuadratureGrid.create(aux, -8, 9, 1200).barycenter([0.5, 0.5])
    assert abs(float(bary.mean()[0]) - 0.5) < 1e-6
    g = torch.Generator().manual_seed(0)
    x, k_min = exact_score_sampler(bary, sched, 4000, g)
    assert k_min == 1  # the grid resolves every level here
    floor = law_distance(bary.sample(4000, g), bary)
    assert law_distance(x, bary) <= 2 * floor + 0.01
    # 50 DDPM levels shrink the variance by a few percent (the sampler's own error)
    assert abs(float(x.mean()) - 0.5) < 0.08 and 0.9 < float(x.std()) < 1.05


def test_mode_weights_of_the_paper_auxiliaries_at_equal_lambda():
    # prod_i w_i^lambda_i: left sqrt(0.5 * 0.7), right sqrt(0.5 * 0.3)
    share = geometric_class_share(
        torch.tensor([[0.5, 0.5], [0.7, 0.3]], dtype=F64), torch.tensor([0.5, 0.5])
    )
    expected = 0.35**0.5 / (0.35**0.5 + 0.15**0.5)
    assert abs(float(share[0]) - expected) < 1e-12
    assert abs(expected - 0.604) < 1e-3
