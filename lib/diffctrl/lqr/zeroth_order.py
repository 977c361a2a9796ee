"""The zeroth-order gradient estimator of the policy cost, and its exact references.

Han, Razaviyayn, Xu (arXiv 2303.08431), Algorithm 1 / Sec. 4 (chapter ``book/nearly_lq.md``), after
Fazel et al. (2018): draw ``J`` perturbations ``U_j`` uniform on the Frobenius sphere of radius
``r`` in ``R^{p x (n + d)}``, roll out ``K + U_j`` for ``T`` steps from ``x0 ~ D`` to get the
cost ``C_j``, and estimate

    grad C(K)  ~=  (1/J) sum_j (D / r^2) C_j U_j,          D = p (n + d),

an unbiased estimate of the gradient of the *smoothed* cost
``C_r(K) = E_{V ~ Unif(ball r)} C_T(K + V)`` (:func:`smoothed_gradient` computes that gradient
by autograd, :func:`exact_gradient` the gradient of ``C_T`` itself; :func:`zeroth_order_check`
compares them).

Every function takes one policy ``K (p, n + d)`` of a single system, or one policy per system
``K (R, p, n + d)`` of a stacked system (:func:`~diffctrl.lqr.system.stack_systems`), so that
independent runs (several models, kernel scales or seeds) advance in one batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .rollout import check_policy, cost, sample_x0
from .system import NearlyLQ

__all__ = [
    "exact_gradient",
    "sample_sphere",
    "smoothed_gradient",
    "zeroth_order_check",
    "zeroth_order_gradient",
]

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
