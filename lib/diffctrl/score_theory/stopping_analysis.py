"""Record values and verdicts of the chapter's overfitting section (C3: the U-shape of kernel
GD and of the network, and the stopping rules on it; chapter ``book/score_estimation.md``;
Han, Razaviyayn & Xu 2024, v4 Sec. 5), re-exported by
:mod:`~diffctrl.score_theory.analysis`.

They read the runs of :func:`~diffctrl.score_theory.experiments.early_stopping_runs`: the
trajectories on noisy labels, their noise-free baselines, and the stopping choices on them.
"""

from __future__ import annotations

import numpy as np

from ..repro import Diagnosis, Judgement, judge

__all__ = ["early_stopping_values", "early_stopping_verdicts"]


def _summaries(u_runs: list[dict]) -> tuple[dict, dict]:
    ks = {k: np.array([r["ks"][k] for r in u_runs]) for k in u_runs[0]["ks"]}
    ns_ = {k: np.array([r["ns"][k] for r in u_runs]) for k in u_runs[0]["ns"]}
    return ks, ns_


def early_stopping_values(u_runs: list[dict], max_steps: int) -> dict:
    """C3 from :func:`~diffctrl.score_theory.experiments.early_stopping_runs`: how far above
    its best error each trajectory ends (kernel GD, the network, kernel GD after the
    network's ``max_steps``), the best errors and steps, the validation and RWY rules'
    errors over the oracle's and their steps (also with the labels rescaled to the rule's
    assumption), the network's final training loss and the Bayes risk."""
    ks, ns_ = _summaries(u_runs)
    k_same = np.array([r["kernel_at_net_last"] for r in u_runs])
    scaled = np.array([r["err_rwy_scaled"] for r in u_runs]) / ks["err_oracle"]
    return {
        "u_ratio_kernel_min": float((ks["err_last"] / ks["err_oracle"]).min()),
        "u_ratio_net_min": float((ns_["err_last"] / ns_["err_oracle"]).min()),
        "u_ratio_net_median": float(np.median(ns_["err_last"] / ns_["err_oracle"])),
        "u_ratio_kernel_at_net_last_min": float((k_same / ks["err_oracle"]).min()),
        "u_err_oracle_net": float(ns_["err_oracle"].mean()),
        "u_err_oracle_kernel": float(ks["err_oracle"].mean()),
        "u_err_init": float(ks["err_init"].mean()),
        "u_k_oracle_net": float(np.median(ns_["k_oracle"])),
        "u_k_oracle_kernel": float(np.median(ks["k_oracle"])),
        "u_k_val_net": float(np.median(ns_["k_val"])),
        "u_val_over_oracle_net": float(np.median(ns_["err_val"] / ns_["err_oracle"])),
        "u_val_over_oracle_kernel": float(np.median(ks["err_val"] / ks["err_oracle"])),
        "u_k_rwy": float(np.median(ks["k_rwy"])),
        "u_oracle_over_rwy_steps": float(
            np.median(ks["k_oracle"] / np.maximum(ks["k_rwy"], 1e-12))
        ),
        "u_max_steps": max_steps,
        "n_seeds": len(u_runs),
        "u_rwy_over_oracle_kernel": float(np.median(ks["err_rwy"] / ks["err_oracle"])),
        "u_net_train_last": float(np.mean([r["net"]["train"][-1] for r in u_runs])),
        "u_bayes": float(np.mean([r["bayes"] for r in u_runs])),
        "u_norm_lb": float(np.median([r["norm_lb"] for r in u_runs])),
        "u_k_rwy_scaled": float(np.median([r["k_rwy_scaled"] for r in u_runs])),
        "u_rwy_scaled_over_oracle_kernel": float(np.median(scaled)),
        "u_val_large_over_oracle_net": float(
            np.median([r["net_val_large"] for r in u_runs] / ns_["err_oracle"])
        ),
        "u_val_large_over_oracle_kernel": float(
            np.median([r["kernel_val_large"] for r in u_runs] / ks["err_oracle"])
        ),
        **_clean_values(u_runs),
    }


def _last_over_best(curves: dict) -> float:
    return float(curves["test"][-1] / curves["test"].min())


def _clean_values(u_runs: list[dict]) -> dict:
    """The U-shape's baseline (runs on the noise-free labels ``f*(z_i)``) and the evidence that
    the network reaches overfitting: its last training loss below the label noise ``C``."""
    if "clean_net" not in u_runs[0]:
        return {}
    below = [float(r["net"]["train"][-1]) < r["bayes"] for r in u_runs]
    return {
        "u_clean_ratio_net_max": max(_last_over_best(r["clean_net"]) for r in u_runs),
        "u_clean_ratio_kernel_max": max(
            _last_over_best(r["clean_kernel"]) for r in u_runs
        ),
        "u_net_train_last_max": max(float(r["net"]["train"][-1]) for r in u_runs),
        "u_net_below_noise": int(sum(below)),
    }


