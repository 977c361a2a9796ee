import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from diffctrl.diffusion.exact import (
    GaussianMixture,
    exact_score_fn,
    posterior_mean,
    score_at,
)
from diffctrl.diffusion.forward import q_sample
from diffctrl.diffusion.schedules import linear_schedule


@pytest.fixture
def gmm():
    return GaussianMixture.create(
        [0.2, 0.5, 0.3],
        [[0, 0], [2, 1], [-1, 2]],
        [[[1, 0.4], [0.4, 0.5]], [[0.3, 0], [0, 0.2]], [[0.6, -0.1], [-0.1, 0.4]]],
    )


def test_log_prob_matches_scipy(gmm):
    x = torch.randn(
        20, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    ref = sum(
        float(w) * multivariate_normal(m.numpy(), S.numpy()).pdf(x.numpy())
        for w, m, S in zip(gmm.weights, gmm.means, gmm.covs)
    )
    assert np.allclose(gmm.log_prob(x).numpy(), np.log(ref), rtol=1e-12)


@pytest.mark.parametrize("ab", [1.0, 0.7, 0.05])
def test_score_is_gradient_of_log_density(gmm, ab):
    marg = gmm.marginal(ab)
    x = (
        torch.randn(
            50, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64
        )
        * 2
    )
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(marg.log_prob(x).sum(), x)
    assert torch.allclose(marg.score(x.detach()), g, atol=1e-12)


@pytest.mark.parametrize("ab", [0.9, 0.3, 0.01])
def test_tweedie_identity(gmm, ab):
    x = torch.randn(
        50, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    tweedie = (x + (1 - ab) * score_at(gmm, ab, x)) / math.sqrt(ab)
    assert torch.allclose(posterior_mean(gmm, ab, x), tweedie, atol=1e-10)


def test_posterior_mean_by_monte_carlo():
    """E[X0 | Xk in a small ball] from joint samples matches the closed form (1-D)."""
    g = GaussianMixture.create([0.5, 0.5], [[-2.0], [2.0]], [0.3, 0.3])
    gen = torch.Generator().manual_seed(3)
    x0 = g.sample(400_000, gen)
    ab = 0.4
    xk = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * torch.randn(
        x0.shape, generator=gen, dtype=x0.dtype
    )
    for c in (-1.0, 0.0, 0.8):
        sel = (xk[:, 0] - c).abs() < 0.02
        mc = x0[sel, 0]
        exact = float(posterior_mean(g, ab, torch.tensor([[c]], dtype=torch.float64)))
        assert (
            abs(float(mc.mean()) - exact)
            < 4 * float(mc.std()) / math.sqrt(len(mc)) + 0.02
        )


def test_forward_marginal_moments(gmm):
    sched = linear_schedule(100)
    gen = torch.Generator().manual_seed(4)
    x0 = gmm.sample(200_000, gen)
    xk, _ = q_sample(sched, x0, 30, generator=gen)
    marg = gmm.marginal(sched.alpha_bar[30])
    assert torch.allclose(xk.mean(0), marg.mean(), atol=0.01)
    assert torch.allclose(torch.cov(xk.T), marg.cov(), atol=0.02)


def test_score_fn_handles_image_shapes():
    g = GaussianMixture.gaussian(torch.zeros(4), torch.eye(4) * 0.5)
    sched = linear_schedule(10)
    s = exact_score_fn(g, sched)
    x = torch.randn(3, 1, 2, 2, dtype=torch.float64)
    out = s(x, 5)
    assert out.shape == x.shape
    ab = float(sched.alpha_bar[5])
    assert torch.allclose(out, -x / (0.5 * ab + 1 - ab))
    # the same score function then serves points on another device ("meta" stands in for a
    # GPU): the level's marginal is cached per device, not reused from the CPU
    out_meta = s(x.to("meta"), 5)
    assert out_meta.device.type == "meta" and out_meta.shape == x.shape


def test_bad_inputs():
    with pytest.raises(ValueError, match="non-negative"):
        GaussianMixture.create([1.0], [[0.0, 0.0]], [[-1.0, 1.0]])
    with pytest.raises(ValueError, match="shape mismatch|covs must be"):
        GaussianMixture.create(
            [0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], torch.ones(3, 2, 2)
        )
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture.create([0.5, 0.2], [[0.0], [1.0]], [1.0, 1.0])
    g = GaussianMixture.gaussian(torch.zeros(2), torch.eye(2))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        g.score(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="alpha_bar"):
        g.marginal(1.5)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_parameters_are_rejected_by_name(bad):
    with pytest.raises(ValueError, match="means must be finite"):
        GaussianMixture.create([0.5, 0.5], [[0.0, bad], [1.0, 1.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match="weights must be finite"):
        GaussianMixture.create([bad, 0.5], [[0.0], [1.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match="covs must be finite"):
        GaussianMixture.create([0.5, 0.5], [[0.0], [1.0]], [1.0, bad])
    with pytest.raises(ValueError, match="covs must be finite"):
        GaussianMixture.create([1.0], [[0.0, 0.0]], [[[1.0, bad], [bad, 1.0]]])
    with pytest.raises(ValueError, match="mean must be finite"):
        GaussianMixture.gaussian([0.0, bad], torch.eye(2))
    with pytest.raises(ValueError, match="cov must be finite"):
        GaussianMixture.gaussian([0.0, 0.0], [[1.0, 0.0], [0.0, bad]])


def test_posterior_moments_of_one_gaussian_in_closed_form():
    """Gaussian data: X_0 | X = x is N(m + a S Sigma^-1 (x - a m), S - ab S Sigma^-1 S), written
    here with numpy; per-row levels give the rows of the fixed-level calls."""
    from diffctrl.diffusion.exact import posterior_moments

    m = np.array([0.5, -1.0])
    S = np.array([[0.8, 0.3], [0.3, 0.5]])
    g = GaussianMixture.gaussian(m, S)
    x = torch.tensor([[0.1, 0.2], [1.5, -0.7], [-2.0, 0.4]], dtype=torch.float64)
    abs_ = torch.tensor([0.9, 0.3, 0.05], dtype=torch.float64)
    mean, trc = posterior_moments(g, abs_, x)
    for i, ab in enumerate(abs_.tolist()):
        a = math.sqrt(ab)
        Sig = ab * S + (1 - ab) * np.eye(2)
        mu = m + a * S @ np.linalg.solve(Sig, x[i].numpy() - a * m)
        C = S - ab * S @ np.linalg.solve(Sig, S)
        np.testing.assert_allclose(mean[i].numpy(), mu, rtol=1e-12, atol=1e-12)
        assert float(trc[i]) == pytest.approx(np.trace(C), rel=1e-10)
        torch.testing.assert_close(posterior_mean(g, ab, x[i : i + 1])[0], mean[i])


def test_score_at_a_singular_data_law_names_alpha_bar():
    import torch

    from diffctrl.diffusion.exact import GaussianMixture, score_at

    covs = torch.stack([torch.tensor([[1.0, 1.0], [1.0, 1.0]]), torch.eye(2)])
    gm = GaussianMixture(torch.tensor([0.5, 0.5]), torch.zeros(2, 2), covs)
    with pytest.raises(ValueError, match=r"alpha_bar = 1 .*\[0\]"):
        score_at(gm, 1.0, torch.zeros(3, 2))
    # below 1 the level is regular: its score is the exact one of N(0, ab S + (1 - ab) I)
    ab = 0.5
    x = torch.tensor([[0.3, -0.2]])
    one = GaussianMixture(torch.ones(1), torch.zeros(1, 2), covs[:1])
    want = -torch.linalg.solve(ab * covs[0] + (1 - ab) * torch.eye(2), x[0])
    assert torch.allclose(score_at(one, ab, x)[0], want, atol=1e-6)
    with pytest.raises(ValueError, match="covs of components"):
        one.score(x)
