"""The exact KL barycenter of Gaussian-mixture auxiliaries, by quadrature in 1-D and 2-D.

``q_lambda(x) = prod_i p_i(x)^lambda_i / Z(lambda)`` (Liu et al. 2025, Sec. 3), computed on a
uniform grid: the unnormalised log density ``sum_i lambda_i log p_i`` at the cell centres, the
normaliser ``Z = sum_g exp(.) h^d``, the density, exact samples of the piecewise-constant law
(a cell drawn by its mass, then a uniform point in it: the inverse CDF in 1-D), moments, and
the score of the *noised* barycenter ``q_{lambda,k} = law(sqrt(ab_k) Y + sqrt(1 - ab_k) Z)``,
``Y ~ q_lambda``, by Tweedie over the grid. Also the weights that minimise, over the simplex,
``KL(p* || q_lambda)``, the Fisher divergence ``E_{p*} |grad log q_lambda - grad log p*|^2``, and
the population DSM objective over a set of noise levels (the objective :func:`.fit_weights`
optimises), all by quadrature against a Gaussian-mixture target ``p*``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..diffusion.exact import GaussianMixture

__all__ = [
    "Barycenter",
    "QuadratureGrid",
    "check_weights",
    "kl_optimal_weights",
    "kl_to_barycenter",
    "mixture_cdf_1d",
    "project_simplex",
    "score_matching_weights",
    "simplex_qp",
    "w1_barycenter_to_mixture_1d",
    "w1_to_cdf_1d",
]

F64 = torch.float64


@dataclass(frozen=True)
class QuadratureGrid:
    """Cell centres ``points`` (G, d) of a uniform grid on ``[lo, hi]^d`` (d = 1, 2), spacing ``h``,
    and ``log_p`` (K, G): the auxiliaries' log densities at the centres."""

    points: torch.Tensor
    h: float
    shape: tuple[int, ...]
    lo: float
    log_p: torch.Tensor
    auxiliaries: tuple[GaussianMixture, ...]

    @classmethod
    def create(
        cls, auxiliaries: Sequence[GaussianMixture], lo: float, hi: float, n: int
    ) -> QuadratureGrid:
        """``n`` cells per axis on ``[lo, hi]``; the auxiliaries are K Gaussian mixtures in 1-D/2-D."""
        if len(auxiliaries) == 0:
            raise ValueError(
                "auxiliaries must hold at least one Gaussian mixture (got K = 0)"
            )
        if not all(isinstance(a, GaussianMixture) for a in auxiliaries):
            raise TypeError("auxiliaries must be GaussianMixture objects")
        dims = {a.dim for a in auxiliaries}
        if len(dims) > 1:
            raise ValueError(
                f"auxiliaries must share one dimension, got {sorted(dims)}"
            )
        d = dims.pop()
        if d not in (1, 2):
            raise ValueError(
                f"quadrature needs dimension 1 or 2, the auxiliaries have {d}"
            )
        if not hi > lo or n < 2:
            raise ValueError(f"need hi > lo and n >= 2, got lo={lo}, hi={hi}, n={n}")
        h = (hi - lo) / n
        ax = lo + h * (torch.arange(n, dtype=F64) + 0.5)
        pts = ax[:, None] if d == 1 else torch.cartesian_prod(ax, ax)
        log_p = torch.stack([a.to(F64).log_prob(pts) for a in auxiliaries])
        return cls(pts, h, (n,) * d, lo, log_p, tuple(a.to(F64) for a in auxiliaries))

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    @property
    def cell(self) -> float:
        return self.h**self.dim

    def barycenter(self, weights: Sequence[float] | torch.Tensor) -> Barycenter:
        """``q_lambda ∝ prod_i p_i^lambda_i`` on this grid."""
        lam = check_weights(weights, self.log_p.shape[0])
        logq = lam @ self.log_p
        log_z = float(torch.logsumexp(logq, 0)) + math.log(self.cell)
        return Barycenter(self, lam, logq - log_z, log_z)

    def integrate(self, f: torch.Tensor) -> torch.Tensor:
        """Midpoint rule ``sum_g f_g h^d`` over the last axis (G)."""
        return f.sum(-1) * self.cell


