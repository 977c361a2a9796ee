"""Gaussian moments of quadratic and affine functions, in closed form.

``book/notation.md``, *The linear-quadratic case*: values are quadratics
``f(y) = -1/2 y^T P y + p^T y + c`` and controls affine maps ``G y + g``; under a Gaussian law
``Y ~ N(mean, cov)`` their means and root-mean-squares are closed forms. The LQ solver
(:mod:`.lq`), PI-FT in the LQ class (:mod:`.pift_affine`) and the continuous-time solver
(:mod:`.continuous`) measure values and errors with them.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["affine_rms", "quadratic_mean", "quadratic_rms"]


def _np(x) -> np.ndarray:
    """``x`` (tensor or array-like) as a float64 NumPy array on the CPU."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _sym(M: torch.Tensor) -> torch.Tensor:
    """The symmetric part ``(M + M^T) / 2`` of a (batch of) square matrices."""
    return 0.5 * (M + M.transpose(-1, -2))


def quadratic_mean(P, p, c, mean, cov) -> torch.Tensor:
    """``E[-1/2 Y^T P Y + p^T Y + c]`` for ``Y ~ N(mean, cov)``: P (d, d), p (d,), c scalar,
    mean (d,), cov (d, d)."""
    return -0.5 * (mean @ P @ mean + torch.trace(P @ cov)) + p @ mean + c


def quadratic_rms(P, p, c, mean, cov) -> float:
    """``sqrt(E[f(Y)^2])`` for ``f(y) = -1/2 y^T P y + p^T y + c``, ``Y ~ N(mean, cov)``:
    ``Var f = 1/2 tr((P cov)^2) + (p - P mean)^T cov (p - P mean)``."""
    P, p, mean, cov = (_np(x) for x in (P, p, mean, cov))
    m = -0.5 * (mean @ P @ mean + np.trace(P @ cov)) + p @ mean + float(c)
    PC = P @ cov
    grad = p - P @ mean
    var = 0.5 * np.trace(PC @ PC) + grad @ cov @ grad
    return float(np.sqrt(m**2 + max(var, 0.0)))


def affine_rms(G, g, mean, cov) -> float:
    """``sqrt(E|G Y + g|^2)`` for ``Y ~ N(mean, cov)``: G (d, d), g (d,)."""
    G, g, mean, cov = (_np(x) for x in (G, g, mean, cov))
    v = G @ mean + g
    return float(np.sqrt(v @ v + max(np.trace(G @ cov @ G.T), 0.0)))
