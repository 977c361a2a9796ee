"""Contraction rates of PI-FT's (damped) policy-improvement iteration, predicted and measured.

``book/pift_formulation.md`` ([ours] reading of Han, Razaviyayn, Xu 2025, Sec. 4): at step t
the iteration ``u <- (1 - eta) u + eta Phi_t(u)`` contracts with factor
``rho_t = sigma_t^2 Lip(grad V_{t+1}) / beta_t`` when ``eta = 1`` and ``rho_t < 1``. If the
Hessian of ``V_{t+1}`` has its eigenvalues in ``[-rho_-, rho_+] beta_t / sigma_t^2`` the damped
map contracts at ``max(|1 - eta (1 - rho_+)|, |1 - eta (1 + rho_-)|)`` (:func:`damped_rate`),
which is < 1 for some ``eta > 0`` whenever ``rho_+ < 1`` (:func:`optimal_damping`). In the LQ
class the map is affine and its rate exact (:func:`lq_iteration_rate`); :func:`measured_rate`
reads the rate off an error sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .moments import _np

__all__ = ["damped_rate", "lq_iteration_rate", "measured_rate", "optimal_damping"]


def damped_rate(eta: float, rho_minus: float, rho_plus: float = 0.0) -> float:
    """Contraction factor of ``u <- (1 - eta) u + eta Phi(u)`` when the Jacobian of Phi has its
    eigenvalues in ``[-rho_minus, rho_plus]``: ``max(|1 - eta (1 - rho_+)|, |1 - eta (1 + rho_-)|)``."""
    if eta <= 0:
        raise ValueError(f"eta must be > 0, got {eta}")
    return max(abs(1 - eta * (1 - rho_plus)), abs(1 - eta * (1 + rho_minus)))


def optimal_damping(rho_minus: float, rho_plus: float = 0.0) -> tuple[float, float]:
    """``(eta*, rate*)`` minimising :func:`damped_rate`: ``eta* = 2 / (2 + rho_- - rho_+)``,
    ``rate* = (rho_- + rho_+) / (2 + rho_- - rho_+)`` (< 1 iff ``rho_+ < 1``)."""
    if rho_plus >= 1:
        raise ValueError(
            f"rho_plus = {rho_plus} >= 1: the one-step problem is not strongly "
            "concave and no damping makes the iteration contract"
        )
    eta = 2.0 / (2.0 + rho_minus - rho_plus)
    return eta, (rho_minus + rho_plus) / (2.0 + rho_minus - rho_plus)


def lq_iteration_rate(P_next, sigma: float, beta: float, eta: float = 1.0) -> float:
    """Exact asymptotic rate in the LQ class: the spectral radius of
    ``(1 - eta) I - eta (sigma^2/beta) P_{t+1}`` (P_next (d, d)), i.e.
    ``max_i |1 - eta (1 + sigma^2 lambda_i / beta)|``."""
    lam = np.linalg.eigvalsh(_np(P_next))
    a = float(sigma) ** 2 * lam / float(beta)
    return float(np.max(np.abs(1 - eta * (1 + a))))


def measured_rate(
    errors: Sequence[float],
    floor: float = 1e-11,
    abs_floor: float = 0.0,
    *,
    final_factor: float | None = None,
) -> float:
    """Geometric rate of a linearly converging error sequence ``e_0, e_1, ...``: ``exp`` of the
    least-squares slope of ``log e_m`` against ``m`` over a leading window (its positive
    entries; at least two points, else 0; NaN when ``e_0 <= 0`` or fewer than two errors).

    The window ends where the sequence stops falling geometrically:

    - by default at its last entry above the round-off floor ``max(floor * e_0, abs_floor)``
      (an exact iteration: the error falls to round-off);
    - with ``final_factor = k``, at its first entry ``e_m <= k e_last`` (at least three
      points): for an error that levels off at a noise floor (a Monte Carlo estimate), the
      points before it reaches a multiple of its final value.
    """
    e = np.asarray(errors, dtype=float)
    if e.size < 2 or not e[0] > 0:
        return float("nan")
    if final_factor is None:
        keep = np.nonzero(e > max(floor * e[0], abs_floor))[0]
        last = keep[-1] if keep.size else 0
    else:
        stop = max(int(np.argmax(e <= final_factor * e[-1])) + 1, 3)
        last = min(stop, e.size) - 1
    idx = np.arange(0, last + 1)
    idx = idx[e[idx] > 0]
    if idx.size < 2:
        return 0.0
    slope = np.polyfit(idx, np.log(e[idx]), 1)[0]
    return float(np.exp(slope))


def _iterations(n_iter, T: int) -> np.ndarray:
    """Iterations per step, (T,) ints >= 0, from an int or T ints."""
    n = np.asarray(n_iter)
    if isinstance(n_iter, bool) or n.dtype == bool:
        raise ValueError(f"n_iter must be an int >= 0 or {T} ints >= 0, got {n_iter!r}")
    if n.ndim == 0 and np.issubdtype(n.dtype, np.integer):
        n = np.full(T, int(n))
    if n.shape != (T,) or np.any(n < 0) or not np.issubdtype(n.dtype, np.integer):
        raise ValueError(f"n_iter must be an int >= 0 or {T} ints >= 0, got {n_iter!r}")
    return n.astype(int)


def _check_eta(eta: float) -> float:
    """The damping ``eta`` in (0, 2): the optimal ``eta* = 2 / (2 + rho_- - rho_+)``
    (:func:`optimal_damping`) lies there whenever ``rho_+ < 1``, above 1 (over-relaxation)
    where the curvature of ``V_{t+1}`` is mostly convex (``rho_+ > rho_-``)."""
    if not 0 < eta < 2:
        raise ValueError(f"damping eta must lie in (0, 2), got {eta}")
    return float(eta)
