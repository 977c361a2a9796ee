"""The sequential sampler: adaptedness, prefix reuse, causality of training, a trained AR(1)."""

import pytest
import torch

from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.sequential.arma import ARMA, arma_acf, arma_cov
from diffctrl.sequential.gaussian import gaussian_paths
from diffctrl.sequential.metrics import empirical_acf
from diffctrl.sequential.networks import (
    CausalTransformerScoreNet,
    WindowScoreNet,
    param_count,
)
from diffctrl.sequential.sampling import (
    adaptedness_gaps,
    draw_noise,
    sample_next,
    sample_sequential,
    sample_whole,
    sampler_floor,
    train_sequential,
    whole_sequence_model,
)

L, N = 6, 8


def _nets():
    torch.manual_seed(0)
    return [
        WindowScoreNet(L, N, d_trunc=3, hidden=16),
        CausalTransformerScoreNet(L, N, d_model=16, nhead=2, layers=1, hidden=16),
    ]


@pytest.mark.parametrize("method", ["ddpm", "ode"])
def test_sequential_sampler_is_adapted_bitwise_and_whole_sequence_is_not(method):
    sched = vp_sde_schedule(N)
    noise = draw_noise(64, L, torch.Generator().manual_seed(1))
    for net in _nets():
        gaps = adaptedness_gaps(
            lambda nz: sample_sequential(net, sched, 64, noise=nz, method=method),
            noise,
            range(L - 1),
            torch.Generator().manual_seed(2),
        )
        assert all(past == 0.0 for past, _ in gaps)  # bitwise
        assert all(
            fut > 1e-3 for _, fut in gaps
        )  # the perturbation did change the future
    torch.manual_seed(0)
    whole = whole_sequence_model(L, N, 2000)
    gaps = adaptedness_gaps(
        lambda nz: sample_whole(whole, sched, 64, noise=nz, method=method),
        noise,
        range(L - 1),
        torch.Generator().manual_seed(2),
    )
    assert all(past > 1e-4 for past, _ in gaps)


def test_prefix_reuse_gives_the_same_samples_with_fewer_encoder_passes():
    sched = vp_sde_schedule(N)
    net = _nets()[1]
    noise = draw_noise(32, L, torch.Generator().manual_seed(0))
    c1, c2 = {}, {}
    a = sample_sequential(net, sched, 32, noise=noise, method="ddpm", counter=c1)
    b = sample_sequential(
        net, sched, 32, noise=noise, method="ddpm", reuse_prefix=False, counter=c2
    )
    assert torch.allclose(a, b, atol=1e-6)
    assert c1 == {"head": L * N, "context": L} and c2 == {
        "head": L * N,
        "context": L * N,
    }
    c3 = {}
    sample_sequential(net, sched, 32, noise=noise, method="ode", counter=c3)
    assert c3 == {
        "head": L * (2 * N - 1),
        "context": L,
    }  # Heun: two evaluations but the last


@pytest.mark.parametrize("which", [0, 1])
def test_training_contexts_are_causal_and_match_the_sampling_context(which):
    net = _nets()[which].eval()
    x = torch.randn(5, L)
    with torch.no_grad():
        ctx_all = net.contexts(x)
        for j in range(L):
            assert torch.allclose(ctx_all[:, j], net.context(x[:, :j]), atol=1e-5)
        x2 = x.clone()
        x2[:, 3:] = torch.randn(5, L - 3)
        ctx2 = net.contexts(x2)
    assert torch.equal(ctx_all[:, :4], ctx2[:, :4])  # position j reads x[:, :j] only


def test_whole_sequence_baseline_has_the_same_budget():
    net = WindowScoreNet(10, 30, d_trunc=10, hidden=64)
    whole = whole_sequence_model(10, 30, param_count(net))
    assert abs(param_count(whole) - param_count(net)) < 0.05 * param_count(net)


