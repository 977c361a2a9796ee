"""The backward sweep of parametric PI-FT (:mod:`.backward_sweep`) on an LQ problem, where the
optimal control and the contraction factor of every round are known in closed form
(``notebooks/finetune_mixture.md``, chapter ``book/finetune.md``; Han, Razaviyayn, Xu 2025,
Sec. 4-5).

At the last step ``t = T - 1`` the value ahead is the reward itself (``V_T = r``, no critic),
and one round of the first-order condition maps the error of ``u_{T-1}`` by
``(1 - eta) I - eta (sigma^2 / beta) P_T`` (:func:`diffctrl.control.rates.lq_iteration_rate`):
``rho = sigma_{T-1}^2 rho(P_T) / beta`` for the plain iteration. :func:`sweep_rates` measures
the factor per round of the parametric sweep there, for betas inside the theorem's regime
(``rho < 1``) and outside it (plain and damped with ``eta* = 2 / (2 + rho)``), and the error of
the whole sweep's control to the exact optimum.
"""

from __future__ import annotations

import numpy as np
import torch

from ..control import LQProblem, QuadraticReward, measured_rate, solve_lq
from ..control.rates import lq_iteration_rate, optimal_damping
from ..diffusion.schedules import vp_sde_schedule
from ..repro import Diagnosis, Outcome, judge
from .backward_sweep import StepwiseControl, StepwiseValue, pift_sweep
from .metrics import control_error
from .trajectories import rollout

__all__ = [
    "fitted_factor",
    "lq_problem",
    "sweep_kw",
    "sweep_nets",
    "sweep_rates",
    "sweep_verdicts",
]


def lq_problem(beta: float, T: int) -> LQProblem:
    """The chapter's LQ problem: Gaussian data ``N([0.5, -0.5], [[0.6, 0.1], [0.1, 0.4]])``,
    reward ``-|y - (1, 1)|^2 / 2``, ``T`` steps of the VP-SDE schedule, the large variance."""
    return LQProblem.create(
        vp_sde_schedule(T),
        [0.5, -0.5],
        [[0.6, 0.1], [0.1, 0.4]],
        QuadraticReward.create(Q=1.0, a=[1.0, 1.0]),
        beta,
        variance="large",
    )


