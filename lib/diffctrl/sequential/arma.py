"""ARMA(p, q) processes: exact autocovariance, exact paths (stationary start or burn-in).

Convention (statsmodels' ``ArmaProcess`` with ar = [1, -phi], ma = [1, theta]):
``X_t = sum_i phi_i X_{t-i} + e_t + sum_j theta_j e_{t-j}``, e_t ~ N(0, sigma^2).
The autocovariance solves the linear system of Brockwell & Davis (1991, Sec. 3.3, eq. 3.3.8):
``gamma(k) - sum_i phi_i gamma(|k-i|) = sigma^2 sum_{j=k}^{q} theta_j psi_{j-k}`` for
k = 0..max(p, q), then the homogeneous recursion; psi are the MA(infinity) weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .gaussian import F64, gaussian_paths

__all__ = [
    "ARMA",
    "arma_acf",
    "arma_acov",
    "arma_cov",
    "arma_paths",
    "fit_ar1",
    "psi_weights",
]


def _roots_outside(coefs: np.ndarray) -> bool:
    """All roots of 1 + c_1 z + ... + c_r z^r outside the closed unit disc."""
    if coefs.size == 0 or np.all(coefs == 0):
        return True
    roots = np.roots(np.r_[1.0, coefs][::-1])
    return bool(np.all(np.abs(roots) > 1 + 1e-10))


@dataclass(frozen=True)
class ARMA:
    """A causal, invertible ARMA(p, q): ``phi`` (p,), ``theta`` (q,), innovation std ``sigma``."""

    phi: tuple[float, ...]
    theta: tuple[float, ...] = ()
    sigma: float = 1.0

    def __post_init__(self):
        phi = np.asarray(self.phi, dtype=float).ravel()
        theta = np.asarray(self.theta, dtype=float).ravel()
        if not np.all(np.isfinite(phi)) or not np.all(np.isfinite(theta)):
            raise ValueError("phi and theta must be finite")
        if not _roots_outside(-phi):
            raise ValueError(
                f"phi={tuple(phi)} is not stationary: a root of 1 - sum phi_i z^i "
                "lies on or inside the unit circle"
            )
        if not _roots_outside(theta):
            raise ValueError(
                f"theta={tuple(theta)} is not invertible: a root of 1 + sum theta_j z^j "
                "lies on or inside the unit circle"
            )
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")
        object.__setattr__(self, "phi", tuple(float(a) for a in phi))
        object.__setattr__(self, "theta", tuple(float(a) for a in theta))

    @property
    def p(self) -> int:
        return len(self.phi)

    @property
    def q(self) -> int:
        return len(self.theta)

    def __str__(self) -> str:
        return f"ARMA({self.p},{self.q})"


def psi_weights(proc: ARMA, n: int) -> np.ndarray:
    """MA(infinity) weights psi_0..psi_{n-1}: psi_j = theta_j + sum_i phi_i psi_{j-i}."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    psi = np.zeros(n)
    psi[0] = 1.0
    for j in range(1, n):
        psi[j] = (proc.theta[j - 1] if j <= proc.q else 0.0) + sum(
            proc.phi[i - 1] * psi[j - i] for i in range(1, min(j, proc.p) + 1)
        )
    return psi


def arma_acov(proc: ARMA, nlags: int) -> torch.Tensor:
    """Exact autocovariance gamma(0..nlags) (float64), Brockwell & Davis eq. (3.3.8)-(3.3.9)."""
    if isinstance(nlags, bool) or not isinstance(nlags, int) or nlags < 0:
        raise ValueError(f"nlags must be an int >= 0, got {nlags!r}")
    p, q = proc.p, proc.q
    m = max(p, q)
    psi = psi_weights(proc, q + 1)
    th = np.r_[1.0, proc.theta]
    rhs = np.array(
        [
            proc.sigma**2 * sum(th[j] * psi[j - k] for j in range(k, q + 1))
            for k in range(m + 1)
        ]
    )
    # unknowns gamma(0..m): gamma(k) - sum_i phi_i gamma(|k - i|) = rhs_k
    A = np.eye(m + 1)
    for k in range(m + 1):
        for i in range(1, p + 1):
            A[k, abs(k - i)] -= proc.phi[i - 1]
    g = list(np.linalg.solve(A, rhs))
    for k in range(m + 1, nlags + 1):
        g.append(sum(proc.phi[i - 1] * g[k - i] for i in range(1, p + 1)))
    return torch.tensor(g[: nlags + 1], dtype=F64)


