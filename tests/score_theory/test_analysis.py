"""The chapter's record values and verdicts from synthetic driver results: slopes of exact
power laws, the verdict ladders of C2 and C4, and the stopping rules judged against the last
iterate."""

import numpy as np
import pytest
import torch

from diffctrl.score_theory import analysis as an
from diffctrl.score_theory import ntk_rate_exponent


def test_dsm_verdict_needs_all_three_identities():
    dec = dict(
        dsm=torch.tensor([3.0, 2.0, 2.5]),
        noisy=torch.tensor([3.0, 2.0, 2.5]),
        excess=torch.tensor([1.0, 0.0, 0.5]),
        const=2.0,
        cross=torch.tensor([0.01, -0.02, 0.0]),
        cross_se=torch.tensor([0.01, 0.01, 0.01]),
    )
    v = an.dsm_values(dec, 1e-12)
    assert v["dsm_cross_max_se"] == pytest.approx(2.0)
    assert v["dsm_spread"] == 1.0 and v["dsm_minus_excess_spread"] == 0.0
    assert an.dsm_verdict(v)["verdict"] == "confirmed"
    assert an.dsm_verdict(dict(v, dsm_cross_max_se=5.0))["verdict"] == "not reproduced"


def _width_sweep(exponents, widths=(64, 256, 1024, 4096), scale=0.5):
    """gap[w, s, k] = scale * (w / 64)^a_s at k > 0 (0 at k = 0): exact power laws."""
    w = torch.tensor(widths, dtype=torch.float64)
    gap = torch.zeros(len(widths), len(exponents), 3, dtype=torch.float64)
    for j, a in enumerate(exponents):
        gap[:, j, 1:] = (scale * (w / 64) ** a)[:, None]
    return dict(
        widths=torch.tensor(widths),
        steps=torch.tensor([0, 10, 100]),
        gap=gap,
        ntk_gap=0.5 * (w / 64)[:, None].repeat(1, len(exponents)) ** -0.5,
    )


def test_width_values_and_the_coupling_ladder():
    ws = _width_sweep([-0.5, -0.4])
    v = an.width_values(ws)
    assert v["gap_slope_early_min"] == pytest.approx(-0.5, abs=1e-12)
    assert v["gap_slope_late_max"] == pytest.approx(-0.4, abs=1e-12)
    assert v["ntk_gap_slope"] == pytest.approx(-0.5, abs=1e-12)
    assert (v["k_early"], v["k_late"], v["max_width"]) == (10, 100, 4096)
    assert v["gap_late_at_max_width"] == pytest.approx(0.5 * (64**-0.5 + 64**-0.4) / 2)
    c = an.ntk_coupling_verdict(ws)  # both seeds: slope <= -0.35, gap < 0.1 at 4096
    assert (c["verdict"], c["per_seed"]) == ("confirmed", [True, True])
    assert c["evidence"]["steps"] == [10, 100]
    # falls, but too slowly: with caveat; one seed's distance grows: inconclusive
    assert an.ntk_coupling_verdict(_width_sweep([-0.2, -0.1]))["verdict"] == (
        "confirmed with caveat"
    )
    assert an.ntk_coupling_verdict(_width_sweep([-0.5, 0.1]))["verdict"] == (
        "inconclusive"
    )
    assert an.ntk_coupling_verdict(_width_sweep([0.1, 0.2]))["verdict"] == (
        "not reproduced"
    )


def _run(oracle, last, val, rwy, scaled, net_last, net_val):
    ks = dict(
        err_oracle=oracle,
        err_last=last,
        err_val=val,
        err_rwy=rwy,
        err_init=1.0,
        k_oracle=100,
        k_val=90,
        k_rwy=10.0,
    )
    ns = dict(
        err_oracle=oracle,
        err_last=net_last,
        err_val=net_val,
        err_rwy=rwy,
        err_init=1.0,
        k_oracle=50,
        k_val=60,
        k_rwy=10.0,
    )
    return dict(
        ks=ks,
        ns=ns,
        kernel_at_net_last=2 * oracle,
        bayes=0.3,
        norm_lb=2.0,
        k_rwy_scaled=80.0,
        err_rwy_scaled=scaled,
        net=dict(train=torch.tensor([1.0, 0.1])),
    )


