"""The digits fine-tuning notebook's record, on whichever profile ran: the machinery in every
profile; in the full (published) profile, that the pre-trained chain makes digits. Every
verdict is recomputed here from its evidence with the rule the notebook declares."""

import math

import pytest

from diffctrl.repro import POSITIVE, count_verdict


@pytest.fixture(scope="module")
def record(notebook_results):
    return notebook_results("finetune_digits")


@pytest.fixture(scope="module")
def rec(record):
    return record["values"]


def _good(q):
    return (
        q["tv"] <= q["tv_floor"] + 0.05
        and q["nn"] <= 1.25 * q["nn_floor"]
        and q["fd"] <= 5 * q["fd_floor"]
    )


def test_every_declared_claim_is_judged(record):
    assert set(record["claims"]) == {
        "pretrained_digits",
        "reward_up",
        "pift_vs_dpok",
        "pift_vs_dpok_lora",
        "beta_kl",
    }
    for key, c in record["claims"].items():
        assert c["verdict"] in (
            "confirmed",
            "confirmed with caveat",
            "not reproduced",
            "inconclusive",
        ), key
        assert not (c["baseline_passes"] and c["verdict"] in POSITIVE), key


def test_the_classifiers_work(rec):
    assert rec["clf_accuracy"] > 0.85 and rec["judge_accuracy"] > 0.85
    assert (
        -1.0 < rec["reward_data_target"] <= 0
    )  # log p(c|x) of real digits of the class


def test_quality_verdict_follows_its_rule(record):
    c = record["claims"]["pretrained_digits"]
    passes = [_good(q) for q in c["evidence"]["scores"]]
    assert c["per_seed"] == passes and c["verdict"] == count_verdict(passes)
    # the untrained U-Net is the baseline, and it must fail every seed
    assert not any(_good(q) for q in c["evidence"]["untrained"])
    for q in c["evidence"]["scores"]:
        assert q["fd_floor"] > 0 and q["nn_floor"] > 0 and 0 <= q["tv_floor"] <= 1


def test_the_published_model_makes_digits(record):
    """On the full record, the fine-tuned chain's starting point still looks like digits in
    the reward classifier's feature space (every seed within the claim's Frechet bound) and is
    far from the untrained U-Net; the whole claim is judged by its (glued) verdict."""
    if record["profile"] != "full":
        pytest.skip("the smoke profile's tiny U-Net is not meant to make digits")
    c = record["claims"]["pretrained_digits"]
    for q in c["evidence"]["scores"]:
        assert q["fd"] <= 5 * q["fd_floor"], q
    for q in c["evidence"]["untrained"]:
        assert q["fd"] > 100 * q["fd_floor"] and q["nn"] > 10 * q["nn_floor"], q


def _gated(record, key) -> bool:
    """Without the precondition (the pre-trained chain makes digits) a claim is withheld:
    inconclusive, with that diagnosis."""
    if record["claims"]["pretrained_digits"]["verdict"] == "confirmed":
        return False
    c = record["claims"][key]
    assert c["verdict"] == "inconclusive" and "precondition" in c["diagnosis"]["detail"]
    return True


def test_head_to_head_verdicts_follow_their_rule(record):
    for key in ("pift_vs_dpok", "pift_vs_dpok_lora"):
        if _gated(record, key):
            continue
        c = record["claims"][key]
        ev = c["evidence"]
        J_pre = ev["J_pre"]
        wins = [
            a > b
            for a, b in zip(ev["pift"], ev["dpok"])
            if a is not None and b is not None and a > J_pre and b > J_pre
        ]
        if not wins:
            assert c["verdict"] == "inconclusive" and c["diagnosis"], key
            continue
        assert c["per_seed"] == wins and c["verdict"] == count_verdict(wins), key


def test_pift_and_dpok_both_move_the_chain_and_pift_raises_the_reward(rec):
    # PI-FT is not left out: whenever one of its seeds survived it must have moved the chain
    # and raised the reward it was trained on; DPOK must have moved it
    for prefix in ("", "lora_"):
        for m in ("pift", "dpok"):
            if rec[f"{prefix}diverged_{m}"] < rec["n_seeds"]:
                assert rec[f"{prefix}kl_{m}"] > 0, (prefix, m)
                assert math.isclose(
                    rec[f"{prefix}J_{m}"],
                    rec[f"{prefix}reward_{m}"]
                    - rec["method_beta"] * rec[f"{prefix}kl_{m}"],
                    rel_tol=1e-9,
                    abs_tol=1e-9,
                ), (prefix, m)
    assert rec["diverged_pift"] < rec["n_seeds"]
    assert rec["reward_pift"] > rec["reward_pre"]


def test_beta_verdict_follows_its_rule(record):
    if _gated(record, "beta_kl"):
        return
    c = record["claims"]["beta_kl"]
    betas = record["params"]["betas"]
    per_beta = [c["evidence"][str(b)] for b in betas]
    falls = []
    for s in range(len(per_beta[0])):
        kls = [col[s] for col in per_beta if col[s] is not None]
        falls.append(len(kls) >= 2 and all(x > y for x, y in zip(kls, kls[1:])))
    assert c["per_seed"] == falls and c["verdict"] == count_verdict(falls)


def test_reward_up_follows_its_rule(record):
    if _gated(record, "reward_up"):
        return
    c = record["claims"]["reward_up"]
    ev = c["evidence"]
    up = [
        r is not None
        and r["judge_target_frac"] >= ev["pre"] + 0.2
        and r["nn"] <= 1.25 * ev["nn_floor"]
        for r in ev["runs"]
    ]
    assert c["per_seed"] == up and c["verdict"] == count_verdict(up)


def test_scores_are_in_range(rec, record):
    for b in record["params"]["betas"]:
        t = str(b).replace(".", "p")
        if rec[f"beta_diverged_{t}"] < rec["beta_n_seeds"]:
            for k in ("class_entropy", "judge_entropy"):
                assert 0 <= rec[f"beta_{k}_{t}"] <= math.log(10) + 1e-12, (k, b)
            assert -1 <= rec[f"beta_hacking_gap_{t}"] <= 1
    assert rec["pairwise_pre"] > 0
