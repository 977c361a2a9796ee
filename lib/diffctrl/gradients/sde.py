"""Controlled SDEs with a parameter vector, simulated by Euler–Maruyama batched over paths.

The setting of Wang, Blanchet & Glynn (NeurIPS 2024, arXiv 2407.10065, Sec. 2):

    dX_t = mu_theta(t, X_t) dt + sigma_theta(t, X_t) dB_t,   X_0 = x0 in R^d,  B in R^m,
    v(theta) = E[ int_0^T rho_theta(t, X_t) dt + g_theta(X_T) ],   theta in R^n.

Everything here works on the Euler–Maruyama chain with ``N`` steps of size ``h = T / N``,

    X_{k+1} = X_k + mu_theta(t_k, X_k) h + sigma_theta(t_k, X_k) dB_k,   dB_k ~ N(0, h I_m),
    C = sum_{k<N} rho_theta(t_k, X_k) h + g_theta(X_N)            (left Riemann sum),

so that every estimator of ``grad_theta E[C]`` targets the same number (the gradient of the
discretised objective), and the exact references (``references.py``) can be computed for the
same chain.

Coefficient functions are batched and pure in the parameters ``p = problem.params(theta)``
(``theta (n,)`` split once per simulation by ``problem.prepare``, e.g. into the network's layer
views, so that reverse-mode autograd accumulates each layer's gradient in place instead of
scattering it into an ``n``-vector at every step), ``t (B,)``, ``x (B, d)``: ``drift_cost(p,
t, x)`` returns ``(mu (B, d), rho (B,))`` (one network pass for both), ``diffusion(p, t, x)``
returns ``sigma (B, d, m)``, ``terminal_cost(p, x)`` returns ``(B,)``. Coefficients act on each
path (row) separately.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.func import jacfwd, vmap

from ..checks import check_reward_values

__all__ = [
    "brownian_increments",
    "check_steps",
    "check_theta",
    "ControlledSDE",
    "euler_step",
    "path_costs",
    "resolve_noise",
    "simulate",
    "time_grid",
    "value_and_x_derivatives",
]

DriftCost = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]
]
Diffusion = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Terminal = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ControlledSDE:
    """A parameterised SDE with running and terminal cost (see the module docstring).

    Flags that let estimators skip work (and let the likelihood ratio refuse):
    ``sigma_depends_on_theta`` (then LR does not apply and GG needs second variations),
    ``sigma_depends_on_x`` (else the first/second variations have no noise term).
    ``network`` is the MLP inside the coefficients, if any (for counting passes).
    ``drift_cost_jvp(theta, t, x, v)`` (optional) returns ``((mu, rho), (d_mu, d_rho))`` with
    the directional derivatives along ``v (K, B, d)``: ``d_mu (K, B, d)``, ``d_rho (K, B)``; a
    hand-written forward mode that avoids ``torch.func``'s per-call overhead.
    """

    name: str
    x0: torch.Tensor
    T: float
    noise_dim: int
    n_params: int
    drift_cost: DriftCost
    diffusion: Diffusion
    terminal_cost: Terminal
    sigma_depends_on_theta: bool = False
    sigma_depends_on_x: bool = False
    network: Any = None
    drift_cost_jvp: Callable | None = None
    prepare: Callable | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if (
            not isinstance(self.T, (int, float))
            or not math.isfinite(self.T)
            or self.T <= 0
        ):
            raise ValueError(f"T must be a positive finite number, got {self.T!r}")
        if (
            not isinstance(self.x0, torch.Tensor)
            or self.x0.ndim != 1
            or self.x0.numel() < 1
        ):
            got = getattr(self.x0, "shape", self.x0)
            raise ValueError(f"x0 must be a 1-d tensor (d,), got {got!r}")
        if not bool(torch.isfinite(self.x0).all()):
            raise ValueError("x0 has non-finite entries (NaN or inf)")
        if not isinstance(self.noise_dim, int) or self.noise_dim < 1:
            raise ValueError(
                f"noise_dim must be a positive int, got {self.noise_dim!r}"
            )
        if not isinstance(self.n_params, int) or self.n_params < 1:
            raise ValueError(f"n_params must be a positive int, got {self.n_params!r}")
        for name in ("drift_cost", "diffusion", "terminal_cost"):
            if not callable(getattr(self, name)):
                raise TypeError(f"{name} must be callable")

    def params(self, theta: torch.Tensor) -> Any:
        """What the coefficient functions take: ``prepare(theta)`` (default ``theta``)."""
        return theta if self.prepare is None else self.prepare(theta)

    @property
    def d(self) -> int:
        return self.x0.shape[0]

    @property
    def m(self) -> int:
        return self.noise_dim


# --------------------------------------------------------------------------- validation
def check_theta(problem: ControlledSDE, theta: torch.Tensor) -> torch.Tensor:
    if not isinstance(theta, torch.Tensor):
        raise TypeError(f"theta must be a torch.Tensor, got {type(theta).__name__}")
    if theta.ndim != 1 or theta.shape[0] != problem.n_params:
        raise ValueError(
            f"theta must have shape ({problem.n_params},) for problem "
            f"{problem.name!r}, got {tuple(theta.shape)}"
        )
    if not theta.is_floating_point():
        raise TypeError(f"theta must be a floating tensor, got dtype {theta.dtype}")
    if not bool(torch.isfinite(theta).all()):
        raise ValueError("theta has non-finite entries (NaN or inf)")
    return theta


def check_steps(n_steps: Any, name: str = "n_steps") -> int:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"{name} must be an int >= 1, got {n_steps!r}")
    return n_steps


def brownian_increments(
    n_steps: int,
    n_paths: int,
    noise_dim: int,
    h: float,
    generator: torch.Generator | None = None,
    *,
    dtype=torch.float32,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Brownian increments ``dB (N, M, m)`` with ``dB_k ~ N(0, h I_m)``, from ``generator``."""
    check_steps(n_steps)
    check_steps(n_paths, "n_paths")
    z = torch.randn(
        n_steps, n_paths, noise_dim, generator=generator, dtype=dtype, device=device
    )
    return z * math.sqrt(h)


