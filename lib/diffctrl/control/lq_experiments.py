"""The experiments of the LQ chapter (``notebooks/pift_lq.md``, ``book/pift_lq.md``) and the
verdicts on its claims.

Each function runs one section's experiment and returns an :class:`~diffctrl.repro.Outcome`: the
headline numbers, the keyword arguments of ``rec.verdict`` per claim (rules of the claims
declared in the notebook: Han, Razaviyayn, Xu 2025, Sec. 2, 3, 5, 6) and the arrays of its
figure. Randomness comes from explicit generators seeded by the notebook's ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..diffusion.exact import GaussianMixture
from ..diffusion.schedules import vp_sde_schedule
from ..repro import Diagnosis, Outcome, judge
from ..stats import loglog_slope
from .analysis import (
    continuous_gap_vs_N,
    grid_vs_cole_hopf,
    tilted_gap_vs_T,
    tradeoff_curve,
)
from .bellman import bellman_residuals, foc_residuals
from .chain import estimate_objective, kl_cost
from .continuous import solve_hjb_lq
from .grid import Grid
from .lq import LQProblem, pretrained_policy, random_lq_problem, solve_lq
from .rewards import BumpReward, QuadraticReward
from .tilted import tilted_gaussian

__all__ = [
    "bellman_check",
    "continuous_limit",
    "kl_identity",
    "monte_carlo_check",
    "tilted_gaps",
    "tilted_random",
    "tradeoff",
]

F64 = torch.float64


def kl_identity(seed: int) -> Outcome:
    """Claim ``kl_cost``: :func:`~.chain.kl_cost` against ``torch.distributions``' KL of two
    Gaussian kernels ``N(m + u, sigma^2 I)``, ``N(m, sigma^2 I)`` on 1000 random (m, u) in 3-D."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(1000, 3, generator=g, dtype=F64)
    m = torch.randn(1000, 3, generator=g, dtype=F64)
    sig = 0.05 + torch.rand(1, generator=g, dtype=F64).item()
    cov = sig**2 * torch.eye(3, dtype=F64)
    kl_ref = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(m + u, cov),
        torch.distributions.MultivariateNormal(m, cov),
    )
    gap = float((kl_cost(u, sig) - kl_ref).abs().max())
    return Outcome(
        {"kl_identity_gap": gap},
        {"kl_cost": dict(verdict=judge([gap < 1e-12]), evidence={"max_gap": gap})},
    )


def bellman_check(n_problems: int, seed: int) -> Outcome:
    """Claim ``bellman``: relative Bellman and first-order-condition residuals
    (:func:`~.bellman.bellman_residuals`, :func:`~.bellman.foc_residuals`) of the Riccati
    solution at 200 random states of random problems (d = 1, 2, 5, ``n_problems`` each,
    T = 30); baseline the pre-trained policy with its own value."""
    residuals, foc, foc_pre, bell_pre = [], [], [], []
    for i, d in enumerate([1, 2, 5] * n_problems):
        pb = random_lq_problem(d, 30, seed + i)
        sol, pre = solve_lq(pb), pretrained_policy(pb)
        y = 2 * torch.randn(
            200, d, generator=torch.Generator().manual_seed(seed + i), dtype=F64
        )
        residuals.append(max(bellman_residuals(pb, sol, y)))
        foc.append(max(foc_residuals(pb, sol, y)))
        bell_pre.append(max(bellman_residuals(pb, pre, y)))
        foc_pre.append(max(foc_residuals(pb, pre, y)))
    passes = [r < 1e-10 and f < 1e-10 for r, f in zip(residuals, foc)]
    verdict = dict(
        verdict=judge(
            passes,
            baseline=any(r < 1e-10 and f < 1e-10 for r, f in zip(bell_pre, foc_pre)),
        ),
        evidence={
            "bellman_residual_max": max(residuals),
            "foc_residual_max": max(foc),
            "n_problems": len(passes),
            "pretrained_bellman_residual_max": max(bell_pre),
            "pretrained_foc_residual_min": min(foc_pre),
        },
    )
    values = {
        "bellman_residual_max": float(max(residuals)),
        "foc_residual_max": float(max(foc)),
        "pretrained_bellman_residual_max": float(max(bell_pre)),
        "pretrained_foc_residual_min": float(min(foc_pre)),
    }
    return Outcome(values, {"bellman": verdict})


