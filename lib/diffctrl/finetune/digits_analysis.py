"""What the digits notebook (``notebooks/finetune_digits.md``) reads off its fine-tuning runs
(:mod:`diffctrl.finetune.digits_experiments`): the scores averaged over the seeds that did not diverge, and the
verdicts on its claims (Han, Razaviyayn, Xu 2025, Sec. 2 and 6), each by the rule its ``Claim``
declares. A run is ``(scores, samples, {"history", "tries"})`` with ``scores = None`` when it
diverged (:func:`.digits_experiments.train_run`); a table maps ``(method or beta, seed)`` to a
run. Each ``*_claim`` function returns the keyword arguments of ``rec.verdict``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..repro import Diagnosis, count_verdict, judge

__all__ = [
    "SUMMARY_KEYS",
    "SWEEP_KEYS",
    "beta_kl_claim",
    "good_quality",
    "head_to_head_claim",
    "precondition_gate",
    "quality_claim",
    "reward_up_claim",
    "summary",
    "sweep_summary",
]

#: The scores of a method comparison, averaged over the seeds that did not diverge.
SUMMARY_KEYS = (
    "J",
    "reward",
    "kl",
    "target_frac",
    "judge_target_frac",
    "judge_entropy",
    "pairwise",
    "nn",
    "nfe",
)
#: The scores of the beta sweep, averaged over the seeds that did not diverge.
SWEEP_KEYS = (
    "reward",
    "kl",
    "target_frac",
    "judge_target_frac",
    "class_entropy",
    "judge_entropy",
    "pairwise",
    "nn",
)


def good_quality(q: dict) -> bool:
    """The declared rule of ``pretrained_digits`` for one sampling seed's
    :func:`diffctrl.digits.classifiers.digit_quality`: class-histogram TV within 0.05 of its
    floor, median nearest-digit distance within 1.25 x and Frechet distance within 5 x theirs."""
    return (
        q["tv"] <= q["tv_floor"] + 0.05
        and q["nn"] <= 1.25 * q["nn_floor"]
        and q["fd"] <= 5 * q["fd_floor"]
    )


def quality_claim(qual: Sequence[dict], qual0: Sequence[dict]) -> dict:
    """Claim ``pretrained_digits``: :func:`good_quality` for every seed of the pre-trained
    chain (``qual``), the untrained U-Net (``qual0``) judged by the same rule."""
    passes = [good_quality(q) for q in qual]
    j = judge(passes, [good_quality(q) for q in qual0])
    out = dict(
        verdict=j.verdict,
        baseline_passes=j.baseline_passes,
        per_seed=j.per_seed,
        why=j.why,
        evidence={"scores": list(qual), "untrained": list(qual0)},
    )
    if j.verdict != "confirmed":
        out["diagnosis"] = Diagnosis(
            "setting",
            "the book's small U-Net, trained for minutes on a CPU, does not meet the "
            "data-floor criteria on this sub-chain; the verdicts on fine-tuning are withheld",
        )
    return out


def summary(prefix: str, table: dict, method: str, seeds: Sequence[int]) -> dict:
    """Record values of ``method``'s runs: the diverged count, the mean over the seeds that
    did not diverge of every :data:`SUMMARY_KEYS` (NaN where all diverged) and the spread
    (sd, ddof=0) of J, keys prefixed with ``prefix``."""
    done = [table[method, s][0] for s in seeds if table[method, s][0] is not None]
    values = {f"{prefix}diverged_{method}": len(seeds) - len(done)}
    for key in SUMMARY_KEYS:
        vals = [d[key] for d in done]
        values[f"{prefix}{key}_{method}"] = (
            float(np.mean(vals)) if vals else float("nan")
        )
    Js = [d["J"] for d in done]
    values[f"{prefix}J_{method}_sd"] = float(np.std(Js)) if Js else float("nan")
    return values


def head_to_head_claim(table: dict, seeds: Sequence[int], J_pre: float) -> dict:
    """Claims ``pift_vs_dpok`` and ``pift_vs_dpok_lora``: PI-FT's J above DPOK's, judged on
    the seeds where both methods end above the pre-trained ``J_pre`` (a fine-tuned J below the
    pre-trained one is an optimiser failure, not a comparison; a diverged run likewise).
    With no such seed the verdict is inconclusive, with that diagnosis."""
    wins, undecided = [], []
    for s in seeds:
        a, b = table["pift", s][0], table["dpok", s][0]
        if a is None or b is None or a["J"] <= J_pre or b["J"] <= J_pre:
            undecided.append(s)
            continue
        wins.append(a["J"] > b["J"])
    evidence = {
        m: [None if table[m, s][0] is None else table[m, s][0]["J"] for s in seeds]
        for m in ("pift", "dpok")
    } | {"J_pre": J_pre, "undecided_seeds": undecided}
    diagnosis = Diagnosis(
        "setting",
        f"on {len(undecided)} of {len(seeds)} seeds a method ended below the pre-trained J "
        "(or diverged): an optimiser failure at this budget and step, not a comparison",
    )
    if not wins:
        return dict(
            verdict="inconclusive",
            baseline_passes=False,
            evidence=evidence,
            diagnosis=diagnosis,
        )
    j = judge(wins, [False] * len(wins))  # zero iterations: both equal J_pre, no win
    out = dict(verdict=j, evidence=evidence)
    if j.verdict != "confirmed":
        out["diagnosis"] = (
            diagnosis
            if undecided
            else Diagnosis(
                "setting",
                "at equal iterations the actor-critic variant (not the paper's sweep) "
                "and REINFORCE-LOO trade places across seeds",
            )
        )
    return out


def precondition_gate(verdict: dict, base_ok: bool) -> dict:
    """``rec.verdict`` keyword arguments of a claim that needs a pre-trained chain that makes
    digits (claim ``pretrained_digits``): unchanged when ``base_ok``, else ``inconclusive``
    with that diagnosis (no paper verdict is issued from a base that fails it)."""
    if base_ok:
        return verdict
    out = {k: v for k, v in verdict.items() if k not in ("verdict", "diagnosis")}
    out["verdict"] = "inconclusive"
    out.setdefault("baseline_passes", False)
    out["diagnosis"] = Diagnosis(
        "setting",
        "the pre-trained chain fails the book's precondition (it does not make digits on "
        "this sub-chain): no verdict on fine-tuning is issued from it",
    )
    return out


def reward_up_claim(
    table: dict, seeds: Sequence[int], judge_pre: float, nn_floor: float
) -> dict:
    """Claim ``reward_up``: for every seed, PI-FT's judge share of the target class at least
    the pre-trained ``judge_pre`` + 0.2, and its median nearest-digit distance within 1.25 x
    the data's ``nn_floor``."""
    up = []
    for s in seeds:
        sc = table["pift", s][0]
        up.append(
            sc is not None
            and sc["judge_target_frac"] >= judge_pre + 0.2
            and sc["nn"] <= 1.25 * nn_floor
        )
    return dict(
        verdict=count_verdict(up),
        per_seed=up,
        evidence={
            "pre": judge_pre,
            "nn_floor": nn_floor,
            "runs": [table["pift", s][0] for s in seeds],
        },
        baseline_passes=False,
    )


