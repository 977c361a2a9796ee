import pytest
import torch
from diffusers import DDPMScheduler

from diffctrl.diffusion.schedules import (
    cosine_schedule,
    linear_schedule,
    make_schedule,
    vp_log_alpha_bar,
    vp_sde_schedule,
)


@pytest.mark.parametrize("N", [10, 1000])
def test_linear_matches_diffusers(N):
    ref = DDPMScheduler(num_train_timesteps=N, beta_schedule="linear")
    ours = linear_schedule(N)
    assert torch.allclose(
        ours.alpha_bar[1:].float(), ref.alphas_cumprod, rtol=1e-5, atol=1e-7
    )
    # diffusers' fixed_small variance at timestep i is our posterior variance at level i + 1
    var = torch.stack([ref._get_variance(i) for i in range(1, N)])
    assert torch.allclose(
        ours.posterior_variance[2:].float(), var, rtol=5e-4, atol=1e-10
    )


def test_cosine_matches_diffusers():
    ref = DDPMScheduler(num_train_timesteps=200, beta_schedule="squaredcos_cap_v2")
    ours = cosine_schedule(200)
    assert torch.allclose(ours.betas[1:].float(), ref.betas, rtol=1e-5, atol=1e-7)
    assert torch.allclose(
        ours.alpha_bar[1:].float(), ref.alphas_cumprod, rtol=1e-5, atol=1e-7
    )


def test_vp_sde_marginals_exact_for_any_N():
    for N in (7, 100):
        s = vp_sde_schedule(N)
        expected = torch.exp(vp_log_alpha_bar(s.times))
        assert torch.allclose(s.alpha_bar, expected, rtol=1e-12)
    # b_k integrates beta(t): sum_k b_k = int_0^1 beta = 0.1 + 19.9 / 2
    assert float(vp_sde_schedule(50).b.sum()) == pytest.approx(
        0.1 + 19.9 / 2, rel=1e-12
    )


def test_scaled_linear_keeps_total_noise():
    tot = [
        float(linear_schedule(N, scale_with_N=True).betas.sum())
        for N in (100, 1000, 4000)
    ]
    assert tot[0] == pytest.approx(tot[1], rel=2e-3) and tot[1] == pytest.approx(
        tot[2], rel=2e-3
    )


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_N(bad):
    with pytest.raises(ValueError, match="N"):
        linear_schedule(bad)


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown schedule 'quadratic'"):
        make_schedule("quadratic", 10)