def check_weights(weights, K: int) -> torch.Tensor:
    """``weights`` as a float64 (K,) tensor on the simplex, else ValueError."""
    lam = torch.as_tensor(weights, dtype=F64).reshape(-1)
    if lam.shape[0] != K:
        raise ValueError(f"weights must have K={K} entries, got {lam.shape[0]}")
    if torch.any(lam < -1e-12) or not math.isclose(float(lam.sum()), 1.0, abs_tol=1e-6):
        raise ValueError(
            f"weights must lie on the simplex (>= 0, sum 1), got {lam.tolist()}"
        )
    return lam.clamp_min(0)


@dataclass(frozen=True)
class Barycenter:
    """``q_lambda`` on a :class:`QuadratureGrid`: ``log_q`` (G,) normalised, ``log_z = log Z``."""

    grid: QuadratureGrid
    weights: torch.Tensor
    log_q: torch.Tensor
    log_z: float

    @property
    def mass(self) -> torch.Tensor:
        """Cell masses q(x_g) h^d, shape (G,), summing to 1."""
        return torch.exp(self.log_q) * self.grid.cell

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``sum_i lambda_i log p_i(x) - log Z`` at any x (B, d) (exact, not interpolated)."""
        x = x.to(F64)
        lp = torch.stack([a.log_prob(x) for a in self.grid.auxiliaries])
        return self.weights @ lp - self.log_z

    def mean(self) -> torch.Tensor:
        return self.mass @ self.grid.points

    def cov(self) -> torch.Tensor:
        dx = self.grid.points - self.mean()
        return (self.mass[:, None] * dx).T @ dx + self.grid.h**2 / 12 * torch.eye(
            self.grid.dim, dtype=F64
        )

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` exact samples of the piecewise-constant law (cell by mass, uniform inside), (n, d)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        idx = torch.multinomial(
            self.mass.float(), n, replacement=True, generator=generator
        )
        u = torch.rand(n, self.grid.dim, generator=generator, dtype=F64) - 0.5
        return self.grid.points[idx] + self.grid.h * u

    def cdf_1d(self) -> tuple[torch.Tensor, torch.Tensor]:
        """1-D: the CDF at the cell edges, ``(edges (G+1,), F (G+1,))``, linear in between."""
        if self.grid.dim != 1:
            raise ValueError("cdf_1d needs a 1-D barycenter")
        edges = self.grid.lo + self.grid.h * torch.arange(
            self.grid.shape[0] + 1, dtype=F64
        )
        return edges, torch.cat([torch.zeros(1, dtype=F64), torch.cumsum(self.mass, 0)])

    def noised_score(
        self, alpha_bar: float, x: torch.Tensor, chunk: int | None = None
    ) -> torch.Tensor:
        """Score of ``q_{lambda,k}`` at x (B, d): ``(sqrt(ab) E[Y | x] - x) / (1 - ab)`` (Tweedie),
        ``E[Y | x]`` a ratio of grid sums with the Gaussian kernel N(x; sqrt(ab) y, (1 - ab) I)."""
        ab = float(alpha_bar)
        if not 0 <= ab < 1:
            raise ValueError(
                f"alpha_bar must lie in [0, 1) (a level above zero), got {ab}"
            )
        if (1 - ab) ** 0.5 < 2 * self.grid.h:
            raise ValueError(
                f"alpha_bar={ab}: the noise sd {(1 - ab) ** 0.5:.3g} is below twice "
                f"the grid spacing {self.grid.h:.3g}; refine the grid"
            )
        keep = (
            self.log_q > self.log_q.max() - 60
        )  # cells of mass < e^-60 relative: dropped
        y, logq, out = self.grid.points[keep], self.log_q[keep], []
        chunk = chunk or max(
            1, int(4e6 // y.shape[0])
        )  # about 32 MB of kernel per chunk
        xs = x.to(F64)
        for i in range(0, xs.shape[0], chunk):
            xb = xs[i : i + chunk]
            logk = -((xb[:, None, :] - ab**0.5 * y[None]) ** 2).sum(-1) / (2 * (1 - ab))
            r = torch.softmax(logk + logq[None], dim=1)  # (b, G)
            out.append((ab**0.5 * r @ y - xb) / (1 - ab))
        return torch.cat(out).to(x.dtype)


def w1_to_cdf_1d(samples: torch.Tensor, edges: torch.Tensor, F: torch.Tensor) -> float:
    """W1 = int |F_n - F| dx between the empirical law of 1-D ``samples`` and a law whose CDF is
    linear between ``edges`` with values ``F`` (exact for that piecewise-linear CDF)."""
    s = samples.reshape(-1).to(F64).sort().values
    if s.numel() == 0:
        raise ValueError("samples must not be empty")
    lo, hi = min(float(edges[0]), float(s[0])), max(float(edges[-1]), float(s[-1]))
    z = torch.cat([edges, s, torch.tensor([lo, hi], dtype=F64)]).unique()  # sorted
    Fz = torch.interp(z, edges, F) if hasattr(torch, "interp") else _interp(z, edges, F)
    Fn = torch.searchsorted(s, z, right=True).to(F64) / s.numel()
    u, v, ln = Fz[:-1] - Fn[:-1], Fz[1:] - Fn[:-1], z[1:] - z[:-1]
    same = u * v >= 0
    au, av = u.abs(), v.abs()
    seg = torch.where(
        same, (au + av) / 2, (u**2 + v**2) / (2 * (au + av).clamp_min(1e-300))
    )
    return float((seg * ln).sum())


def _interp(z: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """np.interp for sorted ``xp`` (constant beyond the ends)."""
    zc = z.clamp(float(xp[0]), float(xp[-1]))
    i = torch.searchsorted(xp, zc, right=True).clamp(1, xp.numel() - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    t = ((zc - x0) / (x1 - x0)).clamp(0, 1)
    return f0 + t * (f1 - f0)


def mixture_cdf_1d(gm: GaussianMixture, x: torch.Tensor) -> torch.Tensor:
    """CDF of a 1-D Gaussian mixture at x (M,)."""
    if gm.dim != 1:
        raise ValueError("mixture_cdf_1d needs a 1-D mixture")
    sd = gm.covs[:, 0, 0].sqrt()
    z = (x.to(F64)[:, None] - gm.means[:, 0]) / sd
    return (0.5 * (1 + torch.erf(z / math.sqrt(2)))) @ gm.weights


def w1_barycenter_to_mixture_1d(bary: Barycenter, target: GaussianMixture) -> float:
    """W1 = int |F_q - F*| dx between a 1-D barycenter and a 1-D mixture (trapezoid on the edges)."""
    edges, F = bary.cdf_1d()
    diff = (F - mixture_cdf_1d(target.to(F64), edges)).abs()
    return float(torch.trapezoid(diff, edges))


def project_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of v (K,) on the simplex (Duchi et al. 2008)."""
    u = v.sort(descending=True).values
    css = u.cumsum(0) - 1
    ind = torch.arange(1, v.numel() + 1, dtype=v.dtype)
    rho = int(torch.nonzero(u - css / ind > 0).max())
    return (v - css[rho] / (rho + 1)).clamp_min(0)


