"""The regularity chapter's measured Lipschitz constants against the [ours] bounds
(``notebooks/pift_regularity.md``, ``book/pift_regularity.md``) and the verdict on the claim
``lip_controls``.

Han, Razaviyayn, Xu (2025, Sec. 3) claim that the controls PI-FT generates stay Lipschitz at
every iteration; :mod:`.regularity` bounds their constants after one Bellman step. Here the
runs of :mod:`.regularity_experiments` are read against those bounds: the measured/bound ratios
(:func:`lipschitz_ratios`), the one-step fixed-point bound (:func:`a_priori`), and the rules of
the two Lipschitz claims, :func:`bound_test` and :func:`regularity_verdict`
(:func:`lipschitz_verdicts` applies them). The verdicts on the measured constants themselves
are :mod:`.regularity_analysis`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..repro import Diagnosis, Outcome, judge
from .pift import PIFTGridResult
from .regularity import regularity_ratios

__all__ = [
    "a_priori",
    "bound_test",
    "lipschitz_ratios",
    "lipschitz_verdicts",
    "regularity_verdict",
]


def lipschitz_ratios(runs: dict) -> Outcome:
    """Measured/bound ratios (:func:`~.regularity.regularity_ratios`) of every 1-D run: the
    largest over (t, m) per run and over all runs, and the largest measured Lip(u^(m))."""
    ratios = {key: regularity_ratios(r_) for key, (_, r_) in runs.items()}
    all_u = [np.nanmax(rt["u"]) for rt in ratios.values()]
    all_v = [np.nanmax(rt["v"]) for rt in ratios.values()]
    values = {
        "ratio_u_max_1d": float(max(all_u)),
        "ratio_v_max_1d": float(max(all_v)),
        "lip_u_sup_over_iterations": float(
            max(max(np.max(x) for x in r_.lip_u) for _, r_ in runs.values())
        ),
    }
    return Outcome(
        values, data={"ratios": ratios, "max": dict(zip(runs, zip(all_u, all_v)))}
    )


def a_priori(result: PIFTGridResult, reward, ratios: dict) -> Outcome:
    """Whether the measured Lip(grad V_t) of the run ``result`` stays below the one-step
    fixed-point bound (``ratios["fixed_point"]``) at every step, with the largest measured
    constant and the reward's Lip(grad r) (the verdict on our a priori bound is
    :func:`~.regularity_analysis.apriori_bound_verdict`)."""
    values = {
        "fixed_point_bound_holds": bool(
            np.all(result.L[:-1] <= ratios["fixed_point"] * 1.001 + 1e-9)
        ),
        "L_max_1d": float(np.nanmax(result.L[:-1])),
        "bump_lip_grad": float(reward.lip_grad),
    }
    return Outcome(values)


def bound_test(ratio, hi: float = 1.001, lo: float = 0.5) -> bool:
    """Whether measured/bound ratios ``ratio`` (any shape, NaN where undefined) hold the bound
    and it constrains: the largest finite ratio is at most ``hi`` (the bound holds up to
    round-off) and at least ``lo`` (the bound is not vacuous). ``False`` when no ratio is
    finite (nothing measured)."""
    r = np.asarray(ratio, dtype=float)
    r = r[np.isfinite(r)]
    return bool(r.size and lo <= r.max() <= hi)


def regularity_verdict(
    settings: Sequence[dict[str, np.ndarray]],
    kind: str,
    base_col: int = 0,
    names: Sequence[str] | None = None,
    hi: float = 1.001,
    lo: float = 0.5,
) -> dict:
    """The verdict of a regularity claim over ``settings`` (each a
    :func:`~.regularity.regularity_ratios` dict) as the keyword arguments of
    :meth:`diffctrl.repro.Record.verdict`. ``kind``: ``"u"`` (controls) or ``"v"`` (value
    gradients). A setting passes when :func:`bound_test` holds on its whole (T, m) array; its
    baseline is the same test on the column ``base_col`` alone (0: zero iterations). The
    verdict is :func:`~diffctrl.repro.judge` of the per-setting outcomes against **one**
    baseline outcome, passing when it passes in *any* setting: the settings are different
    problems, not replications, and the claim is "in every setting", so one setting where
    zero iterations meet the test already makes a positive verdict ``"inconclusive"``. The
    evidence holds ``settings`` (``names``), ``ratio_max`` and ``baseline_ratio_max`` (0
    where the baseline column has no finite ratio) per setting.
    """
    if kind not in ("u", "v"):
        raise ValueError(f"kind must be 'u' or 'v', got {kind!r}")
    settings = list(settings)
    if not settings:
        raise ValueError("settings must hold at least one regularity_ratios dict")
    if names is not None and len(names) != len(settings):
        raise ValueError(f"{len(names)} names for {len(settings)} settings")
    arrays = [np.asarray(rt[kind], dtype=float) for rt in settings]
    passes = [bound_test(a, hi, lo) for a in arrays]
    base = [bound_test(a[:, base_col : base_col + 1], hi, lo) for a in arrays]
    verdict = judge(passes, any(base))
    evidence: dict = {} if names is None else {"settings": list(names)}
    with np.errstate(all="ignore"):
        evidence["ratio_max"] = [float(np.nanmax(a)) for a in arrays]
        evidence["baseline_ratio_max"] = [
            float(np.nan_to_num(np.nanmax(np.r_[a[:, base_col], 0.0]))) for a in arrays
        ]
    return dict(
        verdict=verdict.verdict,
        baseline_passes=verdict.baseline_passes,
        per_seed=verdict.per_seed,
        why=verdict.why,
        evidence=evidence,
    )


def lipschitz_verdicts(
    ratios_1d: dict, ratios_2d: dict, beta_2d: float, control: dict | None = None
) -> Outcome:
    """Claim ``lip_controls``: :func:`regularity_verdict` of the controls' ratios over every
    1-D run (``ratios_1d[(reward, beta)]``) and the 2-D one; baseline zero iterations (column
    m = 0), passing if it passes in any setting; control the same test on ``control`` (the
    ratios of the 1-D LQ run, where the bound is attained at m = 1)."""
    settings = list(ratios_1d.values()) + [ratios_2d]
    names = [f"{r}, beta={b}" for r, b in ratios_1d] + [f"2-D, beta={beta_2d}"]
    with np.errstate(all="ignore"):
        v = regularity_verdict(settings, "u", base_col=0, names=names)
        ctrl = None if control is None else bound_test(control["u"])
    j = judge(v["per_seed"], baseline=v["baseline_passes"], control=ctrl)
    out = dict(verdict=j, evidence=v["evidence"])
    if j.verdict != "confirmed":
        out["diagnosis"] = Diagnosis(
            "setting",
            "the measured Lip(u^(m)) exceeds our bound B_m, or never reaches half of it, "
            "in some setting (ratio_max per setting)",
        )
    values = {"lip_controls_baseline_passes": v["baseline_passes"]}
    if control is not None:
        with np.errstate(all="ignore"):
            values["lq_control_ratio_u_max"] = float(np.nanmax(control["u"]))
    return Outcome(values, {"lip_controls": out})
