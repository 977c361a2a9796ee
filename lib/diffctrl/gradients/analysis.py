"""Verdicts of the gradient-estimator chapter (chapter ``book/gradient_estimators.md``;
Wang, Blanchet & Glynn, NeurIPS 2024).

Each ``*_verdict`` function reads what a driver returned
(:mod:`~diffctrl.gradients.experiments`) or the record values computed from it
(:mod:`~diffctrl.gradients.summaries`) and returns the keyword arguments of
:meth:`~diffctrl.repro.Record.verdict` for one declared claim, computed by the claim's
declared rule with :func:`~diffctrl.repro.judge` (baseline, positive control) and, for a
verdict short of confirmed, its :class:`~diffctrl.repro.Diagnosis`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..repro import Diagnosis, Judgement, judge

__all__ = [
    "MIN_SLOPE_POINTS",
    "SE_MARGIN",
    "beats_pathwise_verdict",
    "policy_opt_verdict",
    "runtime_flat_verdict",
    "se_ratio_verdict",
    "se_time_verdict",
    "unbiased_verdict",
]

Rows = Sequence[dict[str, Any]]
MIN_SLOPE_POINTS = 3  # a slope through fewer sizes of n is a line through two points
# "smaller s.e.": a median ratio below this, beyond the scatter of a true ratio 1
SE_MARGIN = 0.9


def unbiased_verdict(lq_rows: Rows, fd_rows: dict[str, Rows], wrong_ref: Rows) -> dict:
    """The ``unbiased`` claim: GG's p-value > 0.001 in every test (LQ exact gradient, each
    finite-difference problem, every seed), judged by :func:`~diffctrl.repro.judge`; the
    baseline (GG against the continuous-time gradient) passes if all its p > 0.001; the
    control is reverse-mode pathwise differentiation (unbiased by the classical theorem) in
    the same tests."""

    def tests(method):
        return [("lq", r) for r in lq_rows if r["method"] == method] + [
            (name, r)
            for name, rows in fd_rows.items()
            for r in rows
            if r["method"] == method
        ]

    gg_tests, pd_tests = tests("gg"), tests("pathwise_reverse")
    j = judge(
        [r["p"] > 1e-3 for _, r in gg_tests],
        baseline=all(r["p"] > 1e-3 for r in wrong_ref),
        control=[r["p"] > 1e-3 for _, r in pd_tests] if pd_tests else None,
    )
    detail = {
        "baseline passes": "the tests accept a reference off by the discretisation "
        "error too: more paths would give them the power to see a bias of that size",
        "control fails": "the tests reject the pathwise estimator too, unbiased by the "
        "classical theorem: the reference (finite differences) is off, not GG",
    }.get(
        j.why,
        f"a test rejects GG at p <= 0.001 (cases and p in the evidence); among "
        f"{len(gg_tests)} tests one such p comes by chance about {len(gg_tests)} times "
        "in 1000: more seeds or paths decide",
    )
    diagnosis = None if j.verdict == "confirmed" else Diagnosis("underpowered", detail)
    return dict(
        verdict=j,
        diagnosis=diagnosis,
        evidence={
            "cases": [name for name, _ in gg_tests],
            "p": [r["p"] for _, r in gg_tests],
            "max_abs_z": [r["max_abs_z"] for _, r in gg_tests],
            "baseline_p": [r["p"] for r in wrong_ref],
            "control_cases": [name for name, _ in pd_tests],
            "control_p": [r["p"] for _, r in pd_tests],
        },
    )


def runtime_flat_verdict(values: dict) -> dict:
    """The ``runtime_flat`` claim from
    :func:`~diffctrl.gradients.summaries.benchmark_values`: GG's log-log slope of time
    against ``n`` <= 0.25 over every ``n`` (confirmed) or over ``n <= 2e5`` only (with
    caveat), judged with forward sensitivities' slope as the baseline (it must exceed 0.25);
    ``inconclusive`` (under-powered) when a slope rests on fewer than
    ``MIN_SLOPE_POINTS`` sizes of ``n``."""
    keys = ("gg_slope_points", "gg_slope_points_small", "fwd_slope_points")
    evidence = {
        "gg_slope": values["gg_time_slope"],
        "gg_slope_n_le_2e5": values["gg_time_slope_small"],
        "fwd_slope": values["fwd_time_slope"],
        "largest_n_gg": values["largest_n_gg"],
        "points": [values[k] for k in keys],
    }
    few = min(values[k] for k in keys)
    if few < MIN_SLOPE_POINTS:
        return dict(
            verdict=Judgement("inconclusive"),
            evidence=evidence,
            diagnosis=Diagnosis(
                "underpowered",
                f"a slope fitted to {few} size(s) of n is a line through two points (or "
                "one): it cannot tell a flat runtime from timing noise; at least "
                f"{MIN_SLOPE_POINTS} sizes decide (the full profile times seven)",
            ),
        )
    j = judge(
        [values["gg_time_slope"] <= 0.25, values["gg_time_slope_small"] <= 0.25],
        baseline=values["fwd_time_slope"] <= 0.25,
    )
    diagnosis = None
    if j.why == "baseline passes":
        diagnosis = Diagnosis(
            "underpowered",
            "forward sensitivities' time is as flat as GG's over the sizes run: larger n "
            "(where their d x n state dominates) would decide",
        )
    elif j.verdict != "confirmed":
        diagnosis = Diagnosis(
            "setting",
            "on this CPU one network evaluation per step dominates GG's time beyond "
            "n = 2e5 and grows with n; the paper's flat curve is on a V100 GPU, where "
            "such evaluations are parallel (the counts of network passes stay flat)",
        )
    return dict(verdict=j, evidence=evidence, diagnosis=diagnosis)


def beats_pathwise_verdict(values: dict) -> dict:
    """The ``beats_pathwise`` claim from
    :func:`~diffctrl.gradients.summaries.benchmark_values`: time ratio pathwise / GG > 10
    at the largest ``n`` both ran, against forward sensitivities and reverse mode
    (confirmed), against forward sensitivities only (with caveat: the reverse-mode ratio is
    the diagnosis)."""
    beats = [values["fwd_over_gg_time"] > 10, values["rev_over_gg_time"] > 10]
    verdict = (
        "confirmed"
        if all(beats)
        else ("confirmed with caveat" if beats[0] else "not reproduced")
    )
    diagnosis = None
    if verdict != "confirmed":
        diagnosis = Diagnosis(
            "setting",
            "reverse-mode autograd, which the paper does not time, carries no n-sized "
            "state per path either, and at the point mass's d = 4 it makes about as many "
            f"network evaluations as GG: its time is {values['rev_over_gg_time']:.2g}x "
            "GG's here, not the 10x the claim needs"
            + (
                ""
                if beats[0]
                else "; forward sensitivities are not 10x slower at the largest n "
                "they ran on this CPU (the paper's large-n GPU runs are not repeated)"
            ),
        )
    return dict(
        verdict=Judgement(verdict, per_seed=beats),
        diagnosis=diagnosis,
        evidence={
            "forward_over_gg": values["fwd_over_gg_time"],
            "n_forward": values["n_fwd_vs_gg"],
            "reverse_over_gg": values["rev_over_gg_time"],
            "n_reverse": values["n_rev_vs_gg"],
        },
    )


def _sigma_medians(study: dict[str, Any]) -> dict[str, list[float]]:
    """Per case with coordinates inside sigma: GG's median s.e. ratio over them, per seed."""
    return {
        g.removesuffix(" sigma"): [float(r.median()) for r in rs]
        for g, rs in study["ratio_rows"].items()
        if g.endswith(" sigma")
    }


