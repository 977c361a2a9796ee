"""What the mixture notebook (``notebooks/finetune_mixture.md``) reads off its experiments
(:mod:`.mixture_experiments`): the compute each method needs to reach a fixed distance, and the
verdicts on its six claims (Han, Razaviyayn, Xu 2025, Sec. 2, 4, 5), each by the rule its
``Claim`` declares. Each function returns a :class:`~diffctrl.repro.Outcome`.
"""

from __future__ import annotations

import math

import numpy as np

from ..repro import Diagnosis, Outcome, judge
from .mixture_experiments import COMPARED
from .sweep_experiments import sweep_verdicts

__all__ = ["compute_to_goal", "judge_claims", "separated"]


def compute_to_goal(methods: Outcome, cfg) -> Outcome:
    """For each reward, method and seed of :func:`.mixture_experiments.compare_methods`: the
    forward-equivalents (a backward pass counts as two forwards) and wall time at the first evaluation where W2 to p* is at most
    ``cfg.target_factor`` times the grid optimum's, and where the control error is at most
    ``cfg.err_goal`` (``inf`` where never); the record keeps the median over seeds.
    ``data["lines"]``: the printout."""
    runs, refs = methods.data["runs"], methods.data["refs"]
    values, lines = {}, []

    def fmt(v):
        return f"{v:,.0f}" if math.isfinite(v) else "-"

    for name in cfg.rewards:
        w2_goal = cfg.target_factor * refs[name]["opt"]["w2"]
        lines.append(
            f"{name}: target W2 <= {w2_goal:.3g}, control error <= {cfg.err_goal}"
        )
        for method in COMPARED:
            hits = {}
            for key, goal in (("w2", w2_goal), ("err", cfg.err_goal)):
                row = []
                for s in cfg.method_seeds:
                    history = runs[name, method, s].history
                    hit = next((r for r in history if r[key] <= goal), None)
                    row.append(
                        (hit["forward_equivalents"], hit["wall"])
                        if hit
                        else (math.inf, math.inf)
                    )
                hits[key] = np.array(row, dtype=float)
                tag = f"{key}_{method}_{name}"
                values[f"fe_to_{tag}"] = float(np.median(hits[key][:, 0]))
                values[f"n_reached_{tag}"] = int(np.isfinite(hits[key][:, 0]).sum())
                values[f"wall_to_{tag}"] = float(np.median(hits[key][:, 1]))
            walls = hits["err"][:, 1]
            lines.append(
                f"  {method:8s} W2 goal reached by "
                f"{int(np.isfinite(hits['w2'][:, 0]).sum())}/"
                f"{len(cfg.method_seeds)} seeds, forward-equivalents "
                + ", ".join(fmt(v) for v in hits["w2"][:, 0])
                + "; error goal: forward-equivalents "
                + ", ".join(fmt(v) for v in hits["err"][:, 0])
                + ", wall "
                + ", ".join(f"{w:.2f} s" if math.isfinite(w) else "-" for w in walls)
            )
    return Outcome(values, data=dict(lines=lines))


def separated(better: list[bool], worse: list[bool], n: int) -> str:
    """The declared rule of a comparison decided outside the seed spread: ``inconclusive``
    with fewer than 2 seeds; ``confirmed`` if ``better`` holds everywhere; ``not reproduced``
    if ``worse`` holds somewhere and ``better`` nowhere; ``inconclusive`` otherwise."""
    if n < 2:
        return "inconclusive"
    if all(better):
        return "confirmed"
    return "not reproduced" if any(worse) and not any(better) else "inconclusive"


