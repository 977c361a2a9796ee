"""The experiments of the regularity chapter (``notebooks/pift_regularity.md``,
``book/pift_regularity.md``) and the verdicts on its claims.

Grid PI-FT (:mod:`.pift`) on Gaussian-mixture pre-trained models with non-quadratic rewards:
the Lipschitz constants of its iterates against the [ours] bounds of :mod:`.regularity`
(Han, Razaviyayn, Xu 2025, Sec. 3), its linear convergence beyond the LQ class (Sec. 4) and
the fine-tuned law against the tilted target p* (:class:`~diffctrl.finetune.targets.GridTarget`).
Each experiment returns an :class:`~diffctrl.repro.Outcome`. The measured/bound ratios of
the runs and the verdicts on the Lipschitz claims are :mod:`.lipschitz_bound_analysis`, the
verdicts on the measured constants themselves :mod:`.regularity_analysis`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..diffusion.exact import GaussianMixture
from ..diffusion.schedules import vp_sde_schedule
from ..finetune.targets import GridTarget
from ..repro import Diagnosis, Outcome, judge
from .analysis import sample_density_1d, w1_to_density
from .chain import ControlledChain, simulate
from .grid import Grid
from .lq import LQProblem, solve_lq
from .pift import PIFTGridResult, pift_grid
from .rates import measured_rate
from .regularity import regularity_ratios
from .regularity_analysis import lq_1d_run
from .rewards import BumpReward, LogSigmoidReward, QuadraticReward

__all__ = [
    "grid_rates",
    "grid_sensitivity",
    "grid_vs_lq",
    "mixture_1d",
    "mixture_2d",
    "tilted_w1",
]

F64 = torch.float64


def grid_vs_lq(lq_T: int, device="cpu") -> Outcome:
    """Grid PI-FT on LQ problems (d = 1: :func:`~.regularity_analysis.lq_1d_run`, ``lq_T``
    steps, 81 points; d = 2: 10 steps, 25 points per axis) against the Riccati solution: the
    largest error of the final control and value on [-2, 2]^d (Catmull-Rom and Gauss-Hermite
    are exact for quadratics). ``data["result_1d"]`` is the 1-D run, the positive control of
    the Lipschitz and rate claims."""
    res1 = lq_1d_run(lq_T, device)
    errs = [max(max(e[-1] for e in res1.u_err), max(e[-1] for e in res1.v_err))]
    d = 2
    pb = LQProblem.create(
        vp_sde_schedule(10),
        torch.tensor([0.5, -0.3], dtype=F64),
        torch.tensor([[0.5, 0.1], [0.1, 0.3]], dtype=F64),
        QuadraticReward.create(Q=[[1.0, 0.2], [0.2, 0.6]], a=[1.0, 0.5]),
        0.3,
    )
    res = pift_grid(
        pb.chain(),
        pb.reward,
        Grid.create(-4, 4, 25, d=d),
        60,
        n_gh=4,
        tol=1e-14,
        reference=solve_lq(pb),
        region=([-2] * d, [2] * d),
        device=device,
    )
    errs.append(max(max(e[-1] for e in res.u_err), max(e[-1] for e in res.v_err)))
    return Outcome(
        {"grid_vs_lq_max_err": float(max(errs))},
        data={"errors": errs, "result_1d": res1},
    )


def mixture_1d(
    T: int, grid_n: int, betas: Sequence[float], m: int, n_gh: int, device="cpu"
) -> dict:
    """The 1-D settings: ``p0 = 0.4 N(-1, 0.15) + 0.6 N(1.2, 0.25)`` (exact scores) on
    ``vp_sde_schedule(T)``, rewards a bump at 2 (width 0.6) and ``log sigmoid(3 (y - 1.5))``,
    grid PI-FT (``m`` iterations per step, ``n_gh`` nodes, Lipschitz constants on [-3, 3]) for
    each reward and beta. Returns ``data``, ``rewards``, ``grid`` and
    ``runs[(reward name, beta)] = (chain, result)``."""
    gmm = GaussianMixture.create([0.4, 0.6], [[-1.0], [1.2]], [0.15, 0.25])
    rewards = {
        "bump": BumpReward.create([2.0], height=1.0, width=0.6),
        "logsigmoid": LogSigmoidReward.create([1.0], c=1.5, kappa=3.0),
    }
    grid = Grid.create(-5, 5, grid_n)
    runs = {}
    for rname, r in rewards.items():
        for b in betas:
            chain = ControlledChain.from_data(gmm, vp_sde_schedule(T), b)
            runs[(rname, b)] = (
                chain,
                pift_grid(
                    chain, r, grid, m, n_gh=n_gh, region=([-3], [3]), device=device
                ),
            )
    return {"data": gmm, "rewards": rewards, "grid": grid, "runs": runs}


def _samples(chain, control, n: int, seed: int, device) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return simulate(chain, control, n, generator=gen, device=device).y[:, 0].cpu()


def tilted_w1(
    setting: dict, b_show: float, n_samples: int, seed: int, device="cpu"
) -> Outcome:
    """Claim ``tilted_w1``: W1 between fine-tuned samples (generator ``seed + 1``) and p* (the
    :class:`~diffctrl.finetune.targets.GridTarget` density on [-4, 5], :func:`~.analysis.w1_to_density`)
    at most a quarter of W1 between the pre-trained samples (``seed``) and p*, in every 1-D
    setting of :func:`mixture_1d`; a caveat where it exceeds twice the floor, W1 of an exact
    sample of p* (``seed + 2``); baseline: the pre-trained samples already within twice the
    floor in some setting; control: the exact sample of p* under the same test. ``data`` holds the histogram samples (``seed``) and p* at
    ``b_show``."""
    gmm, rewards, runs = setting["data"], setting["rewards"], setting["runs"]
    x = torch.linspace(-4, 5, 2001, dtype=F64)
    dens = {
        k: GridTarget.create(gmm, rewards[k[0]], k[1]).log_prob(x[:, None]).exp()
        for k in runs
    }
    w1, hist = {}, {}
    for rname in rewards:
        chain, res = runs[(rname, b_show)]
        hist[rname] = _samples(chain, res.as_control(), n_samples, seed, device)
        for b in (b for r, b in runs if r == rname):
            chain_b, res_b = runs[(rname, b)]
            yb = _samples(chain_b, res_b.as_control(), n_samples, seed + 1, device)
            gen = torch.Generator().manual_seed(seed + 2)
            exact = sample_density_1d(x, dens[(rname, b)], n_samples, gen)
            w1[(rname, b)] = (
                w1_to_density(yb, x, dens[(rname, b)]),
                w1_to_density(exact, x, dens[(rname, b)]),
            )
    y_pre = _samples(runs[("bump", b_show)][0], None, n_samples, seed, device)
    w1_pre = {k: w1_to_density(y_pre, x, dens[k]) for k in w1}
    close = [w1[k][0] <= 0.25 * w1_pre[k] for k in w1]
    exact_close = [w1[k][1] <= 0.25 * w1_pre[k] for k in w1]
    near_floor = all(w1[k][0] <= 2 * w1[k][1] for k in w1)
    pre_near_floor = any(w1_pre[k] <= 2 * w1[k][1] for k in w1)
    j = judge(close, baseline=pre_near_floor, control=exact_close)
    values = {
        "w1_finetuned_max": float(max(wf for wf, _ in w1.values())),
        "w1_floor_max": float(max(we for _, we in w1.values())),
        "w1_pretrained_bump": float(w1_pre[("bump", b_show)]),
        "w1_pretrained_min": float(min(w1_pre.values())),
        "w1_over_floor_max": float(max(wf / we for wf, we in w1.values())),
    }
    caveat = j.verdict == "confirmed" and not near_floor
    v = dict(
        verdict="confirmed with caveat" if caveat else j.verdict,
        evidence={
            "settings": [f"{r}, beta={b}" for r, b in w1],
            "w1_finetuned": [w1[k][0] for k in w1],
            "w1_floor": [w1[k][1] for k in w1],
            "w1_pretrained": [w1_pre[k] for k in w1],
        },
        per_seed=j.per_seed,
        baseline_passes=j.baseline_passes,
        control_passes=j.control_passes,
        why=j.why,
        note="caveat: above twice the exact-sample floor (O(1/T))" if caveat else "",
    )
    if v["verdict"] != "confirmed":
        v["diagnosis"] = Diagnosis(
            "setting",
            "the chain's O(1/T) time discretisation: the fine-tuned law is within a "
            "quarter of the pre-trained distance to p* but above twice the exact-sample "
            "floor; a longer chain would close the gap (book/pift_lq.md measures the "
            "1/T rate in the LQ case)",
        )
    data = {
        "x": x,
        "w1": w1,
        "samples": hist,
        "density": {r: dens[(r, b_show)] for r in rewards},
        "p0": gmm.log_prob(x[:, None]).exp(),
    }
    return Outcome(values, {"tilted_w1": v}, data)


def _residual_rates(result: PIFTGridResult):
    """``(t, rho_t, measured rate)`` of the sup-norm residual at every step whose residual is
    above round-off (at least three iterations)."""
    for t in range(result.T):
        e = result.residual[t]
        if len(e) >= 3 and e[0] > 1e-12 and e[1] > 1e-13:
            yield t, result.rho[t], measured_rate(e, 1e-8)


def _rates_pass(result: PIFTGridResult) -> tuple[bool, int]:
    """Whether every step's residual rate is below 1 and at most ``1.01 rho_t`` where
    ``rho_t < 1``; and how many steps with ``rho_t >= 1`` still contract."""
    ok, beyond = True, 0
    for _, rho, rate in _residual_rates(result):
        ok &= bool(rate < 1 and (rho >= 1 or rate <= 1.01 * rho))
        beyond += int(rho >= 1 and rate < 1)
    return ok, beyond


def grid_rates(runs: dict, control: PIFTGridResult | None = None) -> Outcome:
    """Claim ``linear_beyond_lq``: in every 1-D run the measured rate of the sup-norm residual
    (:func:`~.rates.measured_rate`, floor 1e-8) is below 1 at every step, and at most
    ``1.01 rho_t`` where ``rho_t < 1``; baseline zero iterations (rate 1); control the same
    test on ``control`` (the 1-D LQ run, where the rate is exactly rho_t).
    ``data["points"]`` holds ``(rho_t, rate)`` per step."""
    pts = np.array(
        [(rho, rate) for _, r_ in runs.values() for _, rho, rate in _residual_rates(r_)]
    )
    lin, beyond = [], 0
    for _, r_ in runs.values():
        ok, n = _rates_pass(r_)
        lin.append(ok)
        beyond += n
    values = {
        "grid_rate_excess_max": float(np.max(pts[:, 1] - pts[:, 0])),
        "grid_rate_ratio_max": float(np.max(pts[:, 1] / pts[:, 0])),
        "grid_steps_rho_over_1_converging": beyond,
    }
    j = judge(
        lin,
        baseline=False,
        control=None if control is None else _rates_pass(control)[0],
    )
    v = dict(
        verdict=j,
        evidence={
            "settings": [f"{r}, beta={b}" for r, b in runs],
            "rate_over_rho_max": values["grid_rate_ratio_max"],
            "n_steps": int(len(pts)),
            "steps_rho_over_1_converging": beyond,
        },
        note="zero iterations leave the residual where it is (rate 1 > rho_t)",
    )
    if j.verdict != "confirmed":
        v["diagnosis"] = Diagnosis(
            "setting",
            "the grid estimate of rho_t is a worst case over the grid; see the rate "
            "against rho_t per step",
        )
    return Outcome(values, {"linear_beyond_lq": v}, {"points": pts})


def mixture_2d(
    T: int,
    grid_n: int,
    m: int,
    n_gh: int,
    beta: float,
    n_samples: int,
    seed: int,
    device="cpu",
) -> Outcome:
    """The 2-D setting: four components ``N((+-1, +-1), 0.25 I)``, reward
    ``log sigmoid(1.5 (y_1 + y_2 - 1))``, grid PI-FT on [-4.5, 4.5]^2 (Lipschitz constants on
    [-3, 3]^2); ``n_samples`` fine-tuned samples (generator ``seed``) and their mean reward
    against ``E_{p*} r``, p* (:class:`~diffctrl.finetune.targets.GridTarget`) summed on a
    141 x 141 grid of [-3.5, 3.5]^2 (``data["pstar"]``, the figure's contours)."""
    gmm = GaussianMixture.create(
        [0.25] * 4, [[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]], [0.25] * 4
    )
    rew = LogSigmoidReward.create([1.0, 1.0], c=1.0, kappa=1.5)
    grid = Grid.create(-4.5, 4.5, grid_n, d=2)
    chain = ControlledChain.from_data(gmm, vp_sde_schedule(T), beta)
    res = pift_grid(
        chain, rew, grid, m, n_gh=n_gh, region=([-3, -3], [3, 3]), device=device
    )
    rt = regularity_ratios(res)
    g = torch.linspace(-3.5, 3.5, 141, dtype=F64)
    G2 = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    pstar = GridTarget.create(gmm, rew, beta, n=201).log_prob(G2).exp()
    y = simulate(
        chain,
        res.as_control(),
        n_samples,
        generator=torch.Generator().manual_seed(seed),
        device=device,
    ).y.cpu()
    w = pstar / pstar.sum()
    values = {
        "reward_2d_target": float((w * rew(G2)).sum()),
        "reward_2d_finetuned": float(rew(y).mean()),
        "reward_2d_finetuned_se": float(rew(y).std() / len(y) ** 0.5),
        "ratio_u_max_2d": float(np.nanmax(rt["u"])),
        "ratio_v_max_2d": float(np.nanmax(rt["v"])),
        "rho_max_2d": float(np.nanmax(res.rho)),
    }
    data = {
        "grid": grid,
        "result": res,
        "ratios": rt,
        "samples": y,
        "axis": g,
        "pstar": pstar.reshape(141, 141),
    }
    return Outcome(values, data=data)


def grid_sensitivity(
    setting: dict, b_show: float, grid_n: int, m: int, n_gh: int, device="cpu"
) -> Outcome:
    """The bump run at ``b_show`` of :func:`mixture_1d` again on a grid of half the
    resolution (``(grid_n - 1) // 2 + 1`` points): the largest relative change of
    Lip(grad V_t) over t and the largest measured/bound ratio on the coarse grid (and, in
    ``data``, on the fine one)."""
    chain, res = setting["runs"][("bump", b_show)]
    res_c = pift_grid(
        chain,
        setting["rewards"]["bump"],
        Grid.create(-5, 5, (grid_n - 1) // 2 + 1),
        m,
        n_gh=n_gh,
        region=([-3], [3]),
        device=device,
    )
    rt_f, rt_c = regularity_ratios(res), regularity_ratios(res_c)
    rel_L = float(np.nanmax(np.abs(res_c.L - res.L) / np.maximum(res.L, 1e-12)))
    values = {
        "grid_halved_rel_change_L": float(rel_L),
        "grid_halved_ratio_max": float(max(np.nanmax(rt_c["u"]), np.nanmax(rt_c["v"]))),
    }
    fine = max(np.nanmax(rt_f["u"]), np.nanmax(rt_f["v"]))
    return Outcome(values, data={"fine_ratio_max": float(fine)})
