"""The digits notebook's rules, on hand-made runs: averages over the seeds that did not diverge,
the head-to-head comparison, the beta sweep's KL ordering and the quality rule."""

import math

from diffctrl.finetune.digits_analysis import (
    SUMMARY_KEYS,
    beta_kl_claim,
    good_quality,
    head_to_head_claim,
    precondition_gate,
    quality_claim,
    reward_up_claim,
    summary,
    sweep_summary,
)


def _run(**scores):
    base = {k: 0.0 for k in SUMMARY_KEYS} | {"class_entropy": 0.0}
    return (base | scores, None, {"history": [], "tries": [{"lr": 1.0}]})


DIVERGED = (None, None, {"history": [], "tries": [{"lr": 1.0}, {"lr": 0.3}]})


def test_head_to_head_judges_only_seeds_where_both_beat_the_pretrained_J():
    table = {
        ("pift", 0): _run(J=2.0),
        ("dpok", 0): _run(J=1.0),
        ("pift", 1): DIVERGED,  # a diverged run: undecided
        ("dpok", 1): _run(J=-5.0),
        ("pift", 2): _run(J=0.0),  # below the pre-trained J = 0.5: an optimiser failure
        ("dpok", 2): _run(J=3.0),
        ("pift", 3): _run(J=1.0),
        ("dpok", 3): _run(J=2.0),
    }
    c = head_to_head_claim(table, [0, 1, 2, 3], J_pre=0.5)
    j = c["verdict"]
    assert j.per_seed == [True, False]  # seeds 0 and 3 decide
    assert (j.verdict, j.baseline_passes) == ("confirmed with caveat", False)
    assert c["evidence"]["undecided_seeds"] == [1, 2]
    assert c["evidence"]["pift"] == [2.0, None, 0.0, 1.0]
    assert c["diagnosis"].cause == "setting"
    # no seed where both beat the pre-trained model: inconclusive, diagnosed
    c = head_to_head_claim(table, [1, 2], J_pre=0.5)
    assert (
        c["verdict"] == "inconclusive" and "optimiser failure" in c["diagnosis"].detail
    )
    c = head_to_head_claim(table, [0], J_pre=0.5)
    assert c["verdict"].verdict == "confirmed" and "diagnosis" not in c


def test_precondition_gate_withholds_verdicts_from_a_bad_base():
    v = dict(verdict="confirmed", evidence={"x": 1})
    assert precondition_gate(v, True) is v
    g = precondition_gate(v, False)
    assert g["verdict"] == "inconclusive" and g["evidence"] == {"x": 1}
    assert g["diagnosis"].cause == "setting"


def test_summary_averages_the_seeds_that_did_not_diverge():
    table = {("pift", 0): _run(J=1.0, kl=2.0), ("pift", 1): _run(J=3.0, kl=4.0)}
    table[("pift", 2)] = DIVERGED
    v = summary("lora_", table, "pift", [0, 1, 2])
    assert v["lora_diverged_pift"] == 1
    assert v["lora_J_pift"] == 2.0 and v["lora_kl_pift"] == 3.0
    assert v["lora_J_pift_sd"] == 1.0  # ddof = 0
    v = summary("", {("dpok", 0): DIVERGED}, "dpok", [0])
    assert v["diverged_dpok"] == 1 and math.isnan(v["J_dpok"])


def test_reward_up_needs_the_judge_share_and_digits():
    table = {
        ("pift", 0): _run(judge_target_frac=0.5, nn=1.0),  # passes
        ("pift", 1): _run(judge_target_frac=0.25, nn=1.0),  # share too small
        ("pift", 2): _run(judge_target_frac=0.9, nn=2.6),  # not digits
    }
    c = reward_up_claim(table, [0, 1, 2], judge_pre=0.1, nn_floor=2.0)
    assert c["per_seed"] == [True, False, False]


def test_beta_kl_falls_strictly_along_the_betas_that_did_not_diverge():
    betas = [0.1, 0.3, 1.0]
    sweep = {
        (0.1, 0): DIVERGED,
        (0.3, 0): _run(kl=2.0, target_frac=0.5, judge_target_frac=0.25),
        (1.0, 0): _run(kl=1.0, target_frac=0.5, judge_target_frac=0.5),
        (0.1, 1): _run(kl=3.0),
        (0.3, 1): _run(kl=3.0),  # not strictly falling
        (1.0, 1): _run(kl=1.0),
    }
    c = beta_kl_claim(sweep, betas, [0, 1])
    assert c["per_seed"] == [True, False]
    assert c["evidence"]["0.1"] == [None, 3.0]
    v = sweep_summary(sweep, betas, [0, 1])
    assert v["beta_diverged_0p1"] == 1 and v["beta_retried_0p1"] == 1
    assert v["beta_kl_0p3"] == 2.5 and v["beta_hacking_gap_0p3"] == 0.125


def test_quality_rule_and_its_baseline():
    ok = dict(tv=0.1, tv_floor=0.08, nn=1.2, nn_floor=1.0, fd=4.0, fd_floor=1.0)
    assert good_quality(ok)
    for bad in (dict(tv=0.2), dict(nn=1.3), dict(fd=5.5)):
        assert not good_quality(ok | bad)
    c = quality_claim([ok, ok], [ok | dict(fd=500.0)] * 2)
    assert c["per_seed"] == [True, True] and c["baseline_passes"] is False
    assert c["verdict"] == "confirmed"
