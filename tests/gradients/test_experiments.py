"""The chapter's experiment helpers on tiny problems: structure and the exact identities."""

import dataclasses
import math

import pytest
import torch

from diffctrl.gradients import experiments as ex
from diffctrl.gradients.problems import cir, point_mass_lq, volatility_net
from diffctrl.gradients.references import lq_exact_gradient

F64 = torch.float64


def test_coordinates_and_refusals():
    vol, vol_theta = volatility_net(dtype=F64)
    assert ex.drift_coords(vol) == [0, 1, 2, 3]
    assert ex.applicable_methods(vol) == ["gg", "pathwise_forward", "pathwise_reverse"]
    assert "sigma depends on theta" in ex.lr_refusal(vol, vol_theta)
    lq, lq_theta = point_mass_lq(hidden=(), dtype=F64)
    assert ex.lr_refusal(lq, lq_theta) is None
    assert ex.drift_coords(lq) == list(range(12))


def test_side_by_side_and_unbiasedness_rows():
    problem, theta = point_mass_lq(
        hidden=(), generator=torch.Generator().manual_seed(0), dtype=F64
    )
    side = ex.side_by_side(problem, theta, n_paths=16, n_steps=4, seed=0, rb_paths=3)
    assert set(side["estimates"]) == {
        "gg",
        "pathwise_forward",
        "pathwise_reverse",
        "lr",
    }
    assert side["fwd_rev_max_diff"] < 1e-12 and side["rb_rel_gap"] < 1e-12
    assert side["lr_error"] is None
    exact = lq_exact_gradient(problem, theta, n_steps=4)
    rows = ex.unbiasedness(
        problem, theta, ["gg", "lr"], n_paths=200, n_steps=4, seeds=[0, 1], exact=exact
    )
    assert [(r["method"], r["seed"]) for r in rows] == [
        ("gg", 0),
        ("lr", 0),
        ("gg", 1),
        ("lr", 1),
    ]
    assert all(0 <= r["p"] <= 1 and r["z"].shape == (12,) for r in rows)


def test_stderr_ratios_split_by_coordinate_kind():
    problem, theta = cir(dtype=F64)
    rows = ex.stderr_ratios(problem, theta, n_paths=400, n_steps=5, seeds=[0])
    r = dict(zip(rows[0]["coords"].tolist(), rows[0]["ratios"].tolist()))
    assert set(r) == {0, 1, 2}
    assert r[2] < 0.6 < 0.9 < min(r[0], r[1])  # vol coordinate: GG's Hessian term wins
    assert math.isclose(rows[0]["median"], sorted(r.values())[1])
    with pytest.raises(ValueError, match="sigma_coords"):
        ex.drift_coords(dataclasses.replace(problem, info={}))


def test_fd_unbiasedness_runs_the_applicable_methods_per_problem():
    cases = {"cir": cir(dtype=F64), "vol": volatility_net(dtype=F64)}
    out = ex.fd_unbiasedness(cases, n_paths=200, n_steps=4, seeds=[3])
    assert [r["method"] for r in out["cir"]] == ["gg", "pathwise_reverse"]
    assert [r["method"] for r in out["vol"]] == ["gg", "pathwise_reverse"]
    # the same rows as a direct call
    direct = ex.unbiasedness(
        *cases["cir"], ["gg", "pathwise_reverse"], n_paths=200, n_steps=4, seeds=[3]
    )
    assert [r["p"] for r in direct] == [r["p"] for r in out["cir"]]


def test_stderr_ratio_study_groups_and_baseline():
    study = ex.stderr_ratio_study(
        [2],
        {"CIR": cir(dtype=F64)},
        n_paths=200,
        n_steps=4,
        seeds=[0, 1],
        seed=0,
        device="cpu",
    )
    groups = list(study["ratio_rows"])
    assert groups[1:] == ["CIR drift", "CIR sigma"] and groups[0].startswith("LQ n=")
    assert len(study["lq_medians"]) == len(study["pd_medians"]) == 2
    # CIR: kappa and m enter the drift only, s the diffusion
    assert [len(r) for r in study["ratio_rows"]["CIR drift"]] == [2, 2]
    assert [len(r) for r in study["ratio_rows"]["CIR sigma"]] == [1, 1]
    # the baseline compares pathwise with an independent run of itself: ratios near 1
    assert all(0.7 < m < 1.4 for m in study["pd_medians"])


def test_stderr_ratio_study_times_the_methods_for_the_equal_time_comparison():
    with pytest.raises(ValueError, match="time_paths"):
        ex.stderr_ratio_study(
            [2],
            {},
            n_paths=8,
            n_steps=2,
            seeds=[0],
            seed=0,
            device="cpu",
            time_paths=-1,
        )
    study = ex.stderr_ratio_study(
        [2, 3],
        {},
        n_paths=200,
        n_steps=4,
        seeds=[0],
        seed=0,
        device="cpu",
        time_paths=4,
        time_repeats=1,
    )
    ns = study["lq_n"]
    assert len(ns) == 2 and ns[0] < ns[1]
    assert list(study["seconds"]) == [f"LQ n={n}" for n in ns]
    for sec in study["seconds"].values():
        assert set(sec) == {
            "gg",
            "pathwise_forward",
            "pathwise_reverse",
            "pathwise_reverse_2",
            "lr",
        }
    # the control: the likelihood ratio's s.e. is several times pathwise's
    assert all(m < 0.6 for m in study["lr_medians"])
    # without time_paths nothing is timed
    plain = ex.stderr_ratio_study(
        [2], {}, n_paths=50, n_steps=2, seeds=[0], seed=0, device="cpu"
    )
    assert plain["seconds"] == {} and plain["lr_medians"] == []
