"""Experiment drivers of the chapter: many policy-gradient runs advanced as one batch.

Han, Razaviyayn, Xu (arXiv 2303.08431), Sec. 5 (chapter ``book/nearly_lq.md``). A run is a
:class:`RunSpec` (model seed, kernel scale ``l``, spectral radius of the random ``A, B, C``,
initialisation); :func:`run_pg_batch` builds every run's system, stacks them, runs the
policy-gradient loop for all at once, finds each system's reference optimum by multi-start
Newton, and classifies each run's outcome. The notebook only chooses specs and plots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..repro import judge
from .identification import model_free_k_lin
from .landscape import hessian_extremes, optimal_policy
from .policy_gradient import PGResult, policy_gradient, random_stabilizing_policy
from .riccati import k_lin, lqr_gain
from .system import (
    NearlyLQ,
    closed_loop_radius,
    join_policy,
    random_system,
    sphere_points,
    stack_systems,
)

Tensor = torch.Tensor


@dataclass(frozen=True)
class RunSpec:
    """One policy-gradient run: the model and the initial policy.

    ``init``: ``"klin"`` (the paper's ``K^lin``), ``"random"`` (iid Gaussian entries scaled so
    ``E||K0||_F = ||K^lin||_F``, redrawn until stabilising; seed ``init_seed``) or
    ``"model_free"`` (``K^lin`` of the least-squares model from ``n_samples`` transitions).
    """

    seed: int
    scale: float
    spectral_radius: float
    init: str = "klin"
    init_seed: int = 0
    n_samples: int = 0
    noise_std: float = 0.0

    @property
    def model(self) -> tuple:
        return (self.seed, float(self.scale), float(self.spectral_radius))


def cancellation_policy(system: NearlyLQ) -> Tensor:
    """``[K_lqr, B^+ C]``: the LQR gain plus the kernel gain that cancels ``C phi`` as far as
    ``B`` allows (exactly when ``B`` is invertible). A second, stabilising Newton start."""
    K1 = torch.as_tensor(
        lqr_gain(system.A, system.B, system.Q, system.R),
        dtype=system.dtype,
        device=system.device,
    )
    return join_policy(K1, torch.linalg.pinv(system.B) @ system.C)


def initial_policy(system: NearlyLQ, spec: RunSpec) -> tuple[Tensor, dict]:
    """The initial policy of ``spec`` for its (single) ``system``, with notes on how it was made."""
    K_lin = k_lin(system)
    if spec.init == "klin":
        return K_lin, {}
    if spec.init == "random":
        gen = torch.Generator().manual_seed(10_000 + int(spec.init_seed))
        K, draws = random_stabilizing_policy(system, float(K_lin.norm()), gen)
        return K, {"draws": draws}
    if spec.init == "model_free":
        gen = torch.Generator().manual_seed(20_000 + int(spec.init_seed))
        K, est = model_free_k_lin(system, int(spec.n_samples), gen, spec.noise_std)
        err = math.sqrt(
            sum(
                float((getattr(est, k) - getattr(system, k)).square().sum())
                for k in "ABC"
            )
        )
        return K, {"estimation_error": err}
    raise ValueError(
        f"RunSpec.init must be 'klin', 'random' or 'model_free', got {spec.init!r}"
    )


def reference_optima(
    systems: list[NearlyLQ],
    x0: Tensor,
    horizon: int,
    max_iter: int = 40,
    tol: float = 1e-9,
    starts: tuple[str, ...] = ("klin", "cancel"),
    extra_starts: Tensor | None = None,
) -> dict:
    """Multi-start Newton on each system's sample cost: starts ``"klin"`` (``K^lin``) and/or
    ``"cancel"`` (:func:`cancellation_policy`), plus ``extra_starts (R, s, p, n + d)``.

    Returns per system: ``K`` (the best stationary point found), ``cost``, ``grad_norm``,
    ``n_minima`` (distinct points, to 1e-4, among the ``n_converged`` of ``n_starts`` starts
    that converged), ``spread``
    (max cost difference between converged starts), ``mu``/``L`` (Hessian extremes at ``K``),
    ``certified`` (best start converged to ``tol``).
    """
    S = stack_systems(systems)
    makers = {"klin": k_lin, "cancel": cancellation_policy}
    if not starts or any(s not in makers for s in starts):
        raise ValueError(
            f"starts must be a non-empty tuple of {sorted(makers)}, got {starts!r}"
        )
    K_init = torch.stack(
        [torch.stack([makers[k](s) for s in systems]) for k in starts], 1
    )
    if extra_starts is not None:
        K_init = torch.cat([K_init, extra_starts.to(K_init)], 1)
    R_, nstart = K_init.shape[:2]
    X0 = x0.expand(R_, 1, *x0.shape[-2:])
    K, c, g, steps = optimal_policy(S, K_init, X0, horizon, max_iter=max_iter, tol=tol)
    conv = g < 1e-6
    c_masked = torch.where(torch.isfinite(c), c, torch.full_like(c, math.inf))
    best = c_masked.argmin(1)
    Kb = K[torch.arange(R_, device=K.device), best]
    n_min, spread = [], []
    for r in range(R_):
        pts = [K[r, i] for i in range(nstart) if conv[r, i]]
        distinct = []
        for P in pts:
            if all(
                float((P - Q).norm()) > 1e-4 * (1 + float(Q.norm())) for Q in distinct
            ):
                distinct.append(P)
        n_min.append(len(distinct))
        cs = c[r][conv[r]]
        spread.append(float(cs.max() - cs.min()) if cs.numel() > 1 else 0.0)
    mu, L = hessian_extremes(S, Kb, x0.expand(R_, *x0.shape[-2:]), horizon)
    pick = (torch.arange(R_, device=K.device), best)
    return dict(
        K=Kb,
        cost=c[pick].cpu().numpy(),
        grad_norm=g[pick].cpu().numpy(),
        n_minima=np.array(n_min),
        n_converged=conv.sum(1).cpu().numpy(),
        n_starts=nstart,
        spread=np.array(spread),
        mu=np.atleast_1d(mu),
        L=np.atleast_1d(L),
        certified=conv[pick].cpu().numpy(),
        newton_steps=steps.cpu().numpy(),
    )


def classify_runs(
    rel_gap: np.ndarray, diverged: np.ndarray, tol_converged: float
) -> dict:
    """The outcome of every run under one criterion, and the zero-iteration baseline under it.

    ``rel_gap (n_scored, R)``: relative gaps ``(C(K_t) - C*) / C*`` at the scored iterations
    (row 0: ``K_0``); ``diverged (R,)``. A run *converged* when its last scored gap is at most
    ``tol_converged``, *diverged* when it blew up, else *stalled*. Nothing else enters (the
    stability of the final policy is a separate record, not part of "converged"). The
    *baseline* is the run stopped at zero iterations, judged by the same rule on row 0: where
    it converges too, the run's "converged" decides nothing (``decided`` is False).
    Returns ``outcome``, ``outcome_baseline`` (object arrays ``(R,)``), ``decided`` and
    ``gap_closed = 1 - gap_T / gap_0`` (``(R,)``; NaN where ``gap_0 = 0``).
    """
    if not tol_converged > 0:
        raise ValueError(f"tol_converged must be > 0, got {tol_converged}")
    rel_gap = np.asarray(rel_gap, float)
    diverged = np.asarray(diverged, bool)
    last = np.array(
        [g[np.isfinite(g)][-1] if np.isfinite(g).any() else np.inf for g in rel_gap.T]
    )
    outcome = np.where(
        diverged, "diverged", np.where(last <= tol_converged, "converged", "stalled")
    ).astype(object)
    base = np.where(rel_gap[0] <= tol_converged, "converged", "stalled").astype(object)
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = np.where(rel_gap[0] > 0, 1 - last / rel_gap[0], np.nan)
    return dict(
        outcome=outcome,
        outcome_baseline=base,
        decided=base != "converged",
        gap_closed=closed,
    )


def majority_outcome(outcomes: np.ndarray) -> np.ndarray:
    """Per run, the outcome of a strict majority of estimator seeds (``outcomes (S, R)``);
    ``"converged"`` only when more than half of the seeds converged, ``"diverged"`` when more
    than half diverged, else ``"stalled"``."""
    outcomes = np.asarray(outcomes, dtype=object)
    S = outcomes.shape[0]
    conv = (outcomes == "converged").sum(0) * 2 > S
    div = (outcomes == "diverged").sum(0) * 2 > S
    return np.where(conv, "converged", np.where(div, "diverged", "stalled")).astype(
        object
    )


def run_pg_batch(
    specs: list[RunSpec],
    *,
    n_iter: int,
    step: float,
    n_perturb: int,
    radius: float,
    horizon: int,
    n_eval: int = 256,
    eval_every: int = 1,
    seed: int = 0,
    n_estimator_seeds: int = 1,
    newton_iter: int = 40,
    tol_converged: float = 0.05,
    newton_starts: tuple[str, ...] = ("klin", "cancel"),
    n: int = 3,
    p: int = 3,
    progress: bool = False,
) -> dict:
    """Run the paper's zeroth-order policy gradient for every spec, as one stacked batch.

    Every spec runs ``n_estimator_seeds`` times with independent estimator draws (replicas
    stacked in the same batch; replica ``s`` of spec ``i`` is batch row ``s * len(specs) + i``).
    Each iterate is scored by the ``horizon``-step cost averaged over ``n_eval`` points of the
    unit sphere (:func:`~diffctrl.lqr.system.sphere_points`); the same cost defines the reference optimum ``C*``
    (:func:`reference_optima`; an iterate of any run on the same model that does better
    replaces it). Outcome of a replica (:func:`classify_runs`): ``converged`` when its final
    relative gap is at most ``tol_converged``, ``diverged`` when it blew up, else ``stalled``;
    the same rule is applied to ``K_0`` (``outcome_baseline``, the zero-iteration baseline).
    The outcome of a spec is the strict-majority outcome over its replicas
    (:func:`majority_outcome`). Returns per-spec arrays of replica 0 (``result``,
    ``rel_gap (n_scored, R)``, ...), the per-replica ``outcome_seeds (S, R)``,
    ``rel_gap_seeds (S, n_scored, R)``, ``gap_closed_seeds (S, R)``, the majority ``outcome``,
    ``outcome_baseline``/``decided`` (zero iterations; the same for every replica), the final
    closed-loop radii, and the per-model reference optima.
    """
    if not isinstance(n_estimator_seeds, int) or n_estimator_seeds < 1:
        raise ValueError(
            f"n_estimator_seeds must be an int >= 1, got {n_estimator_seeds!r}"
        )
    models = sorted({s.model for s in specs})
    systems = {
        m: random_system(n, p, scale=m[1], seed=m[0], spectral_radius=m[2])
        for m in models
    }
    K0, notes = [], []
    for spec in specs:
        K, note = initial_policy(systems[spec.model], spec)
        K0.append(K)
        notes.append(note)
    R, S_rep = len(specs), n_estimator_seeds
    run_systems = [systems[s.model] for s in specs] * S_rep
    S = stack_systems(run_systems)
    K0 = torch.stack(K0)
    K0_all = K0.repeat(S_rep, 1, 1)
    x0 = sphere_points(n, n_eval)
    X0 = x0.expand(R * S_rep, *x0.shape)
    rho0 = closed_loop_radius(stack_systems(run_systems[:R]), K0).cpu().numpy()
    res_all: PGResult = policy_gradient(
        S,
        K0_all,
        n_iter,
        step,
        n_perturb=n_perturb,
        radius=radius,
        horizon=horizon,
        x0_eval=X0,
        eval_every=eval_every,
        seed=seed,
        check_initial=False,
        stop_if_unstable=False,
        progress=progress,
    )
    ref = reference_optima(
        [systems[m] for m in models],
        x0,
        horizon,
        max_iter=newton_iter,
        starts=newton_starts,
    )
    midx = np.array([models.index(s.model) for s in specs])
    midx_all = np.tile(midx, S_rep)
    # every scored iterate is a candidate too: C* is the lowest cost seen for the model
    seen = np.where(np.isfinite(res_all.cost), res_all.cost, np.inf).min(0)
    best = np.array(
        [
            min([ref["cost"][j]] + [seen[i] for i in np.flatnonzero(midx_all == j)])
            for j in range(len(models))
        ]
    )
    c_star = best[midx]
    rel_all = (res_all.cost - c_star[None, np.tile(np.arange(R), S_rep)]) / c_star[
        None, np.tile(np.arange(R), S_rep)
    ]
    cls = classify_runs(rel_all, res_all.diverged, tol_converged)
    rho_all = closed_loop_radius(S, res_all.K_final).cpu().numpy()
    shape = (S_rep, R)
    outcome_seeds = cls["outcome"].reshape(shape)
    rel_gap_seeds = np.stack([rel_all[:, s * R : (s + 1) * R] for s in range(S_rep)])
    rows = slice(0, R)
    res = PGResult(
        res_all.K[:, rows],
        res_all.cost[:, rows],
        res_all.grad_norm[:, rows],
        res_all.diverged[rows],
        res_all.stopped_at[rows],
        list(res_all.reason)[rows],
        res_all.iters,
        dict(res_all.meta, n_estimator_seeds=S_rep),
    )
    dist = (res.K_final - ref["K"][midx]).flatten(1).norm(dim=1).cpu().numpy()
    dist0 = (K0 - ref["K"][midx]).flatten(1).norm(dim=1).cpu().numpy()
    return dict(
        specs=specs,
        models=models,
        model_index=midx,
        result=res,
        reference=ref,
        c_star=c_star,
        rel_gap=rel_gap_seeds[0],
        rel_gap_seeds=rel_gap_seeds,
        iters=res.iters,
        rho_init=rho0,
        rho_final=rho_all[:R],
        rho_final_seeds=rho_all.reshape(shape),
        outcome=majority_outcome(outcome_seeds),
        outcome_seeds=outcome_seeds,
        outcome_baseline=cls["outcome_baseline"][:R],
        decided=cls["decided"][:R],
        gap_closed=cls["gap_closed"][:R],
        gap_closed_seeds=cls["gap_closed"].reshape(shape),
        tol_converged=tol_converged,
        n_estimator_seeds=S_rep,
        dist_final=dist,
        dist_init=dist0,
        notes=notes,
        systems=systems,
    )


def convergence_summary(out: dict, idx) -> dict:
    """Method against baseline on the runs ``idx`` of ``out`` (:func:`run_pg_batch`): how many
    converged (majority over estimator seeds), how many the zero-iteration baseline already
    had converged, and how many converged where the baseline did not (``decided``); per-run
    lists for the record's ``per_seed``."""
    idx = np.asarray(idx, dtype=int)
    conv = out["outcome"][idx] == "converged"
    base = out["outcome_baseline"][idx] == "converged"
    return dict(
        n=int(len(idx)),
        converged=int(conv.sum()),
        baseline_converged=int(base.sum()),
        converged_not_baseline=int((conv & ~base).sum()),
        per_run=conv.tolist(),
        per_run_baseline=base.tolist(),
        per_seed_converged=(out["outcome_seeds"][:, idx] == "converged")
        .sum(0)
        .tolist(),
        n_estimator_seeds=int(out["n_estimator_seeds"]),
    )


