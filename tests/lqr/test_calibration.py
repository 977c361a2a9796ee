"""Calibration of the scale of C and of the step, on calibration models: the chosen values
meet their rule, the ones before them do not, and the gaps are checked independently."""

import numpy as np
import pytest
import torch

from diffctrl.lqr import cost, k_lin, random_system, sphere_points
from diffctrl.lqr.calibration import (
    calibrate_c_norm,
    calibrate_step,
    calibration_values,
)
from diffctrl.lqr.landscape import reference_optima


def test_calibrate_c_norm_picks_the_smallest_scale_that_decides():
    x0 = sphere_points(3, 24)
    cal = calibrate_c_norm(
        [0.8, 0.1, 0.4],
        [100, 101],
        x0,
        6,
        spectral_radius=0.5,
        b_norm=1.0,
        newton_iter=10,
    )
    table = cal["table"]
    assert [r["c_norm"] for r in table] == [0.1, 0.4, 0.8][
        : len(table)
    ]  # sorted, stops
    assert cal["reached"] and cal["chosen"] == table[-1]["c_norm"]
    assert table[-1]["median_gap"] >= 0.1 > max(r["median_gap"] for r in table[:-1])
    # the chosen scale's median gap, recomputed independently
    gaps = []
    for s in (100, 101):
        sys_ = random_system(
            3,
            3,
            scale=3.0,
            seed=s,
            spectral_radius=0.5,
            b_norm=1.0,
            c_norm=cal["chosen"],
        )
        c_star = reference_optima([sys_], x0, 6, max_iter=10)["cost"][0]
        c_lin = float(cost(sys_, k_lin(sys_), x0, 6).detach())
        c_star = min(c_star, c_lin)
        gaps.append((c_lin - c_star) / c_star)
    assert table[-1]["median_gap"] == pytest.approx(np.median(gaps), rel=1e-6)
    with pytest.raises(ValueError, match="grid"):
        calibrate_c_norm([], [100], x0, 6, spectral_radius=0.5, b_norm=1.0)


def test_calibrate_step_takes_the_largest_fraction_without_divergence():
    torch.manual_seed(0)
    cal = calibrate_step(
        [1 / 16, 4.0],
        [100],
        spectral_radius=0.5,
        b_norm=1.0,
        c_norm=0.4,
        n_iter=10,
        n_perturb=20,
        radius=0.6,
        horizon=6,
        n_eval=24,
        eval_every=5,
        newton_iter=5,
    )
    table = cal["table"]
    assert table[0]["fraction"] == 4.0  # the largest first
    assert cal["chosen"] == table[-1]["fraction"] and cal["reached"]
    assert table[-1]["n_diverged"] == 0
    assert all(r["n_diverged"] > 0 for r in table[:-1])
    v = calibration_values(
        dict(chosen=0.4, reached=True, table=[dict(median_gap=0.12)]), cal
    )
    assert v["cal_c_norm"] == 0.4 and v["cal_klin_gap_l3"] == 0.12
