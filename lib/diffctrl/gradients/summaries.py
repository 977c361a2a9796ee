"""Record values and printed summaries of the gradient-estimator chapter (chapter
``book/gradient_estimators.md``; Wang, Blanchet & Glynn, NeurIPS 2024).

The functions read the results of the drivers (:mod:`~diffctrl.gradients.experiments`,
:func:`~diffctrl.gradients.costs.benchmark_estimators`,
:func:`~diffctrl.gradients.costs.count_work`) and return what the notebook records in one
line: a dict of headline numbers for :meth:`~diffctrl.repro.Record.update` (``*_values``), a
table (``se_ratio_summary``), or the rounded lines it prints (``summary``,
``timing_summary``). The verdicts are in :mod:`~diffctrl.gradients.analysis`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..stats import loglog_slope
from .estimators import METHODS
from .sde import ControlledSDE

__all__ = [
    "benchmark_values",
    "count_values",
    "fd_unbiasedness_values",
    "lq_unbiasedness_values",
    "race_values",
    "se_ratio_summary",
    "se_ratio_values",
    "se_time_values",
    "side_by_side_values",
    "summary",
    "timing_summary",
]

Rows = Sequence[dict[str, Any]]
FLAT = 2e5  # "small n": the range of the runtime claim's caveat


def side_by_side_values(
    side: dict[str, Any], problem: ControlledSDE, lr_error: str | None
) -> dict:
    """The identities of :func:`~diffctrl.gradients.experiments.side_by_side` (forward =
    reverse, GG averaged over kappa = reverse), whether the likelihood ratio refused the
    volatility network (``lr_error``), and median standard-error ratios over reverse mode."""
    se = {m: e.stderr for m, e in side["estimates"].items()}
    return {
        "n_side": problem.n_params,
        "fwd_rev_max_diff": side["fwd_rev_max_diff"],
        "rb_rel_gap": side["rb_rel_gap"],
        "lr_refused_vol": int(lr_error is not None),
        "se_lr_over_pd_median": float((se["lr"] / se["pathwise_reverse"]).median()),
        "se_gg_over_pd_median_side": float(
            (se["gg"] / se["pathwise_reverse"]).median()
        ),
    }


def lq_unbiasedness_values(
    lq_rows: Rows, wrong_ref: Rows, exact: torch.Tensor, exact_ode: torch.Tensor
) -> dict:
    """Unbiasedness on the LQ point mass (rows of
    :func:`~diffctrl.gradients.experiments.unbiasedness` against the Euler chain's exact
    gradient): worst ``|z|`` and smallest Hotelling p per method and overall; the relative
    gap between the Euler chain's gradient and the continuous-time one; the largest p of GG
    against that wrong reference (``wrong_ref``, the claim's baseline)."""
    v = {}
    for m in METHODS:
        rows = [r for r in lq_rows if r["method"] == m]
        v[f"lq_max_abs_z_{m}"] = max(r["max_abs_z"] for r in rows)
        v[f"lq_min_p_{m}"] = min(r["p"] for r in rows)
    v["lq_worst_abs_z"] = max(r["max_abs_z"] for r in lq_rows)
    v["lq_min_p"] = min(r["p"] for r in lq_rows)
    v["euler_vs_ode_rel"] = float((exact - exact_ode).norm() / exact_ode.norm())
    v["lq_gg_vs_ode_max_p"] = max(r["p"] for r in wrong_ref)
    return v


def fd_unbiasedness_values(fd_rows: dict[str, Rows]) -> dict:
    """Unbiasedness against finite differences
    (:func:`~diffctrl.gradients.experiments.fd_unbiasedness`): worst ``|z|`` and smallest p per problem and method, overall, and
    GG's worst ``|z|``."""
    v = {}
    for name, rows_ in fd_rows.items():
        for m in dict.fromkeys(r["method"] for r in rows_):
            rows = [r for r in rows_ if r["method"] == m]
            v[f"fd_max_abs_z_{name}_{m}"] = max(r["max_abs_z"] for r in rows)
            v[f"fd_min_p_{name}_{m}"] = min(r["p"] for r in rows)
    all_fd = [r for rows in fd_rows.values() for r in rows]
    v["fd_worst_abs_z"] = max(r["max_abs_z"] for r in all_fd)
    v["fd_min_p"] = min(r["p"] for r in all_fd)
    v["fd_worst_abs_z_gg"] = max(r["max_abs_z"] for r in all_fd if r["method"] == "gg")
    return v


def benchmark_values(bench: Rows) -> dict:
    """The runtime / memory table of :func:`~diffctrl.gradients.costs.benchmark_estimators`
    (rows with ``peak_MB``): per method the ``n``, seconds and peak MB of the runs that
    completed and the largest ``n``; forward / GG time and memory at the largest ``n`` both
    ran, GG / reverse time at the largest ``n`` both ran (and its inverse); GG's growth in
    time and ``n`` overall and over ``n <= 2e5``; the log-log slopes of time against ``n``
    (GG overall and over ``n <= 2e5``, forward sensitivities) and the number of sizes each
    is fitted to (``*_points``); torch's thread count.
    Timings: every value but the ``n``'s."""
    ok = [r for r in bench if r["status"] == "ok"]
    v = {}
    for m in METHODS:
        rows = [r for r in ok if r["method"] == m]
        v[f"bench_n_{m}"] = [r["n"] for r in rows]
        v[f"bench_seconds_{m}"] = [r["seconds"] for r in rows]
        v[f"bench_peak_mb_{m}"] = [r["peak_MB"] for r in rows]
        v[f"largest_n_{m}"] = max(r["n"] for r in rows)
    by = {(r["method"], r["n"]): r for r in ok}
    common = max(n for (m, n) in by if m == "pathwise_forward" and ("gg", n) in by)
    top = max(n for (m, n) in by if m == "gg" and ("pathwise_reverse", n) in by)
    fwd, gg, rev = (
        by[("pathwise_forward", common)],
        by[("gg", common)],
        by[("pathwise_reverse", top)],
    )
    v["n_fwd_vs_gg"] = common
    v["fwd_over_gg_time"] = fwd["seconds"] / gg["seconds"]
    v["fwd_over_gg_memory"] = fwd["peak_MB"] / max(gg["peak_MB"], 1e-3)
    v["n_rev_vs_gg"] = top
    v["gg_over_rev_time"] = by[("gg", top)]["seconds"] / rev["seconds"]
    v["rev_over_gg_time"] = rev["seconds"] / by[("gg", top)]["seconds"]
    gg_rows = [r for r in ok if r["method"] == "gg"]
    v["gg_time_growth"] = gg_rows[-1]["seconds"] / gg_rows[0]["seconds"]
    v["gg_n_growth"] = gg_rows[-1]["n"] / gg_rows[0]["n"]
    flat = [r for r in gg_rows if r["n"] <= FLAT]
    v["gg_flat_time_growth"] = flat[-1]["seconds"] / flat[0]["seconds"]
    v["gg_flat_n_growth"] = flat[-1]["n"] / flat[0]["n"]
    v["torch_threads"] = torch.get_num_threads()
    fwd_rows = [r for r in ok if r["method"] == "pathwise_forward"]
    v["gg_time_slope"] = loglog_slope(
        [r["n"] for r in gg_rows], [r["seconds"] for r in gg_rows]
    )
    v["gg_time_slope_small"] = loglog_slope(
        [r["n"] for r in flat], [r["seconds"] for r in flat]
    )
    v["fwd_time_slope"] = loglog_slope(
        [r["n"] for r in fwd_rows], [r["seconds"] for r in fwd_rows]
    )
    v["gg_slope_points"], v["gg_slope_points_small"] = len(gg_rows), len(flat)
    v["fwd_slope_points"] = len(fwd_rows)
    return v


def count_values(count_rows: Rows, d_state: int, n_steps: int) -> dict:
    """Network passes and flops per network evaluation from
    :func:`~diffctrl.gradients.costs.count_work` (at the largest ``n``, and GG's at the
    smallest), beside the counts' leading terms: GG evaluates the network once per step and
    pushes ``d`` tangents from ``kappa + 1`` on (on average ``(N - 1) / 2`` steps); reverse
    mode makes a forward pass and a backward pass of about twice its cost per step."""

    def col(key, m):
        return [r[key] for r in count_rows if r["method"] == m]

    gg_ratio = col("flops_per_eval", "gg")
    return {
        "gg_calls": col("calls", "gg")[-1],
        "fwd_calls": col("calls", "pathwise_forward")[-1],
        "gg_flops_per_eval_first": gg_ratio[0],
        "gg_flops_per_eval_last": gg_ratio[-1],
        "fwd_flops_per_eval_last": col("flops_per_eval", "pathwise_forward")[-1],
        "rev_flops_per_eval_last": col("flops_per_eval", "pathwise_reverse")[-1],
        "gg_evals_theory": n_steps + d_state * (n_steps - 1) / 2,
        "rev_evals_theory": 3 * n_steps,
        "d_state": d_state,
    }


def se_ratio_summary(ratio_rows: dict[str, list[torch.Tensor]]) -> list[dict[str, Any]]:
    """One row per group of :func:`~diffctrl.gradients.experiments.stderr_ratio_study`:
    coordinates, median ratio over coordinates and seeds, per-seed medians, share below 1."""
    return [
        dict(
            group=g,
            coords=len(rs[0]),
            median=float(torch.cat(rs).median()),
            seed_medians=", ".join(f"{float(r.median()):.2f}" for r in rs),
            frac_below_1=float(torch.cat(rs).lt(1).double().mean()),
        )
        for g, rs in ratio_rows.items()
    ]


def se_ratio_values(
    ratio_rows: dict[str, list[torch.Tensor]], pd_medians: Sequence[float] = ()
) -> dict:
    """GG / pathwise standard errors: on the LQ point mass (median, share below 1, smallest
    per-seed median), on the CIR and volatility-network coordinates outside and inside
    sigma (medians), the smallest ratio off sigma and the largest inside it; with
    ``pd_medians`` (pathwise over its independent run, per seed and width) their median
    (``se_ratio_baseline_median``)."""
    by_group = {s_["group"]: s_ for s_ in se_ratio_summary(ratio_rows)}
    lq_all = torch.cat(
        [r for g, rs in ratio_rows.items() if g.startswith("LQ") for r in rs]
    )
    v = {
        "se_ratio_median_lq": float(lq_all.median()),
        "se_ratio_frac_below1_lq": float(lq_all.lt(1).double().mean()),
        "se_ratio_min_seed_median_lq": min(
            float(r.median())
            for g, rs in ratio_rows.items()
            if g.startswith("LQ")
            for r in rs
        ),
    }
    for label, key in (("CIR", "cir"), ("vol. net", "vol")):
        for part in ("drift", "sigma"):
            v[f"se_ratio_median_{key}_{part}"] = by_group[f"{label} {part}"]["median"]
    drift_all = torch.cat(
        [r for g, rs in ratio_rows.items() if not g.endswith("sigma") for r in rs]
    )
    sigma_all = torch.cat(
        [r for g, rs in ratio_rows.items() if g.endswith("sigma") for r in rs]
    )
    v["se_ratio_min_drift"] = float(drift_all.min())
    v["se_ratio_max_sigma"] = float(sigma_all.max())
    if len(pd_medians):
        v["se_ratio_baseline_median"] = float(torch.tensor(list(pd_medians)).median())
    return v


def se_time_values(study: dict[str, Any]) -> dict:
    """The equal-time comparison of
    :func:`~diffctrl.gradients.experiments.stderr_ratio_study` (run with ``time_paths``): with a budget of ``B`` seconds an
    estimator averages ``B / t`` estimates, so its s.e. scales as ``s.e. x sqrt(t)`` (``t``
    its seconds per estimate). Per entry (seed within width), the median s.e. ratio times
    ``sqrt`` of the time ratio: GG against forward sensitivities (``se_time_eff_fwd``, the
    paper's pathwise method; their samples equal reverse mode's path by path) and against
    reverse mode (``se_time_eff_rev``); the baseline, pathwise over its independent run with
    its independent timing (``se_time_eff_base``); the control, pathwise over the likelihood
    ratio (``se_time_eff_control``). Also the time ratios at the widest network. Timings."""
    sec = study["seconds"]
    if not sec:
        raise ValueError("study has no seconds: run stderr_ratio_study with time_paths")
    fwd, rev, base, control = [], [], [], []
    for m, mb, ml, n in zip(
        study["lq_medians"], study["pd_medians"], study["lr_medians"], study["lq_n"]
    ):
        t = sec[f"LQ n={n}"]
        fwd.append(m * (t["gg"] / t["pathwise_forward"]) ** 0.5)
        rev.append(m * (t["gg"] / t["pathwise_reverse"]) ** 0.5)
        base.append(mb * (t["pathwise_reverse"] / t["pathwise_reverse_2"]) ** 0.5)
        control.append(ml * (t["pathwise_reverse"] / t["lr"]) ** 0.5)
    n_top = max(study["lq_n"])
    top = sec[f"LQ n={n_top}"]
    return {
        "se_time_eff_fwd": fwd,
        "se_time_eff_rev": rev,
        "se_time_eff_base": base,
        "se_time_eff_control": control,
        "se_time_eff_fwd_max": max(fwd),
        "se_time_eff_rev_min": min(rev),
        "se_time_eff_control_max": max(control),
        "se_time_n_top": n_top,
        "se_time_fwd_over_gg": top["pathwise_forward"] / top["gg"],
        "se_time_gg_over_rev": top["gg"] / top["pathwise_reverse"],
        "se_time_rev_over_gg": top["pathwise_reverse"] / top["gg"],
    }


def race_values(
    race: dict[str, dict[str, Any]], problem: ControlledSDE, n_iters: int, gg_runs: list
) -> dict:
    """The policy race of :func:`~diffctrl.gradients.experiments.policy_race`: the network
    size, the initial cost, each method's final cost and seconds per Adam step (a timing),
    and the largest final / initial cost ratio of GG over the seeds (``gg_runs``)."""
    v = {"race_n": problem.n_params, "race_initial_cost": race["gg"]["cost"][0]}
    for m, out in race.items():
        v[f"race_final_cost_{m}"] = out["cost"][-1]
        v[f"race_sec_per_iter_{m}"] = out["seconds"][-1] / n_iters
    v["race_gg_ratio_max"] = max(r["cost"][-1] / r["cost"][0] for r in gg_runs)
    return v


def summary(values: dict, claims: dict) -> str:
    """The deterministic headline numbers of a record (``values``) and the verdicts of the
    claims that rest on them (``claims``), rounded: the notebook's checked output."""
    v = values
    lines = [
        f"identities: forward = reverse per path: {v['fwd_rev_max_diff'] < 1e-9}; "
        f"GG averaged over kappa = reverse: {v['rb_rel_gap'] < 1e-9}; LR refuses "
        "sigma(theta): "
        f"{bool(v['lr_refused_vol'])}",
        f"unbiased, LQ exact: worst |z| {v['lq_worst_abs_z']:.3g}, min Hotelling p "
        f"{v['lq_min_p']:.3g}",
        f"unbiased, vs finite differences: worst |z| {v['fd_worst_abs_z']:.3g}, "
        f"min p {v['fd_min_p']:.3g}",
        f"network passes per estimate: GG {v['gg_calls']}, forward sensitivities "
        f"{v['fwd_calls']}",
        f"flops per network evaluation: GG {v['gg_flops_per_eval_first']:.3g} -> "
        f"{v['gg_flops_per_eval_last']:.3g}, forward "
        f"{v['fwd_flops_per_eval_last']:.3g}, "
        f"reverse {v['rev_flops_per_eval_last']:.3g}",
        f"s.e. ratio GG/PD: LQ median {v['se_ratio_median_lq']:.3g} "
        f"(share < 1: {v['se_ratio_frac_below1_lq']:.3g}); CIR drift "
        f"{v['se_ratio_median_cir_drift']:.3g}, sigma "
        f"{v['se_ratio_median_cir_sigma']:.3g}; "
        f"vol. net drift {v['se_ratio_median_vol_drift']:.3g}, "
        f"sigma {v['se_ratio_median_vol_sigma']:.3g}",
        "final cost of the race: "
        + ", ".join(f"{m} {v[f'race_final_cost_{m}']:.3g}" for m in METHODS)
        + f" (start {v['race_initial_cost']:.3g})",
    ]
    lines += [
        f"{key}: {claims[key]['verdict']}"
        for key in ("unbiased", "se_ratio", "policy_opt")
    ]
    return "\n".join(lines)


def timing_summary(values: dict, claims: dict) -> str:
    """The wall-clock numbers of a record and the verdicts that rest on them (Fig. 1 and
    the equal-time comparison): they vary from run to run, so the notebook prints them
    unchecked."""
    v = values
    lines = [
        f"forward sensitivities / GG, time at n = {v['n_fwd_vs_gg']:.3g}: "
        f"{v['fwd_over_gg_time']:.3g}x; "
        f"memory: {v['fwd_over_gg_memory']:.3g}x",
        f"GG / reverse mode, time at n = {v['n_rev_vs_gg']:.3g}: "
        f"{v['gg_over_rev_time']:.3g}x",
        "largest n reached: "
        + ", ".join(f"{m} {v[f'largest_n_{m}']:.3g}" for m in METHODS),
        "seconds per Adam step: "
        + ", ".join(f"{m} {v[f'race_sec_per_iter_{m}']:.3g}" for m in METHODS),
        f"equal time, s.e. x sqrt(seconds) GG / pathwise: forward (largest) "
        f"{v['se_time_eff_fwd_max']:.3g}, reverse (smallest) "
        f"{v['se_time_eff_rev_min']:.3g}",
    ]
    lines += [
        f"{key}: {claims[key]['verdict']}"
        for key in ("runtime_flat", "beats_pathwise", "se_time")
    ]
    return "\n".join(lines)