def resolve_noise(
    problem: ControlledSDE,
    theta: torch.Tensor,
    n_paths: int | None,
    n_steps: int | None,
    generator: torch.Generator | None,
    noise: torch.Tensor | None,
) -> tuple[torch.Tensor, int, int, float]:
    """Validate sizes and return ``(dB (N, M, m), N, M, h)``; draw ``dB`` when not given."""
    if noise is None:
        n_steps = check_steps(n_steps)
        n_paths = check_steps(n_paths, "n_paths")
        h = problem.T / n_steps
        noise = brownian_increments(
            n_steps,
            n_paths,
            problem.m,
            h,
            generator,
            dtype=theta.dtype,
            device=theta.device,
        )
    else:
        if noise.ndim != 3 or noise.shape[2] != problem.m:
            raise ValueError(
                f"noise must have shape (n_steps, n_paths, {problem.m}), "
                f"got {tuple(noise.shape)}"
            )
        if n_steps is not None and n_steps != noise.shape[0]:
            raise ValueError(f"n_steps={n_steps} but noise has {noise.shape[0]} steps")
        if n_paths is not None and n_paths != noise.shape[1]:
            raise ValueError(f"n_paths={n_paths} but noise has {noise.shape[1]} paths")
        n_steps, n_paths = noise.shape[0], noise.shape[1]
        check_steps(n_steps)
        check_steps(n_paths, "n_paths")
        noise = noise.to(dtype=theta.dtype, device=theta.device)
        h = problem.T / n_steps
    return noise, n_steps, n_paths, h


def time_grid(
    problem: ControlledSDE, n_steps: int, n_paths: int, k: int, like: torch.Tensor
) -> torch.Tensor:
    """``t_k = k h`` broadcast to ``(M,)``."""
    return torch.full(
        (n_paths,), k * problem.T / n_steps, dtype=like.dtype, device=like.device
    )


def euler_step(
    x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, db: torch.Tensor, h: float
) -> torch.Tensor:
    """``x + mu h + sigma dB``: ``x, mu (B, d)``, ``sigma (B, d, m)``, ``db (B, m)``."""
    return x + mu * h + torch.einsum("bdm,bm->bd", sigma, db)


