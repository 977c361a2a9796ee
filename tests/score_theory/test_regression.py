"""Score matching as regression: exact posterior moments, Tweedie, DSM = regression + constant."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from diffctrl.diffusion.exact import GaussianMixture, score_at
from diffctrl.diffusion.exact import posterior_mean as posterior_mean_fixed
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.score_theory.network import features, forward, init_two_layer
from diffctrl.score_theory.problems import bimodal_mixture
from diffctrl.score_theory.regression import (
    denoiser_from_score,
    dsm_loss,
    dsm_weight,
    posterior_mean,
    posterior_moments,
    regression_loss,
    sample_denoising,
    score_from_denoiser,
    vp_coefficients,
)


def mixture3():
    return GaussianMixture.create(
        [0.2, 0.5, 0.3],
        [[-2.0, 0.5], [1.0, 1.0], [0.5, -1.5]],
        [
            [[0.3, 0.1], [0.1, 0.2]],
            [[0.5, 0.0], [0.0, 0.1]],
            [[0.2, -0.05], [-0.05, 0.4]],
        ],
    )


def test_vp_coefficients_match_the_discrete_vp_schedule():
    sched = vp_sde_schedule(N=50)
    t = sched.times[1:]
    a, s2 = vp_coefficients(t)
    torch.testing.assert_close(a**2, sched.alpha_bar[1:], rtol=1e-12, atol=0)
    torch.testing.assert_close(a**2 + s2, torch.ones_like(t), rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="t must be > 0"):
        vp_coefficients(torch.tensor([0.0, 0.5]))


def test_posterior_mean_equals_the_fixed_time_closed_form():
    data = mixture3()
    gen = torch.Generator().manual_seed(0)
    for t in (0.01, 0.2, 0.7):
        smp = sample_denoising(data, 300, t, t, gen)
        a, _ = vp_coefficients(smp.t[:1])
        ref = posterior_mean_fixed(data, float(a[0]) ** 2, smp.xt)
        torch.testing.assert_close(
            posterior_mean(data, smp.t, smp.xt), ref, rtol=1e-10, atol=1e-10
        )


def test_posterior_moments_against_quadrature_in_one_dimension():
    """E[X0 | Xt = x] and Var(X0 | Xt = x) by numerical integration of p0(x0) N(x; a x0, s^2)."""
    w, m, v = [0.3, 0.7], [-1.5, 1.0], [0.2, 0.5]
    data = GaussianMixture.create(w, m, v)
    t = torch.tensor([0.05, 0.3, 0.3, 0.8], dtype=torch.float64)
    x = torch.tensor([[0.3], [-1.0], [2.0], [0.1]], dtype=torch.float64)
    mean, tr_cov = posterior_moments(data, t, x)
    a, s2 = vp_coefficients(t)
    for i in range(4):
        grid = np.linspace(-12, 12, 200_001)
        p0 = sum(
            wj * stats.norm.pdf(grid, mj, math.sqrt(vj)) for wj, mj, vj in zip(w, m, v)
        )
        joint = p0 * stats.norm.pdf(
            float(x[i, 0]), float(a[i]) * grid, math.sqrt(float(s2[i]))
        )
        z0, z1, z2 = (integrate.simpson(grid**k * joint, x=grid) for k in range(3))
        assert float(mean[i, 0]) == pytest.approx(z1 / z0, rel=1e-7, abs=1e-9)
        assert float(tr_cov[i]) == pytest.approx(
            z2 / z0 - (z1 / z0) ** 2, rel=1e-6, abs=1e-9
        )


def test_regression_target_is_the_posterior_mean():
    """f* = E[X0 | Xt] is characterised by orthogonality: E<g(Xt, t), X0 - f*(Xt, t)> = 0 for
    every test function g; a shifted target violates it by many standard errors."""
    data = mixture3()
    smp = sample_denoising(data, 40_000, 1e-3, 1.0, torch.Generator().manual_seed(1))
    f_star = posterior_mean(data, smp.t, smp.xt)
    resid = smp.x0 - f_star
    tests = [
        torch.ones_like(smp.xt),
        smp.xt,
        torch.tanh(smp.xt) * smp.t[:, None],
        torch.sin(3 * smp.xt[:, [1, 0]]),
    ]
    for g in tests:
        terms = (g * resid).sum(1)
        se = float(terms.std()) / math.sqrt(terms.numel())
        assert abs(float(terms.mean())) < 4.5 * se
    # least squares: f* beats perturbations of itself on the noisy labels
    base = regression_loss(f_star, smp.x0)
    for g in tests[1:]:
        assert regression_loss(f_star + 0.05 * g, smp.x0) > base


def test_tweedie_map_between_denoiser_and_score():
    data = mixture3()
    gen = torch.Generator().manual_seed(2)
    for t in (0.02, 0.3, 0.9):
        smp = sample_denoising(data, 500, t, t, gen)
        a, _ = vp_coefficients(smp.t[:1])
        score = score_from_denoiser(posterior_mean(data, smp.t, smp.xt), smp.xt, smp.t)
        torch.testing.assert_close(
            score, score_at(data, float(a[0]) ** 2, smp.xt), rtol=1e-9, atol=1e-9
        )
        torch.testing.assert_close(
            denoiser_from_score(score, smp.xt, smp.t),
            posterior_mean(data, smp.t, smp.xt),
            rtol=1e-9,
            atol=1e-9,
        )


def test_weighted_dsm_equals_regression_pointwise():
    """lambda(t) ||s_f - grad log p_{t|0}||^2 = ||f - X0||^2 for any f (here a random network)."""
    data = bimodal_mixture(3)
    smp = sample_denoising(data, 2000, 1e-3, 1.0, torch.Generator().manual_seed(3))
    net = init_two_layer(
        5, 3, 64, torch.Generator().manual_seed(4), antisymmetric=False
    )
    f = forward(net, features(smp.xt, smp.t))
    score = score_from_denoiser(f, smp.xt, smp.t)
    noisy = float(regression_loss(f, smp.x0))
    assert float(dsm_loss(score, smp)) == pytest.approx(noisy, rel=1e-10)
    a, s2 = vp_coefficients(smp.t)
    torch.testing.assert_close(dsm_weight(smp.t), s2**2 / a**2)
    # the unweighted DSM loss is a different (score-scale) objective
    assert float(dsm_loss(score, smp, weight=torch.ones_like(smp.t))) > 10 * float(
        regression_loss(f, smp.x0)
    )


def test_dsm_minus_regression_is_a_constant_independent_of_the_network():
    """DSM(f) - E||f - f*||^2 = E tr Cov(X0 | Xt) for every f: checked on networks of several
    widths, seeds and scales; the difference agrees with the constant within 4.5 standard errors
    of the Monte Carlo cross term, while the losses themselves differ by O(1)."""
    data = mixture3()
    smp = sample_denoising(data, 30_000, 1e-3, 1.0, torch.Generator().manual_seed(5))
    f_star, tr_cov = posterior_moments(data, smp.t, smp.xt)
    const = float(tr_cov.mean())
    z = features(smp.xt, smp.t)
    diffs, losses = [], []
    for seed, width, scale in [
        (0, 32, 1.0),
        (1, 128, 0.3),
        (2, 256, 2.0),
        (3, 64, 0.0),
    ]:
        net = init_two_layer(
            4, 2, width, torch.Generator().manual_seed(seed), antisymmetric=False
        )
        f = scale * forward(net, z)
        dsm = float(dsm_loss(score_from_denoiser(f, smp.xt, smp.t), smp))
        excess = float(regression_loss(f, f_star))
        terms = 2 * ((f - f_star) * (f_star - smp.x0)).sum(1)
        se = float(terms.std()) / math.sqrt(terms.numel())
        assert abs(dsm - excess - const) < 4.5 * se + 1e-12
        diffs.append(dsm - excess)
        losses.append(dsm)
    spread_loss, spread_diff = max(losses) - min(losses), max(diffs) - min(diffs)
    assert spread_loss > 0.5
    assert spread_diff < 0.05 * spread_loss


def test_sampling_is_seeded_and_validated():
    data = bimodal_mixture(2)
    s1 = sample_denoising(data, 10, 0.1, 1.0, torch.Generator().manual_seed(0))
    s2 = sample_denoising(data, 10, 0.1, 1.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(s1.xt, s2.xt)
    a, s2_ = vp_coefficients(s1.t)
    torch.testing.assert_close(
        s1.xt, a[:, None] * s1.x0 + s2_.sqrt()[:, None] * s1.noise
    )
    assert torch.all((s1.t >= 0.1) & (s1.t <= 1.0))
    with pytest.raises(ValueError, match="t0"):
        sample_denoising(data, 10, 0.5, 0.1)
    with pytest.raises(ValueError, match="n must be"):
        sample_denoising(data, 0, 0.1, 0.5)
    with pytest.raises(ValueError, match="x must have shape"):
        posterior_moments(data, s1.t, s1.xt[:, :1])