def arma_acf(proc: ARMA, nlags: int) -> torch.Tensor:
    """Exact autocorrelation rho(0..nlags) = gamma(k) / gamma(0)."""
    g = arma_acov(proc, nlags)
    return g / g[0]


def arma_cov(proc: ARMA, L: int) -> torch.Tensor:
    """Covariance (L, L) of a stationary window X_1..X_L: the Toeplitz matrix of gamma."""
    if L < 1:
        raise ValueError(f"L must be >= 1, got {L}")
    g = arma_acov(proc, L - 1)
    idx = torch.arange(L)
    return g[(idx[:, None] - idx[None, :]).abs()]


def arma_paths(
    proc: ARMA,
    L: int,
    n: int,
    generator: torch.Generator | None = None,
    start: str = "stationary",
    burnin: int = 500,
) -> torch.Tensor:
    """n paths of length L, (n, L) float64.

    ``start="stationary"``: exact draws of the stationary law (Cholesky of :func:`arma_cov`);
    ``"burnin"``: the recursion run from zeros for ``burnin`` steps first (approximately
    stationary; the error decays like the largest root modulus to the power ``burnin``).
    """
    if start == "stationary":
        return gaussian_paths(arma_cov(proc, L), n, generator=generator)
    if start != "burnin":
        raise ValueError(f"start must be 'stationary' or 'burnin', got {start!r}")
    if burnin < 0 or n < 1 or L < 1:
        raise ValueError(f"need burnin >= 0, n >= 1, L >= 1; got {burnin}, {n}, {L}")
    T = burnin + L
    e = proc.sigma * torch.randn(n, T + proc.q, generator=generator, dtype=F64)
    x = torch.zeros(n, T + proc.p, dtype=F64)
    for t in range(T):
        val = e[:, t + proc.q].clone()
        for j, th in enumerate(proc.theta, 1):
            val += th * e[:, t + proc.q - j]
        for i, ph in enumerate(proc.phi, 1):
            val += ph * x[:, t + proc.p - i]
        x[:, t + proc.p] = val
    return x[:, -L:]


def fit_ar1(paths: torch.Tensor) -> tuple[ARMA, float]:
    """The moment-matched AR(1) of paths (n, L), n >= 1, L >= 2: with m the pooled mean and
    ``c_h = sum_{i,k} (x_{i,k} - m)(x_{i,k+h} - m) / (n(L - h))`` the pooled sample
    autocovariances (each the mean of its n(L - h) products), the Yule-Walker estimate
    ``phi = c_1 / c_0`` and the innovation sd ``sigma = sqrt(c_0 (1 - phi^2))``, so that its
    stationary law has the pooled variance c_0 and lag-1 autocorrelation phi. Returns (the
    ARMA(1, 0), m). For one path it is statsmodels'
    ``yule_walker(x, order=1, method="adjusted")``."""
    x = torch.as_tensor(paths, dtype=F64)
    if x.ndim != 2 or x.shape[1] < 2 or x.shape[0] < 1 or not torch.isfinite(x).all():
        raise ValueError(
            f"paths must be a finite (n, L) array with n >= 1, L >= 2; got shape "
            f"{tuple(x.shape)}"
        )
    m = float(x.mean())
    y = x - m
    c0 = float((y * y).mean())
    if not c0 > 0:
        raise ValueError("paths must not be constant")
    c1 = float((y[:, 1:] * y[:, :-1]).mean())
    phi = min(max(c1 / c0, -0.999), 0.999)
    return ARMA((phi,), sigma=math.sqrt(c0 * (1 - phi * phi))), m
