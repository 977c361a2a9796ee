import pytest
import torch

from diffctrl.diffusion.exact import GaussianMixture, exact_score_fn
from diffctrl.diffusion.metrics import gaussian_kl
from diffctrl.diffusion.samplers import (
    METHODS,
    ancestral_mean,
    ancestral_sigma,
    propagate_gaussian,
    sample,
)
from diffctrl.diffusion.schedules import linear_schedule, vp_sde_schedule

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
S0 = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=torch.float64)
DATA = GaussianMixture.gaussian(MU, S0)


def _start(sched):
    """The exact level-N marginal (isolates the discretisation error from the prior's)."""
    m = DATA.marginal(sched.alpha_bar[-1])
    return m.means[0], m.covs[0]


@pytest.mark.parametrize("method", METHODS)
def test_exact_terminal_law_error_shrinks_with_N(method):
    kls = []
    for N in (32, 128, 512):
        sched = vp_sde_schedule(N)
        m0, c0 = _start(sched)
        m, c = propagate_gaussian(
            exact_score_fn(DATA, sched), sched, method, m0, c0, eta=0.5
        )
        kls.append(gaussian_kl(m, c, MU, S0))
    assert kls[0] > kls[1] > kls[2]
    assert kls[2] < 1e-3
    # at least first order: 4x more steps -> sqrt(KL) at least 2.5x smaller (Heun: ~16x)
    assert (kls[1] / kls[2]) ** 0.5 > 2.5


def test_monte_carlo_matches_exact_propagation():
    sched = linear_schedule(100, scale_with_N=True)
    score = exact_score_fn(DATA, sched)
    m, c = propagate_gaussian(score, sched, "ddpm", d=2)
    x = sample(
        score,
        sched,
        100_000,
        2,
        "ddpm",
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
    )
    se_mean = (c.diagonal() / len(x)).sqrt()
    assert torch.all((x.mean(0) - m).abs() < 4 * se_mean)
    assert torch.allclose(torch.cov(x.T), c, atol=0.01)
    assert gaussian_kl(m, c, MU, S0) < 0.05


def test_ancestral_step_form():
    sched = linear_schedule(20)
    score = exact_score_fn(DATA, sched)
    y = torch.randn(5, 2, dtype=torch.float64)
    t = 3
    k = sched.N - t
    expected = (y + sched.betas[k] * score(y, k)) / (1 - sched.betas[k]).sqrt()
    assert torch.allclose(ancestral_mean(score, sched, t, y), expected)
    assert ancestral_sigma(sched, t, "large") == pytest.approx(
        float(sched.betas[k]) ** 0.5
    )
    assert (
        ancestral_sigma(sched, sched.N - 1, "small") == 0.0
    )  # last step is deterministic


def test_same_seed_same_samples():
    sched = linear_schedule(30)
    score = exact_score_fn(DATA, sched)
    a = sample(score, sched, 64, 2, "em", generator=torch.Generator().manual_seed(7))
    b = sample(score, sched, 64, 2, "em", generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_bad_inputs():
    sched = linear_schedule(10)
    score = exact_score_fn(DATA, sched)
    with pytest.raises(ValueError, match="unknown sampler method 'heun'"):
        sample(score, sched, 4, 2, "heun")
    with pytest.raises(ValueError, match="eta"):
        sample(score, sched, 4, 2, "ddim", eta=2.0)
    with pytest.raises(ValueError, match="reverse step t"):
        ancestral_sigma(sched, 10)
    with pytest.raises(ValueError, match="x_N must have shape"):
        sample(score, sched, 4, 2, x_N=torch.zeros(3, 2))


@pytest.mark.parametrize("variance", ["small", "large"])
def test_fused_eps_step_matches_the_ancestral_formula(variance):
    """sample() folds an eps-network's score conversion into one update; the chain must still
    be x_{k-1} = (x + beta_k s_k(x)) / sqrt(alpha_k) + sigma_k z with s = -eps / sqrt(1 - abar_k),
    here written out step by step with the same noise draws."""
    from diffctrl.diffusion.models import ScoreMLP, model_score

    torch.manual_seed(0)
    sched = vp_sde_schedule(40)
    net = ScoreMLP(2, sched.N, hidden=32, depth=2).eval()
    score = model_score(net, sched)
    assert (
        getattr(score, "eps_net", None) is net
    )  # the fused path is the one under test
    got = sample(
        score,
        sched,
        256,
        2,
        "ddpm",
        variance=variance,
        generator=torch.Generator().manual_seed(3),
    )
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(256, 2, generator=gen)
    with torch.no_grad():
        for k in range(sched.N, 0, -1):
            beta, abar = float(sched.betas[k]), float(sched.alpha_bar[k])
            var = sched.posterior_variance[k] if variance == "small" else sched.betas[k]
            sigma = float(var) ** 0.5
            z = (
                torch.randn(x.shape, generator=gen)
                if sigma > 0
                else torch.zeros_like(x)
            )
            s = -net(x, k) / (1 - abar) ** 0.5
            x = (x + beta * s) / (1 - beta) ** 0.5 + sigma * z
    assert torch.allclose(got, x, rtol=1e-5, atol=1e-5)
    assert not torch.equal(got, torch.zeros_like(got))
