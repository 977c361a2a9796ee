"""Functions on a 1-D or 2-D grid: C^1 cubic interpolation, Gauss-Hermite quadrature and
finite-difference Lipschitz constants — the representation of the grid PI-FT solver.

- :class:`Grid` a tensor grid on a box ``[lo, hi]`` with ``n`` points per axis (``"ij"`` order);
- :func:`interpolate` Catmull-Rom (cubic Hermite with central-difference slopes) per axis,
  tensor product in 2-D, with its exact gradient. It is C^1, O(h^3) accurate, and reproduces
  every polynomial of degree <= 2 in each variable *exactly* (ghost points by quadratic
  extrapolation; queries outside the box use the edge cell's cubic), so a quadratic value
  function, hence the whole LQ solution, is represented without error;
- :func:`gauss_hermite` nodes and weights of ``E f(W)``, ``W ~ N(0, I_d)`` (tensor product of the
  probabilists' rule, exact for polynomials of degree <= 2n - 1 in each variable);
- :func:`lipschitz_field` / :func:`hessian_bounds` finite-difference estimates of ``Lip(u)`` and of
  ``Lip(grad V) = sup ||Hess V||`` on the grid's interior (or a sub-box).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "Grid",
    "GridFunction",
    "gauss_hermite",
    "hessian_bounds",
    "hessian_field",
    "interpolate",
    "jacobian_field",
    "lipschitz_field",
    "pad_values",
    "second_derivative_bound",
    "smoothed_value_and_grad",
    "smoothing_matrices",
    "sup_grad",
]


@dataclass(frozen=True)
class Grid:
    """A tensor grid: ``lo``, ``hi`` (d,) box corners, ``n`` (d,) points per axis (d = 1 or 2)."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]
    n: tuple[int, ...]

    def __post_init__(self):
        d = len(self.n)
        if d not in (1, 2) or len(self.lo) != d or len(self.hi) != d:
            raise ValueError(
                f"a grid is 1-D or 2-D with lo, hi, n of equal length; got "
                f"lo={self.lo}, hi={self.hi}, n={self.n}"
            )
        if any(int(k) < 4 for k in self.n):
            raise ValueError(f"need at least 4 points per axis, got n={self.n}")
        if any(not h > l for l, h in zip(self.lo, self.hi)):
            raise ValueError(
                f"need lo < hi on every axis, got lo={self.lo}, hi={self.hi}"
            )

    @classmethod
    def create(cls, lo, hi, n, d: int | None = None) -> Grid:
        """``lo``, ``hi`` scalars or (d,), ``n`` int or (d,)."""

        def vec(x, cast):
            x = np.atleast_1d(np.asarray(x, dtype=float if cast is float else int))
            return x

        lo_, hi_, n_ = vec(lo, float), vec(hi, float), vec(n, int)
        dd = d or max(lo_.size, hi_.size, n_.size)
        lo_, hi_, n_ = (np.broadcast_to(x, (dd,)) for x in (lo_, hi_, n_))
        return cls(
            tuple(float(x) for x in lo_),
            tuple(float(x) for x in hi_),
            tuple(int(x) for x in n_),
        )

    @property
    def d(self) -> int:
        return len(self.n)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.n)

    @property
    def size(self) -> int:
        return int(np.prod(self.n))

    @property
    def h(self) -> tuple[float, ...]:
        return tuple((b - a) / (k - 1) for a, b, k in zip(self.lo, self.hi, self.n))

    def axes(self, dtype=torch.float64, device="cpu") -> list[torch.Tensor]:
        return [
            torch.linspace(a, b, k, dtype=dtype, device=device)
            for a, b, k in zip(self.lo, self.hi, self.n)
        ]

    def points(self, dtype=torch.float64, device="cpu") -> torch.Tensor:
        """All grid points, shape (size, d), in ``"ij"`` (C) order matching ``values.reshape(-1)``."""
        mesh = torch.meshgrid(*self.axes(dtype, device), indexing="ij")
        return torch.stack([m.reshape(-1) for m in mesh], dim=-1)

    def mask(self, lo=None, hi=None, margin: int = 1, device="cpu") -> torch.Tensor:
        """Boolean (size,) mask of points at least ``margin`` cells inside the grid and within
        the sub-box ``[lo, hi]`` (default: the whole grid)."""
        pts = self.points(device=device)
        keep = torch.ones(self.size, dtype=torch.bool, device=device)
        idx = torch.meshgrid(
            *[torch.arange(k, device=device) for k in self.n], indexing="ij"
        )
        for i, k in enumerate(self.n):
            ii = idx[i].reshape(-1)
            keep &= (ii >= margin) & (ii <= k - 1 - margin)
        if lo is not None:
            keep &= torch.all(
                pts >= torch.as_tensor(lo, dtype=pts.dtype, device=device) - 1e-12, -1
            )
        if hi is not None:
            keep &= torch.all(
                pts <= torch.as_tensor(hi, dtype=pts.dtype, device=device) + 1e-12, -1
            )
        return keep


