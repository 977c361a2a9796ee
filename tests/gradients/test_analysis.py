"""The chapter's record values and verdicts from synthetic driver results: slopes of exact power
laws, ratios read at the right sizes, counts of passes, and each claim's rule and baseline."""

import math

import pytest
import torch

from diffctrl.gradients import analysis as an

METHODS = ("gg", "pathwise_forward", "pathwise_reverse", "lr")


def _bench(exponents, ns=(1e2, 1e3, 1e4, 1e5, 1e6), fwd_max=1e5):
    """Benchmark rows whose seconds are exact power laws ``1e-3 (n / 100)^a`` per method."""
    rows = []
    for n in ns:
        for m in METHODS:
            ok = not (m == "pathwise_forward" and n > fwd_max)
            rows.append(
                dict(
                    n=int(n),
                    method=m,
                    seconds=1e-3 * (n / 100) ** exponents[m],
                    peak_MB=1.0 + (n / 1e4 if m == "pathwise_forward" else 0.0),
                    status="ok" if ok else "skipped",
                )
            )
    return rows


def test_benchmark_values_read_slopes_and_ratios():
    exps = dict(gg=0.1, pathwise_forward=1.0, pathwise_reverse=0.5, lr=0.5)
    v = an.benchmark_values(_bench(exps))
    assert v["gg_time_slope"] == pytest.approx(0.1, abs=1e-12)
    assert v["gg_time_slope_small"] == pytest.approx(0.1, abs=1e-12)
    assert v["fwd_time_slope"] == pytest.approx(1.0, abs=1e-12)
    assert v["largest_n_pathwise_forward"] == 100_000 and v["largest_n_gg"] == 10**6
    assert v["n_fwd_vs_gg"] == 100_000 and v["n_rev_vs_gg"] == 10**6
    assert v["fwd_over_gg_time"] == pytest.approx(1000**0.9)
    assert v["gg_over_rev_time"] * v["rev_over_gg_time"] == pytest.approx(1.0)
    assert v["rev_over_gg_time"] == pytest.approx(10_000**0.4)
    assert v["fwd_over_gg_memory"] == pytest.approx(11.0)
    assert v["gg_n_growth"] == 10_000 and v["gg_flat_n_growth"] == 1000
    r = an.runtime_flat_verdict(v)
    assert (r["verdict"], r["baseline_passes"]) == ("confirmed", False)
    b = an.beats_pathwise_verdict(v)
    assert (b["verdict"], b["per_seed"]) == ("confirmed", [True, True])
    # a flat forward method is the baseline passing: a positive verdict decides nothing
    flat = an.benchmark_values(_bench(dict(exps, pathwise_forward=0.2)))
    assert an.runtime_flat_verdict(flat)["verdict"] == "inconclusive"
    # forward only 1000^0.1 times slower at n = 1e5: not beaten by 10x
    assert an.beats_pathwise_verdict(flat)["verdict"] == "not reproduced"
    steep = an.benchmark_values(_bench(dict(exps, gg=0.5)))
    assert an.runtime_flat_verdict(steep)["verdict"] == "not reproduced"


def test_count_values_take_the_largest_n_and_the_leading_terms():
    rows = [
        dict(n=n, method=m, calls=c, flops_per_eval=f)
        for n, (gg, fwd, rev) in ((100, (2.0, 30.0, 3.0)), (1000, (2.1, 300.0, 3.1)))
        for m, c, f in (
            ("gg", 12, gg),
            ("pathwise_forward", 20, fwd),
            ("pathwise_reverse", 10, rev),
        )
    ]
    v = an.count_values(rows, d_state=4, n_steps=5)
    assert (v["gg_calls"], v["fwd_calls"]) == (12, 20)
    assert v["gg_flops_per_eval_first"] == 2.0 and v["gg_flops_per_eval_last"] == 2.1
    assert v["fwd_flops_per_eval_last"] == 300.0 and v["rev_flops_per_eval_last"] == 3.1
    assert v["gg_evals_theory"] == 5 + 4 * 4 / 2 and v["rev_evals_theory"] == 15


def _row(method, seed, p, z=1.0):
    return dict(method=method, seed=seed, p=p, max_abs_z=z)


