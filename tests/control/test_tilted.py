"""The tilted target in closed form (diffctrl.control.tilted) against quadrature, the
fine-tuned law approaching it like 1/T, and bad moments refused."""

import pytest
import torch

from diffctrl.control.lq import LQProblem, solve_lq
from diffctrl.control.rewards import QuadraticReward
from diffctrl.control.tilted import law_gap, tilted_gaussian, tilted_mixture
from diffctrl.diffusion.exact import GaussianMixture
from diffctrl.diffusion.schedules import vp_sde_schedule

F64 = torch.float64


def test_tilted_gaussian_and_mixture_by_quadrature_in_1d():
    rew = QuadraticReward.create(Q=1.5, a=[0.8], g=[0.4])
    mu, S = tilted_gaussian([0.2], [[0.5]], rew, 0.3)
    x = torch.linspace(-8, 8, 200001, dtype=F64)
    logp = -0.5 * (x - 0.2) ** 2 / 0.5 + rew(x[:, None]) / 0.3
    p = torch.exp(logp - logp.max())
    p = p / p.sum()
    m = float((p * x).sum())
    assert float(mu[0]) == pytest.approx(m, abs=1e-9)
    assert float(S[0, 0]) == pytest.approx(float((p * (x - m) ** 2).sum()), abs=1e-9)
    # and for a mixture
    data = GaussianMixture.create([0.3, 0.7], [[-1.0], [1.5]], [0.2, 0.4])
    tm = tilted_mixture(data, rew, 0.3)
    logq = data.log_prob(x[:, None]) + rew(x[:, None]) / 0.3
    q = torch.exp(logq - logq.max())
    q = q / q.sum()
    assert float(tm.mean()[0]) == pytest.approx(float((q * x).sum()), abs=1e-8)
    dens = torch.exp(tm.log_prob(x[:, None]))
    assert float((dens * (x[1] - x[0]) - q).abs().max()) < 1e-8


def test_fine_tuned_law_approaches_the_tilted_target_like_1_over_T():
    mu0 = torch.tensor([1.0, -0.5], dtype=F64)
    S0 = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=F64)
    rew = QuadraticReward.create(Q=1.0, a=[2.0, 1.0])
    mus, Ss = tilted_gaussian(mu0, S0, rew, 0.1)
    errs = []
    for T in (100, 400):
        m, C = solve_lq(
            LQProblem.create(vp_sde_schedule(T), mu0, S0, rew, 0.1)
        ).terminal_law()
        errs.append(law_gap(m, C, mus, Ss)["mean"])
    assert 3.0 < errs[0] / errs[1] < 5.0


def test_tilted_gaussian_and_law_gap_refuse_nan_moments():
    reward = QuadraticReward.create(torch.eye(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="mu0 has non-finite"):
        tilted_gaussian([0.0, float("nan")], torch.eye(2), reward, 1.0)
    with pytest.raises(ValueError, match="S0 has non-finite"):
        tilted_gaussian(
            [0.0, 0.0], torch.tensor([[1.0, 0.0], [0.0, float("nan")]]), reward, 1.0
        )
    # well formed: S* = (S0^-1 + Q/beta)^-1 = I/2 for S0 = Q = I, beta = 1, a = 0
    mu, S = tilted_gaussian([0.0, 0.0], torch.eye(2), reward, 1.0)
    assert torch.allclose(S, 0.5 * torch.eye(2, dtype=torch.float64), atol=1e-12)
    with pytest.raises(ValueError, match="cov_ref must have shape"):
        law_gap(torch.zeros(2), torch.eye(2), torch.zeros(2), torch.eye(3))
    with pytest.raises(ValueError, match="mean has non-finite"):
        law_gap(
            torch.tensor([float("nan"), 0.0]),
            torch.eye(2),
            torch.zeros(2),
            torch.eye(2),
        )
    with pytest.raises(ValueError, match="beta"):
        tilted_gaussian([0.0, 0.0], 0.5, reward, 0.0)