def se_ratio_verdict(
    study: dict[str, Any], widths: Sequence[int], values: dict
) -> dict:
    """The ``se_ratio`` claim at equal samples: GG's median s.e. ratio over pathwise <
    ``SE_MARGIN`` for every seed and width of the LQ point mass, judged by
    :func:`~diffctrl.repro.judge`. Baseline: pathwise over an independent pathwise run (true
    ratio 1), per seed and width. Control: GG's coordinates inside sigma (CIR, volatility
    network), per seed, where its Hessian term makes a smaller s.e. attainable. A verdict
    short of confirmed carries the diagnosis: off sigma GG is a randomised pathwise
    derivative, whose variance is at least the pathwise one."""
    sigma = _sigma_medians(study)
    control = [all(m < SE_MARGIN for m in ms) for ms in zip(*sigma.values())]
    j = judge(
        [m < SE_MARGIN for m in study["lq_medians"]],
        baseline=[m < SE_MARGIN for m in study["pd_medians"]],
        control=control or None,
    )
    diagnosis = None
    if j.verdict != "confirmed":
        diagnosis = Diagnosis(
            "overstated",
            "at equal samples (the paper's Fig. 1(b) compares 100-sample statistics) the "
            "generator gradient of a parameter outside sigma is a randomised pathwise "
            "derivative (the chapter's proposition): its variance is at least the "
            "pathwise one, so on the point mass, whose sigma does not depend on theta, "
            "a ratio below 1 is impossible; GG's s.e. is the smaller one only for "
            "coordinates inside sigma (the control: medians_sigma in the evidence)"
            + ("" if j.why != "control fails" else "; here the control fails too"),
        )
    return dict(
        verdict=j,
        diagnosis=diagnosis,
        evidence={
            "seed_medians": study["lq_medians"],
            "baseline_seed_medians": study["pd_medians"],
            "n": study["lq_n"],
            "widths": list(widths),
            "margin": SE_MARGIN,
            "medians_sigma": sigma,
            "median_cir_sigma": values["se_ratio_median_cir_sigma"],
            "median_vol_sigma": values["se_ratio_median_vol_sigma"],
        },
    )


