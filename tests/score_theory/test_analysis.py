"""The chapter's record values and verdicts from synthetic driver results: slopes of exact
power laws, the verdict ladders of C2 and C4 with their baselines and controls, and the
U-shape and stopping rules judged against the noise-free runs, the last iterate and kernel GD."""

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
    assert "diagnosis" not in an.dsm_verdict(v)
    bad = an.dsm_verdict(dict(v, dsm_cross_max_se=5.0))
    assert bad["verdict"] == "not reproduced" and bad["diagnosis"].cause == "setting"


def _width_sweep(
    exponents, widths=(64, 256, 1024, 4096), scale=0.5, std=0.02, ntk=-0.5
):
    """gap[w, s, k] = scale * (w / 64)^a_s at k > 0 (0 at k = 0): exact power laws; the
    standard-init baseline and the empirical NTK fall with exponents ``std`` and ``ntk``."""
    w = torch.tensor(widths, dtype=torch.float64)
    gap = torch.zeros(len(widths), len(exponents), 3, dtype=torch.float64)
    for j, a in enumerate(exponents):
        gap[:, j, 1:] = (scale * (w / 64) ** a)[:, None]
    gap_standard = torch.zeros_like(gap)
    gap_standard[:, :, 1:] = 0.8 * (w / 64)[:, None, None] ** std
    return dict(
        widths=torch.tensor(widths),
        steps=torch.tensor([0, 10, 100]),
        gap=gap,
        gap_standard=gap_standard,
        ntk_gap=0.5 * (w / 64)[:, None].repeat(1, len(exponents)) ** ntk,
    )


def test_width_values_and_the_coupling_ladder():
    ws = _width_sweep([-0.5, -0.4])
    v = an.width_values(ws)
    assert v["gap_slope_early_min"] == pytest.approx(-0.5, abs=1e-12)
    assert v["gap_slope_late_max"] == pytest.approx(-0.4, abs=1e-12)
    assert v["ntk_gap_slope"] == pytest.approx(-0.5, abs=1e-12)
    assert v["gap_standard_slope_late"] == pytest.approx(0.02, abs=1e-12)
    assert v["gap_standard_late_at_max_width"] == pytest.approx(0.8 * 64**0.02)
    assert (v["k_early"], v["k_late"], v["max_width"]) == (10, 100, 4096)
    assert v["gap_late_at_max_width"] == pytest.approx(0.5 * (64**-0.5 + 64**-0.4) / 2)
    c = an.ntk_coupling_verdict(ws)  # both seeds: slope <= -0.35, gap < 0.1 at 4096
    j = c["verdict"]
    assert (j.verdict, j.per_seed) == ("confirmed", [True, True])
    assert (j.baseline_passes, j.control_passes) == (False, True)
    assert c["evidence"]["steps"] == [10, 100] and "diagnosis" not in c

    def verdict(*args, **kw):
        return an.ntk_coupling_verdict(_width_sweep(*args, **kw))["verdict"]

    # falls, but too slowly: with caveat; one seed's distance grows: inconclusive
    assert verdict([-0.2, -0.1]).verdict == "confirmed with caveat"
    assert verdict([-0.5, 0.1]).verdict == "inconclusive"
    assert verdict([0.1, 0.2]).verdict == "not reproduced"
    # a baseline whose distance falls too: the caveat rung decides nothing
    j = verdict([-0.2, -0.1], std=-0.05)
    assert (j.verdict, j.why, j.baseline_passes) == (
        "inconclusive",
        "baseline passes",
        True,
    )
    # the control misses its known rate: a miss says nothing; a pass is an error
    j = verdict([0.1, 0.2], ntk=0.1)
    assert (j.verdict, j.why) == ("inconclusive", "control fails")
    with pytest.raises(ValueError, match="control"):
        verdict([-0.5, -0.4], ntk=0.1)


def _curve(ratio):
    """A test-error curve ending at ``ratio`` x its minimum 0.1."""
    return dict(test=torch.tensor([1.0, 0.1, 0.1 * ratio]), train=torch.ones(3))