def convergence_verdict(out: dict, idx, idx_other=None) -> dict:
    """The verdict of a convergence claim on the runs ``idx`` of ``out`` (:func:`run_pg_batch`),
    as the keyword arguments of :meth:`diffctrl.repro.Record.verdict` (``verdict``,
    ``baseline_passes``, ``evidence``, ``per_seed``): ``rec.verdict(key, **v)``.

    The rule (the chapter's ``CONVERGENCE_RULE``): the runs whose ``K_0`` already meets the
    convergence rule (zero-iteration baseline) decide nothing; :func:`~diffctrl.repro.judge`
    counts the others (``per_seed``) against the baseline outcomes of all the runs, so a
    positive verdict is ``"inconclusive"`` when the baseline's own count is positive. When no
    run is decided the verdict is ``"inconclusive"`` (and the baseline passes: every run did).
    The evidence holds the counts of :func:`convergence_summary` (``n``, ``converged``,
    ``baseline_converged``, ``converged_not_baseline``, ``estimator_seeds_converged``) and, for
    the runs ``idx_other`` (the other model scale, say), ``other_scale``: its ``n``,
    ``converged`` and ``baseline_converged``.
    """
    sm = convergence_summary(out, idx)
    conv = np.asarray(sm["per_run"], dtype=bool)
    base = np.asarray(sm["per_run_baseline"], dtype=bool)
    if not len(base):
        raise ValueError("idx must name at least one run")
    decided = conv[~base].tolist()
    if decided:
        verdict, baseline_passes = judge(decided, base.tolist())
    else:  # every run meets the rule at zero iterations: nothing decided, the baseline passes
        verdict, baseline_passes = "inconclusive", True
    evidence = {k: sm[k] for k in ("n", "converged", "baseline_converged")}
    evidence["converged_not_baseline"] = sm["converged_not_baseline"]
    evidence["estimator_seeds_converged"] = sm["per_seed_converged"]
    if idx_other is not None:
        other = convergence_summary(out, idx_other)
        evidence["other_scale"] = {
            k: other[k] for k in ("n", "converged", "baseline_converged")
        }
    return dict(
        verdict=verdict,
        baseline_passes=baseline_passes,
        evidence=evidence,
        per_seed=decided or None,
    )


