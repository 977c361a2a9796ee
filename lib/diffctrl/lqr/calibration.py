"""Calibration of what the paper leaves open: the scale of ``C`` and the step, on model seeds
the verdicts do not use (chapter ``book/nearly_lq.md``; Han, Razaviyayn, Xu, arXiv
2303.08431, Sec. 5).

The paper draws ``A, B, C`` with Gaussian entries "scaled to spectral radius < 1" and steps with
``eta = 1e-4``. Two numbers decide whether its figures can show anything at all:

- the scale ``||C||_2`` of the nonlinearity: ``K^lin`` is the optimum of the linearised problem,
  so its relative gap ``(C(K^lin) - C*) / C*`` grows with ``l ||C||_2`` and stays below the
  chapter's 5% rule wherever ``K^lin`` is comfortably stable; a run from a start already within
  5% decides nothing. :func:`calibrate_c_norm` picks, from a grid, the smallest ``||C||_2`` at
  which the median gap of ``K^lin`` at ``l = 3`` (the paper's Fig. 2) is at least ``factor``
  times the rule: chosen for decidability, never towards the paper's threshold in ``l``;
- the step: ``eta = 1e-4`` moves a policy by a few per cent of its distance to ``K*`` in 200
  iterations (the Hessian's ``L`` is 5-400 here); the theorem's step is ``1/L``.
  :func:`calibrate_step` picks the largest ``eta = f / L_hat`` (``f`` from a grid) at which no
  calibration run of the paper's zeroth-order estimator diverges: with its noise, ``f = 1``
  blows up.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .landscape import reference_optima
from .pg_batch import RunSpec, run_pg_batch
from .riccati import k_lin
from .rollout import closed_loop_radius, cost
from .system import random_system, stack_systems

__all__ = ["calibrate_c_norm", "calibrate_step", "calibration_values"]


def _check_grid(grid, name: str) -> list[float]:
    values = [float(g) for g in grid]
    if not values or any(not (np.isfinite(g) and g > 0) for g in values):
        raise ValueError(
            f"{name} must be a non-empty list of positive numbers, got {grid!r}"
        )
    return sorted(values)


def calibrate_c_norm(
    grid: Sequence[float],
    seeds: Sequence[int],
    x0: torch.Tensor,
    horizon: int,
    *,
    spectral_radius: float,
    b_norm: float,
    tol: float = 0.05,
    factor: float = 2.0,
    scale: float = 3.0,
    newton_iter: int = 30,
    n: int = 3,
    p: int = 3,
) -> dict:
    """The smallest ``||C||_2`` of ``grid`` at which the median relative gap of ``K^lin``
    at kernel scale ``scale`` over the calibration models ``seeds`` is ``>= factor * tol``.

    ``gap = (C(K^lin) - C*) / C*``, ``C*`` the multi-start Newton optimum
    (:func:`~diffctrl.lqr.landscape.reference_optima`) of the ``horizon``-step cost over the
    states ``x0``. Returns ``chosen`` (the largest grid value when none qualifies, with
    ``reached`` False), and per grid value the median and smallest gap and the share of models
    whose ``K^lin`` stabilises the linearised closed loop (``table``).
    """
    values = _check_grid(grid, "grid")
    if not seeds:
        raise ValueError("seeds must name at least one calibration model")
    table, chosen = [], None
    for c in values:
        systems = [
            random_system(
                n,
                p,
                scale=scale,
                seed=int(s),
                spectral_radius=spectral_radius,
                b_norm=b_norm,
                c_norm=c,
            )
            for s in seeds
        ]
        ref = reference_optima(systems, x0, horizon, max_iter=newton_iter)
        S = stack_systems(systems)
        K = torch.stack([k_lin(s) for s in systems])
        c_klin = cost(S, K, x0.expand(len(systems), *x0.shape), horizon).detach()
        c_star = np.minimum(ref["cost"], c_klin.cpu().numpy())
        gap = (c_klin.cpu().numpy() - c_star) / c_star
        table.append(
            dict(
                c_norm=c,
                median_gap=float(np.median(gap)),
                min_gap=float(gap.min()),
                stable_frac=float(np.mean(closed_loop_radius(S, K).cpu().numpy() < 1)),
            )
        )
        if np.median(gap) >= factor * tol:
            chosen = c
            break
    return dict(
        chosen=chosen if chosen is not None else values[-1],
        reached=chosen is not None,
        table=table,
        target=factor * tol,
        scale=scale,
    )


def calibrate_step(
    fractions: Sequence[float],
    seeds: Sequence[int],
    *,
    spectral_radius: float,
    b_norm: float,
    c_norm: float,
    scales: Sequence[float] = (1.0, 3.0),
    **pg_kw,
) -> dict:
    """The largest ``f`` of ``fractions`` for which no run of the paper's estimator with
    ``eta = f / L_hat`` diverges, on the calibration models ``seeds`` (``K^lin`` at every
    ``l`` of ``scales`` and one random start at ``l = 1``, every estimator seed).

    ``pg_kw`` go to :func:`~diffctrl.lqr.pg_batch.run_pg_batch` (``n_iter``, ``n_perturb``,
    ``radius``, ``horizon``, ...; ``control`` is off). Returns ``chosen`` (the smallest
    fraction when every one diverges somewhere, with ``reached`` False) and per fraction the
    number of diverged estimator runs and the median final gap (``table``).
    """
    values = sorted(_check_grid(fractions, "fractions"), reverse=True)
    kw = dict(b_norm=b_norm, c_norm=c_norm)
    rho = float(spectral_radius)
    specs = [RunSpec(int(s), float(l), rho, **kw) for s in seeds for l in scales]
    specs += [RunSpec(int(s), 1.0, rho, "random", 0, **kw) for s in seeds]
    table, chosen = [], None
    for f in values:
        out = run_pg_batch(specs, step_over_L=f, control=False, **pg_kw)
        n_div = int((out["outcome_seeds"] == "diverged").sum())
        final = out["rel_gap_seeds"][:, -1, :]
        finite = final[np.isfinite(final)]
        table.append(
            dict(
                fraction=f,
                n_diverged=n_div,
                n_runs=int(final.size),
                median_final_gap=float(np.median(finite)) if finite.size else np.nan,
            )
        )
        if n_div == 0:
            chosen = f
            break
    return dict(
        chosen=chosen if chosen is not None else values[-1],
        reached=chosen is not None,
        table=table,
    )


def calibration_values(cal_c: dict, cal_step: dict) -> dict:
    """The record's values of the two calibrations: the chosen ``||C||_2`` and step
    fraction, whether each reached its target, and ``K^lin``'s median gap at the chosen
    ``||C||_2``."""
    return {
        "cal_c_norm": float(cal_c["chosen"]),
        "cal_c_reached": bool(cal_c["reached"]),
        "cal_klin_gap_l3": float(cal_c["table"][-1]["median_gap"]),
        "cal_step_fraction": float(cal_step["chosen"]),
        "cal_step_reached": bool(cal_step["reached"]),
    }