def test_stopping_verdicts_count_seeds_against_the_last_iterate():
    runs = [
        _run(0.1, 0.3, 0.11, 0.5, 0.12, 0.2, 0.11),
        _run(0.2, 0.5, 0.22, 0.9, 0.30, 0.35, 0.21),
    ]
    v = an.early_stopping_values(runs, 600)
    assert v["u_ratio_kernel_min"] == pytest.approx(2.5)
    assert v["u_ratio_net_min"] == pytest.approx(1.75)
    assert v["u_rwy_scaled_over_oracle_kernel"] == pytest.approx((1.2 + 1.5) / 2)
    assert (v["n_seeds"], v["u_max_steps"], v["u_bayes"]) == (2, 600, 0.3)
    out = an.early_stopping_verdicts(runs)
    assert out["ushape_kernel"]["verdict"] == "confirmed"
    assert out["ushape_net"]["per_seed"] == [True, True]
    assert (out["early_stop"]["verdict"], out["early_stop"]["baseline_passes"]) == (
        "confirmed",
        False,
    )
    assert out["rwy_rule"]["per_seed"] == [True, False]
    assert out["rwy_rule"]["verdict"] == "confirmed with caveat"
    # a last iterate as good as the rule: the positive verdict decides nothing
    flat = [_run(0.1, 0.11, 0.11, 0.5, 0.12, 0.11, 0.11)] * 2
    out = an.early_stopping_verdicts(flat)
    assert out["ushape_net"]["verdict"] == "not reproduced"
    assert (out["early_stop"]["verdict"], out["early_stop"]["baseline_passes"]) == (
        "inconclusive",
        True,
    )


def _sweep(exponent, ns=(100, 200, 400, 800), seeds=2):
    n = torch.tensor(ns)
    err = (2.0 * (n.double() / 100) ** exponent)[:, None].repeat(1, seeds)
    err[:, 1] *= 1.5
    k = (10 * n.double())[:, None].repeat(1, seeds)  # oracle stopping steps
    return dict(
        ns=n,
        err_oracle=err,
        err_val=1.1 * err,
        err_rwy=1.3 * err,
        delta2=err,
        k_oracle=k,
    )


def test_rate_values_and_the_rate_ladder():
    rate = {d: _sweep(-ntk_rate_exponent(d)) for d in (1, 2, 4)}
    v = an.rate_values(rate, _sweep(-0.3, ns=(100, 200)), 2)
    assert v["slope_err_oracle"] == pytest.approx(-4 / 7, abs=1e-12)
    assert v["slope_err_oracle_min"] == pytest.approx(-4 / 7, abs=1e-12)
    assert v["slope_net_val"] == pytest.approx(-0.3, abs=1e-12)
    assert v["theory_exponent_d4"] == pytest.approx(-6 / 11)
    assert v["err_oracle_largest_n"] == pytest.approx(2.0 * 8 ** (-4 / 7) * 1.25)
    assert v["rate_k_oracle_max"] == 8000.0  # 10 x the largest n, over every dimension
    r = an.rate_verdict(v, [1, 2, 4])
    assert (r["verdict"], r["per_seed"]) == ("confirmed", [True, True, True])
    slow = {d: _sweep(-0.2) for d in (1, 2, 4)}
    v = an.rate_values(slow, _sweep(-0.3, ns=(100, 200)), 2)
    assert an.rate_verdict(v, [1, 2, 4])["verdict"] == "confirmed with caveat"
    assert np.isclose(v["slope_oracle_d1"], -0.2)
