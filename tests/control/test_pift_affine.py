"""PI-FT in the LQ class (diffctrl.control.pift_affine) against the exact optimum: it
converges to the Riccati solution at the predicted rate, diverges where rho_t > 1 without
damping and converges with it."""

import numpy as np
import pytest
import torch

from diffctrl.control.lq import LQProblem, solve_lq
from diffctrl.control.lq import random_lq_problem as random_problem
from diffctrl.control.pift_affine import pift_lq
from diffctrl.control.rates import lq_iteration_rate, measured_rate, optimal_damping
from diffctrl.control.rewards import QuadraticReward
from diffctrl.diffusion.schedules import vp_sde_schedule


def _ratios(e, floor=1e-8):
    """Successive error ratios while the error is above the round-off floor."""
    e = np.asarray(e)
    keep = (e[:-1] > floor * e[0]) & (e[1:] > 1e-12)
    return e[1:][keep] / e[:-1][keep]


@pytest.mark.parametrize("seed", range(6))
def test_pift_converges_to_the_exact_control_at_the_predicted_rate(seed):
    d = (1, 2, 5)[seed % 3]
    pb = random_problem(d, 20, 100 + seed)
    ref = solve_lq(pb)
    rho_max = float(ref.rho().max())
    eta = 1.0 if rho_max < 0.9 else optimal_damping(rho_max)[0]
    res = pift_lq(pb, 400, eta=eta, tol=1e-15, reference=ref)
    assert res.policy.objective() == pytest.approx(ref.objective(), abs=1e-10)
    assert torch.allclose(res.policy.G, ref.G, atol=1e-10)
    for t in range(pb.T):
        if res.u_err[t][0] < 1e-14:
            continue
        rate = res.rate[t]
        assert rate == pytest.approx(
            lq_iteration_rate(ref.P[t + 1], float(pb.sigma[t]), float(pb.beta[t]), eta),
            abs=1e-8,
        )
        if eta == 1.0:
            assert res.rho[t] == pytest.approx(
                rate, abs=1e-9
            )  # plain iteration: rate = rho_t
        r_u = _ratios(res.u_err[t])
        r_v = _ratios(res.v_err[t])
        # slack: 1 % (round-off near the floor, V_{t+1} exact only to the tolerance)
        assert r_u.size == 0 or r_u.max() <= 1.01 * rate + 1e-6, (t, r_u.max(), rate)
        assert r_v.size == 0 or r_v.max() <= 1.01 * rate**2 + 1e-6, (
            t,
            r_v.max(),
            rate**2,
        )
        if len(r_u) > 2:
            assert measured_rate(res.u_err[t]) <= 1.01 * rate + 1e-6
            if d == 1:  # one eigen-direction: the bound is attained
                assert measured_rate(res.u_err[t]) == pytest.approx(rate, rel=1e-3)


def test_plain_iteration_diverges_when_rho_exceeds_one_and_damping_fixes_it():
    mu0, S0 = torch.zeros(2), 0.5
    rew = QuadraticReward.create(Q=[[3.0, 0.0], [0.0, 0.5]], a=[1.0, 0.0])
    pb = LQProblem.create(vp_sde_schedule(10), mu0, S0, rew, 0.05)
    ref = solve_lq(pb)
    t = pb.T - 1  # the last step: V_T = r, rho = sigma^2 * 3 / beta
    rho = float(ref.rho()[t])
    assert rho > 1
    plain = pift_lq(pb, [0] * (pb.T - 1) + [12], reference=ref)
    assert plain.u_err[t][-1] > 10 * plain.u_err[t][0]  # diverges, alternating in sign
    a_min = float(pb.sigma[t]) ** 2 * 0.5 / float(pb.beta[t])
    eta = 2 / (2 + rho + a_min)  # the optimal damping for the spectrum [a_min, rho]
    damped = pift_lq(pb, [0] * (pb.T - 1) + [60], eta=eta, reference=ref)
    pred = lq_iteration_rate(ref.P[t + 1], float(pb.sigma[t]), float(pb.beta[t]), eta)
    assert pred == pytest.approx((rho - a_min) / (2 + rho + a_min))
    assert measured_rate(damped.u_err[t]) == pytest.approx(pred, rel=0.02)


