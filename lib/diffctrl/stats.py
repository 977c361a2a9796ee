"""Statistics shared by the chapters: log-log fits, standard errors, tests of a mean.

- :func:`loglog_fit` / :func:`loglog_slope`: the least-squares power law ``y ~ C x^slope``
  (an empirical convergence rate);
- :func:`mean_and_se`: a sample mean and its standard error;
- :func:`coordinate_z`: ``(mean - ref) / stderr`` per coordinate;
- :func:`hotelling_test`: one-sample Hotelling ``T^2`` test of ``E[samples] = ref`` across all
  coordinates at once (``F(p, M - p)`` law under the null for Gaussian samples; a good
  approximation when ``M >> p``), the "chi-square across coordinates" check. For a reference
  that is itself estimated from paired samples (finite differences on the same noise), test
  the paired differences against zero;
- :func:`two_sample_test`: the same question against a reference estimated from independent
  samples (finite differences on other paths).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .checks import check_data

__all__ = [
    "coordinate_z",
    "hotelling_test",
    "loglog_fit",
    "loglog_slope",
    "mean_and_se",
    "two_sample_test",
]


def _as_array(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    return np.asarray(values, dtype=float)


def loglog_fit(x, y) -> tuple[float, float]:
    """Least-squares fit ``log y = slope log x + intercept``; returns ``(slope, intercept)``.

    ``x (k,)``, ``y (k,)`` or ``(k, seeds)`` (numpy arrays, sequences or CPU tensors); with
    several seeds every point enters one fit.
    """
    x = _as_array(x)
    y = _as_array(y)
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 1 or len(x) < 2 or y.ndim != 2 or y.shape[0] != len(x):
        raise ValueError(
            f"need x of length >= 2 and y of shape (len(x),) or (len(x), seeds); "
            f"got {x.shape}, {y.shape}"
        )
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("a log-log fit needs positive x and y")
    X = np.repeat(np.log(x), y.shape[1])
    slope, intercept = np.polyfit(X, np.log(y).reshape(-1), 1)
    return float(slope), float(intercept)


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (the empirical convergence rate):
    the first element of :func:`loglog_fit`."""
    return loglog_fit(x, y)[0]


def mean_and_se(samples, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean and its standard error along ``axis``."""
    a = np.asarray(samples, dtype=float)
    n = a.shape[axis]
    if n < 2:
        raise ValueError("need at least two samples for a standard error")
    return a.mean(axis), a.std(axis, ddof=1) / np.sqrt(n)


def coordinate_z(
    samples: torch.Tensor, ref: torch.Tensor, ref_se: torch.Tensor | None = None
) -> torch.Tensor:
    """z-scores ``(mean - ref) / sqrt(se^2 + ref_se^2)`` of ``samples (M, n)`` against
    ``ref (n,)``, shape ``(n,)``; 0 where both are exactly equal."""
    samples, ref = check_data(samples, "samples", min_rows=2), check_data(ref, "ref")
    if ref_se is not None:
        ref_se = check_data(ref_se, "ref_se", shape=tuple(ref.shape))
    if samples.ndim != 2 or ref.shape != samples.shape[1:]:
        raise ValueError(
            f"samples must be (M, n) and ref (n,), got {tuple(samples.shape)} "
            f"and {tuple(ref.shape)}"
        )
    mean = samples.mean(0)
    se2 = samples.var(0) / samples.shape[0]
    if ref_se is not None:
        se2 = se2 + ref_se**2
    diff = mean - ref
    z = diff / se2.sqrt()
    return torch.where((se2 == 0) & (diff == 0), torch.zeros_like(z), z)


def hotelling_test(
    samples: torch.Tensor, ref: torch.Tensor, rel_tol: float = 1e-10
) -> dict[str, float]:
    """One-sample Hotelling ``T^2`` of ``H0: E[samples] = ref``; returns ``T2, F, p, dof``.

    ``samples (M, n)``, ``ref (n,)``. Coordinates with zero sample variance must match
    ``ref`` exactly (else ``p = 0``) and are dropped; directions of the sample covariance with
    eigenvalue below ``rel_tol`` times the largest are projected out (the test then has fewer
    degrees of freedom).
    """
    from scipy import stats

    samples, ref = check_data(samples, "samples", min_rows=2), check_data(ref, "ref")
    if samples.ndim != 2 or ref.shape != samples.shape[1:]:
        raise ValueError(
            f"samples must be (M, n) and ref (n,), got {tuple(samples.shape)} "
            f"and {tuple(ref.shape)}"
        )
    x = samples.detach().double().cpu()
    r = ref.detach().double().cpu()
    m = x.shape[0]
    diff = x.mean(0) - r
    var = x.var(0)
    const = var == 0
    if bool((diff[const].abs() > 0).any()):
        return dict(T2=math.inf, F=math.inf, p=0.0, dof=int(const.sum()))
    x, diff = x[:, ~const], diff[~const]
    if x.shape[1] == 0:
        return dict(T2=0.0, F=0.0, p=1.0, dof=0)
    cov = torch.cov(x.T).reshape(x.shape[1], x.shape[1])
    evals, evecs = torch.linalg.eigh(cov)
    keep = evals > rel_tol * evals.max()
    proj = evecs[:, keep].T @ diff
    p_dim = int(keep.sum())
    if m <= p_dim:
        raise ValueError(
            f"Hotelling's test needs more samples ({m}) than dimensions ({p_dim})"
        )
    t2 = float(m * (proj**2 / evals[keep]).sum())
    f = t2 * (m - p_dim) / (p_dim * (m - 1))
    p = float(stats.f.sf(f, p_dim, m - p_dim))
    return dict(T2=t2, F=f, p=p, dof=p_dim)


def two_sample_test(
    a: torch.Tensor, b: torch.Tensor, rel_tol: float = 1e-8
) -> dict[str, float]:
    """Test ``E[a] = E[b]`` for independent samples ``a (Ma, n)``, ``b (Mb, n)``.

    ``T^2 = diff' (S_a / M_a + S_b / M_b)^{-1} diff`` with ``diff = mean(a) - mean(b)``, compared
    with its large-sample law ``chi^2(p)`` (both sample sizes here are in the thousands).
    Directions of the pooled covariance with eigenvalue below ``rel_tol`` times the largest
    (exact linear relations between coordinates, dead units) are projected out.
    """
    from scipy import stats

    a, b = check_data(a, "a", min_rows=2), check_data(b, "b", min_rows=2)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"a and b must be (M, n) with the same n, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    diff = a.mean(0) - b.mean(0)
    cov = (
        torch.cov(a.T).reshape(a.shape[1], -1) / a.shape[0]
        + torch.cov(b.T).reshape(b.shape[1], -1) / b.shape[0]
    )
    evals, evecs = torch.linalg.eigh(cov)
    keep = evals > rel_tol * max(float(evals.max()), 1e-300)
    proj = evecs.T @ diff
    p_dim = int(keep.sum())
    if p_dim == 0:
        return dict(T2=0.0, p=1.0, dof=0)
    t2 = float((proj[keep] ** 2 / evals[keep]).sum())
    return dict(T2=t2, p=float(stats.chi2.sf(t2, p_dim)), dof=p_dim)
