"""The chapter's record values (``summaries``) and verdicts (``analysis``) from synthetic
driver results: slopes of exact power laws, ratios read at the right sizes, counts of passes,
and each claim's rule, baseline and control."""

import math

import pytest
import torch

from diffctrl.gradients import analysis as an
from diffctrl.gradients import summaries as sm

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
    v = sm.benchmark_values(_bench(exps))
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
    assert (v["gg_slope_points"], v["gg_slope_points_small"]) == (5, 4)
    assert v["fwd_slope_points"] == 4
    r = an.runtime_flat_verdict(v)
    assert (r["verdict"].verdict, r["verdict"].baseline_passes) == ("confirmed", False)
    assert r["diagnosis"] is None and r["evidence"]["points"] == [5, 4, 4]
    b = an.beats_pathwise_verdict(v)
    assert (b["verdict"].verdict, b["verdict"].per_seed) == ("confirmed", [True, True])
    assert b["diagnosis"] is None
    # a flat forward method is the baseline passing: a positive verdict decides nothing
    flat = sm.benchmark_values(_bench(dict(exps, pathwise_forward=0.2)))
    r = an.runtime_flat_verdict(flat)
    assert (r["verdict"].verdict, r["verdict"].why) == (
        "inconclusive",
        "baseline passes",
    )
    assert r["diagnosis"].cause == "underpowered"
    # forward only 1000^0.1 times slower at n = 1e5: not beaten by 10x
    b = an.beats_pathwise_verdict(flat)
    assert (
        b["verdict"].verdict == "not reproduced" and b["diagnosis"].cause == "setting"
    )
    # reverse mode only 10000^0.1 times slower: beaten by 10x against forward only
    slow_rev = sm.benchmark_values(_bench(dict(exps, pathwise_reverse=0.2)))
    b = an.beats_pathwise_verdict(slow_rev)
    assert (
        b["verdict"].verdict == "confirmed with caveat"
        and "10x" in b["diagnosis"].detail
    )
    steep = sm.benchmark_values(_bench(dict(exps, gg=0.5)))
    r = an.runtime_flat_verdict(steep)
    assert (
        r["verdict"].verdict == "not reproduced" and r["diagnosis"].cause == "setting"
    )
    # growth beyond 2e5 only: flat over the small n, with caveat
    bent = _bench(exps, ns=(1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8))
    for row in bent:
        if row["method"] == "gg" and row["n"] > 2e5:
            row["seconds"] *= (row["n"] / 2e5) ** 0.9
    r = an.runtime_flat_verdict(sm.benchmark_values(bent))
    assert r["verdict"].verdict == "confirmed with caveat"


def test_runtime_flat_is_inconclusive_from_a_slope_through_two_points():
    exps = dict(gg=0.0, pathwise_forward=1.0, pathwise_reverse=0.5, lr=0.5)
    v = sm.benchmark_values(_bench(exps, ns=(1e2, 1e4)))
    assert v["gg_slope_points"] == 2
    r = an.runtime_flat_verdict(v)
    assert r["verdict"].verdict == "inconclusive"
    assert r["diagnosis"].cause == "underpowered" and "2 size" in r["diagnosis"].detail


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
    v = sm.count_values(rows, d_state=4, n_steps=5)
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
    j = v["verdict"]
    assert (j.verdict, j.baseline_passes, j.control_passes) == (
        "confirmed",
        False,
        True,
    )
    assert v["evidence"]["cases"] == ["lq", "lq", "cir"]
    assert v["evidence"]["max_abs_z"] == [1.0, 1.0, 2.5]
    assert v["evidence"]["control_p"] == [0.9] and v["diagnosis"] is None
    # two of three tests pass and the wrong reference is accepted: the baseline passes
    fails = an.unbiased_verdict(
        lq, {"cir": [_row("gg", 0, 1e-4)]}, [_row("gg", 0, 0.5)]
    )
    assert (fails["verdict"].verdict, fails["verdict"].why) == (
        "inconclusive",
        "baseline passes",
    )
    assert fails["diagnosis"].cause == "underpowered"
    # every GG test rejected while pathwise passes: not reproduced, with a diagnosis
    bad = an.unbiased_verdict(
        [_row("gg", 0, 1e-5)],
        {"cir": [_row("gg", 0, 1e-6), _row("pathwise_reverse", 0, 0.5)]},
        [_row("gg", 0, 1e-9)],
    )
    assert bad["verdict"].verdict == "not reproduced" and bad["diagnosis"] is not None
    vals = sm.fd_unbiasedness_values(fd)
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
    v = sm.se_ratio_values(ratio_rows)
    assert v["se_ratio_median_lq"] == pytest.approx(0.7)  # torch: lower median
    assert v["se_ratio_frac_below1_lq"] == pytest.approx(5 / 6)
    assert v["se_ratio_min_seed_median_lq"] == pytest.approx(0.7)
    assert v["se_ratio_median_cir_drift"] == pytest.approx(1.5)
    assert v["se_ratio_min_drift"] == pytest.approx(0.5)
    assert v["se_ratio_max_sigma"] == pytest.approx(3.0)
    assert "se_ratio_baseline_median" not in v
    assert sm.se_ratio_values(ratio_rows, [1.1, 0.9, 1.0])[
        "se_ratio_baseline_median"
    ] == pytest.approx(1.0)

    def study(lq, pd, sigma=(0.3, 0.2)):
        rows = {"CIR sigma": [t([m]) for m in sigma], "vol. net sigma": [t([0.1])] * 2}
        return dict(lq_medians=lq, pd_medians=pd, lq_n=[10] * len(lq), ratio_rows=rows)

    s = an.se_ratio_verdict(study([0.8, 0.7], [1.02, 0.98]), [16], v)
    j = s["verdict"]
    assert (j.verdict, j.baseline_passes, j.control_passes) == (
        "confirmed",
        False,
        True,
    )
    assert s["diagnosis"] is None
    sig = s["evidence"]["medians_sigma"]
    assert sig["CIR"] == pytest.approx([0.3, 0.2]) and sig["vol. net"] == pytest.approx(
        [0.1, 0.1]
    )
    # below 1 but within the scatter of a true ratio 1: not "smaller"
    s = an.se_ratio_verdict(study([0.95, 0.97], [1.02, 0.98]), [16], v)
    assert s["verdict"].verdict == "not reproduced"
    # pathwise against itself below the margin on every seed: the criterion decides nothing
    s = an.se_ratio_verdict(study([0.8, 0.7], [0.85, 0.8]), [16], v)
    assert (s["verdict"].verdict, s["verdict"].why) == (
        "inconclusive",
        "baseline passes",
    )
    s = an.se_ratio_verdict(study([1.2, 1.1], [1.01, 0.99]), [16], v)
    assert s["verdict"].verdict == "not reproduced"
    assert (
        s["diagnosis"].cause == "overstated"
        and "equal samples" in s["diagnosis"].detail
    )
    # the control (inside sigma) fails too: the miss says nothing
    s = an.se_ratio_verdict(study([1.2, 1.1], [1.01, 0.99], (1.0, 1.1)), [16], v)
    assert (s["verdict"].verdict, s["verdict"].why) == ("inconclusive", "control fails")