def early_stopping_verdicts(u_runs: list[dict]) -> dict[str, dict]:
    """The C3 claims, ``{key: verdict kwargs}``, each judged by
    :func:`~diffctrl.repro.judge` over seeds with its baseline and control:

    - ``ushape_kernel`` / ``ushape_net``: the last iterate's test error >= 1.5 x the best one;
      baseline, the same runs on the noise-free labels ``f*(z_i)``; control of the network,
      kernel GD on the same data after the network's number of steps (the budget reaches
      overfitting if the kernel the network tracks overfits within it);
    - ``early_stop`` (the network's validation-stopped error <= 1.25 x its oracle's) and
      ``rwy_rule`` (kernel GD at the RWY step, labels rescaled, <= 1.25 x the oracle's):
      baseline, the last iterate; control, the same trajectory stopped by the validation
      rule on the large hold-out set (``*_val_large``: little hold-out noise).
    """
    ks, ns_ = _summaries(u_runs)
    k_same = np.array([r["kernel_at_net_last"] for r in u_runs]) / ks["err_oracle"]
    has_clean = "clean_net" in u_runs[0]
    out = {}
    for key, ratio, clean, ctrl in (
        ("ushape_kernel", ks["err_last"] / ks["err_oracle"], "clean_kernel", None),
        ("ushape_net", ns_["err_last"] / ns_["err_oracle"], "clean_net", k_same),
    ):
        base = (
            np.array([_last_over_best(r[clean]) for r in u_runs]) if has_clean else None
        )
        j = judge(
            (ratio >= 1.5).tolist(),
            baseline=None if base is None else (base >= 1.5).tolist(),
            control=None if ctrl is None else (ctrl >= 1.5).tolist(),
        )
        ev = {"last_over_best": ratio, "baseline_last_over_best": base}
        if ctrl is not None:
            ev["control_last_over_best"] = ctrl
        out[key] = dict(verdict=j, evidence=ev)
    net_train = np.array([float(r["net"]["train"][-1]) for r in u_runs])
    out["ushape_net"]["evidence"]["train_last"] = net_train
    out["ushape_net"]["evidence"]["bayes"] = [r["bayes"] for r in u_runs]
    j = out["ushape_net"]["verdict"]
    if j.why == "baseline passes":
        out["ushape_net"]["diagnosis"] = Diagnosis(
            "underpowered",
            "the network trained on the noise-free labels rises 1.5-fold too: the rise is "
            "not caused by the label noise, so the criterion does not isolate overfitting",
        )
    elif j.control_passes is False:
        out["ushape_net"]["diagnosis"] = Diagnosis(
            "underpowered",
            "the step budget (u_max_steps) is too short even for kernel GD "
            "to overfit 1.5-fold; a longer budget in the same time units (step x steps) "
            "would decide",
        )
    elif j.verdict != "confirmed":
        out["ushape_net"]["diagnosis"] = Diagnosis(
            "setting",
            "kernel GD overfits within the network's step budget but the network, at "
            "finite width, fits the noise directions of its kernel later than the "
            "infinite-width kernel does (it has left the kernel regime); a longer budget "
            "or a wider network would decide",
        )
    if out["ushape_kernel"]["verdict"].verdict != "confirmed":
        out["ushape_kernel"]["diagnosis"] = Diagnosis(
            "underpowered",
            "kernel GD was not followed far enough towards interpolation "
            "(u_kernel_max_steps) for its error to rise 1.5-fold",
        )
    scaled = np.array([r["err_rwy_scaled"] for r in u_runs]) / ks["err_oracle"]
    unscaled = ks["err_rwy"] / ks["err_oracle"]
    large = {
        who: np.array([r[f"{who}_val_large"] for r in u_runs]) / s["err_oracle"]
        for who, s in (("net", ns_), ("kernel", ks))
    }
    for key, ratio, last, ctrl in (
        (
            "early_stop",
            ns_["err_val"] / ns_["err_oracle"],
            ns_["err_last"] / ns_["err_oracle"],
            large["net"],
        ),
        ("rwy_rule", scaled, ks["err_last"] / ks["err_oracle"], large["kernel"]),
    ):
        j = judge(
            (ratio <= 1.25).tolist(),
            baseline=(last <= 1.25).tolist(),
            control=(ctrl <= 1.25).tolist(),
        )
        out[key] = dict(
            verdict=j,
            evidence={
                "over_oracle": ratio,
                "baseline_over_oracle": last,
                "control_over_oracle": ctrl,
                "unscaled_rwy_over_oracle": unscaled,
            },
        )
        if j.verdict in ("not reproduced", "inconclusive"):
            out[key]["diagnosis"] = _stopping_diagnosis(key, j)
    return out


def _stopping_diagnosis(key: str, j: Judgement) -> Diagnosis:
    """Why a stopping rule's verdict is negative or inconclusive."""
    if j.why == "baseline passes":
        return Diagnosis(
            "underpowered",
            "the last iterate is within 1.25 x the oracle's error too: the runs did not "
            "reach overfitting, so stopping early cannot be told from not stopping",
        )
    if j.why == "control fails":
        return Diagnosis(
            "underpowered",
            "even the validation rule on the large hold-out set misses 1.25 x the oracle's "
            "error: the criterion is out of reach on these runs",
        )
    if key == "early_stop":
        return Diagnosis(
            "underpowered",
            "the validation loss on n/4 noisy pairs (noise variance C per pair) is too "
            "noisy to place the stop on some seeds, while the same rule on the large "
            "hold-out set (the control) does: the rule works, our hold-out is small",
        )
    return Diagnosis(
        "setting",
        "the rule assumes ||f*||_H <= 1 and a bounded kernel; our f* is rescaled by a lower "
        "bound on its norm and the kernel normalised by its largest value on the sample, so "
        "the rule's constants are not the paper's truncated-domain ones",
    )