def simplex_qp(A: torch.Tensor, b: torch.Tensor, iters: int = 20_000) -> torch.Tensor:
    """argmin over the simplex of ``lam^T A lam - 2 b^T lam`` (A symmetric PSD), projected
    gradient with step 1 / (2 ||A||)."""
    K = b.numel()
    lam = torch.full((K,), 1.0 / K, dtype=F64)
    step = 1.0 / (2 * float(torch.linalg.matrix_norm(A, 2)) + 1e-300)
    for _ in range(iters):
        new = project_simplex(lam - step * (2 * A @ lam - 2 * b))
        if float((new - lam).abs().max()) < 1e-13:
            return new
        lam = new
    return lam


def score_matching_weights(
    target: GaussianMixture,
    grid: QuadratureGrid,
    alpha_bars: Sequence[float] | torch.Tensor,
    level_weights: Sequence[float] | torch.Tensor | None = None,
) -> tuple[torch.Tensor, float]:
    """argmin over the simplex of ``sum_k c_k E_{p*_k} |sum_i lam_i s_{i,k} - s*_k|^2``.

    ``s_{i,k}`` the exact scores of the noised auxiliaries, ``p*_k``/``s*_k`` the noised target's
    law and score at ``ab_k`` (``alpha_bars`` (L,), ``c_k = level_weights``, default equal). With
    ``alpha_bars = [1]`` this is the Fisher-divergence-optimal lambda; with the levels
    ``1..cutoff`` and ``c_k = 1 - ab_k`` it is the minimiser of the population DSM loss that
    :func:`~diffctrl.fusion.scores.fit_weights` optimises. The objective is quadratic in lambda:
    ``lam^T A lam - 2 b^T lam + c``. Returns (lambda (K,), the minimum value of the objective).
    """
    abs_ = torch.as_tensor(alpha_bars, dtype=F64).reshape(-1)
    c = (
        torch.ones_like(abs_)
        if level_weights is None
        else torch.as_tensor(level_weights, dtype=F64)
    )
    if c.shape != abs_.shape or abs_.numel() == 0:
        raise ValueError(
            "alpha_bars and level_weights must be non-empty and of one length"
        )
    c = c / c.sum()
    K, G = grid.log_p.shape
    A = torch.zeros(K, K, dtype=F64)
    b = torch.zeros(K, dtype=F64)
    cst = 0.0
    x = grid.points
    for ab, ck in zip(abs_.tolist(), c.tolist()):
        tk = target.to(F64).marginal(ab)
        pk = torch.exp(tk.log_prob(x))
        s_star = tk.score(x)
        S = torch.stack(
            [a.marginal(ab).score(x) for a in grid.auxiliaries]
        )  # (K, G, d)
        A += ck * grid.integrate(torch.einsum("igd,jgd->ijg", S, S) * pk)
        b += ck * grid.integrate(torch.einsum("igd,gd->ig", S, s_star) * pk)
        cst += ck * float(grid.integrate((s_star**2).sum(-1) * pk))
    lam = simplex_qp(A, b)
    return lam, float(lam @ A @ lam - 2 * b @ lam + cst)