def _timed_study(
    gg, fwd, rev, lr, rev2, lq=(1.2, 1.25), pd=(1.0, 1.02), pl=(0.15, 0.14)
):
    n = [674] * len(lq)
    sec = dict(gg=gg, pathwise_forward=fwd, pathwise_reverse=rev, lr=lr)
    return dict(
        lq_medians=list(lq),
        pd_medians=list(pd),
        lr_medians=list(pl),
        lq_n=n,
        seconds={"LQ n=674": sec | {"pathwise_reverse_2": rev2}},
    )


def test_se_time_values_scale_by_the_square_root_of_the_time_ratio():
    v = sm.se_time_values(_timed_study(gg=1.0, fwd=9.0, rev=0.25, lr=0.25, rev2=0.25))
    assert v["se_time_eff_fwd"] == pytest.approx([1.2 / 3, 1.25 / 3])
    assert v["se_time_eff_rev"] == pytest.approx([2.4, 2.5])
    assert v["se_time_eff_base"] == pytest.approx([1.0, 1.02])
    assert v["se_time_eff_control"] == pytest.approx([0.15, 0.14])
    assert v["se_time_fwd_over_gg"] == 9.0 and v["se_time_gg_over_rev"] == 4.0
    assert v["se_time_n_top"] == 674
    with pytest.raises(ValueError, match="time_paths"):
        sm.se_time_values(dict(_timed_study(1, 1, 1, 1, 1), seconds={}))


def test_se_time_verdict_against_forward_and_reverse():
    # faster than both by enough: confirmed
    v = sm.se_time_values(_timed_study(gg=1.0, fwd=9.0, rev=4.0, lr=4.0, rev2=4.0))
    s = an.se_time_verdict(v)
    assert s["verdict"].verdict == "confirmed" and s["diagnosis"] is None
    # beats forward sensitivities only: with caveat, diagnosed
    v = sm.se_time_values(_timed_study(gg=1.0, fwd=9.0, rev=0.5, lr=0.5, rev2=0.5))
    s = an.se_time_verdict(v)
    j = s["verdict"]
    assert (j.verdict, j.baseline_passes, j.control_passes) == (
        "confirmed with caveat",
        False,
        True,
    )
    assert s["diagnosis"].cause == "setting" and "reverse" in s["diagnosis"].detail
    # not faster enough than forward sensitivities to offset the larger s.e.
    v = sm.se_time_values(_timed_study(gg=1.0, fwd=1.2, rev=0.5, lr=0.5, rev2=0.5))
    assert an.se_time_verdict(v)["verdict"].verdict == "not reproduced"
    # the baseline's timing off by 2x (a noisy clock): the baseline passes
    v = sm.se_time_values(_timed_study(gg=1.0, fwd=9.0, rev=0.5, lr=0.5, rev2=1.0))
    assert an.se_time_verdict(v)["verdict"].why == "baseline passes"


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
    v = sm.race_values(race, P(), 2, gg_runs)
    assert v["race_n"] == 123 and v["race_initial_cost"] == 10.0
    assert v["race_sec_per_iter_pathwise_forward"] == 4.0
    assert v["race_gg_ratio_max"] == 0.95
    pd_runs = [race["pathwise_reverse"], dict(cost=[10.0, 5.0])]
    o = an.policy_opt_verdict(gg_runs, race, pd_runs)
    j = o["verdict"]
    assert (j.verdict, j.per_seed) == ("confirmed with caveat", [True, False])
    assert (j.baseline_passes, j.control_passes) == (False, True)
    assert o["diagnosis"].cause == "underpowered"
    assert o["evidence"]["lr_final"] == 9.5
    assert o["evidence"]["control_final_over_initial"] == [0.4, 0.5]
    assert math.isclose(o["evidence"]["final_over_initial"][0], 0.5)
    o = an.policy_opt_verdict([race["gg"]] * 2, race, pd_runs)
    assert o["verdict"].verdict == "confirmed" and o["diagnosis"] is None
    # neither estimator gets there: the control fails, the miss says nothing
    slow = [dict(cost=[10.0, 9.5])] * 2
    o = an.policy_opt_verdict(slow, race, slow)
    assert (o["verdict"].verdict, o["verdict"].why) == ("inconclusive", "control fails")