def select_runs(out: dict, **match) -> np.ndarray:
    """Indices of the runs of ``out`` whose spec matches every ``field=value`` given."""
    keep = [
        i
        for i, s in enumerate(out["specs"])
        if all(
            (getattr(s, k) == v)
            if not isinstance(v, float)
            else math.isclose(getattr(s, k), v)
            for k, v in match.items()
        )
    ]
    return np.array(keep, dtype=int)


def outcome_grid(out: dict, seeds, scales, spectral_radius: float, init: str = "klin"):
    """``(len(seeds), len(scales))`` array of outcomes (``""`` where no such run)."""
    grid = np.full((len(seeds), len(scales)), "", dtype=object)
    for i, s in enumerate(out["specs"]):
        if (
            s.init == init
            and math.isclose(s.spectral_radius, spectral_radius)
            and s.seed in seeds
            and s.scale in scales
        ):
            grid[list(seeds).index(s.seed), list(scales).index(s.scale)] = out[
                "outcome"
            ][i]
    return grid


def hessian_at_klin(
    seed: int,
    scales,
    spectral_radius: float,
    x0: Tensor,
    horizon: int,
    n: int = 3,
    p: int = 3,
) -> dict:
    """Hessian extremes ``(mu, L)`` of ``C_T`` at ``K^lin`` and the closed-loop radius of
    ``K^lin``, for one model over a grid of kernel scales ``l`` (one batched Hessian)."""
    systems = [
        random_system(n, p, scale=float(l), seed=seed, spectral_radius=spectral_radius)
        for l in scales
    ]
    S = stack_systems(systems)
    K = torch.stack([k_lin(s) for s in systems])
    mu, L = hessian_extremes(S, K, x0.expand(len(systems), *x0.shape[-2:]), horizon)
    return dict(
        scales=np.asarray(scales, float),
        mu=np.atleast_1d(mu),
        L=np.atleast_1d(L),
        rho=closed_loop_radius(S, K).cpu().numpy(),
    )


