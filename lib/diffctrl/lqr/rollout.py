"""Policies, initial states, batched rollouts, the cost and closed-loop stability.

Han, Razaviyayn, Xu (arXiv 2303.08431), Sec. 2 (chapter ``book/nearly_lq.md``): a policy
``u = -K z`` with ``z = [x; phi(x)]`` and ``K = [K1 K2]`` of shape ``(p, n + d)`` runs
``x_{t+1} = A x_t + B u_t + C phi(x_t)``; its cost is
``C_T(K) = E_{x0 ~ D} sum_{t < T} (x_t' Q x_t + u_t' R u_t)``. Everything is batched: a batch of
policies ``(..., p, n + d)`` runs against a batch of initial states ``(..., m, n)`` (leading
dims broadcast; for a stacked system both start with the system dim), with one Python loop
over time only.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .kernels import _check_dim
from .system import NearlyLQ

__all__ = [
    "check_policy",
    "check_stabilizing",
    "closed_loop_matrix",
    "closed_loop_radius",
    "cost",
    "features",
    "join_policy",
    "kernel_jacobian_at_zero",
    "rollout",
    "sample_x0",
    "sphere_points",
    "split_policy",
]

Tensor = torch.Tensor


def features(system: NearlyLQ, x: Tensor) -> Tensor:
    """``z = [x; phi(x)]``, shape ``(..., n + d)``."""
    return torch.cat([x, system.phi(x)], dim=-1)


def check_policy(system: NearlyLQ, K, name: str = "K") -> Tensor:
    """Validate a policy (or a batch ``(..., p, n + d)``) and return it as a tensor."""
    if not isinstance(K, Tensor):
        K = torch.as_tensor(np.asarray(K), dtype=system.dtype, device=system.device)
    if K.ndim < 2 or tuple(K.shape[-2:]) != system.policy_shape:
        raise ValueError(
            f"{name} must have shape (..., {system.p}, {system.n + system.d}) = "
            f"(..., p, n + d), got {tuple(K.shape)}"
        )
    R_ = system.n_systems
    if R_ is not None and (K.ndim < 3 or K.shape[0] != R_):
        raise ValueError(
            f"{name}: a stack of {R_} systems needs policies of shape "
            f"({R_}, ..., {system.p}, {system.n + system.d}), got {tuple(K.shape)}"
        )
    if not torch.isfinite(K).all():
        raise ValueError(f"{name} has non-finite entries")
    return K


def split_policy(system: NearlyLQ, K: Tensor) -> tuple[Tensor, Tensor]:
    """``K = [K1 K2]`` -> ``(K1 (..., p, n), K2 (..., p, d))``."""
    return K[..., : system.n], K[..., system.n :]


def join_policy(K1: Tensor, K2: Tensor) -> Tensor:
    return torch.cat([K1, K2], dim=-1)


def sample_x0(
    n: int,
    m: int,
    generator: torch.Generator | None = None,
    shape=(),
    radius: float = 1.0,
    device=None,
    dtype=torch.float64,
) -> Tensor:
    """Initial states uniform on the sphere ``||x0|| = radius``; shape ``(*shape, m, n)``."""
    g = torch.randn(
        *shape,
        m,
        n,
        generator=generator,
        dtype=dtype,
        device=generator.device if generator is not None else device,
    )
    return radius * g / g.norm(dim=-1, keepdim=True)


def sphere_points(n: int, m: int, dtype=torch.float64, device=None) -> Tensor:
    """``m`` deterministic, evenly spread points of the unit sphere in ``R^n``, ``(m, n)``.

    For ``n = 3`` a Fibonacci lattice (a quasi-Monte Carlo rule: the cost averaged over it
    approximates ``E_{x0 ~ Unif(S^2)}`` far better than ``m`` random points); for ``n = 2``
    equally spaced angles; for ``n = 1`` the points ``+-1``; otherwise a fixed-seed random
    sample.
    """
    _check_dim(n, "n")
    _check_dim(m, "m")
    if n == 3:
        i = torch.arange(m, dtype=dtype, device=device) + 0.5
        z = 1 - 2 * i / m
        theta = math.pi * (1 + 5**0.5) * i
        rho = torch.sqrt(1 - z * z)
        return torch.stack([rho * torch.cos(theta), rho * torch.sin(theta), z], dim=-1)
    if n == 2:
        angle = 2 * math.pi * (torch.arange(m, dtype=dtype, device=device) + 0.5) / m
        return torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)
    if n == 1:
        return torch.tensor([[1.0], [-1.0]], dtype=dtype, device=device).repeat(
            (m + 1) // 2, 1
        )[:m]
    return sample_x0(n, m, torch.Generator().manual_seed(2303_08431), dtype=dtype).to(
        device
    )


def _aligned(system: NearlyLQ, M: Tensor, ndim: int) -> Tensor:
    """View a system matrix ``(R_, a, b)`` as ``(R_, 1, ..., 1, a, b)`` with ``ndim`` dims."""
    if M.ndim == 2:
        return M
    return M.view(M.shape[0], *([1] * (ndim - 3)), *M.shape[-2:])


def _apply(M: Tensor, v: Tensor) -> Tensor:
    """``M v`` for row vectors: ``M (..., a, b)``, ``v (..., m, b)`` -> ``(..., m, a)``."""
    return v @ M.transpose(-1, -2)


def rollout(
    system: NearlyLQ, K: Tensor, x0: Tensor, horizon: int, return_states: bool = False
):
    """Run ``x_{t+1} = A x + B u + C phi(x)``, ``u = -K [x; phi(x)]`` for ``horizon`` steps.

    ``K (..., p, n + d)`` and ``x0 (..., m, n)`` broadcast over their leading dims (for a stacked
    system both start with the system dim). Returns the accumulated cost
    ``sum_{t < horizon} x_t'Q x_t + u_t'R u_t`` of shape ``(..., m)``, and with
    ``return_states`` also the states ``(horizon + 1, ..., m, n)``. One Python loop over time;
    everything else is batched.
    """
    _check_dim(horizon, "horizon")
    if not isinstance(x0, Tensor):
        raise TypeError(
            f"x0 must be a torch.Tensor (..., m, {system.n}), got {type(x0).__name__}"
        )
    if not isinstance(K, Tensor):
        raise TypeError(
            f"K must be a torch.Tensor (..., p, n + d), got {type(K).__name__}"
        )
    if not bool(torch.isfinite(x0).all()):
        raise ValueError("x0 has non-finite entries (NaN or inf)")
    if x0.shape[-1] != system.n:
        raise ValueError(
            f"x0 must have shape (..., m, {system.n}), got {tuple(x0.shape)}"
        )
    if system.n_systems is not None and (
        x0.ndim < 3 or x0.shape[0] != system.n_systems
    ):
        raise ValueError(
            f"x0: a stack of {system.n_systems} systems needs states of shape "
            f"({system.n_systems}, ..., m, {system.n}), got {tuple(x0.shape)}"
        )
    if system.n_systems is not None and K.ndim != x0.ndim:
        raise ValueError(
            f"with a stack of systems, K and x0 need the same number of dims "
            f"(system dim first); got K {tuple(K.shape)}, x0 {tuple(x0.shape)}"
        )
    ndim = max(x0.ndim, K.ndim)
    A, B, C, Q, R = (_aligned(system, getattr(system, k), ndim) for k in "ABCQR")
    n = system.n
    # u = -K z and x' = [A C] z + B u = M z with z = [x; phi(x)]: one matrix per policy, and the
    # stage cost x'Qx + u'Ru = z' G z with G = blockdiag(Q, 0) + K'RK (fewer ops per step)
    M = torch.cat([A, C], dim=-1) - B @ K
    G = K.transpose(-1, -2) @ R @ K
    G = torch.cat(
        [torch.cat([G[..., :n, :n] + Q, G[..., :n, n:]], -1), G[..., n:, :]], -2
    )
    x = x0
    total = torch.zeros((), dtype=x0.dtype, device=x0.device)
    states = [x0] if return_states else None
    for _ in range(horizon):
        z = torch.cat([x, system.phi(x)], dim=-1)  # (..., m, n + d)
        total = total + (_apply(G, z) * z).sum(-1)
        x = _apply(M, z)
        if return_states:
            states.append(x)
    if return_states:
        return total, torch.stack([s.expand_as(states[-1]) for s in states])
    return total


def cost(system: NearlyLQ, K: Tensor, x0: Tensor, horizon: int) -> Tensor:
    """Monte Carlo cost ``C_T(K) = mean over x0 of sum_{t < T} (x'Qx + u'Ru)``; shape ``(...)``."""
    return rollout(system, K, x0, horizon).mean(-1)


def kernel_jacobian_at_zero(system: NearlyLQ) -> Tensor:
    """``Dphi(0)``: ``(d, n)``, or ``(R_, d, n)`` for a stacked system."""
    zero = torch.zeros(system.n, dtype=system.dtype, device=system.device)
    J = torch.autograd.functional.jacobian(system.kernel.base, zero)
    scale = system.kernel.scale
    if isinstance(scale, Tensor):
        return scale.to(J).view(-1, 1, 1) * J
    return scale * J


def closed_loop_matrix(system: NearlyLQ, K: Tensor) -> Tensor:
    """Jacobian at ``x = 0`` of the closed loop, ``A - B K1 + (C - B K2) Dphi(0)``: ``(..., n, n)``."""
    K = check_policy(system, K)
    K1, K2 = split_policy(system, K)
    ndim = K.ndim
    A, B, C = (_aligned(system, getattr(system, k), ndim) for k in "ABC")
    J = kernel_jacobian_at_zero(system)
    J = J if J.ndim == 2 else J.view(J.shape[0], *([1] * (ndim - 3)), *J.shape[-2:])
    return A - B @ K1 + (C - B @ K2) @ J


def closed_loop_radius(system: NearlyLQ, K: Tensor):
    """Spectral radius of :func:`closed_loop_matrix` (local stability at 0 iff < 1).

    A float for one policy of a single system, else a tensor of shape ``K.shape[:-2]``.
    """
    rho = torch.linalg.eigvals(closed_loop_matrix(system, K).detach()).abs().amax(-1)
    return float(rho) if rho.ndim == 0 else rho


def check_stabilizing(
    system: NearlyLQ,
    K: Tensor,
    x0: Tensor | None = None,
    horizon: int = 200,
    name: str = "K",
) -> None:
    """Raise ``ValueError`` unless ``K`` stabilises the system (every system of a stack).

    Two checks: the closed loop linearised at the origin has spectral radius < 1, and rollouts
    of ``horizon`` steps from ``x0`` (default: 64 points of the unit sphere) stay finite and end
    with ``max ||x_H|| < max ||x_0||``.
    """
    K = check_policy(system, K, name)
    rho = torch.as_tensor(closed_loop_radius(system, K))
    if not (rho < 1).all():
        bad = [i for i, r in enumerate(rho.reshape(-1).tolist()) if not r < 1]
        where = f" (systems/policies {bad})" if rho.ndim else ""
        raise ValueError(
            f"{name} does not stabilise the system{where}: the closed loop "
            f"linearised at 0 has spectral radius {float(rho.max()):.3g} >= 1"
        )
    if x0 is None:
        x0 = sample_x0(
            system.n, 64, torch.Generator().manual_seed(12345), dtype=system.dtype
        ).to(system.device)
        if system.n_systems is not None:
            x0 = x0.expand(system.n_systems, *([1] * (K.ndim - 3)), *x0.shape)
    with torch.no_grad():
        total, xs = rollout(system, K, x0, horizon, return_states=True)
    end, start = xs[-1].norm(dim=-1).max(), x0.norm(dim=-1).max()
    if not (torch.isfinite(total).all() and end < start):
        raise ValueError(
            f"{name} does not stabilise the system: after {horizon} steps "
            f"max ||x|| = {float(end):.3g} (started at {float(start):.3g})"
        )