def monte_carlo_check(
    problem: LQProblem, n_mc: int, n_seeds: int, seed: int, device="cpu"
) -> Outcome:
    """Monte Carlo estimates of ``J(u*)`` (:func:`~.chain.estimate_objective`, ``n_mc`` paths,
    generators ``seed + 100 + k``) against the exact optimum; ``data["z"]`` their z-scores."""
    sol = solve_lq(problem)
    mc = []
    for k in range(n_seeds):
        est = estimate_objective(
            problem.chain(),
            problem.reward,
            sol.as_control(),
            n_mc,
            generator=torch.Generator().manual_seed(seed + 100 + k),
            device=device,
        )
        mc.append((est.value, est.stderr))
    mc = np.array(mc)
    z = (mc[:, 0] - sol.objective()) / mc[:, 1]
    values = {
        "J_exact": float(sol.objective()),
        "J_mc_first": float(mc[0, 0]),
        "J_mc_se_first": float(mc[0, 1]),
        "mc_max_abs_z": float(np.abs(z).max()),
    }
    return Outcome(values, data={"z": z, "J": sol.objective()})


def _short(beta_max: float):
    return lambda T: vp_sde_schedule(T, beta_max=beta_max)


def tilted_gaps(mu0, S0, reward, Ts: Sequence[int], short_beta_max: float) -> Outcome:
    """KL(terminal law || p*) against T (:func:`~.analysis.tilted_gap_vs_T`) for beta 0.1 and
    1, on the book's (memoryless) schedule and on a short one with maximal noise rate
    ``short_beta_max``; ``data["gaps"][(beta, "memoryless" | "short")]``. The headline numbers
    (slopes fitted for T >= 50, values at the largest T, the floors of the short schedule)
    are those of beta = 0.1."""
    Ts = np.asarray(Ts)
    short = _short(short_beta_max)
    gaps = {
        (b, name): tilted_gap_vs_T(mu0, S0, reward, b, Ts, schedule=sch)
        for b in (0.1, 1.0)
        for name, sch in (("memoryless", vp_sde_schedule), ("short", short))
    }
    gm, gs = gaps[(0.1, "memoryless")], gaps[(0.1, "short")]
    big = Ts >= 50
    values = {
        "kl_slope_finetuned": float(loglog_slope(Ts[big], gm["mean_shift"][big])),
        "kl_finetuned_Tmax": float(gm["mean_shift"][-1]),
        "kl_full_Tmax": float(gm["full"][-1]),
        "meanshift_over_full_Tmax": float(gm["mean_shift"][-1] / gm["full"][-1]),
        "kl_short_floor": float(gs["mean_shift"][-1]),
        "kl_short_exact_start_floor": float(gs["full_exact"][-1]),
        "log_alphabar_book": float(
            np.log(float(vp_sde_schedule(int(Ts[-1])).alpha_bar[-1]))
        ),
        "short_beta_max": float(short_beta_max),
        "alphabar_short": float(short(int(Ts[-1])).alpha_bar[-1]),
        "kl_slope_pretrained_target": float(
            loglog_slope(Ts[big], gm["pretrained_target"][big])
        ),
    }
    return Outcome(values, data={"Ts": Ts, "gaps": gaps})


