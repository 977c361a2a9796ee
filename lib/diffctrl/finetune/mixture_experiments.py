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

import math

import numpy as np
import torch

from ..control import (
    ControlledChain,
)
from ..diffusion.exact import GaussianMixture
from ..diffusion.schedules import vp_sde_schedule
from ..repro import Outcome
from ..stats import loglog_slope
from .backward_sweep import pift_sweep
from .budget import Budget
from .losses import LOSSES, METHODS
from .metrics import control_error, evaluate
from .nets import ControlMLP, ValueMLP
from .objective import FinetuneObjective
from .optimum import grid_optimum, mode_fractions
from .sweep_experiments import sweep_kw, sweep_nets
from .targets import tilted_target
from .trainer import FinetuneResult, finetune
from .trajectories import rollout

__all__ = [
    "COMPARED",
    "QUOTED",
    "TUNED",
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
    "cmp_rounds",
    "cmp_critic_steps",
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


#: The methods the chapter compares: "pift" is the paper's backward sweep
#: (:func:`.backward_sweep.pift_sweep`), the others the per-iteration losses of
#: :data:`.losses.METHODS` ("pift_ac": actor-critic PI-FT, our variant; "dpok": REINFORCE with
#: a leave-one-out baseline, DPOK-style).
COMPARED: tuple[str, ...] = ("pift", *METHODS)
#: The methods of the head-to-head claim: the same learning-rate search on a calibration seed,
#: the same budget in forward-equivalents.
TUNED: tuple[str, ...] = ("pift", "dpok")


def _run(method, chain, reward, s, lr, iters, cfg, device, score) -> FinetuneResult:
    """One run of ``method`` (:data:`COMPARED`) from seed ``s``; ``score(control)`` gives the
    metrics of a history row. The sweep's history is its start and its end (its control is a
    whole policy only once the sweep is done); the others are scored every
    ``cfg.eval_every`` iterations."""
    if method == "pift":
        ctrl, critic = sweep_nets(chain, 2, cfg.hidden, s, device)
        res = FinetuneResult()
        res.history.append({"step": 0, **Budget().as_dict(), **score(ctrl)})
        sw = pift_sweep(
            chain,
            reward,
            ctrl,
            critic,
            seed=s,
            device=device,
            **sweep_kw(cfg, "cmp", lr),
        )
        res.budget = sw.budget
        res.history.append({"step": chain.T, **sw.budget.as_dict(), **score(ctrl)})
        return res
    obj = method_objective(method, chain, reward, s, cfg, device)
    return finetune(
        obj,
        iters,
        lr=lr,
        seed=s,
        eval_every=cfg.eval_every,
        callback=lambda o: score(o.control),
    )


def _per_iteration(method, chain, reward, cfg, device) -> int:
    """Forward-equivalents one iteration of a per-iteration method charges."""
    obj = method_objective(method, chain, reward, 0, cfg, device)
    obj(torch.Generator().manual_seed(0))
    return obj.budget.forward_equivalents


def compare_methods(
    p0: GaussianMixture, rewards: dict, cfg, *, seed: int, device
) -> Outcome:
    """Every method of :data:`COMPARED` from every seed of ``cfg.method_seeds`` on the chain
    of ``p0`` (``cfg.T`` steps of the VP-SDE schedule, the large variance, KL weight
    ``cfg.beta``) for each reward, scored against the tilted target
    :func:`.targets.tilted_target` and the grid optimum :func:`.optimum.grid_optimum` (and its
    sensitivity: the same optimum on a coarser grid with fewer sweeps).

    The methods of :data:`TUNED` get the same search: every learning rate of ``cfg.lr_grid``
    on the calibration seed ``cfg.cal_seed`` (no verdict uses it), the one with the lowest
    final control error kept; and the same budget: DPOK runs as many iterations as make the
    sweep's forward-equivalents (a backward pass counts as two forwards). The other methods run
    ``cfg.iters`` iterations at ``cfg.lr`` (no claim compares them). ``data``: ``runs``
    ``{(reward, method, seed): FinetuneResult}``, ``refs`` ``{reward: {"base", "opt"}}``,
    ``tuning`` ``{(reward, method): {lr: error}}``, ``chosen`` ``{(reward, method): lr}``."""
    sched = vp_sde_schedule(cfg.T)
    runs, refs, values, tuning, chosen = {}, {}, {}, {}, {}
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

        def score(control, chain=chain, reward=reward, target=target, u_opt=u_opt):
            return _scores(
                chain, control, reward, target, u_opt, size, cfg, seed, device
            )

        # the same search for both methods of the head-to-head, on the calibration seed
        iters = {m: cfg.iters for m in METHODS}
        for method in TUNED:
            errs = {}
            for lr in cfg.lr_grid:
                try:
                    res = _run(
                        method,
                        chain,
                        reward,
                        cfg.cal_seed,
                        lr,
                        iters.get(method),
                        cfg,
                        device,
                        score,
                    )
                except FloatingPointError:  # diverged at this rate: never chosen
                    errs[lr] = math.inf
                    continue
                e = res.history[-1]["err"]
                errs[lr] = e if math.isfinite(e) else math.inf
                if method == "pift":  # the sweep's budget fixes DPOK's iterations
                    budget = res.history[-1]["forward_equivalents"]
                    iters["dpok"] = max(
                        1,
                        round(
                            budget / _per_iteration("dpok", chain, reward, cfg, device)
                        ),
                    )
            tuning[name, method] = errs
            chosen[name, method] = min(errs, key=errs.get)
        values[f"dpok_iters_{name}"] = iters["dpok"]
        for method in COMPARED:
            lr = chosen.get((name, method), cfg.lr)
            for s in cfg.method_seeds:
                try:
                    runs[name, method, s] = _run(
                        method,
                        chain,
                        reward,
                        s,
                        lr,
                        iters.get(method),
                        cfg,
                        device,
                        score,
                    )
                except FloatingPointError:  # a diverged run: the worst score, kept
                    start = {"step": 0, **Budget().as_dict(), **score(_zero)}
                    end = dict(
                        start, err=math.inf, w2=math.inf, kl=math.inf, J=-math.inf
                    )
                    runs[name, method, s] = FinetuneResult(history=[start, end])
        values[f"w2_pre_{name}"] = base["w2"]
        values[f"w2_floor_{name}"] = base["w2_floor"]
        values[f"w2_opt_{name}"] = best["w2"]
        J_pre = values[f"J_pre_{name}"] = base["reward"] - cfg.beta * base["kl"]
        values[f"J_opt_{name}"] = best["J"]
        values[f"kl_opt_{name}"] = best["kl"]
        for method in COMPARED:
            # mean, spread (sd over seeds, ddof=0) and worst seed of each final score
            for key in ("w2", "err", "kl", "J", "forward_equivalents", "wall"):
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
        for method in TUNED:
            values[f"lr_{method}_{name}"] = chosen[name, method]
    for key in ("reward", "kl", "w2"):
        values[f"grid_sens_{key}_max"] = max(
            values[f"grid_sens_{key}_{n}"] for n in cfg.rewards
        )
    data = dict(runs=runs, refs=refs, tuning=tuning, chosen=chosen)
    return Outcome(values, data=data)


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
