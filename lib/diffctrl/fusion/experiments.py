"""The ScoreFusion chapter's experiments on the fused sampler's law and on small target samples
(1-D and 2-D), with their criteria and verdicts; the chapter's other experiments are
:mod:`diffctrl.fusion.weights_experiments` (the fitted lambda),
:mod:`diffctrl.fusion.merging_experiments` (checkpoint merging) and
:mod:`diffctrl.fusion.digits_experiments` (the digits page).

Each function runs one section of ``notebooks/score_fusion.md`` (Liu, Ye, Blanchet & Si 2025,
the claims declared there) and returns a dict: ``"values"``, the headline numbers the notebook
records in one line (``rec.update(out["values"])``); ``"verdict"`` (or ``"verdicts"``, one
per claim), the keyword arguments of ``rec.verdict(key, **out["verdict"])`` (the verdict by
``diffctrl.repro.judge``, its evidence, per-seed outcomes and whether the baseline passes
the same criterion); and the arrays the figures draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..diffusion.exact import GaussianMixture, exact_score_fn
from ..diffusion.samplers import sample
from ..diffusion.schedules import Schedule
from ..repro import Diagnosis, judge
from .barycenter import Barycenter, QuadratureGrid, w1_barycenter_to_mixture_1d
from .noised import (
    barycenter_gap,
    exact_score_sampler,
    law_distance,
    noised_barycenter_score,
    relative_score_gap,
    sample_from_level,
)
from .scores import FusedScore
from .settings import geometric_class_share, linear_mixture

__all__ = ["fused_sampler_law", "small_sample_gain"]

F64 = torch.float64


def _verdict(j, evidence: dict, diagnosis: Diagnosis | None = None) -> dict:
    """The keyword arguments of ``diffctrl.repro.Record.verdict``: the Judgement ``j``, the
    evidence, and the diagnosis, kept only where the verdict is not a plain confirmation."""
    diag = None if j.verdict == "confirmed" else diagnosis
    return dict(verdict=j, evidence=evidence, diagnosis=diag)


def fused_sampler_law(
    aux: Sequence[GaussianMixture],
    grid1: QuadratureGrid,
    aux2: Sequence[GaussianMixture],
    grid2: QuadratureGrid,
    weights: Sequence[float],
    target: GaussianMixture,
    target_law: Barycenter,
    sched: Schedule,
    seeds: Sequence[int],
    *,
    levels: Sequence[int],
    k_cs: Sequence[int],
    n_score: int,
    n_gap: int,
    n_gap_2d: int,
    seed: int,
    n_control: int = 4000,
) -> dict:
    """Claim ``fused_sampler_law``, with exact auxiliaries ``aux`` (1-D, quadrature on
    ``grid1``) and ``aux2`` (2-D, on ``grid2``) fused with ``weights``: the relative gap
    between the fused score and the score of the noised barycenter at ``levels``
    (:func:`~diffctrl.fusion.noised.relative_score_gap`; in 2-D only at the levels whose noise
    sd exceeds twice the grid spacing); the distance to q_lambda of the law sampled with the
    fused score on the levels 1..k_c (:func:`~diffctrl.fusion.noised.barycenter_gap`) beside
    the exact-sample floor and the linear mixture (the baseline); the mass left of 0; and the
    sampler's own accuracy: its W1 to ``target`` (quadrature law ``target_law``) with the
    target's exact score. Passes per seed when the distance at k_c = N is <= 2x the floor in
    1-D and 2-D. ``"curves"``: the per-level numbers recorded without glue."""
    g = torch.Generator().manual_seed(seed)
    bary1, bary2 = grid1.barycenter(weights), grid2.barycenter(weights)
    fused1 = FusedScore(aux, sched, weights=weights)
    fused2 = FusedScore(aux2, sched, weights=weights)
    # the quadrature score needs a noise sd above twice the grid spacing: coarser 2-D levels
    sd = (1 - sched.alpha_bar).sqrt()
    levels2 = [k for k in levels if sd[k] >= 2 * grid2.h]
    gap1 = relative_score_gap(
        fused1,
        noised_barycenter_score(bary1, sched),
        bary1.sample(n_score, g),
        sched,
        levels,
        g,
    )
    gap2 = relative_score_gap(
        fused2,
        noised_barycenter_score(bary2, sched),
        bary2.sample(n_score, g),
        sched,
        levels2,
        g,
    )
    lin1, lin2 = linear_mixture(aux, weights), linear_mixture(aux2, weights)
    res1 = barycenter_gap(fused1, bary1, sched, k_cs, n_gap, seeds, lin1)
    res2 = barycenter_gap(fused2, bary2, sched, k_cs, n_gap_2d, seeds, lin2)
    x_full = sample_from_level(fused1, sched, bary1.sample(n_gap, g), sched.N, g)
    # the sampler itself, run with the target's exact score: its W1 to the target
    x_tgt = sample(
        exact_score_fn(target, sched),
        sched,
        n_gap,
        1,
        generator=torch.Generator().manual_seed(seed),
        dtype=F64,
    )
    d1, d2 = np.array(res1["dist"]), np.array(res2["dist"])
    floor1, floor2 = np.mean(res1["floor"]), np.mean(res2["floor"])
    passes = [
        bool(d1[-1, i] <= 2 * floor1 and d2[-1, i] <= 2 * floor2)
        for i in range(len(seeds))
    ]
    base = [
        bool(b1 <= 2 * floor1 and b2 <= 2 * floor2)
        for b1, b2 in zip(res1["baseline"], res2["baseline"])
    ]
    # positive control: the same sampler driven by the exact noised-barycenter score (one
    # seed, n_gap_2d points in both dimensions, against the floor at that size)
    # the floor of the control: the mean W1 of 10 exact draws of the same size (one draw
    # is too noisy: the two-mode mass share alone moves W1 by ~0.1 at n = 1000)
    gc = torch.Generator().manual_seed(seed + 31)
    ctrl = {}
    for name, bary, n_c in (("1d", bary1, n_control), ("2d", bary2, n_gap_2d)):
        ref = bary.sample(n_c, gc) if bary.grid.dim == 2 else None
        reps = 10 if bary.grid.dim == 1 else 1
        fl = float(
            np.mean(
                [law_distance(bary.sample(n_c, gc), bary, ref) for _ in range(reps)]
            )
        )
        x, _ = exact_score_sampler(bary, sched, n_c, gc)
        ctrl[name] = (law_distance(x, bary, ref), fl)
    control = all(d <= 2 * fl for d, fl in ctrl.values())
    j = judge(passes, baseline=base, control=control)
    evidence = {
        "w1_1d": d1[-1].tolist(),
        "floor_1d": res1["floor"],
        "w2_2d": d2[-1].tolist(),
        "floor_2d": res2["floor"],
        "control_dist_floor": ctrl,
        "baseline_1d": res1["baseline"],
        "baseline_2d": res2["baseline"],
    }
    fused_vs_control = float(d1[-1].mean() / ctrl["1d"][0])
    if not control:
        diagnosis = Diagnosis(
            "setting",
            "the 2x-floor criterion is out of reach of our 100-level DDPM chain: driven by "
            "the exact noised-barycenter score it misses q_lambda too (a small mode-weight "
            "bias), where the paper samples with 1000 Euler-Maruyama steps; the fused "
            f"sampler's 1-D miss is {fused_vs_control:.0f}x the control's, so the fused score, "
            "not the sampler, dominates (the barycenter of the noised auxiliaries is not the "
            "noised barycenter, Du et al. 2023); the same test at 1000 levels would decide",
        )
    else:
        diagnosis = Diagnosis(
            "overstated",
            "the fused score is the barycenter's score only at noise level 0; above it, it "
            "is the score of the barycenter of the noised auxiliaries (Du et al. 2023), and "
            "in 1-D, where the paper's modes separate, the mode weights come out near "
            "prod_i w_i^lambda_i instead of q_lambda's, while the control reaches q_lambda",
        )
    return {
        "values": {
            "gap_rel_max_1d": max(gap1),
            "gap_rel_min_1d": min(gap1),
            "gap_rel_max_2d": max(gap2),
            "gap_rel_small_2d": gap2[0],
            "w1_fused_full_1d": float(d1[-1].mean()),
            "w1_floor_1d": float(floor1),
            "w1_linear_1d": float(np.mean(res1["baseline"])),
            "w2_fused_full_2d": float(d2[-1].mean()),
            "w2_floor_2d": float(floor2),
            "w2_linear_2d": float(np.mean(res2["baseline"])),
            "sampler_w1_target": law_distance(x_tgt, target_law),
            "mass_left_bary": float(bary1.mass[grid1.points[:, 0] < 0].sum()),
            "mass_left_fused": float((x_full < 0).double().mean()),
            "mass_left_predicted": float(
                geometric_class_share(
                    torch.tensor([[0.5, 0.5], [0.7, 0.3]], dtype=F64),
                    torch.as_tensor(weights, dtype=F64),
                )[0]
            ),
            "control_w1_1d": float(ctrl["1d"][0]),
            "fused_over_control_1d": fused_vs_control,
            "control_floor_1d": float(ctrl["1d"][1]),
            "control_w2_2d": float(ctrl["2d"][0]),
            "control_floor_2d": float(ctrl["2d"][1]),
        },
        "curves": {
            "k_cs": [float(a) for a in k_cs],
            "w1_vs_kc_1d": [float(a) for a in d1.mean(1)],
            "w2_vs_kc_2d": [float(a) for a in d2.mean(1)],
        },
        "verdict": _verdict(j, evidence, diagnosis),
        "gap1": gap1,
        "gap2": gap2,
        "levels2": levels2,
        "dist1": d1,
        "dist2": d2,
        "floor1": floor1,
        "floor2": floor2,
        "barycenter": bary1,
        "x_full": x_full,
    }


def small_sample_gain(
    std: dict,
    raw: dict,
    grid: QuadratureGrid,
    target: GaussianMixture,
    seeds: Sequence[int],
    sizes: Sequence[int],
    raw_sizes: Sequence[int],
) -> dict:
    """Claim ``small_sample_gain`` from the paper's standardised pipeline ``std``
    (:func:`~diffctrl.fusion.standardised.standardised_size_sweep`): passes per seed when
    W1(fused) < W1(from scratch) at the two smallest target sizes; the untrained fusion
    (lambda uniform, mapped back with the target sample's moments) is the baseline, the fusion
    of the exact standardised auxiliaries (lambda fitted alike) the positive control. ``raw``
    (:func:`~diffctrl.fusion.baselines.size_sweep` at ``raw_sizes``): the variant without
    standardisation, where the target lies outside the barycenter family; with it, the W1 of
    every raw barycenter ``q_(a, 1-a)`` to the target (a on a grid of 201, quadrature on
    ``grid``). ``"W"``: ``{model: (seeds, sizes) array}``; ``"lam"``: lambda_1 per seed and
    size; ``"weights_largest"``: the raw fit's lambda at its largest size, mean over seeds."""
    W = {k: np.array(std[k]) for k in ("fused", "scratch", "kde", "empirical")}
    uniform, control = np.array(std["uniform"]), np.array(std["control"])
    R = {k: np.array(raw[k]) for k in ("fused", "scratch", "kde")}
    lam_grid = np.linspace(0, 1, 201)
    w1_bary = [
        w1_barycenter_to_mixture_1d(grid.barycenter([a, 1 - a]), target)
        for a in lam_grid
    ]
    best = int(np.argmin(w1_bary))
    values = {
        "w1_best_barycenter": float(w1_bary[best]),
        "lam_best_w1": float(lam_grid[best]),
        "w1_uniform": float(uniform[:, 0].mean()),
        "w1_control_smallest": float(control[:, 0].mean()),
    }
    for k, v in W.items():
        values[f"w1_{k}_smallest"] = float(v[:, 0].mean())
        values[f"w1_{k}_largest"] = float(v[:, -1].mean())
    for k, v in R.items():
        values[f"raw_w1_{k}_smallest"] = float(v[:, 0].mean())
    values["raw_w1_uniform"] = float(np.mean(raw["uniform"]))
    values["lam_std_largest"] = float(np.array(std["lam"])[:, -1, 0].mean())
    n = len(seeds)
    scr = W["scratch"][:, :2]
    passes = [bool(np.all(W["fused"][i, :2] < scr[i])) for i in range(n)]
    base = [bool(np.all(uniform[i, :2] < scr[i])) for i in range(n)]
    ctrl = [bool(np.all(control[i, :2] < scr[i])) for i in range(n)]
    raw_passes = [
        bool(np.all(R["fused"][i, :2] < R["scratch"][i, :2])) for i in range(n)
    ]
    values["raw_seeds_pass"] = int(sum(raw_passes))
    j = judge(passes, baseline=base, control=ctrl)
    evidence = {
        "w1_fused": W["fused"].tolist(),
        "w1_scratch": W["scratch"].tolist(),
        "w1_kde": W["kde"].tolist(),
        "w1_empirical": W["empirical"].tolist(),
        "w1_uniform": uniform.tolist(),
        "w1_control": control.tolist(),
        "sizes": list(sizes),
        "raw_w1_fused": R["fused"].tolist(),
        "raw_w1_scratch": R["scratch"].tolist(),
        "raw_sizes": list(raw_sizes),
        "raw_passes": raw_passes,
    }
    if j.why == "baseline passes":
        diagnosis = Diagnosis(
            "setting",
            "the paper's standardisation hands every fused model the target sample's mean "
            "and sd; after the map back even lambda uniform beats the model trained from "
            "scratch, so the criterion cannot credit the fitted lambda",
        )
    elif j.why == "control fails" or not all(ctrl):
        diagnosis = Diagnosis(
            "underpowered",
            "at n <= 64 every model's W1 is dominated by the target sample's own error "
            "(the sample itself, the memorising reference, tracks fused, scratch and the "
            "exact-auxiliary control seed by seed), so even the control does not beat "
            "scratch on every seed; many target draws per size with a paired test (the "
            "paper averages 10 sampling runs) would decide",
        )
    else:
        diagnosis = Diagnosis(
            "setting",
            "the exact auxiliaries fused pass, the trained ones do not: the error is our "
            "auxiliary networks' at the fitting level (small MLPs on a VP schedule of 100 "
            "levels, where the paper trains VE-SDE models with 1000 sampling steps)",
        )
    lam_m = np.array(raw["lam"])[:, -1].mean(0)
    return {
        "values": values,
        "verdict": _verdict(j, evidence, diagnosis),
        "weights_largest": (lam_m / lam_m.sum()).tolist(),
        "W": W,
        "R": R,
        "lam": np.array(std["lam"])[:, :, 0],
        "uniform": uniform,
        "control": control,
        "lam_grid": lam_grid,
        "w1_bary": w1_bary,
    }
