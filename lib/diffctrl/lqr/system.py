"""The nearly linear-quadratic regulator: the system, stacks of systems, random instances.

Han, Razaviyayn, Xu (arXiv 2303.08431), Sec. 2 (chapter ``book/nearly_lq.md``):

    x_{t+1} = A x_t + B u_t + C phi(x_t),        u_t = -K1 x_t - K2 phi(x_t) = -K z_t,
    C(K) = E_{x0 ~ D} sum_t (x_t' Q x_t + u_t' R u_t),   z_t = [x_t; phi(x_t)],  K = [K1 K2].

Dimensions: state ``n``, control ``p``, kernel features ``d``; a policy ``K`` is a ``(p, n + d)``
matrix (``D = p (n + d)`` parameters). A *stacked* system (:func:`stack_systems`) holds ``R``
systems at once, so that independent runs advance in one batch; policies and rollouts are in
:mod:`~diffctrl.lqr.rollout`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .kernels import Kernel, _check_dim, sine_kernel

__all__ = ["NearlyLQ", "make_system", "random_system", "stack_systems"]

Tensor = torch.Tensor


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
    b_norm: float | None = None,
    c_norm: float | None = None,
) -> NearlyLQ:
    """A random instance as in the paper's Sec. 5 (our reading of the scaling).

    ``A (n, n)``, ``B (n, p)``, ``C (n, d)`` have iid standard Gaussian entries; each is then
    rescaled to the given spectral radius (for a non-square ``B``/``C``: the largest singular
    value). With ``b_norm`` (``c_norm``) given, ``B`` (``C``) is rescaled instead to that
    largest singular value ``||B||_2 = b_norm``: scaled by its spectral radius, a random
    ``B`` can have singular values far below it (a control that barely acts on some
    directions). The draws do not depend on these options (the same seed gives the same
    directions). The kernel defaults to ``phi(x) = scale * sin(x)``; ``Q = I``, ``R = I``.
    """
    _check_dim(n, "n")
    _check_dim(p, "p")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not 0 < spectral_radius:
        raise ValueError(f"spectral_radius must be positive, got {spectral_radius}")
    for name, value in (("b_norm", b_norm), ("c_norm", c_norm)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number or None, got {value!r}")
    kernel = kernel or sine_kernel(n, scale)
    rng = np.random.default_rng(seed)

    def scaled(shape, norm=None):
        M = rng.standard_normal(shape)
        if norm is not None:
            return M * (norm / np.linalg.norm(M, 2))
        size = (
            np.max(np.abs(np.linalg.eigvals(M)))
            if shape[0] == shape[1]
            else np.linalg.norm(M, 2)
        )
        return M * (spectral_radius / size)

    A = scaled((n, n))
    B = scaled((n, p), b_norm)
    C = scaled((n, kernel.d), c_norm)
    sys_ = make_system(A, B, C, kernel, device=device, dtype=dtype)
    return sys_.replace(
        meta={
            "seed": seed,
            "spectral_radius": spectral_radius,
            "b_norm": b_norm,
            "c_norm": c_norm,
            "kernel": kernel.name,
            "scale": kernel.scale,
        }
    )