def sweep_summary(sweep: dict, betas: Sequence[float], seeds: Sequence[int]) -> dict:
    """Record values of the beta sweep, per beta (tagged ``0p1`` for 0.1): diverged and
    retried seeds, the mean of every :data:`SWEEP_KEYS` over the seeds that did not diverge,
    and the reward-hacking gap (the reward classifier's share of the target minus the
    judge's)."""
    values = {}
    for b in betas:
        tag = str(b).replace(".", "p")
        done = [sweep[b, s][0] for s in seeds if sweep[b, s][0] is not None]
        values[f"beta_diverged_{tag}"] = len(seeds) - len(done)
        retried = [s for s in seeds if len(sweep[b, s][2]["tries"]) > 1]
        values[f"beta_retried_{tag}"] = len(retried)
        for key in SWEEP_KEYS:
            vals = [d[key] for d in done]
            values[f"beta_{key}_{tag}"] = float(np.mean(vals)) if vals else float("nan")
        gap = [d["target_frac"] - d["judge_target_frac"] for d in done]
        values[f"beta_hacking_gap_{tag}"] = float(np.mean(gap)) if gap else float("nan")
    return values


def beta_kl_claim(sweep: dict, betas: Sequence[float], seeds: Sequence[int]) -> dict:
    """Claim ``beta_kl``: for every seed, the path KL falls strictly along the betas at which
    the seed did not diverge (at least two of them)."""
    falls = []
    for s in seeds:
        kls = [sweep[b, s][0]["kl"] for b in betas if sweep[b, s][0] is not None]
        falls.append(len(kls) >= 2 and all(x > y for x, y in zip(kls, kls[1:])))
    return dict(
        verdict=count_verdict(falls),
        per_seed=falls,
        baseline_passes=False,
        evidence={
            str(b): [
                None if sweep[b, s][0] is None else sweep[b, s][0]["kl"] for s in seeds
            ]
            for b in betas
        },
    )
