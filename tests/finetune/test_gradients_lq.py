"""DRaFT and DPOK gradients against the exact grad J of the linear-quadratic problem.

With Gaussian data and a quadratic reward the objective of an affine control
``u_t(y) = G_t y + g_t`` is known in closed form (:func:`diffctrl.control.lq.evaluate_affine_policy`:
``J = E r(Y_T) - sum_t beta_t E|u_t(Y_t)|^2 / (2 sigma_t^2)``), so grad J follows from central
differences of exact values (the error is O(eps^2) of a smooth polynomial: round-off only).
Each method's loss is ``-J_hat``; its gradient over many independent iterations must average
to grad J (coordinate z-scores and Hotelling's T^2 of the per-iteration gradients).
"""

import pytest
import torch
from torch import nn

from diffctrl.control.lq import LQProblem, evaluate_affine_policy
from diffctrl.control.rewards import QuadraticReward
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.finetune.objective import FinetuneObjective
from diffctrl.stats import coordinate_z, hotelling_test

F64 = torch.float64
T, D = 3, 1


class AffineControl(nn.Module):
    """``u_t(y) = G_t y + g_t``: G (T, d, d), g (T, d); t an int or a tensor (B,)."""

    def __init__(self, G, g):
        super().__init__()
        self.G = nn.Parameter(G.clone())
        self.g = nn.Parameter(g.clone())

    def forward(self, t, y):
        if isinstance(t, int):
            return y @ self.G[t].T + self.g[t]
        t = torch.as_tensor(t, device=y.device).long()
        return torch.einsum("bij,bj->bi", self.G[t], y) + self.g[t]


@pytest.fixture(scope="module")
def case():
    reward = QuadraticReward.create(Q=1.0, a=[1.0], g=[0.3])
    pb = LQProblem.create(
        vp_sde_schedule(T), [0.5], [[0.6]], reward, 0.5, variance="large"
    )
    gen = torch.Generator().manual_seed(0)
    G = 0.3 * torch.randn(T, D, D, generator=gen, dtype=F64)
    g = 0.3 * torch.randn(T, D, generator=gen, dtype=F64)
    return pb, G, g


def exact_grad(pb, G, g, eps=1e-5):
    theta = torch.cat([G.reshape(-1), g.reshape(-1)])

    def J(th):
        return evaluate_affine_policy(
            pb, th[: G.numel()].reshape(G.shape), th[G.numel() :].reshape(g.shape)
        ).objective()

    out = torch.zeros_like(theta)
    for i in range(theta.numel()):
        e = torch.zeros_like(theta)
        e[i] = eps
        out[i] = (J(theta + e) - J(theta - e)) / (2 * eps)
    return out


def kl_direct_grad(pb, G, g):
    """The part of grad J from differentiating the KL penalty at fixed laws of Y_t:
    ``-d/dtheta sum_t beta_t/(2 s_t^2) E|G_t Y + g_t|^2`` with ``Y ~ N(m_t, C_t)`` held fixed."""
    means, covs = evaluate_affine_policy(pb, G, g).marginals()
    w = pb.beta / pb.sigma**2  # (T,)
    v = torch.einsum("tij,tj->ti", G, means[:-1]) + g  # E u_t
    dG = w[:, None, None] * (
        v[:, :, None] * means[:-1, None, :] + torch.einsum("tij,tjk->tik", G, covs[:-1])
    )
    dg = w[:, None] * v
    return -torch.cat([dG.reshape(-1), dg.reshape(-1)])


def gradient_samples(pb, G, g, method, n_traj, reps, seed=0):
    ctrl = AffineControl(G, g)
    obj = FinetuneObjective(
        pb.chain(), pb.reward, ctrl, method, n_traj=n_traj, dtype=F64
    )
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(reps):
        ctrl.zero_grad(set_to_none=True)
        obj(gen).backward()
        out.append(-torch.cat([ctrl.G.grad.reshape(-1), ctrl.g.grad.reshape(-1)]))
    return torch.stack(out), obj


def test_exact_gradient_against_the_monte_carlo_objective(case):
    """The closed-form J is the Monte Carlo objective of the chain (the test's ground truth)."""
    pb, G, g = case
    ctrl = AffineControl(G, g)
    obj = FinetuneObjective(
        pb.chain(), pb.reward, ctrl, "draft", n_traj=200_000, dtype=F64
    )
    with torch.no_grad():
        vals = torch.stack([-obj(torch.Generator().manual_seed(s)) for s in range(3)])
    J = evaluate_affine_policy(pb, G, g).objective()
    assert abs(float(vals.mean()) - J) < 0.01 * abs(J) + 0.01


def test_draft_full_backprop_is_unbiased(case):
    pb, G, g = case
    samples, _ = gradient_samples(pb, G, g, "draft", n_traj=8, reps=500)
    ref = exact_grad(pb, G, g)
    assert coordinate_z(samples, ref).abs().max() < 4
    assert hotelling_test(samples, ref)["p"] > 1e-3


def test_draft_truncated_is_biased(case):
    """DRaFT-K with K < T drops the earlier steps' effect on the reward: visibly biased."""
    pb, G, g = case
    ctrl = AffineControl(G, g)
    obj = FinetuneObjective(
        pb.chain(), pb.reward, ctrl, "draft", n_traj=8, truncation=1, dtype=F64
    )
    gen = torch.Generator().manual_seed(1)
    out = []
    for _ in range(400):
        ctrl.zero_grad(set_to_none=True)
        obj(gen).backward()
        out.append(-torch.cat([ctrl.G.grad.reshape(-1), ctrl.g.grad.reshape(-1)]))
    assert coordinate_z(torch.stack(out), exact_grad(pb, G, g)).abs().max() > 6


def test_dpok_is_unbiased(case):
    """DPOK with a leave-one-out baseline: its mean gradient is grad J. The batch mean that
    includes the trajectory itself would give -D + (1 - 1/n) P instead (P: the score-function
    part, D: the KL penalty at fixed laws): that alternative is rejected here."""
    pb, G, g = case
    n = 4
    samples, _ = gradient_samples(pb, G, g, "dpok", n_traj=n, reps=800, seed=2)
    ref = exact_grad(pb, G, g)
    assert coordinate_z(samples, ref).abs().max() < 4
    assert hotelling_test(samples, ref)["p"] > 1e-3
    direct = kl_direct_grad(pb, G, g)
    shrunk = direct + (1 - 1 / n) * (ref - direct)
    assert coordinate_z(samples, shrunk).abs().max() > 6
