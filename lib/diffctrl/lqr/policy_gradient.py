"""The policy-gradient loop ``K <- K - eta grad`` (the paper's Algorithm 1).

Han, Razaviyayn, Xu (arXiv 2303.08431), Algorithm 1 / Sec. 4 (chapter ``book/nearly_lq.md``): from
an initial policy ``K0`` (the paper's ``K^lin``, :func:`~diffctrl.lqr.riccati.k_lin`, or a random
stabilising one, :func:`random_stabilizing_policy`), step along the zeroth-order estimate
(:func:`~diffctrl.lqr.zeroth_order.zeroth_order_gradient`) or the exact gradient of the sample
cost, stop a run that diverges, and score the iterates by the sample cost over fixed states.

Every function takes one policy ``K (p, n + d)`` of a single system, or one policy per system
``K (R, p, n + d)`` of a stacked system (:func:`~diffctrl.lqr.system.stack_systems`), so that
independent runs (several models, kernel scales or seeds) advance in one batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .rollout import check_stabilizing, closed_loop_radius, cost, sphere_points
from .system import NearlyLQ
from .zeroth_order import _check_positive, _one_policy_per_system, _zo, exact_gradient

__all__ = [
    "PGResult",
    "evaluate_iterates",
    "policy_gradient",
    "random_stabilizing_policy",
]

Tensor = torch.Tensor


@dataclass
class PGResult:
    """Iterates of a policy-gradient run.

    For a single system: ``K (n_iter + 1, p, n + d)``, ``cost (len(iters),)`` (the scored
    iterations ``iters``), ``grad_norm (n_iter,)``, ``diverged`` a bool. For a stack of ``R``
    systems every array gets a system dim after the iteration dim and ``diverged`` /
    ``stopped_at`` are arrays ``(R,)``.
    A run that diverged at iteration ``k`` keeps ``K_k`` frozen afterwards; its later ``cost``
    entries are NaN (nothing was computed there) and ``stopped_at`` is ``k`` (else ``-1``).
    """

    K: Tensor
    cost: np.ndarray
    grad_norm: np.ndarray
    diverged: bool | np.ndarray
    stopped_at: int | np.ndarray
    reason: str | list[str] = ""
    iters: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def K_final(self) -> Tensor:
        return self.K[-1]


def policy_gradient(
    system: NearlyLQ,
    K0: Tensor,
    n_iter: int,
    step: float,
    *,
    estimator: str = "zeroth_order",
    n_perturb: int = 300,
    radius: float = 0.6,
    horizon: int = 10,
    n_x0: int = 1,
    x0_train: Tensor | None = None,
    x0_eval: Tensor | None = None,
    eval_horizon: int | None = None,
    eval_every: int = 1,
    seed: int = 0,
    divergence_factor: float = 1e3,
    stop_if_unstable: bool = True,
    check_initial: bool = True,
    progress: bool = False,
) -> PGResult:
    """Policy gradient ``K <- K - eta grad`` from ``K0`` (the paper's Algorithm 1).

    ``step`` is ``eta``: a number, or for a stacked system a tensor ``(R,)`` (one per system).

    ``estimator="zeroth_order"``: the paper's estimator
    (:func:`~diffctrl.lqr.zeroth_order.zeroth_order_gradient`, ``J = n_perturb``, radius
    ``r``, horizon ``T``). ``estimator="exact"``: the autograd
    gradient of the sample cost over fixed states ``x0_train (..., m, n)`` (default
    ``x0_eval``). After the loop every ``eval_every``-th iterate (and the last) is scored, in
    one batch, by the sample cost over ``x0_eval`` (default: 256 points of the unit sphere,
    :func:`~diffctrl.lqr.rollout.sphere_points`) with ``eval_horizon`` (default ``horizon``);
    ``PGResult.iters`` lists the scored iterations.

    A run stops (``diverged``) when its cost (the mean of the ``C_j``, or the exact cost)
    is non-finite or exceeds ``divergence_factor`` times the initial one, or, with
    ``stop_if_unstable``, when its closed loop linearised at 0 becomes unstable. With
    ``check_initial``, a ``K0`` that does not stabilise the system raises ``ValueError``.
    """
    if estimator not in ("zeroth_order", "exact"):
        raise ValueError(
            f"estimator must be 'zeroth_order' or 'exact', got {estimator!r}"
        )
    K = _one_policy_per_system(system, K0, "K0").detach().clone()
    _check_positive(n_iter, "n_iter", integer=True)
    if isinstance(step, Tensor):
        if tuple(step.shape) != tuple(K.shape[:-2]) or not bool((step > 0).all()):
            raise ValueError(
                f"step (eta) must be a positive number or a positive tensor of "
                f"shape {tuple(K.shape[:-2])} (one per system)"
            )
        step_b = step.to(K)[..., None, None]
    else:
        _check_positive(step, "step (eta)")
        step_b = step
    _check_positive(radius, "r (radius)")
    _check_positive(horizon, "horizon (T)", integer=True)
    _check_positive(divergence_factor, "divergence_factor")
    eval_horizon = horizon if eval_horizon is None else eval_horizon
    _check_positive(eval_horizon, "eval_horizon", integer=True)
    stacked = system.n_systems is not None
    lead = K.shape[:-2]
    gen = torch.Generator(device=K.device).manual_seed(int(seed))
    _check_positive(eval_every, "eval_every", integer=True)
    if x0_eval is None:
        x0_eval = sphere_points(system.n, 256, dtype=K.dtype, device=K.device)
        if stacked:
            x0_eval = x0_eval.expand(system.n_systems, *x0_eval.shape)
    if estimator == "exact" and x0_train is None:
        x0_train = x0_eval
    if check_initial:
        check_stabilizing(system, K, name="K0")

    active = torch.ones(lead, dtype=torch.bool, device=K.device)
    stopped = torch.full(lead, -1, dtype=torch.long)
    reasons = [""] * (int(np.prod(lead)) if lead else 1)
    c_ref = None
    Ks, gnorms = [K.clone()], []
    for it in tqdm(
        range(n_iter), disable=not progress, desc=f"PG ({estimator})", leave=False
    ):
        if estimator == "zeroth_order":
            g, Cj = _zo(system, K, n_perturb, radius, horizon, gen, n_x0)
            c_now = Cj.mean(-1)
        else:
            g, c_now = exact_gradient(system, K, x0_train, horizon)
        if c_ref is None:
            c_ref = c_now.clone()
        bad = ~torch.isfinite(c_now) | (c_now > divergence_factor * c_ref)
        if stop_if_unstable:
            bad = bad | (torch.as_tensor(closed_loop_radius(system, K)) >= 1)
        newly = bad & active
        for idx in (
            newly.nonzero().tolist() if stacked else ([[]] if bool(newly) else [])
        ):
            flat = idx[0] if idx else 0
            stopped[tuple(idx)] = it
            reasons[flat] = (
                f"iteration {it}: cost {float(c_now[tuple(idx)]):.3g} (initial "
                f"{float(c_ref[tuple(idx)]):.3g}) or unstable closed loop"
            )
        active = active & ~bad
        # stopped runs stay frozen (their gradient, possibly non-finite, is masked out)
        g = torch.where(active[..., None, None], g, torch.zeros_like(g))
        K = K - step_b * g
        gnorms.append(g.flatten(-2).norm(dim=-1))
        Ks.append(K.clone())
        if not bool(active.any()):
            break
    K_hist = torch.stack(Ks)  # (k + 1, *lead, p, n + d)
    iters = np.unique(np.r_[np.arange(0, len(Ks), eval_every), len(Ks) - 1])
    costs = evaluate_iterates(
        system, K_hist[torch.as_tensor(iters)], x0_eval, eval_horizon
    )
    for flat, k in enumerate(stopped.reshape(-1).tolist()):
        if k >= 0:
            costs.reshape(costs.shape[0], -1)[iters > k, flat] = np.nan
    gn = torch.stack(gnorms).cpu().numpy() if gnorms else np.zeros((0, *lead))
    div = (stopped >= 0).cpu().numpy()
    meta = dict(
        estimator=estimator,
        n_perturb=n_perturb,
        radius=radius,
        step=step.tolist() if isinstance(step, Tensor) else step,
        horizon=horizon,
        eval_horizon=eval_horizon,
        seed=seed,
        n_iter=n_iter,
    )
    if stacked:
        return PGResult(
            K_hist, costs, gn, div, stopped.cpu().numpy(), reasons, iters, meta
        )
    return PGResult(K_hist, costs, gn, bool(div), int(stopped), reasons[0], iters, meta)


def evaluate_iterates(
    system: NearlyLQ, K_hist: Tensor, x0: Tensor, horizon: int, chunk: int = 64
) -> np.ndarray:
    """Sample cost of every iterate ``K_hist (k, *lead, p, n + d)`` over ``x0 (*lead, m, n)``.

    Batched over iterates (in chunks of ``chunk``); returns ``(k, *lead)``.
    """
    out = []
    stacked = system.n_systems is not None
    with torch.no_grad():
        for start in range(0, K_hist.shape[0], chunk):
            Kc = K_hist[start : start + chunk]
            if (
                stacked
            ):  # the system dim must come first: (R, k, p, q) against (R, 1, m, n)
                c = cost(
                    system, Kc.transpose(0, 1), x0.unsqueeze(1), horizon
                ).transpose(0, 1)
            else:
                c = cost(system, Kc, x0, horizon)
            out.append(c)
    return torch.cat(out).cpu().numpy()


def random_stabilizing_policy(
    system: NearlyLQ, scale: float, generator: torch.Generator, max_tries: int = 1000
) -> tuple[Tensor, int]:
    """A random initial policy: iid ``N(0, s^2)`` entries with ``s = scale / sqrt(D)`` (so
    ``E ||K||_F^2 = scale^2``), redrawn until it stabilises the system (single system).

    Returns ``(K (p, n + d), draws needed)``; raises ``ValueError`` after ``max_tries``.
    """
    if system.n_systems is not None:
        raise ValueError("random_stabilizing_policy takes a single system")
    _check_positive(scale, "scale")
    D = system.p * (system.n + system.d)
    for k in range(1, max_tries + 1):
        K = (scale / math.sqrt(D)) * torch.randn(
            *system.policy_shape, generator=generator, dtype=system.dtype
        )
        K = K.to(system.device)
        try:
            check_stabilizing(system, K)
        except ValueError:
            continue
        return K, k
    raise ValueError(f"no stabilising policy among {max_tries} draws of scale {scale}")