def tilted_random(gaps: Outcome, n_problems: int, seed: int) -> Outcome:
    """Claim ``tilted``: the fitted slope of KL(terminal law || p*) (T >= 50) in [-2.2, -1.8]
    for the problem of :func:`tilted_gaps` and for ``n_problems`` random problems (d = 2,
    T = 10 to build, seeds ``seed + 500 + i``); a caveat where the short schedule keeps a
    floor (slope > -1); baseline the pre-trained chain against p*, same band; control the
    optimum over full Gaussian kernels (unrestricted covariance), same band."""
    Ts, gs = gaps.data["Ts"], gaps.data["gaps"][(0.1, "short")]
    big = Ts >= 50
    slopes, ratios = [], []
    base_slopes = [gaps.values["kl_slope_pretrained_target"]]
    full_main = gaps.data["gaps"][(0.1, "memoryless")]["full"]
    full_slopes = [loglog_slope(Ts[big], full_main[big])]
    for i in range(n_problems):
        pb = random_lq_problem(2, 10, seed + 500 + i)
        b = float(pb.beta[0])
        gp = tilted_gap_vs_T(pb.mu0, pb.S0, pb.reward, b, Ts)
        slopes.append(loglog_slope(Ts[big], gp["mean_shift"][big]))
        base_slopes.append(loglog_slope(Ts[big], gp["pretrained_target"][big]))
        full_slopes.append(loglog_slope(Ts[big], gp["full"][big]))
        ratios.append(gp["mean_shift"][-1] / gp["full"][-1])

    def in_band(x):
        return -2.2 <= x <= -1.8

    passes = [in_band(gaps.values["kl_slope_finetuned"])] + [in_band(x) for x in slopes]
    slope_short = float(loglog_slope(Ts[big], gs["mean_shift"][big]))
    floor_kept = slope_short > -1.0
    j = judge(
        passes,
        baseline=any(in_band(x) for x in base_slopes),
        control=all(in_band(x) for x in full_slopes),
    )
    caveat = j.verdict == "confirmed" and floor_kept
    values = {
        "kl_slope_random_min": float(min(slopes)),
        "kl_slope_random_max": float(max(slopes)),
        "meanshift_over_full_random_max": float(max(ratios)),
        "kl_slope_short": slope_short,
    }
    v = dict(
        verdict="confirmed with caveat" if caveat else j.verdict,
        per_seed=j.per_seed,
        baseline_passes=j.baseline_passes,
        control_passes=j.control_passes,
        why=j.why,
        evidence={
            "slope_main": gaps.values["kl_slope_finetuned"],
            "full_kernel_slopes": full_slopes,
            "slopes_random": slopes,
            "short_floor": gaps.values["kl_short_floor"],
            "slope_short": slope_short,
            "kl_Tmax": gaps.values["kl_finetuned_Tmax"],
            "pretrained_slopes": base_slopes,
        },
        note="caveat: a schedule that remembers its start keeps a floor"
        if floor_kept
        else "",
    )
    if v["verdict"] != "confirmed":
        v["diagnosis"] = Diagnosis(
            "setting",
            "on the memoryless schedule the fine-tuned law approaches p* at O(1/T); on a "
            f"schedule that remembers its start (slope {slope_short:.2g}) it keeps a "
            "floor that no number of steps removes, for the pre-trained and the "
            "unrestricted optimum alike: p* is reached only where the chain forgets "
            "its start",
        )
    return Outcome(values, {"tilted": v}, {"slopes": slopes, "ratios": ratios})


def tradeoff(
    mu0,
    S0,
    reward,
    *,
    n_betas: int,
    T: int,
    n_mc: int,
    n_problems: int,
    seed: int,
    device="cpu",
) -> Outcome:
    """Claim ``tradeoff``: along beta in [0.01, 100] (``n_betas`` log-spaced) the exact
    optimum's expected reward and path KL (:func:`~.analysis.tradeoff_curve`) strictly
    decrease, for the problem ``(mu0, S0, reward)`` on T steps and ``n_problems`` random ones
    (seeds ``seed + 700 + i``); baseline u = 0 (constant reward, zero KL). ``data`` holds the
    curve and Monte Carlo rewards (``n_mc // 4`` paths) at beta = 0.03, 0.3, 3."""
    betas = np.geomspace(1e-2, 1e2, n_betas)
    pb = LQProblem.create(vp_sde_schedule(T), mu0, S0, reward, 1.0)
    tc = tradeoff_curve(pb, betas)
    mc = []
    for b in (0.03, 0.3, 3.0):
        sol_b = solve_lq(pb.with_beta(b))
        est = estimate_objective(
            pb.with_beta(b).chain(),
            reward,
            sol_b.as_control(),
            n_mc // 4,
            generator=torch.Generator().manual_seed(seed + 7),
            device=device,
        )
        mc.append((sol_b.expected_kl(weighted=False), est.reward, est.reward_stderr))

    def strict(x):
        return bool(np.all(np.diff(x) < 0))

    mono = [strict(tc["reward"]) and strict(tc["path_kl"])]
    for i in range(n_problems):
        tci = tradeoff_curve(random_lq_problem(2, T, seed + 700 + i), betas)
        mono.append(strict(tci["reward"]) and strict(tci["path_kl"]))
    values = {
        "tradeoff_reward_monotone": bool(np.all(np.diff(tc["reward"]) < 0)),
        "tradeoff_kl_monotone": bool(np.all(np.diff(tc["path_kl"]) < 0)),
        "path_kl_ge_terminal_kl": bool(
            np.all(tc["path_kl"] >= tc["terminal_kl"] - 1e-12)
        ),
        "reward_gap_to_target_max": float(
            np.abs(tc["reward"] - tc["target_reward"]).max()
        ),
        "tradeoff_monotone_frac": float(np.mean(mono)),
    }
    verdict = dict(
        verdict=judge(mono, baseline=False),
        evidence={"n_problems": len(mono), "n_betas": len(betas)},
        note="u = 0 has the same reward and zero KL at every beta: never strictly "
        "decreasing",
    )
    return Outcome(
        values, {"tradeoff": verdict}, {"betas": betas, "curve": tc, "mc": mc}
    )