def judge_claims(methods: Outcome, gap: Outcome, sweep: Outcome, cfg) -> Outcome:
    """The claims of the notebook, each by the rule its ``Claim`` declares, from the outcomes
    of :func:`.mixture_experiments.compare_methods`, :func:`.mixture_experiments.mode_gap` and
    :func:`.sweep_experiments.sweep_rates`. "pift" is the paper's backward sweep."""
    runs, mv, gv, sv = methods.data["runs"], methods.values, gap.values, sweep.values
    n_seeds = len(cfg.method_seeds)
    errs = {
        (name, m): [runs[name, m, s].history[-1]["err"] for s in cfg.method_seeds]
        for name in cfg.rewards
        for m in COMPARED
    }
    out, values = {}, {}
    half = [e <= 0.5 for name in cfg.rewards for e in errs[name, "pift"]]
    goal = all(e <= cfg.err_goal for name in cfg.rewards for e in errs[name, "pift"])
    lq_ctl = sv[f"sweep_final_err_{str(cfg.betas[1]).replace('.', 'p')}"] <= 0.5
    j = judge(half, False, lq_ctl)
    v = dict(
        verdict=j,
        evidence={f"err_pift_{n}": errs[n, "pift"] for n in cfg.rewards}
        | {"err_goal": cfg.err_goal},
        note="per_seed: (reward, seed); the pre-trained model's control error is 1",
    )
    if j.verdict == "confirmed" and not goal:
        v["verdict"] = "confirmed with caveat"
        v["baseline_passes"], v["control_passes"] = False, lq_ctl
        v["per_seed"] = half
        v["note"] += (
            f"; caveat: within half the pre-trained error, not within err_goal = "
            f"{cfg.err_goal}"
        )
    if j.verdict != "confirmed":
        v["diagnosis"] = Diagnosis(
            "underpowered",
            "the sweep's control error is limited by the regression floor of its networks "
            "and its critics at this sample size; the LQ control shows the criterion is "
            "attainable where the critic is exact",
        )
    out["reaches_optimum"] = v

    def in_band(x):
        return -1.5 <= x <= -0.5

    far = mv["w2_opt_linear"] > 2 * mv["w2_floor_linear"]
    v = "confirmed" if in_band(gv["mode_gap_slope"]) else "not reproduced"
    out["samples_pstar"] = dict(
        verdict="confirmed with caveat" if v == "confirmed" and far else v,
        evidence={
            "mode_gap_slope": gv["mode_gap_slope"],
            "mode_gaps": gap.data["gaps"],
            "pretrained_slope": gv["mode_gap_pre_slope"],
            "w2_opt_linear": mv["w2_opt_linear"],
            "w2_floor_linear": mv["w2_floor_linear"],
        },
        baseline_passes=in_band(gv["mode_gap_pre_slope"]),
        note="caveat: only as T grows; at the experiment's T the optimum is not p*"
        if far
        else "",
    )
    if out["samples_pstar"]["verdict"] not in ("confirmed", "confirmed with caveat"):
        out["samples_pstar"]["diagnosis"] = Diagnosis(
            "underpowered",
            f"the mode-weight gap over T = {cfg.opt_Ts} falls with slope "
            f"{gv['mode_gap_slope']:.2f}, outside [-1.5, -0.5]: with few mode samples "
            "(n_modes) the smallest gaps sit at the Monte Carlo floor",
        )
    better = [max(errs[n, "pift"]) < min(errs[n, "dpok"]) for n in cfg.rewards]
    worse = [max(errs[n, "dpok"]) < min(errs[n, "pift"]) for n in cfg.rewards]
    values["pift_beats_dpok_rewards"] = int(sum(better))
    values["dpok_beats_pift_rewards"] = int(sum(worse))
    # the baseline: the pre-trained model (error 1) in PI-FT's place, on every reward
    base = all(1.0 < min(errs[n, "dpok"]) for n in cfg.rewards)
    v = dict(
        evidence={f"{n}_{m}": errs[n, m] for n in cfg.rewards for m in ("pift", "dpok")}
        | {"per_reward": "pift's worst seed below dpok's best"},
        per_seed=better,
        baseline_passes=base,
        note="per_seed: rewards"
        + ("" if n_seeds >= 2 else "; one seed decides nothing"),
    )
    verdict = separated(better, worse, n_seeds)
    if verdict == "confirmed" and base:
        verdict = "inconclusive"
    v["verdict"] = verdict
    if verdict != "confirmed":
        if n_seeds < 2:
            detail = "one seed decides nothing"
        elif any(worse):
            detail = (
                f"at equal forward-equivalents, each with its best learning rate on a "
                f"calibration seed, DPOK's worst seed is below PI-FT's best on "
                f"{sum(worse)} of {len(worse)} rewards (PI-FT ahead so on {sum(better)}): "
                "the sweep spends its budget on per-step regressions, DPOK on many "
                "cheap policy-gradient steps, and on this 2-D problem the latter go further"
            )
        else:
            detail = (
                f"PI-FT ahead outside the seed spread on {sum(better)} of {len(better)} "
                "rewards, DPOK on none: the seeds overlap on the others"
            )
        v["diagnosis"] = Diagnosis(
            "setting" if n_seeds >= 2 else "underpowered", detail
        )
    out["pift_vs_dpok"] = v
    out.update(sweep_verdicts(sweep, cfg))
    kl_seq = [sv[f"lq_kl_{str(b).replace('.', 'p')}"] for b in cfg.betas]
    out["beta_closer"] = dict(
        verdict="confirmed" if bool(np.all(np.diff(kl_seq) < 0)) else "not reproduced",
        evidence={f"beta={b}": k for b, k in zip(cfg.betas, kl_seq)},
        baseline_passes=False,
    )
    return Outcome(values, verdicts=out)
