import pytest
import torch

from diffctrl.control.chain import estimate_objective
from diffctrl.control.grid import gauss_hermite
from diffctrl.control.lq import (
    LQProblem,
    bellman_step,
    evaluate_affine_policy,
    law_gap,
    pretrained_policy,
    random_lq_problem,
    solve_lq,
    tilted_mixture,
    tilted_target,
)
from diffctrl.control.rewards import QuadraticReward
from diffctrl.diffusion.exact import GaussianMixture
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


@pytest.mark.parametrize(
    "d,variance", [(1, "large"), (2, "large"), (5, "large"), (2, "small")]
)
def test_riccati_solution_satisfies_the_bellman_equation(d, variance):
    pb = random_problem(d, 30, 10 + d, variance=variance)
    sol = solve_lq(pb)
    A, c = pb.pretrained_affine()
    nodes, w = gauss_hermite(3, d)  # exact for quadratics
    y = 2 * torch.randn(20, d, dtype=F64, generator=torch.Generator().manual_seed(1))
    for t in (0, 7, 29):
        s, b = float(pb.sigma[t]), float(pb.beta[t])

        def rhs(u):
            z = (y @ A[t].T + c[t] + u)[:, None, :] + s * nodes[None]
            EV = sol.value(t + 1, z.reshape(-1, d)).reshape(len(y), -1) @ w
            kl = (
                (u**2).sum(-1) / (2 * s**2) if s > 0 else torch.zeros(len(y), dtype=F64)
            )
            return -b * kl + EV

        u = sol.control(t, y)
        assert torch.allclose(rhs(u), sol.value(t, y), atol=1e-10, rtol=1e-10)
        if s == 0:
            assert torch.all(u == 0)
            continue
        # first-order condition: d/du of the Bellman objective vanishes at u*
        uu = u.clone().requires_grad_(True)
        grad = torch.autograd.grad(rhs(uu).sum(), uu)[0]
        assert grad.abs().max() < 1e-9 * max(1.0, b / s**2)
        # and u* is the maximiser
        du = 1e-2 * torch.randn_like(u)
        assert torch.all(rhs(u + du) < rhs(u))


def test_bellman_step_matches_brute_force_in_1d():
    pb = random_problem(1, 12, 5, beta=0.2)
    sol = solve_lq(pb)
    A, c = pb.pretrained_affine()
    t = 4
    s, b = float(pb.sigma[t]), float(pb.beta[t])
    nodes, w = gauss_hermite(5, 1)
    ys = torch.linspace(-2, 2, 7, dtype=F64)[:, None]
    us = torch.linspace(-3, 3, 60001, dtype=F64)  # spacing 1e-4
    for y in ys:
        m = float(y @ A[t].T + c[t])
        z = (m + us)[:, None] + s * nodes[None, :, 0]
        obj = (
            -b * us**2 / (2 * s**2)
            + sol.value(t + 1, z.reshape(-1, 1)).reshape(len(us), -1) @ w
        )
        i = int(obj.argmax())
        assert abs(float(us[i]) - float(sol.control(t, y[None])[0, 0])) < 2e-4
        assert float(obj[i]) == pytest.approx(float(sol.value(t, y[None])[0]), abs=1e-8)


def test_monte_carlo_objective_matches_the_exact_value():
    pb = random_problem(2, 40, 7, beta=0.3)
    sol = solve_lq(pb)
    est = estimate_objective(
        pb.chain(),
        pb.reward,
        sol.as_control(),
        20000,
        generator=torch.Generator().manual_seed(0),
    )
    assert abs(est.value - sol.objective()) < 3 * est.stderr
    assert abs(est.kl - sol.expected_kl()) < 3 * est.kl_stderr
    assert sol.objective() == pytest.approx(
        sol.expected_reward() - sol.expected_kl(), abs=1e-10
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


def test_tilted_target_by_quadrature_in_1d():
    rew = QuadraticReward.create(Q=1.5, a=[0.8], g=[0.4])
    mu, S = tilted_target([0.2], [[0.5]], rew, 0.3)
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
    mus, Ss = tilted_target(mu0, S0, rew, 0.1)
    errs = []
    for T in (100, 400):
        m, C = solve_lq(
            LQProblem.create(vp_sde_schedule(T), mu0, S0, rew, 0.1)
        ).terminal_law()
        errs.append(law_gap(m, C, mus, Ss)["mean"])
    assert 3.0 < errs[0] / errs[1] < 5.0


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
    with pytest.raises(ValueError, match="beta"):
        tilted_target([0.0, 0.0], 0.5, rew, 0.0)
    with pytest.raises(ValueError, match="beta"):
        bellman_step(
            torch.eye(2), torch.zeros(2), 0.0, torch.eye(2), torch.zeros(2), 0.1, -0.5
        )
    sol = solve_lq(mk())
    with pytest.raises(ValueError, match="shape"):
        sol.value(0, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="t must"):
        sol.control(10, torch.zeros(4, 2))


def test_bellman_residuals_helper_is_round_off_and_detects_a_wrong_value():
    from diffctrl.control.analysis import bellman_residuals
    from diffctrl.control.lq import random_lq_problem, solve_lq

    pb = random_lq_problem(2, 10, 3)
    sol = solve_lq(pb)
    y = torch.randn(
        50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    assert max(bellman_residuals(pb, sol, y)) < 1e-10

    class Shifted:  # a value function off by a non-constant term must fail the check
        def control(self, t, y):
            return sol.control(t, y)

        def value(self, t, y):
            return sol.value(t, y) + (0.1 * y[:, 0] if t == 5 else 0.0)

    assert max(bellman_residuals(pb, Shifted(), y)) > 1e-3


def test_first_order_residuals_separate_the_optimum_from_the_pretrained_policy():
    """The Bellman residual checks a policy's own evaluation equation, so u = 0 passes it; the
    first-order condition u_t = (sigma^2/beta) E grad V_{t+1} holds only at the optimum."""
    from diffctrl.control.analysis import bellman_residuals, foc_residuals
    from diffctrl.control.lq import pretrained_policy, random_lq_problem, solve_lq

    pb = random_lq_problem(2, 10, 3)
    y = 2 * torch.randn(
        50, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    sol, pre = solve_lq(pb), pretrained_policy(pb)
    assert max(foc_residuals(pb, sol, y)) < 1e-10
    assert max(bellman_residuals(pb, pre, y)) < 1e-10  # the old criterion cannot tell
    assert max(foc_residuals(pb, pre, y)) > 1e-2
    with pytest.raises(ValueError, match="y must have shape"):
        foc_residuals(pb, sol, y[:, :1])


def test_the_policy_evaluates_on_the_device_of_the_points():
    # solved on the CPU, the policy drives a chain on any device ("meta" stands in for a GPU)
    sol = solve_lq(random_problem(2, 5, 0))
    y = torch.zeros(4, 2, device="meta")
    outs = (sol.value(1, y), sol.value_grad(1, y), sol.control(1, y))
    assert all(o.device.type == "meta" and o.dtype == F64 for o in outs)
    u = sol.as_control()(1, y)
    assert u.device.type == "meta" and u.dtype == y.dtype and u.shape == (4, 2)