# --------------------------------------------------------------------------- interpolation
def _pad_quadratic(f: torch.Tensor, dim: int) -> torch.Tensor:
    """One ghost point at each end of ``dim`` by quadratic extrapolation (exact for quadratics)."""
    n = f.shape[dim]
    sl = lambda i: f.narrow(dim, i, 1)  # noqa: E731
    left = 3 * sl(0) - 3 * sl(1) + sl(2)
    right = 3 * sl(n - 1) - 3 * sl(n - 2) + sl(n - 3)
    return torch.cat([left, f, right], dim=dim)


def _cr_weights(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Catmull-Rom weights of f_{j-1}, f_j, f_{j+1}, f_{j+2} at fractional position s, and their
    s-derivatives; shapes (M, 4)."""
    s2, s3 = s * s, s * s * s
    w = torch.stack(
        [
            0.5 * (-s + 2 * s2 - s3),
            0.5 * (2 - 5 * s2 + 3 * s3),
            0.5 * (s + 4 * s2 - 3 * s3),
            0.5 * (-s2 + s3),
        ],
        dim=-1,
    )
    dw = torch.stack(
        [
            0.5 * (-1 + 4 * s - 3 * s2),
            0.5 * (-10 * s + 9 * s2),
            0.5 * (1 + 8 * s - 9 * s2),
            0.5 * (-2 * s + 3 * s2),
        ],
        dim=-1,
    )
    return w, dw


def _locate(grid: Grid, y: torch.Tensor, axis: int):
    h = grid.h[axis]
    x = (y[:, axis] - grid.lo[axis]) / h
    j = torch.clamp(torch.floor(torch.nan_to_num(x)), 0, grid.n[axis] - 2).long()
    s = x - j
    w, dw = _cr_weights(s)
    return j, w, dw / h


def interpolate(
    grid: Grid,
    values: torch.Tensor,
    y: torch.Tensor,
    *,
    pad: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Catmull-Rom interpolation of grid values and its gradient at points ``y`` (M, d).

    ``values`` has shape ``grid.shape`` or ``(*grid.shape, C)`` (C channels, e.g. the components
    of a control); returns ``(val (M[, C]), grad (M[, C], d))``. ``pad`` may pass the values
    already padded by :func:`pad_values` (to reuse across calls).
    """
    d = grid.d
    if y.ndim != 2 or y.shape[1] != d:
        raise ValueError(f"y must have shape (M, {d}), got {tuple(y.shape)}")
    scalar = values.shape == grid.shape
    if not scalar and values.shape[:d] != grid.shape:
        raise ValueError(
            f"values must have shape {grid.shape} or {grid.shape} + (C,), got "
            f"{tuple(values.shape)}"
        )
    F = pad if pad is not None else pad_values(grid, values)
    if scalar:
        F = F[..., None]
    y = y.to(F)
    ar = torch.arange(4, device=y.device)
    if d == 1:
        j, w, dw = _locate(grid, y, 0)
        vals = F[j[:, None] + ar]  # (M, 4, C)
        val = torch.einsum("ma,mac->mc", w, vals)
        grad = torch.einsum("ma,mac->mc", dw, vals)[..., None]
    else:
        j1, w1, dw1 = _locate(grid, y, 0)
        j2, w2, dw2 = _locate(grid, y, 1)
        vals = F[
            (j1[:, None] + ar)[:, :, None], (j2[:, None] + ar)[:, None, :]
        ]  # (M, 4, 4, C)
        val = torch.einsum("ma,mb,mabc->mc", w1, w2, vals)
        g1 = torch.einsum("ma,mb,mabc->mc", dw1, w2, vals)
        g2 = torch.einsum("ma,mb,mabc->mc", w1, dw2, vals)
        grad = torch.stack([g1, g2], dim=-1)
    if scalar:
        return val[:, 0], grad[:, 0]
    return val, grad


def pad_values(grid: Grid, values: torch.Tensor) -> torch.Tensor:
    """Values with one ghost layer per side on each grid axis (quadratic extrapolation)."""
    F = values
    for axis in range(grid.d):
        F = _pad_quadratic(F, axis)
    return F


@dataclass(frozen=True)
class GridFunction:
    """A function stored on a grid (values ``grid.shape``): ``f(y) -> (value (M,), grad (M, d))``."""

    grid: Grid
    values: torch.Tensor

    def __post_init__(self):
        if tuple(self.values.shape) != self.grid.shape:
            raise ValueError(
                f"values must have shape {self.grid.shape}, got "
                f"{tuple(self.values.shape)}"
            )
        object.__setattr__(self, "_pad", pad_values(self.grid, self.values))

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        return interpolate(self.grid, self.values, y, pad=self._pad)[0]

    def value_and_grad(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return interpolate(self.grid, self.values, y, pad=self._pad)

    def grad(self, y: torch.Tensor) -> torch.Tensor:
        return self.value_and_grad(y)[1]


# --------------------------------------------------------------------------- quadrature
def gauss_hermite(
    n: int, d: int = 1, dtype=torch.float64, device="cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes (n^d, d) and weights (n^d,) with ``sum_j w_j f(x_j) ≈ E f(W)``, ``W ~ N(0, I_d)``."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(
            f"n (Gauss-Hermite nodes per axis) must be an int >= 1, got {n!r}"
        )
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / math.sqrt(2 * math.pi)
    xs = np.stack(np.meshgrid(*([x] * d), indexing="ij"), -1).reshape(-1, d)
    ws = np.prod(
        np.stack(np.meshgrid(*([w] * d), indexing="ij"), -1).reshape(-1, d), axis=1
    )
    return (
        torch.as_tensor(xs, dtype=dtype, device=device),
        torch.as_tensor(ws, dtype=dtype, device=device),
    )


def smoothing_matrices(
    grid: Grid, base: torch.Tensor, sigma: float, n_gh: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per axis i, dense ``(A_i, dA_i)`` of shape (G, n_i + 2) with
    ``E_W f(base_g + sigma W) = sum A_1[g, a] A_2[g, b] F[a, b]`` for the padded values F of the
    Catmull-Rom interpolant (1-D: ``A_1 @ F``), and the same with ``dA_i`` for ``E_W d_i f``.

    Exact rewrite of "interpolate at the n_gh^d Gauss-Hermite points, then average": the noise is
    isotropic and the rule a tensor product, so the weights factor over the axes.
    """
    if base.ndim != 2 or base.shape[1] != grid.d:
        raise ValueError(f"base must have shape (G, {grid.d}), got {tuple(base.shape)}")
    x, w = np.polynomial.hermite_e.hermegauss(n_gh)
    x = torch.as_tensor(x, dtype=base.dtype, device=base.device)
    w = torch.as_tensor(
        w / math.sqrt(2 * math.pi), dtype=base.dtype, device=base.device
    )
    Gn = base.shape[0]
    out = []
    ar = torch.arange(4, device=base.device)
    for axis in range(grid.d):
        z = base[:, axis : axis + 1] + sigma * x[None, :]  # (G, n)
        h = grid.h[axis]
        pos = (z - grid.lo[axis]) / h
        j = torch.clamp(torch.floor(torch.nan_to_num(pos)), 0, grid.n[axis] - 2).long()
        wt, dwt = _cr_weights(pos - j)  # (G, n, 4)
        cols = (j[..., None] + ar).reshape(Gn, -1)
        A = torch.zeros(Gn, grid.n[axis] + 2, dtype=base.dtype, device=base.device)
        dA = torch.zeros_like(A)
        A.scatter_add_(1, cols, (w[None, :, None] * wt).reshape(Gn, -1))
        dA.scatter_add_(1, cols, (w[None, :, None] * dwt / h).reshape(Gn, -1))
        out.append((A, dA))
    return out


def smoothed_value_and_grad(
    grid: Grid, pad: torch.Tensor, mats
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E_W f(base + sigma W) (G,), E_W grad f(base + sigma W) (G, d))`` from the padded grid
    values ``pad`` and :func:`smoothing_matrices`."""
    if grid.d == 1:
        ((A, dA),) = mats
        return A @ pad, (dA @ pad)[:, None]
    (A1, dA1), (A2, dA2) = mats
    B = A2 @ pad.T  # row g: F @ a2[g]
    dB = dA2 @ pad.T
    return (A1 * B).sum(1), torch.stack([(dA1 * B).sum(1), (A1 * dB).sum(1)], dim=-1)


# --------------------------------------------------------------------------- Lipschitz constants
def _central(f: torch.Tensor, axis: int, h: float) -> torch.Tensor:
    """Central difference along ``axis`` (one-sided at the ends), same shape as f."""
    out = torch.empty_like(f)
    n = f.shape[axis]
    mid = (f.narrow(axis, 2, n - 2) - f.narrow(axis, 0, n - 2)) / (2 * h)
    out.narrow(axis, 1, n - 2).copy_(mid)
    out.narrow(axis, 0, 1).copy_((f.narrow(axis, 1, 1) - f.narrow(axis, 0, 1)) / h)
    out.narrow(axis, n - 1, 1).copy_(
        (f.narrow(axis, n - 1, 1) - f.narrow(axis, n - 2, 1)) / h
    )
    return out


def jacobian_field(grid: Grid, u: torch.Tensor) -> torch.Tensor:
    """Finite-difference Jacobian of a field ``u`` (*grid.shape, C): shape (size, C, d)."""
    if u.shape == grid.shape:
        u = u[..., None]
    J = torch.stack([_central(u, axis, grid.h[axis]) for axis in range(grid.d)], dim=-1)
    return J.reshape(grid.size, u.shape[-1], grid.d)


def lipschitz_field(
    grid: Grid, u: torch.Tensor, mask: torch.Tensor | None = None
) -> float:
    """``max ||Du||_2`` over the grid points in ``mask`` (default: one cell inside the edges),
    with ``Du`` by central differences; ``u`` of shape grid.shape or (*grid.shape, C)."""
    J = jacobian_field(grid, u)
    mask = grid.mask(device=u.device) if mask is None else mask
    J = J[mask]
    if not torch.all(torch.isfinite(J)):
        return math.nan
    return float(torch.linalg.matrix_norm(J, ord=2).max())


def hessian_field(grid: Grid, V: torch.Tensor) -> torch.Tensor:
    """Finite-difference Hessian of a scalar grid function ``V`` (grid.shape): (size, d, d)
    (second differences; mixed term by the four-point stencil)."""
    if V.shape != grid.shape:
        raise ValueError(f"V must have shape {grid.shape}, got {tuple(V.shape)}")
    H = torch.zeros(*grid.shape, grid.d, grid.d, dtype=V.dtype, device=V.device)
    for a in range(grid.d):
        n, h = grid.n[a], grid.h[a]
        sec = (
            V.narrow(a, 2, n - 2) - 2 * V.narrow(a, 1, n - 2) + V.narrow(a, 0, n - 2)
        ) / h**2
        H[..., a, a].narrow(a, 1, n - 2).copy_(sec)
    if grid.d == 2:
        h1, h2 = grid.h
        mixed = (V[2:, 2:] - V[2:, :-2] - V[:-2, 2:] + V[:-2, :-2]) / (4 * h1 * h2)
        H[1:-1, 1:-1, 0, 1] = mixed
        H[1:-1, 1:-1, 1, 0] = mixed
    return H.reshape(grid.size, grid.d, grid.d)


def hessian_bounds(
    grid: Grid, V: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[float, float, float]:
    """``(lambda_min, lambda_max, max ||Hess V||_2)`` over ``mask`` (default: interior points)."""
    H = hessian_field(grid, V)
    mask = grid.mask(device=V.device) if mask is None else mask
    H = H[mask]
    if not torch.all(torch.isfinite(H)):
        return math.nan, math.nan, math.nan
    lam = torch.linalg.eigvalsh(H)
    return float(lam[:, 0].min()), float(lam[:, -1].max()), float(lam.abs().max())


def sup_grad(grid: Grid, V: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """``max |grad V|`` over ``mask`` by central differences."""
    J = jacobian_field(grid, V)[:, 0, :]
    mask = grid.mask(device=V.device) if mask is None else mask
    return float(J[mask].norm(dim=-1).max())


def second_derivative_bound(
    grid: Grid, m: torch.Tensor, mask: torch.Tensor | None = None
) -> float:
    """A bound on the trilinear norm of ``D^2 m`` for a field ``m`` (*grid.shape, C):
    ``max sqrt(sum_c ||Hess m_c||_2^2)`` over ``mask``."""
    mask = grid.mask(device=m.device) if mask is None else mask
    tot = torch.zeros(int(mask.sum()), dtype=m.dtype, device=m.device)
    for c in range(m.shape[-1]):
        H = hessian_field(grid, m[..., c])[mask]
        if not torch.all(torch.isfinite(H)):
            return math.nan
        tot = tot + torch.linalg.eigvalsh(H).abs().max(-1).values ** 2
    return float(tot.sqrt().max())