def test_unbiased_verdict_counts_gg_tests_and_needs_the_wrong_reference_rejected():
    lq = [_row("gg", 0, 0.3), _row("lr", 0, 1e-6), _row("gg", 1, 0.5)]
    fd = {"cir": [_row("gg", 0, 0.2, 2.5), _row("pathwise_reverse", 0, 0.9)]}
    v = an.unbiased_verdict(lq, fd, [_row("gg", 0, 1e-9), _row("gg", 1, 1e-7)])
    assert (v["verdict"], v["baseline_passes"]) == ("confirmed", False)
    assert v["evidence"]["cases"] == ["lq", "lq", "cir"]
    assert v["evidence"]["max_abs_z"] == [1.0, 1.0, 2.5]
    fails = an.unbiased_verdict(
        lq, {"cir": [_row("gg", 0, 1e-4)]}, [_row("gg", 0, 0.5)]
    )
    assert (fails["verdict"], fails["baseline_passes"]) == (
        "confirmed with caveat",
        True,
    )
    vals = an.fd_unbiasedness_values(fd)
    assert vals["fd_worst_abs_z_gg"] == 2.5 and vals["fd_min_p"] == 0.2
    assert vals["fd_min_p_cir_pathwise_reverse"] == 0.9


def test_se_ratio_values_split_groups_and_the_verdict_uses_seed_medians():
    t = torch.tensor
    ratio_rows = {
        "LQ n=10": [t([0.5, 0.9, 1.2]), t([0.8, 0.7, 0.6])],
        "CIR drift": [t([1.5, 2.0])],
        "CIR sigma": [t([0.4])],
        "vol. net drift": [t([1.1])],
        "vol. net sigma": [t([0.3, 3.0])],
    }
    v = an.se_ratio_values(ratio_rows)
    assert v["se_ratio_median_lq"] == pytest.approx(0.7)  # torch: lower median
    assert v["se_ratio_frac_below1_lq"] == pytest.approx(5 / 6)
    assert v["se_ratio_min_seed_median_lq"] == pytest.approx(0.7)
    assert v["se_ratio_median_cir_drift"] == pytest.approx(1.5)
    assert v["se_ratio_min_drift"] == pytest.approx(0.5)
    assert v["se_ratio_max_sigma"] == pytest.approx(3.0)
    study = dict(lq_medians=[0.9, 0.7], pd_medians=[1.02, 0.98])
    s = an.se_ratio_verdict(study, [16], v)
    assert (s["verdict"].verdict, s["verdict"].baseline_passes) == ("confirmed", False)
    assert s["diagnosis"] is None
    # pathwise against itself below 1 on every seed: the criterion decides nothing
    study = dict(lq_medians=[0.9, 0.8], pd_medians=[0.99, 0.98])
    s = an.se_ratio_verdict(study, [16], v)
    assert (s["verdict"].verdict, s["verdict"].why) == (
        "inconclusive",
        "baseline passes",
    )
    study = dict(lq_medians=[1.2, 1.1], pd_medians=[1.01, 0.99])
    s = an.se_ratio_verdict(study, [16], v)
    assert s["verdict"].verdict == "not reproduced"
    assert (
        s["diagnosis"].cause == "overstated"
        and "equal samples" in s["diagnosis"].detail
    )


def test_race_values_and_policy_opt_verdict():
    race = {
        m: dict(cost=[10.0, 8.0, c], seconds=[0.0, 1.0, s])
        for m, c, s in (
            ("gg", 5.0, 2.0),
            ("pathwise_forward", 6.0, 8.0),
            ("pathwise_reverse", 4.0, 4.0),
            ("lr", 9.5, 3.0),
        )
    }

    class P:
        n_params = 123

    gg_runs = [race["gg"], dict(cost=[10.0, 9.5])]
    v = an.race_values(race, P(), 2, gg_runs)
    assert v["race_n"] == 123 and v["race_initial_cost"] == 10.0
    assert v["race_sec_per_iter_pathwise_forward"] == 4.0
    assert v["race_gg_ratio_max"] == 0.95
    o = an.policy_opt_verdict(gg_runs, race)
    assert (o["verdict"], o["per_seed"]) == ("confirmed with caveat", [True, False])
    assert o["evidence"]["lr_final"] == 9.5 and o["baseline_passes"] is False
    assert math.isclose(o["evidence"]["final_over_initial"][0], 0.5)
