"""The experiments of the ScoreFusion chapter, with their criteria and verdicts.

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
from torch import nn

from ..diffusion.exact import GaussianMixture, exact_score_fn
from ..diffusion.samplers import sample
from ..diffusion.schedules import Schedule
from ..repro import judge
from .barycenter import (
    Barycenter,
    QuadratureGrid,
    kl_optimal_weights,
    score_matching_weights,
    w1_barycenter_to_mixture_1d,
)
from .baselines import class_shares, network_score, train_score_mlp
from .merging import merge_checkpoints
from .noised import (
    barycenter_gap,
    law_distance,
    noised_barycenter_score,
    relative_score_gap,
    sample_from_level,
)
from .scores import FusedScore, fit_weights
from .settings import digit_mixture_sampler, geometric_class_share, linear_mixture

__all__ = [
    "digit_shares_study",
    "fused_sampler_law",
    "merging_study",
    "small_sample_gain",
    "weights_study",
]

F64 = torch.float64


def _verdict(verdict: str, evidence: dict, passes: list, base) -> dict:
    """The keyword arguments of ``diffctrl.repro.Record.verdict``."""
    return dict(
        verdict=verdict, per_seed=passes, baseline_passes=base, evidence=evidence
    )


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
    base = all(
        b1 <= 2 * floor1 and b2 <= 2 * floor2
        for b1, b2 in zip(res1["baseline"], res2["baseline"])
    )
    verdict, base = judge(passes, base)
    evidence = {
        "w1_1d": d1[-1].tolist(),
        "floor_1d": res1["floor"],
        "w2_2d": d2[-1].tolist(),
        "floor_2d": res2["floor"],
    }
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
        },
        "curves": {
            "k_cs": [float(a) for a in k_cs],
            "w1_vs_kc_1d": [float(a) for a in d1.mean(1)],
            "w2_vs_kc_2d": [float(a) for a in d2.mean(1)],
        },
        "verdict": _verdict(verdict, evidence, passes, base),
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
    sweep: dict,
    grid: QuadratureGrid,
    target: GaussianMixture,
    seeds: Sequence[int],
    sizes: Sequence[int],
) -> dict:
    """Claim ``small_sample_gain`` from :func:`~diffctrl.fusion.baselines.size_sweep`: passes
    per seed when W1(fused) < W1(from scratch) at the two smallest target sizes; the
    untrained fusion (lambda uniform) is the baseline. Also the W1 of every barycenter
    ``q_(a, 1-a)`` to the target (a on a grid of 201, quadrature on ``grid``) and the best.
    ``"W"``: ``{model: (seeds, sizes) array}``; ``"lam"``: lambda_1 per seed and size;
    ``"weights_largest"``: the fitted lambda at the largest size, mean over seeds."""
    W = {k: np.array(sweep[k]) for k in ("fused", "scratch", "kde")}
    lam_nets = np.array(sweep["lam"])[:, :, 0]  # lambda_1 per seed and size
    uniform = np.array(sweep["uniform"])
    lam_grid = np.linspace(0, 1, 201)
    w1_bary = [
        w1_barycenter_to_mixture_1d(grid.barycenter([a, 1 - a]), target)
        for a in lam_grid
    ]
    best = int(np.argmin(w1_bary))
    values = {
        "w1_best_barycenter": float(w1_bary[best]),
        "lam_best_w1": float(lam_grid[best]),
    }
    for k, v in W.items():
        values[f"w1_{k}_smallest"] = float(v[:, 0].mean())
        values[f"w1_{k}_largest"] = float(v[:, -1].mean())
    values["w1_uniform"] = float(uniform.mean())
    values["lam_nets_largest"] = float(lam_nets[:, -1].mean())
    n = len(seeds)
    passes = [bool(np.all(W["fused"][i, :2] < W["scratch"][i, :2])) for i in range(n)]
    base = all(uniform[i] < W["scratch"][i, :2].min() for i in range(n))
    verdict, base = judge(passes, base)
    evidence = {
        "w1_fused": W["fused"].tolist(),
        "w1_scratch": W["scratch"].tolist(),
        "w1_kde": W["kde"].tolist(),
        "w1_uniform": uniform.tolist(),
        "sizes": list(sizes),
    }
    lam_m = np.array(sweep["lam"])[:, -1].mean(0)
    return {
        "values": values,
        "verdict": _verdict(verdict, evidence, passes, base),
        "weights_largest": (lam_m / lam_m.sum()).tolist(),
        "W": W,
        "lam": lam_nets,
        "uniform": uniform,
        "lam_grid": lam_grid,
        "w1_bary": w1_bary,
    }


def weights_study(
    target: GaussianMixture,
    aux: Sequence[GaussianMixture],
    grid: QuadratureGrid,
    target_law: Barycenter,
    sched: Schedule,
    seeds: Sequence[int],
    *,
    fit_sizes: Sequence[int],
    cutoffs: Sequence[int],
    cutoff: int,
    fit_steps: int,
    n_gap: int,
    seed: int,
) -> dict:
    """Claims ``lambda_dsm_consistent`` and ``lambda_kl_optimal``: lambda fitted
    (:func:`~diffctrl.fusion.scores.fit_weights`, exact auxiliaries) on growing target
    samples and with growing cut-offs, beside the KL-, Fisher- and DSM-optimal weights
    (quadrature on ``grid``). Each passes per seed when max_i |lambda_fit - lambda_opt| <=
    0.03 at the largest size; lambda uniform is the baseline. Also where the mode weights
    come from: the mass left of 0 under q_lambda and under the fused sampler at the DSM
    optimum, and that sampler's W1 to the target (``target_law``). ``"verdicts"``: per
    claim."""
    lam_kl, kl_min = kl_optimal_weights(target, grid)
    lam_fi, _ = score_matching_weights(target, grid, [1.0])

    def dsm_opt(c):
        ab = sched.alpha_bar[1 : c + 1]
        return score_matching_weights(target, grid, ab, 1 - ab)[0]

    def fit_exact(n, c, s):
        data = target.sample(n, torch.Generator().manual_seed(10_000 + s)).float()
        fz = FusedScore(aux, sched)
        fit_weights(fz, data, c, fit_steps, batch_size=1024, seed=s)
        return float(fz.weights.detach()[0])

    lam_dsm = float(dsm_opt(cutoff)[0])
    fit_n = np.array([[fit_exact(n, cutoff, s) for n in fit_sizes] for s in seeds])
    fit_c = np.array([[fit_exact(fit_sizes[-1], c, s) for c in cutoffs] for s in seeds])
    dsm_c = [float(dsm_opt(c)[0]) for c in cutoffs]
    err_dsm = np.abs(fit_n[:, -1] - lam_dsm)
    err_kl = np.abs(fit_n[:, -1] - float(lam_kl[0]))
    values = {
        "lam_kl": float(lam_kl[0]),
        "kl_min": kl_min,
        "lam_fisher": float(lam_fi[0]),
        "lam_dsm": lam_dsm,
        "lam_fit_largest": float(fit_n[:, -1].mean()),
        "lam_fit_smallest_sd": float(fit_n[:, 0].std()),
        "err_dsm_max": float(err_dsm.max()),
        "err_kl_min": float(err_kl.min()),
        "w1_bary_at_kl": w1_barycenter_to_mixture_1d(grid.barycenter(lam_kl), target),
        "w1_bary_at_fit": w1_barycenter_to_mixture_1d(
            grid.barycenter([lam_dsm, 1 - lam_dsm]), target
        ),
    }
    verdicts = {}
    for key, opt, evidence in (
        ("lambda_dsm_consistent", lam_dsm, {"lam_dsm": lam_dsm}),
        (
            "lambda_kl_optimal",
            float(lam_kl[0]),
            {"lam_kl": float(lam_kl[0]), "lam_fisher": float(lam_fi[0])},
        ),
    ):
        passes = list(np.abs(fit_n[:, -1] - opt) <= 0.03)
        verdict, base = judge(passes, abs(0.5 - opt) <= 0.03)
        evidence = {"lam_fit": fit_n.tolist()} | evidence
        verdicts[key] = _verdict(verdict, evidence, passes, base)
    # where the mode weights come from: mass left of 0 under q_lambda at the fitted lambda,
    # under the fused sampler (exact scores, fitted lambda), and the target's 0.6
    fz = FusedScore(aux, sched, weights=[lam_dsm, 1 - lam_dsm])
    x_fit = sample(fz, sched, n_gap, 1, generator=torch.Generator().manual_seed(seed))
    bary_fit = grid.barycenter([lam_dsm, 1 - lam_dsm])
    values["mass_left_bary_fit"] = float(bary_fit.mass[grid.points[:, 0] < 0].sum())
    values["mass_left_fused_fit"] = float((x_fit < 0).double().mean())
    values["w1_fused_exact_fit"] = law_distance(x_fit.double(), target_law)
    return {
        "values": values,
        "verdicts": verdicts,
        "fit_n": fit_n,
        "fit_c": fit_c,
        "dsm_c": dsm_c,
        "lam_kl": float(lam_kl[0]),
        "lam_fisher": float(lam_fi[0]),
    }


def digit_shares_study(
    nets: Sequence[nn.Module],
    proportions: torch.Tensor,
    classifier: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[int],
    sched: Schedule,
    seeds: Sequence[int],
    *,
    share: float,
    n: int,
    cutoff: int,
    fit_steps: int,
    scratch_steps: int,
    hidden: int,
    n_gen: int,
) -> dict:
    """Claim ``digits_shares``: auxiliaries ``nets`` trained on digit mixtures of ``classes``
    with class ``proportions`` (K, 2); per seed a target sample of ``n`` digits with the share
    ``share`` of ``classes[0]`` (from ``images``, ``labels``), lambda fitted on it and a
    ScoreMLP trained from scratch on it; passes when the fused model's share under
    ``classifier`` is closer to the target's than the scratch model's; the untrained fusion
    (lambda uniform) is the baseline. Also the share the geometric mixture predicts
    (:func:`~diffctrl.fusion.settings.geometric_class_share`). ``"shares"``: per seed;
    ``"samples"``: the last seed's fused and scratch samples."""
    dig = {k: [] for k in ("fused", "scratch", "uniform", "lam", "predicted", "other")}
    kw = dict(n=n_gen, dim=64, classes=classes)
    for s in seeds:
        tgt_data = digit_mixture_sampler(images, labels, classes, [share, 1 - share])
        small = tgt_data(n, torch.Generator().manual_seed(20_000 + s))
        fz = FusedScore(nets, sched)
        fit_weights(fz, small, cutoff, fit_steps, batch_size=256, seed=s)
        sh, other, x_dig = class_shares(fz, sched, classifier, seed=s, **kw)
        dig["fused"].append(sh)
        dig["other"].append(other)
        dig["lam"].append(float(fz.weights.detach()[0]))
        pred = geometric_class_share(proportions, fz.weights.detach())
        dig["predicted"].append(float(pred[0]))
        uniform = FusedScore(nets, sched)
        dig["uniform"].append(class_shares(uniform, sched, classifier, seed=s, **kw)[0])
        scratch = train_score_mlp(
            small, sched, 64, scratch_steps, hidden=hidden, init_seed=s, seed=s
        )
        sh_s, _, x_scr = class_shares(
            network_score(scratch, sched), sched, classifier, seed=s, **kw
        )
        dig["scratch"].append(sh_s)
    D = {k: np.array(v) for k, v in dig.items()}
    passes = list(np.abs(D["fused"] - share) < np.abs(D["scratch"] - share))
    base = bool(np.all(np.abs(D["uniform"] - share) < np.abs(D["scratch"] - share)))
    verdict, base = judge(passes, base)
    evidence = {k: v.tolist() for k, v in D.items()}
    return {
        "values": {f"dig_{k}": float(v.mean()) for k, v in D.items()},
        "verdict": _verdict(verdict, evidence, passes, base),
        "shares": D,
        "samples": {"fused": x_dig, "scratch": x_scr},
    }


