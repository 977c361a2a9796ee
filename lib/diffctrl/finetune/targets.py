"""Tilted targets ``p*(x) ∝ p0(x) exp(r(x) / beta)``: the law that KL-regularised fine-tuning
aims at (``book/notation.md``, *The controlled chain*; Han, Razaviyayn, Xu 2025, Sec. 2), in closed form where one exists.

For a Gaussian mixture ``p0 = sum_k w_k N(m_k, S_k)``:

- linear reward ``r(x) = c^T x``: component k becomes ``N(m_k + S_k c / beta, S_k)`` with weight
  ``∝ w_k exp(c^T m_k / beta + c^T S_k c / (2 beta^2))`` (:func:`tilt_linear`);
- quadratic reward ``r(x) = -1/2 (x - a)^T Q (x - a)`` (Q positive definite): component k has
  precision ``S_k^{-1} + Q / beta``, mean ``(S_k^{-1} + Q/beta)^{-1} (S_k^{-1} m_k + Q a / beta)``
  and weight ``∝ w_k N(a; m_k, S_k + beta Q^{-1})`` (:func:`tilt_quadratic`);
- quadratic reward with Q only positive *semi*-definite (a rank-deficient Q, say, plus a linear
  term): still a Gaussian mixture, :func:`diffctrl.control.tilted.tilted_mixture`;
- any other reward in 1-D / 2-D: :class:`GridTarget`, the density on a fine tensor grid,
  normalised by quadrature (trapezoid rule, spectrally accurate for smooth, decaying integrands),
  sampled by rejection from a piecewise-constant envelope. The grid checks the mass on its edge:
  a default box is widened until that mass is negligible, a given box that cuts mass off warns.

:func:`tilted_target` picks the right one for a reward of :mod:`diffctrl.control.rewards`.
Everything is float64.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..diffusion.exact import GaussianMixture

__all__ = ["GridTarget", "check_beta", "tilt_linear", "tilt_quadratic", "tilted_target"]


def check_beta(beta) -> float:
    """``beta`` must be a finite float > 0 (the KL weight)."""
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise TypeError(f"beta must be a number, got {type(beta).__name__}") from None
    if not math.isfinite(b) or b <= 0:
        raise ValueError(f"beta (KL weight) must be finite and > 0, got {beta!r}")
    return b


def _vec(x, p0: GaussianMixture, name: str) -> torch.Tensor:
    v = torch.as_tensor(x, dtype=p0.means.dtype, device=p0.means.device).reshape(-1)
    if v.shape != (p0.dim,):
        raise ValueError(
            f"{name} must have shape ({p0.dim},) to match the mixture, got {tuple(v.shape)}"
        )
    return v


def tilt_linear(p0: GaussianMixture, c, beta: float) -> GaussianMixture:
    """``p0 exp(c^T x / beta)`` normalised (module docstring), a Gaussian mixture."""
    beta = check_beta(beta)
    c = _vec(c, p0, "c")
    Sc = torch.einsum("kij,j->ki", p0.covs, c)  # (K, d)
    logw = torch.log(p0.weights) + p0.means @ c / beta + (Sc @ c) / (2 * beta**2)
    return GaussianMixture(
        torch.softmax(logw, 0), p0.means + Sc / beta, p0.covs.clone()
    )


def tilt_quadratic(p0: GaussianMixture, Q, a, beta: float) -> GaussianMixture:
    """``p0 exp(-(x - a)^T Q (x - a) / (2 beta))`` normalised (module docstring), Q PD."""
    beta = check_beta(beta)
    a = _vec(a, p0, "a")
    d = p0.dim
    Q = torch.as_tensor(Q, dtype=p0.means.dtype, device=p0.means.device)
    if Q.ndim == 0:
        Q = Q * torch.eye(d, dtype=Q.dtype, device=Q.device)
    if Q.shape != (d, d):
        raise ValueError(f"Q must be ({d}, {d}), got {tuple(Q.shape)}")
    if not torch.allclose(Q, Q.T) or float(torch.linalg.eigvalsh(Q).min()) <= 0:
        raise ValueError(
            "Q must be symmetric positive definite for the quadratic closed form"
        )
    prec = torch.linalg.inv(p0.covs) + Q / beta  # (K, d, d)
    cov = torch.linalg.inv(prec)
    cov = 0.5 * (cov + cov.transpose(-1, -2))
    rhs = (
        torch.linalg.solve(p0.covs, p0.means.unsqueeze(-1)).squeeze(-1) + (Q @ a) / beta
    )
    mean = torch.einsum("kij,kj->ki", cov, rhs)
    # weight ∝ w_k N(a; m_k, S_k + beta Q^{-1})
    C = p0.covs + beta * torch.linalg.inv(Q)
    comp = GaussianMixture(torch.ones_like(p0.weights) / p0.n_components, p0.means, C)
    logn, _ = comp._components(a[None])
    logw = torch.log(p0.weights) + logn[0] + math.log(p0.n_components)
    return GaussianMixture(torch.softmax(logw, 0), mean, cov)


def _trapezoid_weights(n: int, h: float, dtype, device) -> torch.Tensor:
    w = torch.full((n,), h, dtype=dtype, device=device)
    w[0] = w[-1] = h / 2
    return w


@dataclass
class GridTarget:
    """``p* ∝ p0 exp(r / beta)`` for any reward in 1-D or 2-D, by quadrature on a tensor grid.

    ``log_prob`` is exact up to the quadrature error of ``log Z`` (the density itself is
    evaluated pointwise: ``log p0(x) + r(x)/beta - log Z``); ``sample`` is rejection sampling
    from a piecewise-constant envelope over the grid cells (exact whenever the envelope bounds
    the density; the number of violations seen is kept in ``envelope_violations``).
    Build with :meth:`create`.
    """

    p0: GaussianMixture
    reward: object
    beta: float
    lo: tuple
    hi: tuple
    n: int
    log_Z: float
    _axes: list
    _cell_logp: torch.Tensor  # log envelope per cell (flattened)
    envelope_violations: int = 0
    edge_mass: float = 0.0  # quadrature mass of the outermost grid lines (should be ~0)

    @classmethod
    def create(
        cls,
        p0: GaussianMixture,
        reward,
        beta: float,
        lo=None,
        hi=None,
        n: int = 801,
        pad: float = 8.0,
        edge_tol: float = 1e-9,
        max_widen: int = 4,
    ) -> GridTarget:
        """Grid ``[lo, hi]^d`` with ``n`` points per axis (default box: every component's mean
        +- ``pad`` standard deviations).

        Edge check: ``edge_mass``, the share of the quadrature mass on the box's outermost grid
        lines, must be at most ``edge_tol`` (else the box cuts the target off, biasing
        ``moments`` and truncating ``sample``). A default box is then rebuilt with ``pad``
        doubled, at most ``max_widen`` times; a given box (or the last widening) that still
        fails raises a ``RuntimeWarning`` naming the edge mass."""
        beta = check_beta(beta)
        d = p0.dim
        if d not in (1, 2):
            raise ValueError(f"GridTarget works in 1-D or 2-D, got a {d}-D mixture")
        if not isinstance(n, int) or n < 11:
            raise ValueError(
                f"n (grid points per axis) must be an int >= 11, got {n!r}"
            )
        if not edge_tol > 0:
            raise ValueError(f"edge_tol must be > 0, got {edge_tol!r}")
        default_box = lo is None and hi is None
        sd = torch.diagonal(p0.covs, dim1=-2, dim2=-1).sqrt()
        dt, dev = p0.means.dtype, p0.means.device
        for attempt in range(max_widen + 1 if default_box else 1):
            lo_ = (
                (p0.means - pad * sd).min(0).values.tolist()
                if lo is None
                else list(np.broadcast_to(lo, (d,)))
            )
            hi_ = (
                (p0.means + pad * sd).max(0).values.tolist()
                if hi is None
                else list(np.broadcast_to(hi, (d,)))
            )
            axes = [
                torch.linspace(float(a), float(b), n, dtype=dt, device=dev)
                for a, b in zip(lo_, hi_)
            ]
            mesh = torch.meshgrid(*axes, indexing="ij")
            pts = torch.stack([m.reshape(-1) for m in mesh], -1)
            logf = cls._log_unnorm(p0, reward, beta, pts)
            w = [_trapezoid_weights(n, float(ax[1] - ax[0]), dt, dev) for ax in axes]
            W = w[0] if d == 1 else (w[0][:, None] * w[1][None, :]).reshape(-1)
            log_Z = float(torch.logsumexp(logf + torch.log(W), 0))
            on_edge = torch.zeros((n,) * d, dtype=torch.bool, device=dev)
            for ax in range(d):
                idx = [slice(None)] * d
                idx[ax] = 0
                on_edge[tuple(idx)] = True
                idx[ax] = -1
                on_edge[tuple(idx)] = True
            edge_mass = float(
                torch.exp(
                    torch.logsumexp((logf + torch.log(W))[on_edge.reshape(-1)], 0)
                    - log_Z
                )
            )
            if edge_mass <= edge_tol:
                break
            if default_box and attempt < max_widen:
                pad *= 2.0
        if edge_mass > edge_tol:
            warnings.warn(
                f"GridTarget: mass {edge_mass:.2g} on the edge of the box "
                f"lo={lo_}, hi={hi_} (edge_tol {edge_tol:g}): the box cuts the target "
                "off; moments are biased and samples truncated. Give a wider lo/hi.",
                RuntimeWarning,
                stacklevel=2,
            )
        lo, hi = lo_, hi_
        # envelope per cell: max over the cell's corners, inflated by the corner log-gradients
        F = logf.reshape((n,) * d)
        h = max(float(ax[1] - ax[0]) for ax in axes)
        ptsg = pts.clone().requires_grad_(True)
        gl = torch.autograd.grad(cls._log_unnorm(p0, reward, beta, ptsg).sum(), ptsg)[0]
        G = gl.norm(dim=-1).reshape((n,) * d)
        if d == 1:
            cmax = torch.maximum(F[:-1], F[1:])
            gmax = torch.maximum(G[:-1], G[1:])
        else:
            cmax = (
                torch.stack([F[:-1, :-1], F[1:, :-1], F[:-1, 1:], F[1:, 1:]])
                .max(0)
                .values
            )
            gmax = (
                torch.stack([G[:-1, :-1], G[1:, :-1], G[:-1, 1:], G[1:, 1:]])
                .max(0)
                .values
            )
        env = cmax + 2.0 * math.sqrt(d) * h * gmax + 0.05
        return cls(
            p0,
            reward,
            beta,
            tuple(map(float, lo)),
            tuple(map(float, hi)),
            n,
            log_Z,
            axes,
            env.reshape(-1).detach(),
            edge_mass=edge_mass,
        )

    @staticmethod
    def _log_unnorm(p0, reward, beta, x):
        r = reward(x)
        return p0.log_prob(x) + r.to(x.dtype) / beta

    @property
    def dim(self) -> int:
        return self.p0.dim

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p*(x), shape (B,)."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(x.shape)}")
        x = x.to(self.p0.means)
        return self._log_unnorm(self.p0, self.reward, self.beta, x) - self.log_Z

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (d,) and covariance (d, d) of p* by the same quadrature."""
        d, n = self.dim, self.n
        mesh = torch.meshgrid(*self._axes, indexing="ij")
        pts = torch.stack([m.reshape(-1) for m in mesh], -1)
        w = [
            _trapezoid_weights(n, float(ax[1] - ax[0]), pts.dtype, pts.device)
            for ax in self._axes
        ]
        W = w[0] if d == 1 else (w[0][:, None] * w[1][None, :]).reshape(-1)
        p = self.log_prob(pts).exp() * W
        mu = p @ pts
        dx = pts - mu
        return mu, (p[:, None] * dx).T @ dx

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples of p* (rejection from the cell envelope), shape (n, d)."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        d = self.dim
        cells = self.n - 1
        lw = self._cell_logp
        probs = torch.softmax(lw, 0).cpu()
        lo = torch.tensor(self.lo, dtype=torch.float64)
        h = torch.tensor(
            [float(ax[1] - ax[0]) for ax in self._axes], dtype=torch.float64
        )
        out = []
        have = 0
        while have < n:
            m = max(2 * (n - have), 256)
            idx = torch.multinomial(probs, m, replacement=True, generator=generator)
            if d == 1:
                ij = idx[:, None]
            else:
                ij = torch.stack([idx // cells, idx % cells], -1)
            x = (
                lo
                + (
                    ij.double()
                    + torch.rand(m, d, generator=generator, dtype=torch.float64)
                )
                * h
            )
            x = x.to(self.p0.means)
            # accept with probability f(x) / envelope(cell), f the unnormalised density
            ratio = self.log_prob(x) + self.log_Z - lw.cpu()[idx].to(x)
            self.envelope_violations += int((ratio > 0).sum())
            u = torch.rand(m, generator=generator, dtype=torch.float64).to(x)
            keep = x[torch.log(u) < ratio]
            out.append(keep)
            have += keep.shape[0]
        return torch.cat(out)[:n]


def tilted_target(p0: GaussianMixture, reward, beta: float, **grid_kw):
    """The tilted target of ``reward`` (a :mod:`diffctrl.control.rewards` reward or any callable
    ``(B, d) -> (B,)``): a :class:`~diffctrl.diffusion.exact.GaussianMixture` in closed form for every
    ``QuadraticReward`` (Q = 0: linear; Q positive definite; Q only positive semi-definite, e.g.
    rank-deficient with a linear term: :func:`diffctrl.control.tilted.tilted_mixture`), otherwise a
    :class:`GridTarget` (1-D / 2-D, with its edge check). Both have ``sample(n, generator)`` and
    ``log_prob(x)``."""
    from ..control.rewards import QuadraticReward
    from ..control.tilted import tilted_mixture

    beta = check_beta(beta)
    if isinstance(reward, QuadraticReward):
        Q, a, g = (x.to(p0.means) for x in (reward.Q, reward.a, reward.g))
        if torch.all(Q == 0):
            return tilt_linear(p0, g, beta)
        # Q PSD (QuadraticReward checks it), possibly singular: the precision S_k^{-1} + Q/beta
        # is positive definite, and the natural-parameter form needs no inverse of Q (the form
        # a' = a + Q^{-1} g of tilt_quadratic breaks down when Q is singular up to round-off)
        return tilted_mixture(p0, reward, beta)
    return GridTarget.create(p0, reward, beta, **grid_kw)
