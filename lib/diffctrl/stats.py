"""Small statistics helpers shared by the chapters: log-log slopes, standard errors."""

from __future__ import annotations

import numpy as np


def loglog_fit(x, y) -> tuple[float, float]:
    """Least-squares fit ``log y = slope log x + intercept``; returns ``(slope, intercept)``.

    ``y`` is (len(x),) or (len(x), seeds); with several seeds every point enters one fit.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
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
    """Least-squares slope of log y against log x (the empirical convergence rate)."""
    return loglog_fit(x, y)[0]


def mean_and_se(samples, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean and its standard error along ``axis``."""
    a = np.asarray(samples, dtype=float)
    n = a.shape[axis]
    if n < 2:
        raise ValueError("need at least two samples for a standard error")
    return a.mean(axis), a.std(axis, ddof=1) / np.sqrt(n)