def kl_to_barycenter(
    target: GaussianMixture,
    grid: QuadratureGrid,
    weights: Sequence[float] | torch.Tensor,
) -> float:
    """``KL(p* || q_lambda) = E_{p*}[log p*] - sum_i lam_i E_{p*}[log p_i] + log Z(lambda)``."""
    lam = check_weights(weights, grid.log_p.shape[0])
    lp = target.to(F64).log_prob(grid.points)
    p = torch.exp(lp)
    log_z = float(torch.logsumexp(lam @ grid.log_p, 0)) + math.log(grid.cell)
    return float(grid.integrate(p * (lp - lam @ grid.log_p))) + log_z


def kl_optimal_weights(
    target: GaussianMixture, grid: QuadratureGrid, iters: int = 200
) -> tuple[torch.Tensor, float]:
    """argmin over the simplex of ``KL(p* || q_lambda)`` (convex in lambda: ``log Z`` is convex),
    by L-BFGS on ``lambda = softmax(logits)``; the gradient in lambda is
    ``E_{q_lambda}[log p_i] - E_{p*}[log p_i]``. Returns (lambda (K,), the minimal KL)."""
    K = grid.log_p.shape[0]
    p = torch.exp(target.to(F64).log_prob(grid.points))
    e_target = grid.integrate(p * grid.log_p)  # (K,)
    logits = torch.zeros(K, dtype=F64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [logits],
        lr=1,
        max_iter=iters,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        lam = torch.softmax(logits, 0)
        obj = torch.logsumexp(lam @ grid.log_p, 0) - lam @ e_target
        obj.backward()
        return obj

    opt.step(closure)
    lam = torch.softmax(logits.detach(), 0)
    return lam, kl_to_barycenter(target, grid, lam)
