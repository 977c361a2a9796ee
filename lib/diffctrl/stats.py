"""Small statistics helpers shared by the chapters: log-log slopes, standard errors."""

from __future__ import annotations

import numpy as np


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x (the empirical convergence rate)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"x and y must be 1-D of equal length >= 2, got {x.shape}, {y.shape}")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("loglog_slope needs positive x and y")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def mean_and_se(samples, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean and its standard error along ``axis``."""
    a = np.asarray(samples, dtype=float)
    n = a.shape[axis]
    if n < 2:
        raise ValueError("need at least two samples for a standard error")
    return a.mean(axis), a.std(axis, ddof=1) / np.sqrt(n)
