import math

import pytest
import torch

from diffctrl.control.chain import (
    ControlledChain,
    beta_schedule,
    check_horizon,
    estimate_objective,
    kl_cost,
    simulate,
    step_sigmas,
)
from diffctrl.diffusion.exact import GaussianMixture, exact_score_fn
from diffctrl.diffusion.samplers import ancestral_sigma, sample
from diffctrl.diffusion.schedules import linear_schedule, vp_sde_schedule

DATA = GaussianMixture.create([0.3, 0.7], [[-1.0, 0.0], [1.0, 0.5]], [0.2, 0.3])


@pytest.mark.parametrize("variance", ["small", "large"])
def test_step_sigmas_match_the_sampler(variance):
    sched = linear_schedule(40)
    s = step_sigmas(sched, variance)
    assert torch.allclose(
        s,
        torch.tensor(
            [ancestral_sigma(sched, t, variance) for t in range(40)],
            dtype=torch.float64,
        ),
        atol=1e-15,
    )
    if variance == "small":
        assert s[-1] == 0  # the last DDPM step is deterministic


def test_kl_cost_is_the_gaussian_kl():
    u = torch.randn(5, 3, dtype=torch.float64)
    m = torch.randn(5, 3, dtype=torch.float64)
    s = 0.37
    cov = s**2 * torch.eye(3, dtype=torch.float64)
    p = torch.distributions.MultivariateNormal(m + u, cov)
    q = torch.distributions.MultivariateNormal(m, cov)
    assert torch.allclose(
        kl_cost(u, s), torch.distributions.kl_divergence(p, q), atol=1e-12
    )
    z = torch.zeros(2, 3, dtype=torch.float64)
    assert torch.all(kl_cost(z, 0.0) == 0)
    assert math.isinf(float(kl_cost(torch.ones(1, 3), 0.0)[0]))


def test_uncontrolled_chain_is_the_ddpm_sampler():
    sched = vp_sde_schedule(30)
    chain = ControlledChain.from_data(DATA, sched, 0.1, variance="large")
    roll = simulate(chain, None, 500, generator=torch.Generator().manual_seed(3))
    ref = sample(
        exact_score_fn(DATA, sched),
        sched,
        500,
        2,
        "ddpm",
        variance="large",
        generator=torch.Generator().manual_seed(3),
        dtype=torch.float64,
    )
    assert torch.allclose(roll.y, ref, atol=1e-12)
    assert torch.all(roll.kl == 0)


def test_objective_estimate_of_a_constant_control():
    sched = vp_sde_schedule(20)
    chain = ControlledChain.from_data(DATA, sched, 0.5)
    u0 = torch.tensor([0.01, -0.02], dtype=torch.float64)
    est = estimate_objective(
        chain,
        lambda y: -(y**2).sum(-1),
        lambda t, y: u0.expand_as(y),
        2000,
        generator=torch.Generator().manual_seed(0),
    )
    kl = sum(0.5 * float(u0 @ u0) / float(s) ** 2 for s in chain.sigma)
    assert est.kl == pytest.approx(
        0.5 * kl, rel=1e-12
    )  # deterministic control: exact KL
    assert est.value == pytest.approx(est.reward - est.kl)
    assert est.stderr > 0 and est.kl_stderr < 1e-12


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="beta"):
        beta_schedule(0.0, 10)
    with pytest.raises(ValueError, match="beta"):
        beta_schedule([-1.0] * 10, 10)
    with pytest.raises(ValueError, match="shape"):
        beta_schedule([0.1] * 9, 10)
    with pytest.raises(ValueError, match="T"):
        check_horizon(0)
    with pytest.raises(ValueError, match="T"):
        beta_schedule(0.1, 0)
    chain = ControlledChain.from_data(DATA, vp_sde_schedule(5), 0.1)
    with pytest.raises(ValueError, match="shape"):
        simulate(chain, lambda t, y: torch.zeros(y.shape[0], 3), 4)
    with pytest.raises(ValueError, match="variance"):
        ControlledChain.from_data(DATA, vp_sde_schedule(5), 0.1, variance="medium")