def sweep_nets(chain, dim: int, hidden: int, seed: int, device):
    """A :class:`.backward_sweep.StepwiseControl` (zero: the pre-trained model) and a
    :class:`.backward_sweep.StepwiseValue`, initialised from ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    ctrl = StepwiseControl(dim, chain.sigma, chain.beta, hidden=hidden).to(device)
    return ctrl, StepwiseValue(dim, chain.T, hidden=hidden).to(device)


def _step_error(chain, exact, t: int, n: int, seed: int, device):
    """``control -> |u_t - u*_t| / |u*_t|`` (root mean squares over ``n`` states ``Y_t`` of the
    optimal chain)."""
    u_opt = exact.as_control()
    with torch.no_grad():
        roll = rollout(
            chain,
            u_opt,
            lambda y: torch.zeros(y.shape[0]),
            n,
            torch.Generator().manual_seed(seed),
            device=device,
        )
        y = roll.y[t]
        ref = u_opt(t, y)
    size = float(ref.square().sum(1).mean().sqrt())

    def err(control) -> float:
        with torch.no_grad():
            return float((control(t, y) - ref).square().sum(1).mean().sqrt()) / size

    return err


def sweep_kw(cfg, prefix: str = "sweep", lr: float | None = None) -> dict:
    """:func:`.backward_sweep.pift_sweep`'s settings from the profile keys ``<prefix>_n``,
    ``_rounds``, ``_critic_steps``, ``_improve_steps``, ``_noise`` (and ``_lr`` unless ``lr``
    is given): ``sweep_*`` for the LQ rate study, ``cmp_*`` for the mixture comparison."""
    return dict(
        n_traj=cfg[f"{prefix}_n"],
        rounds=cfg[f"{prefix}_rounds"],
        critic_steps=cfg[f"{prefix}_critic_steps"],
        improve_steps=cfg[f"{prefix}_improve_steps"],
        n_noise=cfg[f"{prefix}_noise"],
        lr=cfg[f"{prefix}_lr"] if lr is None else lr,
    )


def _last_step_run(pb, cfg, s: int, eta: float, seed: int, device) -> list[float]:
    """Errors of ``u_{T-1}`` after 0, 1, ..., ``cfg.rate_rounds`` rounds of the sweep's last
    step (the first it processes)."""
    chain, exact = pb.chain(), solve_lq(pb)
    ctrl, critic = sweep_nets(chain, 2, cfg.hidden, s, device)
    err = _step_error(chain, exact, chain.T - 1, cfg.n_err, seed + 7, device)
    errors = [err(ctrl)]

    def after_round(t: int) -> dict:
        errors.append(err(ctrl))
        return {"err": errors[-1]}

    pift_sweep(
        chain,
        pb.reward,
        ctrl,
        critic,
        eta=eta,
        stop_at=chain.T - 1,
        seed=s,
        callback=after_round,
        device=device,
        **(sweep_kw(cfg) | {"rounds": cfg.rate_rounds}),
    )
    return errors


def fitted_factor(errors) -> float:
    """The factor per round of an error sequence that levels off at a regression floor:
    :func:`~diffctrl.control.rates.measured_rate` over the rounds above twice the floor (the
    median of the last three rounds)."""
    e = np.asarray(errors, dtype=float)
    if e[-1] > e[0]:  # growing (outside the regime): no floor to stop at
        return measured_rate(e)
    return measured_rate(e, abs_floor=2 * float(np.median(e[-3:])))


def sweep_rates(cfg, *, seed: int, device) -> Outcome:
    """For every beta of ``cfg.betas`` (inside the regime) and ``cfg.boundary_betas``
    (outside), every seed of ``cfg.seeds``: the last step's errors per round and their fitted
    factor (:func:`fitted_factor`) against the
    closed-form factor, plain (``eta = 1``) and, outside the regime, damped (``eta*``); and
    the relative error of the whole sweep's control to the exact optimum
    (:func:`.metrics.control_error`; 1 is the pre-trained model's). ``data``: ``curves``
    ``{(beta, eta_tag, seed): errors}``, ``rho`` ``{(beta, eta_tag): factor}``, ``rates``,
    ``final``."""
    curves, rho, rates, final, values = {}, {}, {}, {}, {}
    for b in list(cfg.betas) + list(cfg.boundary_betas):
        pb = lq_problem(b, cfg.lq_T)
        exact, chain = solve_lq(pb), pb.chain()
        s_last = float(chain.sigma[-1])
        plain = lq_iteration_rate(exact.P[-1], s_last, b)
        etas = {"plain": 1.0}
        if plain >= 1:
            etas["damped"] = optimal_damping(plain)[0]
        for tag, eta in etas.items():
            rho[b, tag] = lq_iteration_rate(exact.P[-1], s_last, b, eta)
            for s in cfg.seeds:
                e = _last_step_run(pb, cfg, s, eta, seed, device)
                curves[b, tag, s] = e
                rates.setdefault((b, tag), []).append(fitted_factor(e))
        # the whole sweep (damped outside the regime), first seed: error to the optimum
        ctrl, critic = sweep_nets(chain, 2, cfg.hidden, cfg.seeds[0], device)
        pift_sweep(
            chain,
            pb.reward,
            ctrl,
            critic,
            eta=etas.get("damped", 1.0),
            seed=cfg.seeds[0],
            device=device,
            **sweep_kw(cfg),
        )
        size = control_error(
            chain,
            lambda t, y: torch.zeros_like(y),
            exact.as_control(),
            cfg.n_err,
            seed=seed + 7,
            device=device,
        )[0]
        final[b] = (
            control_error(
                chain, ctrl, exact.as_control(), cfg.n_err, seed=seed + 7, device=device
            )[0]
            / size
        )
        tag = str(b).replace(".", "p")
        values[f"sweep_rho_{tag}"] = rho[b, "plain"]
        values[f"sweep_rate_{tag}"] = float(np.mean(rates[b, "plain"]))
        values[f"sweep_final_err_{tag}"] = float(final[b])
        values[f"lq_kl_{tag}"] = exact.expected_kl(weighted=False)
        if "damped" in etas:
            values[f"sweep_eta_{tag}"] = etas["damped"]
            values[f"sweep_rho_damped_{tag}"] = rho[b, "damped"]
            values[f"sweep_rate_damped_{tag}"] = float(np.mean(rates[b, "damped"]))
            values[f"sweep_growth_{tag}"] = float(
                np.mean([curves[b, "plain", s][-1] for s in cfg.seeds])
            )
    values["boundary_beta"] = float(cfg.boundary_betas[0])
    data = dict(curves=curves, rho=rho, rates=rates, final=final)
    return Outcome(values, data=data)


def _in_band(rate: float, rho: float, band: float) -> bool:
    return rho / band <= rate <= rho * band


def sweep_verdicts(sw: Outcome, cfg) -> dict:
    """The verdicts on ``linear_convergence``, ``beta_faster`` and ``boundary`` from
    :func:`sweep_rates` (the rules their claims declare)."""
    rates, rho, curves = sw.data["rates"], sw.data["rho"], sw.data["curves"]
    band = cfg.rate_band
    out = {}
    ok = [
        _in_band(r, rho[b, "plain"], band) for b in cfg.betas for r in rates[b, "plain"]
    ]
    control = [_in_band(rho[b, "plain"], rho[b, "plain"], band) for b in cfg.betas]
    base = [_in_band(1.0, rho[b, "plain"], band) for b in cfg.betas]  # zero rounds
    j = judge(ok, base, control)
    out["linear_convergence"] = dict(
        verdict=j,
        evidence={
            f"beta={b}": {"factors": rates[b, "plain"], "theory": rho[b, "plain"]}
            for b in cfg.betas
        },
        note="per_seed: (beta, seed); the sweep's last step, where V_T = r",
    )
    if j.verdict != "confirmed":
        out["linear_convergence"]["diagnosis"] = Diagnosis(
            "underpowered",
            "the factor is fitted over the rounds above twice the regression floor of the "
            "control network (a few per cent): at large beta only the first round is "
            "above it, and with few samples per regression (the smoke profile) the floor "
            "is higher than the theorem's first-round error",
        )
    pairs = list(zip(cfg.betas[:-1], cfg.betas[1:]))
    faster = [max(rates[hi, "plain"]) < min(rates[lo, "plain"]) for lo, hi in pairs]
    j = judge(
        faster,
        [False] * len(pairs),  # zero rounds: factor 1 at every beta, never faster
        [rho[hi, "plain"] < rho[lo, "plain"] for lo, hi in pairs],
    )
    out["beta_faster"] = dict(
        verdict=j,
        evidence={f"beta={b}": rates[b, "plain"] for b in cfg.betas},
        note="per_seed: consecutive beta pairs, every seed of the larger beta below every "
        "seed of the smaller",
    )
    if j.verdict != "confirmed":
        out["beta_faster"]["diagnosis"] = Diagnosis(
            "underpowered",
            "where the theorem's factors of two betas differ by less than the seeds' "
            "spread of fitted factors (the regression floor), the ordering cannot show",
        )
    grows = [
        curves[b, "plain", s][-1] > curves[b, "plain", s][0]
        for b in cfg.boundary_betas
        for s in cfg.seeds
    ]
    damped = [
        _in_band(r, rho[b, "damped"], band)
        for b in cfg.boundary_betas
        for r in rates[b, "damped"]
    ]
    passes = [g and d for g, d in zip(grows, damped)]
    v = dict(
        verdict=judge(passes, False, True),
        evidence={
            f"beta={b}": {
                "plain_final_over_start": [
                    curves[b, "plain", s][-1] / curves[b, "plain", s][0]
                    for s in cfg.seeds
                ],
                "damped_factors": rates[b, "damped"],
                "damped_theory": rho[b, "damped"],
            }
            for b in cfg.boundary_betas
        },
        note="per_seed: (beta, seed); baseline: zero rounds (the error stays at its start); "
        "control: the exact damped map's factor (closed form)",
    )
    if v["verdict"].verdict != "confirmed":
        v["diagnosis"] = Diagnosis(
            "underpowered",
            "the regression floor of the parametric control (a few per cent) hides the "
            "damped rate after a few rounds; more samples per regression would resolve it",
        )
    out["boundary"] = v
    return out
