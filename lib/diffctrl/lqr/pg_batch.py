"""Many policy-gradient runs advanced as one stacked batch, and the outcome of each run.

Han, Razaviyayn, Xu (arXiv 2303.08431), Sec. 5 (chapter ``book/nearly_lq.md``). A run is a
:class:`RunSpec` (model seed, kernel scale ``l``, spectral radius of the random ``A, B, C``,
initial policy); :func:`run_pg_batch` builds every run's system, stacks them, runs the paper's
policy-gradient loop (:func:`~diffctrl.lqr.policy_gradient.policy_gradient`) for all at once,
finds each system's reference optimum by multi-start Newton
(:func:`~diffctrl.lqr.landscape.reference_optima`), and classifies each run's outcome
(:func:`classify_runs`: converged, stalled or diverged; the zero-iteration baseline under the
same rule). :func:`select_runs` and :func:`outcome_grid` look runs up by their spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .identification import model_free_k_lin
from .landscape import hessian_extremes, reference_optima
from .policy_gradient import PGResult, policy_gradient, random_stabilizing_policy
from .riccati import k_lin
from .rollout import closed_loop_radius, sphere_points
from .system import NearlyLQ, random_system, stack_systems

__all__ = [
    "RunSpec",
    "classify_runs",
    "initial_policy",
    "majority_outcome",
    "outcome_grid",
    "run_pg_batch",
    "select_runs",
]

Tensor = torch.Tensor


@dataclass(frozen=True)
class RunSpec:
    """One policy-gradient run: the model and the initial policy.

    ``init``: ``"klin"`` (the paper's ``K^lin``), ``"random"`` (iid Gaussian entries scaled so
    ``E||K0||_F = ||K^lin||_F``, redrawn until stabilising; seed ``init_seed``) or
    ``"model_free"`` (``K^lin`` of the least-squares model from ``n_samples`` transitions).
    ``b_norm``/``c_norm``: the largest singular values of ``B``/``C``
    (:func:`~diffctrl.lqr.system.random_system`; ``None``: scaled to ``spectral_radius``).
    """

    seed: int
    scale: float
    spectral_radius: float
    init: str = "klin"
    init_seed: int = 0
    n_samples: int = 0
    noise_std: float = 0.0
    b_norm: float | None = None
    c_norm: float | None = None

    @property
    def model(self) -> tuple:
        """``(seed, l, rho_0, b_norm, c_norm)``: the arguments of
        :func:`~diffctrl.lqr.system.random_system` that make the run's system."""
        return (
            self.seed,
            float(self.scale),
            float(self.spectral_radius),
            self.b_norm,
            self.c_norm,
        )


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
    step: float | None = None,
    step_over_L: float | None = None,
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
    control: bool = True,
    n: int = 3,
    p: int = 3,
    progress: bool = False,
) -> dict:
    """Run the paper's zeroth-order policy gradient for every spec, as one stacked batch.

    Every spec runs ``n_estimator_seeds`` times with independent estimator draws (replicas
    stacked in the same batch; replica ``s`` of spec ``i`` is batch row ``s * len(specs) + i``).
    Each iterate is scored by the ``horizon``-step cost averaged over ``n_eval`` points of the
    unit sphere (:func:`~diffctrl.lqr.rollout.sphere_points`); the same cost defines the
    reference optimum ``C*`` (:func:`~diffctrl.lqr.landscape.reference_optima`; an iterate of
    any run on the same model that does better replaces it). Outcome of a replica (:func:`classify_runs`): ``converged`` when its final
    relative gap is at most ``tol_converged``, ``diverged`` when it blew up, else ``stalled``;
    the same rule is applied to ``K_0`` (``outcome_baseline``, the zero-iteration baseline).
    The outcome of a spec is the strict-majority outcome over its replicas
    (:func:`majority_outcome`). Returns per-spec arrays of replica 0 (``result``,
    ``rel_gap (n_scored, R)``, ...), the per-replica ``outcome_seeds (S, R)``,
    ``rel_gap_seeds (S, n_scored, R)``, ``gap_closed_seeds (S, R)``, the majority ``outcome``,
    ``outcome_baseline``/``decided`` (zero iterations; the same for every replica), the final
    closed-loop radii, and the per-model reference optima.

    The step: ``step`` (one ``eta`` for every run, the paper's ``1e-4``) or ``step_over_L``
    (``eta = step_over_L / L_hat`` per model, ``L_hat`` the largest eigenvalue of the Hessian
    of the scored cost at the model's ``K^lin``, :func:`~diffctrl.lqr.landscape.hessian_extremes`;
    returned as ``eta (R,)``). With ``control``, every spec also runs exact-gradient descent
    from the same ``K_0`` with the same step and number of iterations (the positive control of
    a convergence claim: where it fails, the budget or the step cannot decide);
    ``outcome_control`` and ``rel_gap_control`` hold it, under the same rule and ``C*``.
    """
    if (step is None) == (step_over_L is None):
        raise ValueError(
            f"give exactly one of step and step_over_L, got step={step!r}, "
            f"step_over_L={step_over_L!r}"
        )
    for name, value in (("step", step), ("step_over_L", step_over_L)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not isinstance(n_estimator_seeds, int) or n_estimator_seeds < 1:
        raise ValueError(
            f"n_estimator_seeds must be an int >= 1, got {n_estimator_seeds!r}"
        )
    models = sorted({s.model for s in specs})
    systems = {
        m: random_system(
            n, p, scale=m[1], seed=m[0], spectral_radius=m[2], b_norm=m[3], c_norm=m[4]
        )
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
    S_runs = stack_systems(run_systems[:R])
    rho0 = closed_loop_radius(S_runs, K0).cpu().numpy()
    if step_over_L is not None:
        K_lin = torch.stack([k_lin(s) for s in run_systems[:R]])
        _, L_hat = hessian_extremes(S_runs, K_lin, X0[:R], horizon)
        L_hat = np.atleast_1d(L_hat)
        if not np.all(L_hat > 0):
            raise ValueError(
                f"the Hessian at K^lin has no positive eigenvalue: {L_hat}"
            )
        eta = step_over_L / L_hat
    else:
        eta = np.full(R, float(step))
    eta_t = torch.as_tensor(eta, dtype=K0.dtype)
    res_all: PGResult = policy_gradient(
        S,
        K0_all,
        n_iter,
        eta_t.repeat(S_rep),
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
    res_ctl = None
    if control:
        res_ctl = policy_gradient(
            S_runs,
            K0,
            n_iter,
            eta_t,
            estimator="exact",
            horizon=horizon,
            x0_train=X0[:R],
            x0_eval=X0[:R],
            eval_every=eval_every,
            check_initial=False,
            stop_if_unstable=False,
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
    if res_ctl is not None:  # the control's iterates are candidates as well
        seen_ctl = np.where(np.isfinite(res_ctl.cost), res_ctl.cost, np.inf).min(0)
        seen = np.concatenate([seen, seen_ctl])
        midx_all = np.concatenate([midx_all, midx])
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
    ctl = {}
    if res_ctl is not None:
        rel_ctl = (res_ctl.cost - c_star[None, :]) / c_star[None, :]
        cls_ctl = classify_runs(rel_ctl, res_ctl.diverged, tol_converged)
        ctl = dict(outcome_control=cls_ctl["outcome"], rel_gap_control=rel_ctl)
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
        eta=eta,
        **ctl,
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
