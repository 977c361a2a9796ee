"""The chapter's experiments on the gradient estimators, one driver per question (chapter
``book/gradient_estimators.md``; Wang, Blanchet & Glynn, NeurIPS 2024).

Each returns plain numbers / tensors for the notebook to plot;
:mod:`~diffctrl.gradients.summaries` turns them into the record's values and
:mod:`~diffctrl.gradients.analysis` into its verdicts:

- :func:`side_by_side`: all estimators on the same Brownian increments, with the exact identities
  between them (forward = reverse sensitivities path by path; GG averaged over its random step =
  reverse-mode pathwise gradient when only the drift and costs depend on theta);
- :func:`unbiasedness`: z-scores and Hotelling's test of each estimator against a reference
  (an exact gradient, or central finite differences on independent paths), over seeds;
  :func:`fd_unbiasedness` runs it against finite differences on several problems;
- :func:`stderr_ratios`: per-coordinate standard errors of one estimator over another (the
  paper's Fig. 1(b) question), over seeds; :func:`stderr_ratio_study` over network widths,
  split by coordinates inside / outside sigma, with the seconds per estimate that make it an
  equal-time comparison;
- :func:`policy_race`: policy optimisation driven by each estimator (cost vs wall time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ..stats import coordinate_z, hotelling_test, two_sample_test
from .costs import time_methods
from .estimators import METHODS, estimate_gradient
from .generator_gradient import generator_gradient
from .optimise import optimise_policy
from .pathwise import pathwise_reverse
from .problems import point_mass_lq
from .references import finite_difference_gradient
from .sde import ControlledSDE, brownian_increments

__all__ = [
    "applicable_methods",
    "drift_coords",
    "fd_unbiasedness",
    "lr_refusal",
    "policy_race",
    "rao_blackwell_gap",
    "side_by_side",
    "stderr_ratio_study",
    "stderr_ratios",
    "unbiasedness",
]


def _gen(seed: int, device) -> torch.Generator:
    return torch.Generator(device=torch.device(device)).manual_seed(int(seed))


def _noise(problem, theta, n_steps, n_paths, seed):
    return brownian_increments(
        n_steps,
        n_paths,
        problem.m,
        problem.T / n_steps,
        _gen(seed, theta.device),
        dtype=theta.dtype,
        device=theta.device,
    )


def applicable_methods(
    problem: ControlledSDE, methods: Sequence[str] = METHODS
) -> list[str]:
    """``methods`` without the likelihood ratio when sigma depends on theta."""
    return [m for m in methods if not (m == "lr" and problem.sigma_depends_on_theta)]


def side_by_side(
    problem: ControlledSDE,
    theta: torch.Tensor,
    *,
    n_paths: int,
    n_steps: int,
    seed: int,
    rb_paths: int = 8,
) -> dict[str, Any]:
    """All applicable estimators on one set of increments, and the identities between them.

    Returns ``estimates`` ({method: GradientEstimate}), ``fwd_rev_max_diff`` (max over paths and
    coordinates of |forward - reverse|), ``rb_rel_gap`` (max |mean_k GG(kappa = k) - reverse|
    over max |reverse|, on ``rb_paths`` paths, over the coordinates that do not enter sigma,
    see :func:`rao_blackwell_gap`) and ``lr_error`` (the likelihood ratio's refusal, if any).
    """
    noise = _noise(problem, theta, n_steps, n_paths, seed)
    estimates, lr_error = {}, None
    for m in METHODS:
        try:
            estimates[m] = estimate_gradient(
                m, problem, theta, noise=noise, generator=_gen(seed + 1, theta.device)
            )
        except ValueError as exc:
            if m != "lr":
                raise
            lr_error = str(exc)
    fwd, rev = (
        estimates["pathwise_forward"].samples,
        estimates["pathwise_reverse"].samples,
    )
    out = dict(
        estimates=estimates,
        lr_error=lr_error,
        fwd_rev_max_diff=float((fwd - rev).abs().max()),
        rb_rel_gap=rao_blackwell_gap(
            problem, theta, n_paths=rb_paths, n_steps=n_steps, seed=seed + 2
        ),
    )
    return out


def drift_coords(problem: ControlledSDE) -> list[int]:
    """Coordinates of theta that do not enter sigma (all of them unless
    ``problem.info["sigma_coords"]`` says otherwise)."""
    if not problem.sigma_depends_on_theta:
        return list(range(problem.n_params))
    if "sigma_coords" not in problem.info:
        raise ValueError(
            f"problem {problem.name!r}: sigma depends on theta but "
            "info['sigma_coords'] does not say through which coordinates"
        )
    sig = set(problem.info["sigma_coords"])
    return [i for i in range(problem.n_params) if i not in sig]


def lr_refusal(
    problem: ControlledSDE, theta: torch.Tensor, n_steps: int = 2
) -> str | None:
    """The likelihood ratio's error message on ``problem`` (``None`` if it accepts it)."""
    try:
        estimate_gradient(
            "lr",
            problem,
            theta,
            n_paths=2,
            n_steps=n_steps,
            generator=_gen(0, theta.device),
        )
    except ValueError as exc:
        return str(exc)
    return None


def rao_blackwell_gap(
    problem: ControlledSDE,
    theta: torch.Tensor,
    *,
    n_paths: int,
    n_steps: int,
    seed: int,
) -> float:
    """``max |(1/N) sum_k GG(kappa = k) - PD| / max |PD|`` on common paths, over the
    coordinates that do not enter sigma (0 up to rounding; ``nan`` if there are none)."""
    coords = drift_coords(problem)
    if not coords:
        return math.nan
    noise = _noise(problem, theta, n_steps, n_paths, seed)
    pd = pathwise_reverse(problem, theta, noise=noise).samples[:, coords]
    avg = (
        sum(
            generator_gradient(
                problem,
                theta,
                noise=noise,
                kappa=torch.full((n_paths,), k, device=theta.device),
            ).samples
            for k in range(n_steps)
        )[:, coords]
        / n_steps
    )
    return float((avg - pd).abs().max() / pd.abs().max())


def unbiasedness(
    problem: ControlledSDE,
    theta: torch.Tensor,
    methods: Sequence[str],
    *,
    n_paths: int,
    n_steps: int,
    seeds: Sequence[int],
    exact: torch.Tensor | None = None,
    fd_eps: float = 1e-4,
) -> list[dict[str, Any]]:
    """Each method's samples against ``exact`` (Hotelling's test), or, with ``exact=None``,
    against central finite differences with common random numbers computed on *independent*
    paths (two-sample test). Independent, because a pathwise estimator and finite differences
    on the same paths agree so closely that the paired test would detect the finite
    differences' own ``O(eps^2)`` bias.

    One row per (method, seed): ``max_abs_z``, ``z (n,)``, ``p``, ``mean``, ``stderr``,
    ``ref`` (the exact gradient or the FD mean) and ``ref_se``.
    """
    rows = []
    for seed in seeds:
        noise = _noise(problem, theta, n_steps, n_paths, seed)
        fd = None
        if exact is None:
            fd = finite_difference_gradient(
                problem,
                theta,
                eps=fd_eps,
                noise=_noise(problem, theta, n_steps, n_paths, seed + 5003),
            )
            ref, ref_se = fd.mean(0), fd.std(0) / math.sqrt(fd.shape[0])
        else:
            ref, ref_se = exact, torch.zeros_like(exact)
        for m in methods:
            est = estimate_gradient(
                m, problem, theta, noise=noise, generator=_gen(seed + 1, theta.device)
            )
            z = coordinate_z(est.samples, ref, ref_se)
            p = (
                hotelling_test(est.samples, exact)["p"]
                if fd is None
                else two_sample_test(est.samples, fd)["p"]
            )
            rows.append(
                dict(
                    method=m,
                    seed=seed,
                    max_abs_z=float(z.abs().max()),
                    z=z.cpu(),
                    p=p,
                    mean=est.mean.cpu(),
                    stderr=est.stderr.cpu(),
                    ref=ref.cpu(),
                    ref_se=ref_se.cpu(),
                )
            )
    return rows


def fd_unbiasedness(
    cases: dict[str, tuple[ControlledSDE, torch.Tensor]],
    *,
    n_paths: int,
    n_steps: int,
    seeds: Sequence[int],
    methods: Sequence[str] = ("gg", "pathwise_reverse", "lr"),
    fd_eps: float = 1e-4,
) -> dict[str, list[dict[str, Any]]]:
    """:func:`unbiasedness` against central finite differences on independent paths, for each
    problem ``cases[name] = (problem, theta)`` and each of ``methods`` that applies to it
    (:func:`applicable_methods`): ``{name: rows}``."""
    out = {}
    for name, (p_, th_) in cases.items():
        out[name] = unbiasedness(
            p_,
            th_,
            applicable_methods(p_, methods),
            n_paths=n_paths,
            n_steps=n_steps,
            seeds=seeds,
            exact=None,
            fd_eps=fd_eps,
        )
    return out


def stderr_ratios(
    problem: ControlledSDE,
    theta: torch.Tensor,
    *,
    n_paths: int,
    n_steps: int,
    seeds: Sequence[int],
    num: str = "gg",
    den: str = "pathwise_reverse",
) -> list[dict[str, Any]]:
    """Per-coordinate ``stderr(num) / stderr(den)`` from independent runs, one row per seed.

    Coordinates where ``den`` has zero spread (e.g. dead ReLU units) are dropped. Row:
    ``ratios (k,)``, ``coords (k,)`` (their indices), ``median``, ``frac_below_1``,
    ``geo_mean``.
    """
    rows = []
    for seed in seeds:
        a = estimate_gradient(
            num,
            problem,
            theta,
            n_paths=n_paths,
            n_steps=n_steps,
            generator=_gen(seed, theta.device),
        )
        b = estimate_gradient(
            den,
            problem,
            theta,
            n_paths=n_paths,
            n_steps=n_steps,
            generator=_gen(seed + 7919, theta.device),
        )
        keep = (b.stderr > 0) & (a.stderr > 0)
        r = (a.stderr[keep] / b.stderr[keep]).cpu()
        rows.append(
            dict(
                seed=seed,
                ratios=r,
                coords=keep.nonzero()[:, 0].cpu(),
                median=float(r.median()),
                frac_below_1=float((r < 1).double().mean()),
                geo_mean=float(r.log().mean().exp()),
            )
        )
    return rows


def stderr_ratio_study(
    widths: Sequence[int],
    cases: dict[str, tuple[ControlledSDE, torch.Tensor]],
    *,
    n_paths: int,
    n_steps: int,
    seeds: Sequence[int],
    seed: int,
    device,
    time_paths: int = 0,
    time_repeats: int = 5,
) -> dict[str, Any]:
    """GG's standard errors over the pathwise ones (the paper's Fig. 1(b) question), and
    the seconds per estimate that turn them into an equal-time comparison.

    For each width ``w`` of ``widths``: the point mass with a ``(w, w, w)`` network (float64,
    initialised from ``seed``), :func:`stderr_ratios` of GG over reverse-mode pathwise per
    seed (group ``"LQ n=<n>"``; the per-seed medians in ``lq_medians``) and of pathwise over
    an independent run of itself (``pd_medians``, the baseline: true ratio 1). For each problem
    ``cases[label] = (problem, theta)`` whose sigma depends on theta: GG over pathwise, split
    into the coordinates outside sigma (group ``"<label> drift"``) and inside it
    (``"<label> sigma"``). Returns ``ratio_rows`` ({group: [ratios (k,) per seed]}),
    ``lq_medians`` and ``pd_medians`` (seed by seed within each width, widths in order) and
    ``lq_n`` (the ``n`` of each entry). With ``time_paths > 0`` also, per width, the
    median s.e. ratio of pathwise over the likelihood ratio (``lr_medians``, the equal-time
    control) and ``seconds`` ({"LQ n=<n>": {method: seconds per estimate of ``time_paths``
    paths}} from :func:`~diffctrl.gradients.costs.time_methods` with ``time_repeats``
    rounds: GG, forward and reverse pathwise, the likelihood ratio, and reverse again,
    timed independently, ``"pathwise_reverse_2"``, the baseline's).
    """
    if time_paths < 0:
        raise ValueError(f"time_paths must be >= 0, got {time_paths!r}")
    ratio_rows, lq_medians, pd_medians, lq_n = {}, [], [], []
    lr_medians, seconds = [], {}
    timed = ("gg", "pathwise_forward", "pathwise_reverse", "lr", "pathwise_reverse")
    for w in widths:
        p_, th_ = point_mass_lq(
            hidden=(w,) * 3,
            generator=_gen(seed, device),
            dtype=torch.float64,
            device=device,
        )
        kw = dict(n_paths=n_paths, n_steps=n_steps, seeds=seeds)
        rows = stderr_ratios(p_, th_, **kw)
        ratio_rows[f"LQ n={p_.n_params}"] = [r["ratios"] for r in rows]
        lq_medians += [r["median"] for r in rows]
        lq_n += [p_.n_params] * len(rows)
        # baseline: pathwise against an independent run of itself (true ratio 1)
        pd_rows = stderr_ratios(p_, th_, num="pathwise_reverse", **kw)
        pd_medians += [r["median"] for r in pd_rows]
        if time_paths:
            lr_rows = stderr_ratios(p_, th_, num="pathwise_reverse", den="lr", **kw)
            lr_medians += [r["median"] for r in lr_rows]
            t = time_methods(
                p_,
                th_,
                timed,
                n_paths=time_paths,
                n_steps=n_steps,
                repeats=time_repeats,
            )
            seconds[f"LQ n={p_.n_params}"] = dict(zip(timed[:4], t)) | {
                "pathwise_reverse_2": t[4]
            }
    for label, (p_, th_) in cases.items():
        rows = stderr_ratios(p_, th_, n_paths=n_paths, n_steps=n_steps, seeds=seeds)
        in_sigma = set(p_.info["sigma_coords"])
        for part, pick in (
            ("drift", lambda i: i not in in_sigma),
            ("sigma", lambda i: i in in_sigma),
        ):
            ratio_rows[f"{label} {part}"] = [
                r["ratios"][[pick(int(i)) for i in r["coords"]]] for r in rows
            ]
    return dict(
        ratio_rows=ratio_rows,
        lq_medians=lq_medians,
        pd_medians=pd_medians,
        lq_n=lq_n,
        lr_medians=lr_medians,
        seconds=seconds,
    )


def policy_race(
    problem: ControlledSDE,
    theta0: torch.Tensor,
    methods: Sequence[str],
    *,
    n_iters: int,
    n_paths: int,
    n_steps: int,
    n_eval: int,
    lr: float,
    seed: int,
    eval_every: int = 1,
) -> dict[str, dict[str, Any]]:
    """:func:`~diffctrl.gradients.optimise.optimise_policy` for each method from the same
    start, the same gradient noise and the same evaluation increments (``n_eval`` paths)."""
    eval_noise = _noise(problem, theta0, n_steps, n_eval, seed + 12345)
    return {
        m: optimise_policy(
            problem,
            theta0,
            m,
            n_iters=n_iters,
            n_paths=n_paths,
            n_steps=n_steps,
            eval_noise=eval_noise,
            lr=lr,
            seed=seed,
            eval_every=eval_every,
        )
        for m in methods
    }