def test_bad_arguments_raise():
    pb = random_problem(1, 5, 0)
    with pytest.raises(ValueError, match="n_iter"):
        pift_lq(pb, -1)
    for bad in (0.0, 2.0, -0.5):
        with pytest.raises(ValueError, match="eta"):
            pift_lq(pb, 3, eta=bad)


def test_optimal_damping_may_over_relax_and_pift_accepts_it():
    from diffctrl.control.rates import damped_rate, optimal_damping

    # mostly convex curvature (rho_+ > rho_-): eta* = 2 / (2 + rho_- - rho_+) exceeds 1
    eta, rate = optimal_damping(0.1, 0.5)
    assert eta == pytest.approx(2 / 1.6) and eta > 1
    assert rate == pytest.approx(0.6 / 1.6)
    assert damped_rate(eta, 0.1, 0.5) == pytest.approx(rate)
    assert damped_rate(1.0, 0.1, 0.5) > rate  # plain iteration is slower
    pb = random_problem(1, 5, 0).with_beta(10.0)
    assert pift_lq(pb, 3, eta=1.2).n_iter.tolist() == [3] * 5


def test_pift_lq_refuses_a_non_integer_n_iter():
    from diffctrl.control import pift_lq, random_lq_problem

    pb = random_lq_problem(2, 5, 0).with_beta(10.0)  # contracting at every step
    for bad in (2.5, 3.0, True, [1] * 4, [1.5] * 5, -1):
        with pytest.raises(ValueError, match="n_iter"):
            pift_lq(pb, bad)
    assert pift_lq(pb, np.int64(3)).n_iter.tolist() == [3] * 5


def test_plain_pift_divergence_names_the_factor_and_the_damping_that_fixes_it():
    import re

    from diffctrl.control import PIFTDivergence, pift_lq, random_lq_problem, solve_lq
    from diffctrl.control.rates import lq_iteration_rate

    pb = random_lq_problem(2, 10, 0).with_beta(0.03)
    ref = solve_lq(pb)
    t = int(ref.rho().argmax())
    factor = lq_iteration_rate(ref.P[t + 1], float(pb.sigma[t]), 0.03)
    assert factor > 1
    with np.errstate(all="ignore"), pytest.raises(PIFTDivergence) as err:
        pift_lq(pb, 2000)
    msg = str(err.value)
    assert f"t = {t}" in msg and f"{factor:.4g}" in msg
    eta_star = float(re.search(r"eta\* = ([0-9.]+)", msg).group(1))
    # the damping the message names contracts: PI-FT reaches the Riccati optimum
    res = pift_lq(pb, 2000, eta=eta_star, tol=1e-13)
    assert abs(res.policy.objective() - ref.objective()) < 1e-9


def test_pift_lq_from_a_random_start_reaches_the_riccati_optimum_inside_the_regime():
    from diffctrl.control import pift_lq, random_lq_problem, solve_lq
    from diffctrl.control.convergence_experiments import random_start_converges

    pb = random_lq_problem(2, 8, 1).with_beta(5.0)
    ref = solve_lq(pb)
    assert float(ref.rho().max()) < 1
    rng = np.random.default_rng(0)
    G0, g0 = rng.standard_normal((8, 2, 2)), rng.standard_normal((8, 2))
    start = pift_lq(pb, 0, init=(G0, g0))
    assert np.allclose(start.policy.G.numpy(), G0) and np.allclose(
        start.policy.g.numpy(), g0
    )
    res = pift_lq(pb, 5000, tol=1e-13, init=(G0, g0))
    assert abs(res.policy.objective() - ref.objective()) < 1e-9
    assert random_start_converges(pb, seed=3) == (True, False, True)
    with pytest.raises(ValueError, match="init"):
        pift_lq(pb, 1, init=(G0[:3], g0))