def merging_study(
    pairs: dict[str, Sequence[nn.Module]],
    weights: Sequence[float],
    target: GaussianMixture,
    target_law: Barycenter,
    sched: Schedule,
    *,
    levels: Sequence[int],
    n_test: int,
    generator: torch.Generator,
    seed: int,
) -> dict:
    """Claim ``merging_approximates``: for each pair of networks (``"common"``: trained from
    one initialisation; ``"independent"``: from different ones, the baseline), the merged
    network (:func:`~diffctrl.fusion.merging.merge_checkpoints`, weights ``weights``) against
    the fused score: the relative score gap at ``levels`` over noised target points (2,000
    drawn from ``generator``) and the W1 to the target of what both sample. Passes when the
    gap is <= 0.1 at every level. ``"gaps"``: per pair and level; ``"samples"``: the common
    pair's fused and merged samples."""
    x0 = target.sample(2000, generator).float()
    gaps, values, samples = {}, {}, {}
    for name, pair in pairs.items():
        fz = FusedScore(pair, sched, weights=weights)
        mg = merge_checkpoints(pair, weights)
        gaps[name] = relative_score_gap(
            network_score(mg, sched), fz, x0, sched, levels, generator
        )
        g = torch.Generator().manual_seed(seed)
        xf = sample(fz, sched, n_test, 1, generator=g)
        g = torch.Generator().manual_seed(seed)
        xm = sample(network_score(mg, sched), sched, n_test, 1, generator=g)
        values[f"merge_w1_{name}"] = float(law_distance(xm.double(), target_law))
        values[f"fused_w1_{name}"] = float(law_distance(xf.double(), target_law))
        values[f"merge_gap_max_{name}"] = max(gaps[name])
        values[f"merge_gap_min_{name}"] = min(gaps[name])
        samples[name] = {"fused": xf, "merged": xm}
    ok_common = max(gaps["common"]) <= 0.1
    verdict, base = judge([ok_common], max(gaps["independent"]) <= 0.1)
    evidence = {k: v for k, v in gaps.items()}
    return {
        "values": values,
        "verdict": _verdict(verdict, evidence, [ok_common], base),
        "gaps": gaps,
        "samples": samples["common"],
    }