def envelope_holds(
    gaps, iters, factor: float, rel_slack: float = 1e-9, abs_slack: float = 1e-12
) -> bool:
    """Whether ``gaps[i] <= factor ** iters[i] * gaps[0]`` at every scored iteration (up to
    ``rel_slack`` / ``abs_slack`` round-off): the theorem's linear-rate envelope. Applied to a
    constant sequence (a run that never moves) it holds only when ``factor ** iters[-1]`` is
    about 1, i.e. when the envelope is vacuous over the run."""
    gaps = np.asarray(gaps, float)
    iters = np.asarray(iters, float)
    if gaps.shape != iters.shape or gaps.ndim != 1 or len(gaps) < 2:
        raise ValueError("gaps and iters must be 1-D of the same length >= 2")
    if not 0 <= factor <= 1:
        return False  # mu <= 0 or eta mu > 1: no contraction is claimed
    env = factor**iters * gaps[0]
    return bool(
        np.all(np.isfinite(gaps)) and np.all(gaps <= env * (1 + rel_slack) + abs_slack)
    )


def rate_experiment(
    seed: int,
    scales,
    spectral_radius: float,
    x0: Tensor,
    horizon: int,
    n_iter: int,
    eval_every: int = 10,
    newton_iter: int = 40,
    newton_starts: tuple[str, ...] = ("klin", "cancel"),
    n: int = 3,
    p: int = 3,
    progress: bool = False,
) -> dict:
    """Exact-gradient descent from ``K^lin`` with the theorem's step ``eta = 1/L``.

    ``mu`` and ``L`` are the extreme Hessian eigenvalues of ``C_T`` at ``K^lin`` (where the
    chapter defines the theorem's constants; ``mu_star``/``L_star`` at the optimum ``K*`` are
    returned beside them). The theorem's claim is the envelope ``gap_t <= (1 - eta mu)^t gap_0``
    (:func:`envelope_holds`, ``bound_holds``); it is judged against the baseline of a run that
    never moves (``baseline_bound_holds``: the constant gap passes only where the envelope is
    vacuous over ``n_iter`` steps). ``applies``: ``mu > 0`` (else no rate is claimed). Also
    the observed per-step contraction (log-linear fit over the second half of the run).
    """
    from .landscape import observed_rate

    systems = [
        random_system(n, p, scale=float(l), seed=seed, spectral_radius=spectral_radius)
        for l in scales
    ]
    ref = reference_optima(
        systems, x0, horizon, max_iter=newton_iter, starts=newton_starts
    )
    S = stack_systems(systems)
    K0 = torch.stack([k_lin(s) for s in systems])
    X0 = x0.expand(len(systems), *x0.shape[-2:])
    mu, L = hessian_extremes(S, K0, X0, horizon)
    mu, L = np.atleast_1d(mu), np.atleast_1d(L)
    if not np.all(L > 0):
        raise ValueError(f"the Hessian at K^lin has no positive eigenvalue (L = {L})")
    eta = torch.as_tensor(1.0 / L, dtype=K0.dtype)
    res = policy_gradient(
        S,
        K0,
        n_iter,
        eta,
        estimator="exact",
        horizon=horizon,
        x0_train=X0,
        x0_eval=X0,
        eval_every=eval_every,
        check_initial=False,
        stop_if_unstable=False,
        progress=progress,
    )
    c_star = np.minimum(ref["cost"], np.nanmin(res.cost, 0))
    gaps = res.cost - c_star[None, :]
    half = len(res.iters) // 2
    theory = 1 - eta.cpu().numpy() * mu
    rates, bound_ok, base_ok = [], [], []
    for j in range(len(systems)):
        g = np.clip(gaps[:, j], 1e-300, None)
        rates.append(observed_rate(g, start=half) ** (1.0 / eval_every))
        bound_ok.append(envelope_holds(gaps[:, j], res.iters, float(theory[j])))
        base_ok.append(
            envelope_holds(
                np.full(len(res.iters), gaps[0, j]), res.iters, float(theory[j])
            )
        )
    return dict(
        scales=np.asarray(scales, float),
        iters=res.iters,
        gaps=gaps,
        eta=eta.cpu().numpy(),
        mu=mu,
        L=L,
        mu_star=ref["mu"],
        L_star=ref["L"],
        theory=theory,
        applies=mu > 0,
        observed=np.array(rates),
        bound_holds=np.array(bound_ok),
        baseline_bound_holds=np.array(base_ok),
        certified=ref["certified"],
        c_star=c_star,
    )