def _run(
    oracle, last, val, rwy, scaled, net_last, net_val, clean=1.0, k_same=2.0, large=1.0
):
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
        kernel_at_net_last=k_same * oracle,
        bayes=0.3,
        norm_lb=2.0,
        k_rwy_scaled=80.0,
        err_rwy_scaled=scaled,
        net=dict(train=torch.tensor([1.0, 0.1])),
        clean_net=_curve(clean),
        clean_kernel=_curve(clean),
        kernel_val_large=large * oracle,
        net_val_large=large * oracle,
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
    assert v["u_clean_ratio_net_max"] == pytest.approx(1.0)
    assert v["u_net_below_noise"] == 2
    assert v["u_net_train_last_max"] == pytest.approx(0.1)
    out = an.early_stopping_verdicts(runs)
    assert out["ushape_kernel"]["verdict"].verdict == "confirmed"
    j = out["ushape_net"]["verdict"]
    assert (j.per_seed, j.baseline_passes, j.control_passes) == (
        [True, True],
        False,
        True,
    )
    j = out["early_stop"]["verdict"]
    assert (j.verdict, j.baseline_passes, j.control_passes) == (
        "confirmed",
        False,
        True,
    )
    assert out["rwy_rule"]["verdict"].per_seed == [True, False]
    assert out["rwy_rule"]["verdict"].verdict == "confirmed with caveat"
    # a last iterate as good as the rule: the positive verdict decides nothing
    flat = [_run(0.1, 0.11, 0.11, 0.5, 0.12, 0.11, 0.11)] * 2
    out = an.early_stopping_verdicts(flat)
    assert out["ushape_net"]["verdict"].verdict == "not reproduced"
    assert out["ushape_net"]["diagnosis"].cause == "setting"  # the kernel overfits
    j = out["early_stop"]["verdict"]
    assert (j.verdict, j.why, j.baseline_passes) == (
        "inconclusive",
        "baseline passes",
        True,
    )
    assert out["early_stop"]["diagnosis"].cause == "underpowered"
    # a budget too short for kernel GD to overfit: the network's miss says nothing
    short = [_run(0.1, 0.3, 0.11, 0.5, 0.12, 0.11, 0.11, k_same=1.2)] * 2
    j = an.early_stopping_verdicts(short)["ushape_net"]["verdict"]
    assert (j.verdict, j.why) == ("inconclusive", "control fails")
    # a control (large hold-out) that misses too: the rules' misses say nothing
    blind = [_run(0.1, 0.3, 0.2, 0.5, 0.2, 0.3, 0.2, large=2.0)] * 2
    out = an.early_stopping_verdicts(blind)
    for key in ("early_stop", "rwy_rule"):
        assert out[key]["verdict"].why == "control fails"
        assert out[key]["diagnosis"].cause == "underpowered"
    with pytest.raises(ValueError, match="control"):  # a pass with a failing control
        an.early_stopping_verdicts(
            [_run(0.1, 0.3, 0.11, 0.5, 0.12, 0.2, 0.11, large=2)]
        )
    # noise-free runs that rise too: the U-shape is not the noise's
    rising = [_run(0.1, 0.3, 0.11, 0.5, 0.12, 0.2, 0.11, clean=2.0)] * 2
    out = an.early_stopping_verdicts(rising)
    for key in ("ushape_kernel", "ushape_net"):
        assert out[key]["verdict"].why == "baseline passes"


def _sweep(exponent, ns=(100, 200, 400, 800), seeds=2, last=0.02, delta=None):
    n = torch.tensor(ns)

    def law(a):
        err = (2.0 * (n.double() / 100) ** a)[:, None].repeat(1, seeds)
        err[:, 1] *= 1.5
        return err

    err = law(exponent)
    k = (10 * n.double())[:, None].repeat(1, seeds)  # oracle stopping steps
    return dict(
        ns=n,
        err_oracle=err,
        err_val=1.1 * err,
        err_rwy=1.3 * err,
        err_last=law(last),
        delta2=err if delta is None else law(delta),
        k_oracle=k,
    )


def test_rate_values_and_the_rate_ladder():
    rate = {d: _sweep(-ntk_rate_exponent(d)) for d in (1, 2, 4)}
    v = an.rate_values(rate, _sweep(-0.3, ns=(100, 200)), 2)
    assert v["slope_err_oracle"] == pytest.approx(-4 / 7, abs=1e-12)
    assert v["slope_err_oracle_min"] == pytest.approx(-4 / 7, abs=1e-12)
    assert v["slope_net_val"] == pytest.approx(-0.3, abs=1e-12)
    assert v["theory_exponent_d4"] == pytest.approx(-6 / 11)
    assert v["slope_last_d2"] == pytest.approx(0.02, abs=1e-12)
    assert v["err_oracle_largest_n"] == pytest.approx(2.0 * 8 ** (-4 / 7) * 1.25)
    assert v["rate_k_oracle_max"] == 8000.0  # 10 x the largest n, over every dimension
    j = an.rate_verdict(v, [1, 2, 4])["verdict"]
    assert (j.verdict, j.per_seed) == ("confirmed", [True, True, True])
    assert (j.baseline_passes, j.control_passes) == (False, True)
    slow = {d: _sweep(-0.2) for d in (1, 2, 4)}
    v = an.rate_values(slow, _sweep(-0.3, ns=(100, 200)), 2)
    r = an.rate_verdict(v, [1, 2, 4])
    assert r["verdict"].verdict == "confirmed with caveat"
    assert r["diagnosis"].cause == "setting"
    assert np.isclose(v["slope_oracle_d1"], -0.2)
    # the unstopped last iterate's error falls too: the caveat rung decides nothing
    both = {d: _sweep(-0.2, last=-0.1) for d in (1, 2, 4)}
    v = an.rate_values(both, _sweep(-0.3, ns=(100, 200)), 2)
    assert an.rate_verdict(v, [1, 2, 4])["verdict"].why == "baseline passes"
