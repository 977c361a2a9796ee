"""Parametric PI-FT's backward sweep on LQ problems, against the exact optimum of the Riccati
recursion (diffctrl.control.solve_lq) and the closed-form factor of one round."""

import pytest
import torch

from diffctrl.control import solve_lq
from diffctrl.control.rates import lq_iteration_rate, optimal_damping
from diffctrl.finetune.backward_sweep import StepwiseControl, StepwiseValue, pift_sweep
from diffctrl.finetune.metrics import control_error
from diffctrl.finetune.sweep_experiments import fitted_factor, lq_problem


def _zero(t, y):
    return torch.zeros_like(y)


def _nets(chain, seed=0):
    torch.manual_seed(seed)
    return (
        StepwiseControl(2, chain.sigma, chain.beta, hidden=32),
        StepwiseValue(2, chain.T, hidden=32),
    )


KW = dict(n_traj=256, critic_steps=100, improve_steps=100, n_noise=8, lr=1e-2)


def test_the_sweep_reaches_the_exact_lq_optimum():
    pb = lq_problem(1.0, 4)
    chain = pb.chain()
    exact = solve_lq(pb)
    ctrl, critic = _nets(chain)
    res = pift_sweep(chain, pb.reward, ctrl, critic, rounds=3, seed=0, **KW)
    size = control_error(chain, _zero, exact.as_control(), 2000, seed=3)[0]
    err = control_error(chain, ctrl, exact.as_control(), 2000, seed=3)[0] / size
    assert err < 0.1  # the pre-trained model's is 1
    assert sorted(res.rounds) == [0, 1, 2, 3] and all(
        len(r) == 3 for r in res.rounds.values()
    )
    b = res.budget
    assert b.forward_equivalents == b.nfe + b.backward > b.nfe > 0
    assert b.reward_evals > 0


def test_one_round_at_the_last_step_contracts_by_the_theorem_factor():
    """At t = T - 1 (V_T = r exact) a round maps the error of u_{T-1} by
    -(sigma^2 / beta) P_T: after one round from u = 0 the relative error is rho."""
    for beta in (0.5, 0.05):
        pb = lq_problem(beta, 6)
        chain, exact = pb.chain(), solve_lq(pb)
        rho = lq_iteration_rate(exact.P[-1], float(chain.sigma[-1]), beta)
        ctrl, critic = _nets(chain)
        t = chain.T - 1
        y = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1))
        ref = exact.as_control()(t, y)

        def err():
            with torch.no_grad():
                return float(
                    (ctrl(t, y) - ref).norm(dim=1).pow(2).mean().sqrt()
                ) / float(ref.norm(dim=1).pow(2).mean().sqrt())

        errors = [err()]
        pift_sweep(
            chain,
            pb.reward,
            ctrl,
            critic,
            rounds=2,
            stop_at=t,
            seed=0,
            callback=lambda _t: {"e": errors.append(err())},
            **KW,
        )
        assert errors[0] == pytest.approx(1.0)
        assert errors[1] == pytest.approx(rho, rel=0.25), (beta, rho, errors)
        # the steps before t are untouched: still the pre-trained model (u = 0)
        with torch.no_grad():
            assert float(ctrl(0, y).abs().max()) == 0.0
        if rho > 1:  # outside the regime the damped round contracts instead
            ctrl, critic = _nets(chain)
            eta, rate = optimal_damping(rho)
            errors = [err()]
            pift_sweep(
                chain,
                pb.reward,
                ctrl,
                critic,
                rounds=2,
                stop_at=t,
                eta=eta,
                seed=0,
                callback=lambda _t: {"e": errors.append(err())},
                **KW,
            )
            assert errors[1] == pytest.approx(rate, rel=0.25)


def test_fitted_factor_stops_at_the_floor_and_follows_growth():
    assert fitted_factor([1, 0.1, 0.01, 0.004, 0.005, 0.004]) == pytest.approx(
        0.1, rel=1e-6
    )
    assert fitted_factor([1, 2, 4, 8]) == pytest.approx(2.0)


def test_bad_inputs_raise_before_any_work():
    pb = lq_problem(1.0, 3)
    chain = pb.chain()
    ctrl, critic = _nets(chain)
    with pytest.raises(ValueError, match="rounds"):
        pift_sweep(chain, pb.reward, ctrl, critic, rounds=[1, 1])
    with pytest.raises(ValueError, match="eta"):
        pift_sweep(chain, pb.reward, ctrl, critic, eta=1.5)
    with pytest.raises(ValueError, match="stop_at"):
        pift_sweep(chain, pb.reward, ctrl, critic, stop_at=3)
    with pytest.raises(ValueError, match="critic_steps"):
        pift_sweep(chain, pb.reward, ctrl, critic, critic_steps=0)
    with pytest.raises(ValueError, match="T = 3"):
        pift_sweep(chain, pb.reward, StepwiseControl(2, [1.0] * 2, [1.0] * 2), critic)
