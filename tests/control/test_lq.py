"""The LQ problem and its exact solution (diffctrl.control.lq): the pre-trained mean is
the sampler's, the Riccati optimum beats every other affine policy and the full-kernel
optimum extends it, a per-step beta schedule is honoured (checked by Monte Carlo)."""

import pytest
import torch

from diffctrl.control.chain import estimate_objective
from diffctrl.control.lq import (
    LQProblem,
    evaluate_affine_policy,
    pretrained_policy,
    random_lq_problem,
    solve_lq,
)
from diffctrl.control.rewards import QuadraticReward
from diffctrl.diffusion.samplers import ancestral_mean
from diffctrl.diffusion.schedules import Schedule, vp_sde_schedule

F64 = torch.float64


def random_problem(d, T, seed, beta=None, variance="large"):
    return random_lq_problem(d, T, seed, beta=beta, variance=variance)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_pretrained_mean_is_affine_and_matches_the_sampler(d):
    pb = random_problem(d, 25, d)
    A, c = pb.pretrained_affine()
    score = pb.chain().score
    y = torch.randn(9, d, dtype=F64)
    for t in (0, 12, 24):
        assert torch.allclose(
            ancestral_mean(score, pb.sched, t, y), y @ A[t].T + c[t], atol=1e-12
        )


def test_policy_evaluation_and_optimality():
    pb = random_problem(2, 30, 8, beta=0.5)
    sol = solve_lq(pb)
    ev = evaluate_affine_policy(pb, sol.G, sol.g)
    assert torch.allclose(ev.P, sol.P, atol=1e-12) and torch.allclose(
        ev.c, sol.c, atol=1e-12
    )
    pert = evaluate_affine_policy(pb, sol.G * 1.05, sol.g + 0.01)
    pre = pretrained_policy(pb)
    assert pert.objective() < sol.objective() and pre.objective() < sol.objective()
    full = solve_lq(pb, "full")  # a larger class: same P, p, larger value
    assert torch.allclose(full.P, sol.P) and torch.allclose(full.p, sol.p)
    assert full.objective() >= sol.objective()
    assert full.objective() == pytest.approx(
        full.expected_reward() - full.expected_kl(), abs=1e-10
    )


def test_beta_schedule_per_step():
    pb = random_problem(2, 20, 9, beta=0.4)
    sol = solve_lq(pb)
    sol2 = solve_lq(pb.with_beta(torch.full((20,), 0.4)))
    assert torch.allclose(sol.P, sol2.P)
    sched = torch.linspace(0.1, 1.0, 20)
    sol3 = solve_lq(pb.with_beta(sched))
    est = estimate_objective(
        pb.with_beta(sched).chain(),
        pb.reward,
        sol3.as_control(),
        20000,
        generator=torch.Generator().manual_seed(2),
    )
    assert abs(est.value - sol3.objective()) < 3 * est.stderr


def test_bad_inputs_raise():
    sched = vp_sde_schedule(10)
    rew = QuadraticReward.create(Q=1.0, a=[0.0, 0.0])
    mk = lambda **kw: LQProblem.create(
        **{
            "sched": sched,
            "mu0": [0.0, 0.0],
            "S0": 0.5,  # noqa: E731
            "reward": rew,
            "beta": 0.1,
            **kw,
        }
    )
    mk()
    with pytest.raises(ValueError, match="beta"):
        mk(beta=0.0)
    with pytest.raises(ValueError, match="beta"):
        mk(beta=-1.0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        mk(S0=[[1.0, 0.0], [0.0, -0.1]])
    with pytest.raises(ValueError, match="positive semi-definite"):
        QuadraticReward.create(Q=[[-1.0, 0.0], [0.0, 1.0]], a=[0.0, 0.0])
    with pytest.raises(ValueError, match="S0"):
        mk(S0=torch.eye(3))
    with pytest.raises(ValueError, match="dimension"):
        mk(mu0=[0.0, 0.0, 0.0], S0=0.5)
    with pytest.raises(ValueError, match="init"):
        mk(init=(torch.zeros(3), torch.eye(3)))
    with pytest.raises(ValueError, match="kernel"):
        solve_lq(mk(), kernel="diagonal")
    with pytest.raises(ValueError, match="variance"):
        mk(variance="medium")
    with pytest.raises(ValueError, match="shape"):
        evaluate_affine_policy(mk(), torch.zeros(9, 2, 2), torch.zeros(9, 2))
    with pytest.raises(ValueError):  # a schedule with no step (T = 0)
        Schedule("empty", torch.zeros(1, dtype=F64), torch.zeros(1, dtype=F64))