# --------------------------------------------------------------------------- simulation
def simulate(
    problem: ControlledSDE,
    theta: torch.Tensor,
    *,
    n_paths: int | None = None,
    n_steps: int | None = None,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    keep_path: bool = False,
) -> dict[str, torch.Tensor]:
    """Euler–Maruyama paths and per-path costs ``C`` (differentiable in ``theta``).

    Returns ``{"cost": (M,), "x_T": (M, d)}`` and, with ``keep_path``, ``"path": (N+1, M, d)``
    and ``"noise": (N, M, m)``.
    """
    check_theta(problem, theta)
    noise, n_steps, n_paths, h = resolve_noise(
        problem, theta, n_paths, n_steps, generator, noise
    )
    x = problem.x0.to(dtype=theta.dtype, device=theta.device).expand(n_paths, -1)
    cost = torch.zeros(n_paths, dtype=theta.dtype, device=theta.device)
    path = [x] if keep_path else None
    p = problem.params(theta)
    for k in range(n_steps):
        t = time_grid(problem, n_steps, n_paths, k, theta)
        mu, rho = problem.drift_cost(p, t, x)
        sigma = problem.diffusion(p, t, x)
        cost = cost + rho * h
        x = euler_step(x, mu, sigma, noise[k], h)
        if keep_path:
            path.append(x)
    cost = cost + check_reward_values(
        problem.terminal_cost(p, x), n_paths, "terminal_cost"
    )
    out = {"cost": cost, "x_T": x}
    if keep_path:
        out["path"] = torch.stack(path)
        out["noise"] = noise
    return out


def path_costs(
    problem: ControlledSDE, theta: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Per-path costs ``(M,)`` for given increments ``noise (N, M, m)`` (no gradient)."""
    with torch.no_grad():
        return simulate(problem, theta, noise=noise)["cost"]


# --------------------------------------------------------------------------- derivatives in x
def _single(fn: Callable, theta: Any) -> Callable:
    """Per-sample version ``(t (), x (d,)) -> fn(theta, t[None], x[None])[0]`` (pytrees ok)."""

    def f(t, x):
        out = fn(theta, t[None], x[None])
        if isinstance(out, tuple):
            return tuple(o[0] for o in out)
        return out[0]

    return f


def value_and_x_derivatives(
    fn: Callable,
    theta: Any,
    t: torch.Tensor,
    x: torch.Tensor,
    order: int,
    jvp_fn: Callable | None = None,
) -> tuple[Any, Any, Any]:
    """``fn(theta, t, x)`` with its first (and, for ``order=2``, second) x-derivatives per path.

    ``theta`` is what the coefficients take (``problem.params(theta)``).

    Forward mode (``jacfwd``), vmapped over the batch: one network pass with ``d`` (or ``d^2``)
    tangents. For an output of shape ``(B, *s)`` the Jacobian is ``(B, *s, d)`` and the Hessian
    ``(B, *s, d, d)``; pytree outputs (tuples) give tuples. With ``order=1`` and a hand-written
    ``jvp_fn(theta, t, x, v)`` (see ``ControlledSDE.drift_cost_jvp``) that is used instead.
    """
    if order == 1 and jvp_fn is not None:
        n_b, d = x.shape
        basis = torch.eye(d, dtype=x.dtype, device=x.device)[:, None, :].expand(
            d, n_b, d
        )
        y, dy = jvp_fn(theta, t, x, basis)
        jac = (
            tuple(v.movedim(0, -1) for v in dy)
            if isinstance(dy, tuple)
            else dy.movedim(0, -1)
        )
        return y, jac, None
    f = _single(fn, theta)

    def with_aux(t1, x1):
        y = f(t1, x1)
        return y, y

    if order == 1:

        def one(t1, x1):
            jac, y = jacfwd(with_aux, argnums=1, has_aux=True)(t1, x1)
            return y, jac

        y, jac = vmap(one)(t, x)
        return y, jac, None
    if order != 2:
        raise ValueError(f"order must be 1 or 2, got {order!r}")

    def first(t1, x1):
        jac, y = jacfwd(with_aux, argnums=1, has_aux=True)(t1, x1)
        return jac, (y, jac)

    def two(t1, x1):
        hess, (y, jac) = jacfwd(first, argnums=1, has_aux=True)(t1, x1)
        return y, jac, hess

    return vmap(two)(t, x)