def se_time_verdict(values: dict) -> dict:
    """The ``se_time`` claim (ours) from
    :func:`~diffctrl.gradients.summaries.se_time_values`: GG's s.e. x sqrt(seconds per
    estimate) over pathwise's < ``SE_MARGIN`` for every seed and width, against forward
    sensitivities (confirmed; with caveat where reverse mode is not beaten too), judged by
    :func:`~diffctrl.repro.judge` with the baseline (pathwise over itself) and the control
    (pathwise over the likelihood ratio, the classical ordering)."""
    v = values
    j = judge(
        [e < SE_MARGIN for e in v["se_time_eff_fwd"]],
        baseline=[e < SE_MARGIN for e in v["se_time_eff_base"]],
        control=[e < SE_MARGIN for e in v["se_time_eff_control"]],
    )
    beats_rev = all(e < SE_MARGIN for e in v["se_time_eff_rev"])
    if j.verdict == "confirmed" and not beats_rev:
        j = Judgement(
            "confirmed with caveat",
            per_seed=j.per_seed,
            baseline_passes=j.baseline_passes,
            control_passes=j.control_passes,
        )
    times = (
        f"at n = {v['se_time_n_top']:.3g} forward sensitivities, the paper's "
        f"comparison, take {v['se_time_fwd_over_gg']:.2g}x GG's time and reverse-mode "
        f"autograd (not timed in the paper) {v['se_time_rev_over_gg']:.2g}x on this CPU"
    )
    detail = {
        "confirmed with caveat": f"{times}; off sigma GG's s.e. is not below pathwise's, "
        "so reverse mode is at least as efficient at these widths",
        "not reproduced": f"{times}: not enough to offset GG's larger s.e. off sigma; "
        "larger n, where forward sensitivities slow down, would decide",
    }.get(j.verdict, f"{j.why or 'seeds and widths disagree'}; {times}")
    diagnosis = None
    if j.verdict != "confirmed":
        diagnosis = Diagnosis(
            "setting" if j.verdict != "inconclusive" else "underpowered", detail
        )
    keys = (
        "eff_fwd",
        "eff_rev",
        "eff_base",
        "eff_control",
        "fwd_over_gg",
        "gg_over_rev",
    )
    return dict(
        verdict=j,
        diagnosis=diagnosis,
        evidence={k: v[f"se_time_{k}"] for k in keys} | {"margin": SE_MARGIN},
    )


def policy_opt_verdict(
    gg_runs: list, race: dict[str, dict[str, Any]], pd_runs: list | None = None
) -> dict:
    """The ``policy_opt`` claim: for every seed GG brings the expected cost below 0.9 x the
    initial one, judged by :func:`~diffctrl.repro.judge`; the baseline (zero iterations)
    cannot pass; the control is the pathwise gradient in the same runs (``pd_runs``, one per
    seed)."""
    ratios = [r["cost"][-1] / r["cost"][0] for r in gg_runs]
    pd_ratios = [r["cost"][-1] / r["cost"][0] for r in pd_runs or []]
    j = judge(
        [q < 0.9 for q in ratios],
        baseline=False,  # zero iterations: the cost is not below 0.9 x itself
        control=[q < 0.9 for q in pd_ratios] or None,
    )
    diagnosis = None
    if j.verdict != "confirmed":
        diagnosis = Diagnosis(
            "underpowered",
            "the pathwise gradient does not reach 0.9 x the initial cost in these steps "
            "either: more steps decide"
            if j.why == "control fails"
            else "GG falls short of 0.9 x on some seed where the pathwise gradient gets "
            "there: its larger per-coordinate variance slows Adam at this batch size; "
            "more paths per step decide",
        )
    return dict(
        verdict=j,
        diagnosis=diagnosis,
        evidence={
            "final_over_initial": ratios,
            "control_final_over_initial": pd_ratios,
            "initial_cost": [r["cost"][0] for r in gg_runs],
            "pathwise_final": race["pathwise_reverse"]["cost"][-1],
            "lr_final": race["lr"]["cost"][-1],
        },
    )