def continuous_limit(
    mu0, S0, reward, Ns: Sequence[int], gmm_Ns: Sequence[int], grid_n: int
) -> Outcome:
    """Claim ``continuous``: log-log slopes against T of the gaps between the discrete and the
    continuous-time optimum — LQ (:func:`~.analysis.continuous_gap_vs_N`, reward
    ``Q = [[2, .5], [.5, 1]]``, ``a = (2, 1)``, beta = 0.1): ``|J_T - J|`` and the terminal mean
    in [-1.3, -0.8]; a 1-D two-component mixture with a bump reward
    (:func:`~.analysis.grid_vs_cole_hopf`, beta = 0.3, values at tau = 0.8 on a grid of
    ``grid_n`` points): in [-1.4, -0.7]; baseline the pre-trained objective against the HJB
    optimum, same band. Also the exact-start HJB law against p* (``reward``, beta = 0.1)."""
    Ns = np.array(Ns)
    rew_cont = QuadraticReward.create(Q=[[2.0, 0.5], [0.5, 1.0]], a=[2.0, 1.0])
    cg = continuous_gap_vs_N(mu0, S0, rew_cont, 0.1, Ns)
    gmm = GaussianMixture.create([0.4, 0.6], [[-1.0], [1.2]], [0.15, 0.25])
    bump = BumpReward.create([2.0], height=1.0, width=0.6)
    y_eval = torch.linspace(-2.5, 2.5, 41, dtype=F64)[:, None]
    tau = 0.8
    gc = grid_vs_cole_hopf(
        gmm, bump, 0.3, gmm_Ns, Grid.create(-5, 5, grid_n), y_eval, tau=tau
    )
    gN = np.array(gmm_Ns)
    cs_exact = solve_hjb_lq(mu0, S0, reward, 0.1, init="exact")
    ms_, _ = tilted_gaussian(mu0, S0, reward, 0.1)
    pre_gap = [
        abs(
            pretrained_policy(
                LQProblem.create(vp_sde_schedule(int(N)), mu0, S0, rew_cont, 0.1)
            ).objective()
            - cg["J_cont"]
        )
        for N in Ns
    ]
    values = {
        "cont_J_slope": float(loglog_slope(Ns, cg["J"])),
        "cont_mean_slope": float(loglog_slope(Ns, cg["mean"])),
        "cont_J_err_Nmax": float(cg["J"][-1]),
        "cont_gmm_slope": float(loglog_slope(gN, gc["err"])),
        "cont_gmm_err_Nmax": float(gc["err"][-1]),
        "cont_exact_start_mean_gap": float(
            np.abs(cs_exact.terminal_law()[0] - ms_.numpy()).max()
        ),
        "cont_pretrained_J_slope": float(loglog_slope(Ns, np.array(pre_gap))),
    }
    bands = {"J": (-1.3, -0.8), "mean": (-1.3, -0.8), "gmm": (-1.4, -0.7)}
    got = {
        "J": values["cont_J_slope"],
        "mean": values["cont_mean_slope"],
        "gmm": values["cont_gmm_slope"],
    }
    passes = [bands[k][0] <= got[k] <= bands[k][1] for k in bands]
    pre_slope = values["cont_pretrained_J_slope"]
    verdict = dict(
        verdict=judge(passes, baseline=bands["J"][0] <= pre_slope <= bands["J"][1]),
        evidence={"slopes": got, "pretrained_J_slope": pre_slope},
        note="per_seed: LQ value, LQ terminal mean, mixture value",
    )
    data = {"Ns": Ns, "lq": cg, "gmm_Ns": gN, "mixture": gc, "tau": tau}
    return Outcome(values, {"continuous": verdict}, data)
