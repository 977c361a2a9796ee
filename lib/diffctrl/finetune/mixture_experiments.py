"""The experiments of the mixture notebook (``notebooks/finetune_mixture.md``, chapter
``book/finetune.md``; Han, Razaviyayn, Xu 2025, Sec. 2, 4, 5); the verdicts on its claims are
:mod:`.mixture_analysis`.

Each function runs one section's experiment from the notebook's profile ``cfg`` and returns a
:class:`~diffctrl.repro.Outcome`: the headline numbers (``values``), the keyword
arguments of ``rec.verdict`` per claim (``verdicts``) and what its figure and printout show
(``data``). Every method is built by :func:`method_objective` and trained by
:func:`.trainer.finetune` from the seed it names; evaluations use explicit generators seeded
from the notebook's ``seed``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..control import (
    ControlledChain,
    LQProblem,
    QuadraticReward,
    measured_rate,
    solve_lq,
)
from ..diffusion.exact import GaussianMixture
from ..diffusion.schedules import vp_sde_schedule
from ..repro import Outcome
from ..stats import loglog_slope
from .losses import LOSSES, METHODS
from .metrics import control_error, evaluate
from .nets import ControlMLP, ValueMLP
from .objective import FinetuneObjective
from .optimum import grid_optimum, mode_fractions
from .targets import tilted_target
from .trainer import finetune
from .trajectories import rollout

__all__ = [
    "QUOTED",
    "beta_sweep",
    "compare_methods",
    "method_objective",
    "mode_gap",
    "settings",
]

#: The profile settings the prose quotes, recorded as they are.
QUOTED = (
    "T",
    "n_traj",
    "iters",
    "n_eval",
    "target_factor",
    "err_goal",
    "lq_iters",
    "lq_every",
    "grid_n",
    "grid_iter",
    "grid_n_alt",
    "grid_iter_alt",
)


def settings(cfg) -> dict:
    """The settings the prose quotes (:data:`QUOTED`) and the numbers of seeds."""
    return {key: cfg[key] for key in QUOTED} | {
        "n_seeds": len(cfg.method_seeds),
        "lq_n_seeds": len(cfg.seeds),
    }


def _zero(t, y):
    return torch.zeros_like(y)


def method_objective(
    method: str, chain, reward, s: int, cfg, device
) -> FinetuneObjective:
    """``method`` on ``chain`` and ``reward``: a :class:`.nets.ControlMLP` (zero at the start:
    the pre-trained chain) and, for PI-FT, a :class:`.nets.ValueMLP` critic, both of width
    ``cfg.hidden``, initialised from ``torch.manual_seed(s)``; ``cfg.n_traj`` trajectories."""
    torch.manual_seed(s)
    ctrl = ControlMLP(2, chain.sigma, chain.beta, hidden=cfg.hidden).to(device)
    critic = (
        ValueMLP(2, chain.T + 1, hidden=cfg.hidden).to(device)
        if LOSSES[method].critic
        else None
    )
    return FinetuneObjective(
        chain, reward, ctrl, method, critic=critic, n_traj=cfg.n_traj, device=device
    )


def _scores(chain, control, reward, target, u_opt, size, cfg, seed, device) -> dict:
    """W2 to p*, reward, KL, the objective J and the relative control error to the grid
    optimum ``u_opt`` (its size: the pre-trained chain's control error)."""
    out = evaluate(
        chain,
        control,
        reward,
        cfg.n_eval,
        target=target,
        seed=seed + 100,
        device=device,
        floor=False,
    )
    out["err"] = (
        control_error(chain, control, u_opt, cfg.n_err, seed=seed + 7, device=device)[0]
        / size
    )
    out["J"] = out["reward"] - cfg.beta * out["kl"]
    return out


def compare_methods(
    p0: GaussianMixture, rewards: dict, cfg, *, seed: int, device
) -> Outcome:
    """Every method of :data:`.losses.METHODS` from every seed of ``cfg.method_seeds`` on the
    chain of ``p0`` (``cfg.T`` steps of the VP-SDE schedule, the large variance, KL weight
    ``cfg.beta``) for each reward, scored along training against the tilted target
    :func:`.targets.tilted_target` and the grid optimum :func:`.optimum.grid_optimum` (and its
    sensitivity: the same optimum on a coarser grid with fewer sweeps). ``data``: ``runs``
    ``{(reward, method, seed): FinetuneResult}`` and ``refs`` ``{reward: {"base", "opt"}}``."""
    sched = vp_sde_schedule(cfg.T)
    runs, refs, values = {}, {}, {}
    for name in cfg.rewards:
        reward = rewards[name]
        chain = ControlledChain.from_data(p0, sched, cfg.beta, variance="large")
        target = tilted_target(p0, reward, cfg.beta)
        opt = grid_optimum(
            chain,
            reward,
            n=cfg.grid_n,
            n_iter=cfg.grid_iter,
            n_gh=cfg.n_gh,
            device=device,
        )
        u_opt = opt.as_control()
        size = control_error(
            chain, _zero, u_opt, cfg.n_err, seed=seed + 7, device=device
        )[0]
        base = evaluate(
            chain,
            None,
            reward,
            cfg.n_eval,
            target=target,
            seed=seed + 100,
            device=device,
        )
        best = _scores(chain, u_opt, reward, target, u_opt, size, cfg, seed, device)
        refs[name] = dict(base=base, opt=best)
        alt = grid_optimum(
            chain,
            reward,
            n=cfg.grid_n_alt,
            n_iter=cfg.grid_iter_alt,
            n_gh=cfg.n_gh,
            device=device,
        ).as_control()
        ev = evaluate(
            chain,
            alt,
            reward,
            cfg.n_eval,
            target=target,
            seed=seed + 100,
            device=device,
            floor=False,
        )
        for key in ("reward", "kl", "w2"):
            values[f"grid_sens_{key}_{name}"] = abs(ev[key] - best[key]) / abs(
                best[key]
            )
        for method in METHODS:
            for s in cfg.method_seeds:
                obj = method_objective(method, chain, reward, s, cfg, device)
                runs[name, method, s] = finetune(
                    obj,
                    cfg.iters,
                    lr=cfg.lr,
                    seed=s,
                    eval_every=cfg.eval_every,
                    progress=False,
                    callback=lambda o: _scores(
                        chain, o.control, reward, target, u_opt, size, cfg, seed, device
                    ),
                )
        values[f"w2_pre_{name}"] = base["w2"]
        values[f"w2_floor_{name}"] = base["w2_floor"]
        values[f"w2_opt_{name}"] = best["w2"]
        J_pre = values[f"J_pre_{name}"] = base["reward"] - cfg.beta * base["kl"]
        values[f"J_opt_{name}"] = best["J"]
        values[f"kl_opt_{name}"] = best["kl"]
        for method in METHODS:
            # mean, spread (sd over seeds, ddof=0) and worst seed of each final score
            for key in ("w2", "err", "kl", "J"):
                final = np.array(
                    [runs[name, method, s].history[-1][key] for s in cfg.method_seeds]
                )
                values[f"{key}_{method}_{name}"] = float(final.mean())
                if key in ("w2", "err"):
                    values[f"{key}_{method}_{name}_sd"] = float(final.std())
                    values[f"{key}_{method}_{name}_max"] = float(final.max())
            # share of the possible gain in J realised (0 = pre-trained, 1 = the optimum)
            values[f"gain_{method}_{name}"] = (values[f"J_{method}_{name}"] - J_pre) / (
                best["J"] - J_pre
            )
    for key in ("reward", "kl", "w2"):
        values[f"grid_sens_{key}_max"] = max(
            values[f"grid_sens_{key}_{n}"] for n in cfg.rewards
        )
    return Outcome(values, data=dict(runs=runs, refs=refs))


def _mode_gaps(p0, reward, w_star, cfg, seed, device, optimal: bool) -> list[float]:
    """Total variation between the mode weights of the T-step chain's samples (the grid
    optimum's, or the pre-trained one's) and ``w_star``, for T in ``cfg.opt_Ts``."""
    gaps = []
    for T in cfg.opt_Ts:
        chain_T = ControlledChain.from_data(
            p0, vp_sde_schedule(T), cfg.beta, variance="large"
        )
        control = _zero
        if optimal:
            control = grid_optimum(
                chain_T,
                reward,
                n=cfg.grid_n,
                n_iter=cfg.grid_iter,
                n_gh=cfg.n_gh,
                device=device,
            ).as_control()
        with torch.no_grad():
            roll = rollout(
                chain_T,
                control,
                reward,
                cfg.n_modes,
                torch.Generator().manual_seed(seed + 11),
                device=device,
            )
        frac = mode_fractions(roll.y[-1], p0.means)
        gaps.append(0.5 * float((frac - w_star).abs().sum()))
    return gaps


def mode_gap(p0: GaussianMixture, reward, cfg, *, seed: int, device) -> Outcome:
    """The restriction gap as T grows (linear ``reward``): the mode-weight gap of the T-step
    optimum to p*'s weights (:func:`.targets.tilt_linear`), its log-log slope against T, and the
    same for the pre-trained chain (the baseline). ``data``: ``gaps``, ``pre_gaps``."""
    w_star = tilted_target(p0, reward, cfg.beta).weights
    gaps = _mode_gaps(p0, reward, w_star, cfg, seed, device, optimal=True)
    pre_gaps = _mode_gaps(p0, reward, w_star, cfg, seed, device, optimal=False)
    values = {
        "mode_gap_T_first": cfg.opt_Ts[0],
        "mode_gap_T_last": cfg.opt_Ts[-1],
        "mode_gap_first": gaps[0],
        "mode_gap_last": gaps[-1],
        "mode_gap_slope": loglog_slope(cfg.opt_Ts, gaps),
        # scale of the Monte Carlo error of a fraction
        "mode_se": float(np.sqrt(0.25 / cfg.n_modes)),
        "mode_gap_pre_slope": loglog_slope(cfg.opt_Ts, pre_gaps),
        "mode_gap_pre_last": pre_gaps[-1],
    }
    return Outcome(values, data=dict(gaps=gaps, pre_gaps=pre_gaps))


def beta_sweep(cfg, *, seed: int, device) -> Outcome:
    """Parametric PI-FT on an LQ problem (Gaussian data, quadratic reward, ``cfg.lq_T`` steps)
    for each beta of ``cfg.betas`` and seed of ``cfg.seeds``: the relative control error to the
    exact optimum :func:`diffctrl.control.lq.solve_lq` every ``cfg.lq_every`` iterations, whether
    it first rises above its start, its geometric factor per ``cfg.lq_every`` iterations
    (:func:`diffctrl.control.rates.measured_rate` with ``final_factor=3``: the evaluations before the
    error first falls to 3 times its final value, at least three) and the exact optimum's path
    KL. ``data``: ``curves`` ``{(beta, seed): (iterations, errors)}``, ``rates``, ``rises``,
    ``kl`` per beta."""
    lq_rates, lq_final, lq_kl, lq_rise, curves = {}, {}, {}, {}, {}
    for b in cfg.betas:
        pb = LQProblem.create(
            vp_sde_schedule(cfg.lq_T),
            [0.5, -0.5],
            [[0.6, 0.1], [0.1, 0.4]],
            QuadraticReward.create(Q=1.0, a=[1.0, 1.0]),
            b,
            variance="large",
        )
        exact = solve_lq(pb)
        chain = pb.chain()
        size, _ = control_error(
            chain, _zero, exact.as_control(), 2000, seed=seed + 7, device=device
        )
        for s in cfg.seeds:
            obj = method_objective("pift", chain, pb.reward, s, cfg, device)

            def relative_error(o):
                err, _ = control_error(
                    chain,
                    o.control,
                    exact.as_control(),
                    2000,
                    seed=seed + 7,
                    device=device,
                )
                return {"err": err / size}

            res = finetune(
                obj,
                cfg.lq_iters,
                lr=cfg.lq_lr,
                seed=s,
                eval_every=cfg.lq_every,
                callback=relative_error,
            )
            it = np.array([r["step"] for r in res.history])
            err = np.array([r["err"] for r in res.history])
            if not np.array_equal(it, cfg.lq_every * np.arange(len(it))):
                raise ValueError(
                    "lq_iters must be a multiple of lq_every (equal spacing)"
                )
            curves[b, s] = (it, err)
            lq_rise.setdefault(b, []).append(bool(np.max(err[1:]) > err[0]))
            lq_rates.setdefault(b, []).append(measured_rate(err, final_factor=3.0))
            lq_final.setdefault(b, []).append(float(err[-1]))
        lq_kl[b] = exact.expected_kl(weighted=False)
    values = {}
    for b in cfg.betas:
        tag = str(b).replace(".", "p")
        values[f"lq_rate_{tag}"] = float(np.mean(lq_rates[b]))
        values[f"lq_rate_{tag}_max"] = float(np.max(lq_rates[b]))
        values[f"lq_final_err_{tag}"] = float(np.mean(lq_final[b]))
        values[f"lq_final_err_{tag}_max"] = float(np.max(lq_final[b]))
        values[f"lq_kl_{tag}"] = lq_kl[b]
        values[f"lq_rises_{tag}"] = int(sum(lq_rise[b]))
    data = dict(curves=curves, rates=lq_rates, rises=lq_rise, kl=lq_kl)
    return Outcome(values, data=data)
