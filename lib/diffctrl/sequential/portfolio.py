"""Mean-variance portfolios from return scenarios (Markowitz 1952).

Budget-constrained mean-variance weights, maximising ``w.mu - (gamma / 2) w' S w`` subject to
``1'w = 1``:  ``w = S^{-1} 1 / (1' S^{-1} 1) + (1/gamma) (S^{-1} mu - (1' S^{-1} mu / 1' S^{-1} 1) S^{-1} 1)``.
Scenarios (generated or real) give a plug-in (mu_hat, S_hat); the portfolio is then judged
out of sample under the true (mu, S).

Multi-period, one risky asset held period by period: the weight w_t maximising the expected
quadratic utility ``E[w r - (gamma / 2) (w r)^2 | past]`` is ``w_t = E[r_t | past] /
(gamma E[r_t^2 | past])`` (:func:`myopic_weights`, from scenarios of r_t given the observed
past, or from unconditional ones); :func:`quadratic_utility` scores realised returns.
"""

from __future__ import annotations

import torch

from .gaussian import F64, check_cov

__all__ = [
    "factor_market",
    "mean_variance_weights",
    "myopic_weights",
    "portfolio_stats",
    "quadratic_utility",
    "scenario_weights",
]


def factor_market(
    d: int, n_factors: int = 2, seed: int = 0, mean_scale: float = 0.15
) -> tuple[torch.Tensor, torch.Tensor]:
    """A known return law (mu (d,), S (d, d)) with a factor structure S = F F' + diag(s^2).

    Returns are in units of their typical standard deviation (S_ii ~ 1), means ~ ``mean_scale``.
    """
    if d < 2 or n_factors < 1:
        raise ValueError(f"need d >= 2 assets and n_factors >= 1, got {d}, {n_factors}")
    g = torch.Generator().manual_seed(seed)
    F = 0.6 * torch.randn(d, n_factors, generator=g, dtype=F64)
    F[:, 0] = F[:, 0].abs() + 0.3  # a market factor with positive loadings
    spec = 0.4 + 0.4 * torch.rand(d, generator=g, dtype=F64)
    S = F @ F.T + torch.diag(spec**2)
    mu = (
        mean_scale * (0.5 + torch.rand(d, generator=g, dtype=F64)) * S.diagonal().sqrt()
    )
    return mu, S


def mean_variance_weights(
    mu: torch.Tensor, S: torch.Tensor, gamma: float = 5.0
) -> torch.Tensor:
    """Budget-constrained mean-variance weights (d,) for risk aversion ``gamma`` > 0."""
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    S = check_cov(S, "S")
    mu = torch.as_tensor(mu, dtype=F64)
    if mu.shape != (S.shape[0],):
        raise ValueError(f"mu must have shape ({S.shape[0]},), got {tuple(mu.shape)}")
    one = torch.ones_like(mu)
    a, b = torch.linalg.solve(S, one), torch.linalg.solve(S, mu)
    w_min = a / a.sum()
    return w_min + (b - b.sum() / a.sum() * a) / gamma


def scenario_weights(x: torch.Tensor, gamma: float = 5.0) -> torch.Tensor:
    """Weights from scenarios x (n, d): the plug-in sample mean and covariance."""
    if x.ndim != 2 or x.shape[0] <= x.shape[1]:
        raise ValueError(f"x must be (n, d) with n > d scenarios, got {tuple(x.shape)}")
    x = x.double()
    return mean_variance_weights(x.mean(0), torch.cov(x.T), gamma)


def portfolio_stats(
    w: torch.Tensor, mu: torch.Tensor, S: torch.Tensor
) -> dict[str, float]:
    """Out-of-sample mean w.mu, variance w'Sw, Sharpe ratio and mean-variance utility (gamma=5)."""
    w, mu, S = (torch.as_tensor(a, dtype=F64) for a in (w, mu, S))
    m, v = float(w @ mu), float(w @ S @ w)
    return {"mean": m, "var": v, "sharpe": m / v**0.5}


def myopic_weights(scenarios: torch.Tensor, gamma: float = 5.0) -> torch.Tensor:
    """w = mean / (gamma * mean of squares) over the last axis of ``scenarios`` (..., m): the
    quadratic-utility weight of one period from m scenarios of its return."""
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    x = torch.as_tensor(scenarios, dtype=F64)
    if x.shape[-1] < 1:
        raise ValueError("need at least one scenario")
    return x.mean(-1) / (gamma * (x**2).mean(-1))


def quadratic_utility(w: torch.Tensor, r: torch.Tensor, gamma: float = 5.0) -> float:
    """Mean realised utility w r - (gamma / 2) (w r)^2 over all entries of w and r."""
    wr = torch.as_tensor(w, dtype=F64) * torch.as_tensor(r, dtype=F64)
    return float((wr - gamma / 2 * wr**2).mean())
