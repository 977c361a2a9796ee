"""The nearly linear-quadratic regulator: dynamics, kernels, policies, batched rollouts, cost.

Han, Razaviyayn, Xu (arXiv 2303.08431), Sec. 2 (chapter ``book/nearly_lq.md``):

    x_{t+1} = A x_t + B u_t + C phi(x_t),        u_t = -K1 x_t - K2 phi(x_t) = -K z_t,
    C(K) = E_{x0 ~ D} sum_t (x_t' Q x_t + u_t' R u_t),   z_t = [x_t; phi(x_t)],  K = [K1 K2].

Dimensions: state ``n``, control ``p``, kernel features ``d``; a policy ``K`` is a ``(p, n + d)``
matrix (``D = p (n + d)`` parameters). Everything is batched: a batch of policies
``(..., p, n + d)`` runs against a batch of initial states ``(..., m, n)`` (leading dims
broadcast), with one Python loop over time only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

Tensor = torch.Tensor


# --------------------------------------------------------------------------- kernels
@dataclass(frozen=True)
class Kernel:
    """A feature map ``phi(x) = scale * base(x)``, ``(..., n) -> (..., d)``.

    ``base`` is written in torch (autograd differentiates through it); ``lipschitz`` bounds the
    Lipschitz constant of ``base`` (so ``phi`` has ``|scale| * lipschitz``). ``scale`` is a float,
    or a tensor ``(R,)`` in a stacked system (one scale per system, see :func:`stack_systems`).
    """

    base: Callable[[Tensor], Tensor]
    n: int
    d: int
    lipschitz: float
    scale: float | Tensor = 1.0
    name: str = "kernel"

    def __call__(self, x: Tensor) -> Tensor:
        """``phi(x)``; with a tensor ``scale (R,)``, ``x`` must be ``(R, ..., n)``."""
        out = self.base(x)
        if isinstance(self.scale, Tensor):
            return out * self.scale.to(out).view(-1, *([1] * (out.ndim - 1)))
        return self.scale * out

    @property
    def lipschitz_phi(self):
        """Lipschitz constant of ``phi`` itself: ``|scale| * lipschitz``."""
        return abs(self.scale) * self.lipschitz


def sine_kernel(n: int, scale: float = 1.0) -> Kernel:
    """Entrywise ``phi(x) = l * sin(x)`` (paper Sec. 5), ``d = n``; Lipschitz constant ``l``."""
    _check_dim(n, "n")
    return Kernel(torch.sin, n=n, d=n, lipschitz=1.0, scale=float(scale), name="sin")


def product_kernel(
    n: int, pairs: Sequence[tuple[int, int]], scale: float = 1.0
) -> Kernel:
    """Product features ``phi_k(x) = l * sin(x_i) * sin(x_j)`` for ``(i, j)`` in ``pairs``.

    Bounded and globally Lipschitz (constant ``<= l * sqrt(2 * len(pairs))``), so it fits the
    paper's small-Lipschitz kernel assumption; ``d = len(pairs)``.
    """
    _check_dim(n, "n")
    pairs = [(int(i), int(j)) for i, j in pairs]
    if not pairs:
        raise ValueError("pairs must name at least one (i, j) index pair")
    for i, j in pairs:
        if not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"pairs: index pair {(i, j)} is out of range for n={n}")
    idx_i = [i for i, _ in pairs]
    idx_j = [j for _, j in pairs]

    def base(x: Tensor) -> Tensor:
        s = torch.sin(x)
        return s[..., idx_i] * s[..., idx_j]

    return Kernel(
        base,
        n=n,
        d=len(pairs),
        lipschitz=math.sqrt(2 * len(pairs)),
        scale=float(scale),
        name=f"sin(x_i)sin(x_j) {pairs}",
    )


def stack_kernels(*kernels: Kernel) -> Kernel:
    """Concatenate feature maps of the same state dimension: ``phi = [phi_1; phi_2; ...]``."""
    if not kernels:
        raise ValueError("stack_kernels needs at least one kernel")
    n = kernels[0].n
    if any(k.n != n for k in kernels):
        raise ValueError("stack_kernels: kernels act on different state dimensions")
    if any(isinstance(k.scale, Tensor) for k in kernels):
        raise ValueError(
            "stack_kernels: kernels of stacked systems cannot be concatenated"
        )
    return Kernel(
        lambda x: torch.cat([k(x) for k in kernels], dim=-1),
        n=n,
        d=sum(k.d for k in kernels),
        lipschitz=math.sqrt(sum(k.lipschitz_phi**2 for k in kernels)),
        name=" ; ".join(f"{k.scale:g}*{k.name}" for k in kernels),
    )


# --------------------------------------------------------------------------- the system
@dataclass(frozen=True)
class NearlyLQ:
    """``x' = A x + B u + C phi(x)`` with stage cost ``x'Qx + u'Ru`` (float64 tensors).

    Shapes: ``A (n, n)``, ``B (n, p)``, ``C (n, d)``, ``Q (n, n)``, ``R (p, p)``. A *stacked*
    system (:func:`stack_systems`) holds ``R_`` systems at once: every matrix gets a leading dim
    ``(R_, ...)``, the kernel a scale per system, and every policy / state tensor passed with it
    must carry the same leading dim (``K (R_, ..., p, n + d)``, ``x0 (R_, ..., m, n)``).
    """

    A: Tensor
    B: Tensor
    C: Tensor
    Q: Tensor
    R: Tensor
    kernel: Kernel
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        for name in ("A", "B", "C", "Q", "R"):
            value = getattr(self, name)
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"{name} must be a torch.Tensor, got {type(value).__name__}"
                )
            if value.ndim not in (2, 3):
                raise ValueError(
                    f"{name} must be a matrix (or a stack of matrices), got shape "
                    f"{tuple(value.shape)}"
                )
            if not torch.isfinite(value).all():
                raise ValueError(f"{name} has non-finite entries")
        lead = self.A.shape[:-2]
        n, p, d = self.A.shape[-1], self.B.shape[-1], self.C.shape[-1]
        expected = {"A": (n, n), "B": (n, p), "C": (n, d), "Q": (n, n), "R": (p, p)}
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != (*lead, *shape):
                raise ValueError(
                    f"{name} must have shape {(*lead, *shape)} (n={n}, p={p}, "
                    f"d={d}), got {tuple(getattr(self, name).shape)}"
                )
        if self.kernel.n != n or self.kernel.d != d:
            raise ValueError(
                f"kernel maps R^{self.kernel.n} -> R^{self.kernel.d}, but A, C "
                f"need R^{n} -> R^{d}"
            )
        if isinstance(self.kernel.scale, Tensor) and tuple(
            self.kernel.scale.shape
        ) != tuple(lead):
            raise ValueError(
                "a kernel with one scale per system needs a stacked system with "
                f"as many systems; got scales {tuple(self.kernel.scale.shape)}, "
                f"systems {tuple(lead)}"
            )

    @property
    def n(self) -> int:
        return self.A.shape[-1]

    @property
    def p(self) -> int:
        return self.B.shape[-1]

    @property
    def d(self) -> int:
        return self.C.shape[-1]

    @property
    def n_systems(self) -> int | None:
        """Number of stacked systems, ``None`` for a single one."""
        return self.A.shape[0] if self.A.ndim == 3 else None

    @property
    def policy_shape(self) -> tuple[int, int]:
        return (self.p, self.n + self.d)

    @property
    def dtype(self) -> torch.dtype:
        return self.A.dtype

    @property
    def device(self) -> torch.device:
        return self.A.device

    def replace(self, **changes) -> NearlyLQ:
        values = dict(
            A=self.A,
            B=self.B,
            C=self.C,
            Q=self.Q,
            R=self.R,
            kernel=self.kernel,
            meta=self.meta,
        )
        values.update(changes)
        return NearlyLQ(**values)

    def to(self, device=None, dtype=None) -> NearlyLQ:
        kw = dict(device=device, dtype=dtype)
        return self.replace(**{k: getattr(self, k).to(**kw) for k in "ABCQR"})

    def phi(self, x: Tensor) -> Tensor:
        """The kernel features ``phi(x)``, ``(..., d)``."""
        return self.kernel(x)

    def select(self, index) -> NearlyLQ:
        """The sub-stack ``index`` (a bool mask or index tensor) of a stacked system."""
        if self.n_systems is None:
            raise ValueError("select needs a stacked system")
        scale = self.kernel.scale
        kernel = (
            replace(self.kernel, scale=scale[index])
            if isinstance(scale, Tensor)
            else self.kernel
        )
        metas = self.meta.get("systems")
        idx = torch.arange(self.n_systems, device=self.A.device)[index].tolist()
        meta = {"systems": [metas[i] for i in idx]} if metas else {}
        return self.replace(
            **{k: getattr(self, k)[index] for k in "ABCQR"}, kernel=kernel, meta=meta
        )

    def unstack(self) -> list[NearlyLQ]:
        """The single systems of a stacked system (a one-element list for a single system)."""
        if self.n_systems is None:
            return [self]
        scales = self.kernel.scale
        metas = self.meta.get("systems", [{}] * self.n_systems)
        return [
            NearlyLQ(
                self.A[i],
                self.B[i],
                self.C[i],
                self.Q[i],
                self.R[i],
                replace(
                    self.kernel,
                    scale=float(scales[i]) if isinstance(scales, Tensor) else scales,
                ),
                meta=metas[i],
            )
            for i in range(self.n_systems)
        ]


def stack_systems(systems: Sequence[NearlyLQ]) -> NearlyLQ:
    """Stack single systems sharing one kernel base (scales may differ) into one batch."""
    systems = list(systems)
    if not systems:
        raise ValueError("stack_systems needs at least one system")
    first = systems[0]
    for s in systems:
        if s.n_systems is not None:
            raise ValueError("stack_systems takes single systems")
        if (s.n, s.p, s.d) != (first.n, first.p, first.d):
            raise ValueError(
                "stack_systems: systems have different dimensions (n, p, d)"
            )
        if s.kernel.base is not first.kernel.base:
            raise ValueError(
                "stack_systems: systems must share the same kernel base function"
            )
    scales = torch.tensor(
        [float(s.kernel.scale) for s in systems], dtype=first.dtype, device=first.device
    )
    kernel = replace(first.kernel, scale=scales)
    mats = {k: torch.stack([getattr(s, k) for s in systems]) for k in "ABCQR"}
    return NearlyLQ(**mats, kernel=kernel, meta={"systems": [s.meta for s in systems]})


def make_system(
    A, B, C, kernel: Kernel, Q=None, R=None, device=None, dtype=torch.float64
) -> NearlyLQ:
    """Build a :class:`NearlyLQ` from arrays (``Q = I``, ``R = I`` by default)."""

    def t(x):
        return torch.as_tensor(
            np.asarray(x) if not isinstance(x, Tensor) else x,
            dtype=dtype,
            device=device,
        )

    A, B, C = t(A), t(B), t(C)
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(
            f"A and B must be matrices, got shapes {tuple(A.shape)}, {tuple(B.shape)}"
        )
    Q = torch.eye(A.shape[0], dtype=dtype, device=device) if Q is None else t(Q)
    R = torch.eye(B.shape[1], dtype=dtype, device=device) if R is None else t(R)
    return NearlyLQ(A, B, C, Q, R, kernel)


def random_system(
    n: int = 3,
    p: int = 3,
    scale: float = 1.0,
    seed: int = 0,
    spectral_radius: float = 0.5,
    kernel: Kernel | None = None,
    device=None,
    dtype=torch.float64,
) -> NearlyLQ:
    """A random instance as in the paper's Sec. 5 (our reading of the scaling).

    ``A (n, n)``, ``B (n, p)``, ``C (n, d)`` have iid standard Gaussian entries; each is then
    rescaled to the given spectral radius (for a non-square ``B``/``C``: the largest singular
    value). The kernel defaults to ``phi(x) = scale * sin(x)``; ``Q = I``, ``R = I``.
    """
    _check_dim(n, "n")
    _check_dim(p, "p")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not 0 < spectral_radius:
        raise ValueError(f"spectral_radius must be positive, got {spectral_radius}")
    kernel = kernel or sine_kernel(n, scale)
    rng = np.random.default_rng(seed)

    def scaled(shape):
        M = rng.standard_normal(shape)
        size = (
            np.max(np.abs(np.linalg.eigvals(M)))
            if shape[0] == shape[1]
            else np.linalg.norm(M, 2)
        )
        return M * (spectral_radius / size)

    A, B, C = scaled((n, n)), scaled((n, p)), scaled((n, kernel.d))
    sys_ = make_system(A, B, C, kernel, device=device, dtype=dtype)
    return sys_.replace(
        meta={
            "seed": seed,
            "spectral_radius": spectral_radius,
            "kernel": kernel.name,
            "scale": kernel.scale,
        }
    )


# --------------------------------------------------------------------------- policies, rollouts
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


def _check_dim(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