def test_trained_ar1_has_the_right_lag1_autocorrelation_and_beats_an_untrained_net():
    proc = ARMA((0.8,))
    sched = vp_sde_schedule(20)
    data = gaussian_paths(
        arma_cov(proc, L), 2000, generator=torch.Generator().manual_seed(0)
    )
    torch.manual_seed(0)
    untrained = WindowScoreNet(L, 20, d_trunc=L, hidden=32)
    torch.manual_seed(0)
    net = WindowScoreNet(L, 20, d_trunc=L, hidden=32)
    train_sequential(net, sched, data, 400, batch_size=64, lr=3e-3, progress=False)
    untrained.scale.fill_(float(net.scale))
    noise = draw_noise(3000, L, torch.Generator().manual_seed(1))
    rho = float(arma_acf(proc, 1)[1])
    err = {}
    for name, m in (("trained", net), ("untrained", untrained)):
        x = sample_sequential(m, sched, 3000, noise=noise, method="ode")
        err[name] = abs(float(empirical_acf(x, 1)[1]) - rho)
    # tolerance 0.1: Monte Carlo sd of the pooled lag-1 estimate is ~0.01 at 3000 paths; the
    # rest is the fit after 400 steps (about 0.03 on this seed)
    assert err["trained"] < 0.1
    assert err["trained"] < 0.5 * err["untrained"]


def test_sampler_floor_follows_the_scalar_variance_recursion():
    """With the exact score of N(0, v), s_k(x) = -x / (ab_k v + 1 - ab_k), the DDPM step is
    x <- a_k x + sigma_k z with a_k = (1 - beta_k / (ab_k v + 1 - ab_k)) / sqrt(1 - beta_k):
    the output variance follows var <- a_k^2 var + sigma_k^2 from var = 1."""
    sched = vp_sde_schedule(12)
    ab, betas, tb = (
        sched.alpha_bar.tolist(),
        sched.betas.tolist(),
        sched.posterior_variance.tolist(),
    )
    floor = sampler_floor(sched, (0.36, 0.05))
    for v in (0.36, 0.05):
        var = 1.0
        for k in range(sched.N, 0, -1):
            a = (1 - betas[k] / (ab[k] * v + 1 - ab[k])) / (1 - betas[k]) ** 0.5
            var = a**2 * var + tb[k]
        assert floor[("ddpm", v)] == pytest.approx(var / v, rel=1e-12)
    # the ODE (Heun) is second order: its floor approaches 1 as the levels grow
    gaps = [
        abs(sampler_floor(vp_sde_schedule(n), (0.36,))[("ode", 0.36)] - 1)
        for n in (12, 48)
    ]
    assert gaps[1] < gaps[0] / 4


def test_bad_arguments():
    with pytest.raises(ValueError, match="d_trunc"):
        WindowScoreNet(6, 8, d_trunc=0)
    with pytest.raises(ValueError, match="noise must be"):
        sample_sequential(_nets()[0], vp_sde_schedule(N), 4, noise=draw_noise(3, L))
    with pytest.raises(ValueError, match="data must be"):
        train_sequential(_nets()[0], vp_sde_schedule(N), torch.zeros(4, L + 1), 1)


@pytest.mark.parametrize("which", [0, 1])
def test_sample_next_is_the_sequential_step_given_an_observed_prefix(which):
    net = _nets()[which]
    sched = vp_sde_schedule(N)
    n, j = 16, 3
    x_N, seeds = draw_noise(n, L, torch.Generator().manual_seed(1))
    x_N[:, j] = torch.randn((n, 1), generator=torch.Generator().manual_seed(5))[:, 0]
    out = sample_sequential(net, sched, n, noise=(x_N, seeds), method="ode")
    nxt = sample_next(
        net, sched, out[:, :j], generator=torch.Generator().manual_seed(5), method="ode"
    )
    assert torch.allclose(nxt.float(), out[:, j], atol=1e-5)
    with pytest.raises(ValueError, match="prefix"):
        sample_next(net, sched, torch.zeros(n, L))