def identification_curve(
    system: NearlyLQ, sizes, reps: int, noise_std: float, seed: int = 0
) -> dict:
    """Least-squares error ``||[A B C]^ - [A B C]||_F`` and ``||K^lin^ - K^lin||_F`` versus the
    number of transitions ``N`` (``reps`` independent data sets per size)."""
    from .identification import estimate_system

    K_true = k_lin(system)
    err = np.zeros((len(sizes), reps))
    kerr = np.zeros((len(sizes), reps))
    for i, N in enumerate(sizes):
        for r in range(reps):
            gen = torch.Generator().manual_seed(seed * 100_003 + 1000 * i + r)
            est = estimate_system(system, int(N), gen, noise_std)
            err[i, r] = math.sqrt(
                sum(
                    float((getattr(est, k) - getattr(system, k)).square().sum())
                    for k in "ABC"
                )
            )
            kerr[i, r] = float((k_lin(est) - K_true).norm())
    return dict(sizes=np.asarray(sizes), error=err, k_error=kerr, noise_std=noise_std)


def zeroth_order_check(
    system: NearlyLQ,
    K: Tensor,
    n_perturb: int,
    radius: float,
    horizon: int,
    n_rep: int,
    x0: Tensor,
    seed: int = 0,
    n_smooth: int = 4000,
) -> dict:
    """How good is one estimate? ``n_rep`` independent estimates (each with ``J = n_perturb``)
    against the autograd gradient of the smoothed cost (``n_smooth`` ball points, states
    ``x0``) and of the cost itself. Returns the relative error of single estimates, the
    z-scores of their mean (per entry; unbiasedness makes them ~ N(0, 1)) and the norms."""
    from .policy_gradient import (
        exact_gradient,
        smoothed_gradient,
        zeroth_order_gradient,
    )

    gen = torch.Generator().manual_seed(seed)
    G = torch.stack(
        [
            zeroth_order_gradient(system, K, n_perturb, radius, horizon, gen)
            for _ in range(n_rep)
        ]
    )
    smooth = smoothed_gradient(
        system,
        K,
        radius,
        x0,
        horizon,
        n_smooth,
        torch.Generator().manual_seed(seed + 1),
    )
    exact, _ = exact_gradient(system, K, x0, horizon)
    se = G.std(0) / math.sqrt(n_rep)
    z = ((G.mean(0) - smooth) / se).flatten().cpu().numpy()
    rel = ((G - smooth).flatten(1).norm(dim=1) / smooth.norm()).cpu().numpy()
    return dict(
        rel_error=rel,
        z=z,
        smooth_norm=float(smooth.norm()),
        exact_norm=float(exact.norm()),
        smoothing_bias=float((smooth - exact).norm() / exact.norm()),
    )
