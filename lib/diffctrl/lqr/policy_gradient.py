"""Zeroth-order and exact policy gradients, and the policy-gradient loop.

Han, Razaviyayn, Xu (arXiv 2303.08431), Algorithm 1 / Sec. 4 (chapter ``book/nearly_lq.md``), after
Fazel et al. (2018): draw ``J`` perturbations ``U_j`` uniform on the Frobenius sphere of radius
``r`` in ``R^{p x (n + d)}``, roll out ``K + U_j`` for ``T`` steps from ``x0 ~ D`` to get the
cost ``C_j``, and estimate

    grad C(K)  ~=  (1/J) sum_j (D / r^2) C_j U_j,          D = p (n + d),

an unbiased estimate of the gradient of the *smoothed* cost
``C_r(K) = E_{V ~ Unif(ball r)} C_T(K + V)``. The update is ``K <- K - eta grad``.

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

from .system import (
    NearlyLQ,
    check_policy,
    check_stabilizing,
    closed_loop_radius,
    cost,
    sample_x0,
    sphere_points,
)

Tensor = torch.Tensor


def _check_positive(value, name: str, integer: bool = False) -> None:
    ok = (
        isinstance(value, (int, np.integer))
        if integer
        else isinstance(value, (int, float, np.integer, np.floating))
    )
    if (
        isinstance(value, bool)
        or not ok
        or not value > 0
        or not math.isfinite(float(value))
    ):
        kind = "int" if integer else "number"
        raise ValueError(f"{name} must be a positive {kind}, got {value!r}")


def _one_policy_per_system(system: NearlyLQ, K, name: str) -> Tensor:
    K = check_policy(system, K, name)
    want = 2 if system.n_systems is None else 3
    if K.ndim != want:
        shape = (
            system.policy_shape
            if want == 2
            else (system.n_systems, *system.policy_shape)
        )
        raise ValueError(
            f"{name} must have shape {shape} (one policy per system), "
            f"got {tuple(K.shape)}"
        )
    return K


def sample_sphere(
    shape: tuple[int, ...],
    radius: float,
    generator: torch.Generator | None = None,
    dtype=torch.float64,
    device=None,
) -> Tensor:
    """Matrices uniform on the Frobenius sphere of ``radius``: ``shape = (..., rows, cols)``."""
    _check_positive(radius, "r (radius)")
    if len(shape) < 2:
        raise ValueError(
            f"shape must end with the matrix dims (rows, cols), got {shape}"
        )
    g = torch.randn(
        *shape,
        generator=generator,
        dtype=dtype,
        device=generator.device if generator is not None else device,
    )
    return radius * g / g.square().sum((-2, -1), keepdim=True).sqrt()


def zeroth_order_gradient(
    system: NearlyLQ,
    K: Tensor,
    n_perturb: int,
    radius: float,
    horizon: int,
    generator: torch.Generator | None = None,
    n_x0: int = 1,
    return_costs: bool = False,
):
    """The paper's estimator ``(1/J) sum_j (D/r^2) C_j U_j`` (one rollout batch per ``U_j``).

    ``K (p, n + d)`` (or ``(R, p, n + d)`` for a stacked system); ``J = n_perturb``
    perturbations, each with its own ``n_x0`` initial states uniform on the unit sphere. All
    rollouts run as one batch. Returns the estimate, shaped like ``K`` (and with
    ``return_costs`` the costs ``C_j``, shape ``(..., J)``).
    """
    K = _one_policy_per_system(system, K, "K")
    _check_positive(n_perturb, "n_perturb (J)", integer=True)
    _check_positive(radius, "r (radius)")
    _check_positive(horizon, "horizon (T)", integer=True)
    _check_positive(n_x0, "n_x0", integer=True)
    grad, Cj = _zo(system, K, n_perturb, radius, horizon, generator, n_x0)
    if not torch.isfinite(Cj).all():
        raise FloatingPointError(
            "a perturbed rollout produced a non-finite cost; the policy "
            "or the radius r is too far from the stabilising set"
        )
    return (grad, Cj) if return_costs else grad


def _zo(system, K, n_perturb, radius, horizon, generator, n_x0):
    D = system.p * (system.n + system.d)
    lead = K.shape[:-2]
    U = sample_sphere(
        (*lead, n_perturb, *K.shape[-2:]), radius, generator, K.dtype, K.device
    )
    x0 = sample_x0(
        system.n,
        n_x0,
        generator,
        shape=(*lead, n_perturb),
        dtype=K.dtype,
        device=K.device,
    )
    with torch.no_grad():
        Cj = cost(system, K.unsqueeze(-3) + U, x0, horizon)  # (..., J)
    grad = (D / radius**2) * (Cj[..., None, None] * U).mean(-3)
    return grad, Cj


def exact_gradient(
    system: NearlyLQ, K: Tensor, x0: Tensor, horizon: int
) -> tuple[Tensor, Tensor]:
    """Autograd gradient of the sample cost ``C_T(K)`` over fixed initial states ``x0``.

    ``K (..., p, n + d)``, ``x0 (..., m, n)``. Returns ``(grad (shaped like K), cost (...))``:
    the exact-gradient reference for the estimator.
    """
    K = check_policy(system, K).detach().clone().requires_grad_(True)
    c = cost(system, K, x0, horizon)
    (g,) = torch.autograd.grad(c.sum(), K)
    return g, c.detach()


def smoothed_gradient(
    system: NearlyLQ,
    K: Tensor,
    radius: float,
    x0: Tensor,
    horizon: int,
    n_samples: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Autograd gradient of the smoothed cost ``C_r(K) = E_{V ~ Unif(ball r)} C_T(K + V)``.

    Averages the exact gradient at ``n_samples`` points uniform in the Frobenius ball of radius
    ``r`` around ``K (p, n + d)`` (the mean of the zeroth-order estimator, by the divergence
    theorem); the initial states ``x0 (m, n)`` are shared.
    """
    K = check_policy(system, K)
    if K.ndim != 2 or system.n_systems is not None:
        raise ValueError(
            "smoothed_gradient takes one policy (p, n + d) of a single system"
        )
    _check_positive(n_samples, "n_samples", integer=True)
    D = K.numel()
    U = sample_sphere((n_samples, *K.shape), radius, generator, K.dtype, K.device)
    radii = torch.rand(
        n_samples,
        generator=generator,
        dtype=K.dtype,
        device=generator.device if generator is not None else K.device,
    )
    V = (K + radii.pow(1.0 / D).view(-1, 1, 1) * U).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(cost(system, V, x0, horizon).sum(), V)
    return g.mean(0)


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

    ``estimator="zeroth_order"``: the paper's estimator (:func:`zeroth_order_gradient`,
    ``J = n_perturb``, radius ``r``, horizon ``T``). ``estimator="exact"``: the autograd
    gradient of the sample cost over fixed states ``x0_train (..., m, n)`` (default
    ``x0_eval``). After the loop every ``eval_every``-th iterate (and the last) is scored, in
    one batch, by the sample cost over ``x0_eval`` (default: 256 points of the unit sphere,
    :func:`~diffctrl.lqr.system.sphere_points`) with ``eval_horizon`` (default ``horizon``);
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
