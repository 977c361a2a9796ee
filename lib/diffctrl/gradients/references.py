"""Exact references for the gradient estimators.

- :func:`lq_exact_cost`: for the point mass with an affine control ``u = W_x x + w_t t + b``
  (``point_mass_lq(hidden=())``), the state is Gaussian and the expected cost is a deterministic
  function of ``theta``: by the mean / covariance *recursions* of the Euler chain
  (``scheme="euler"``, the exact target of every estimator here), or the mean / covariance
  *ODEs* of the SDE (``scheme="ode"``, RK4 on a fine grid). Autograd through either gives the
  exact gradient.
- :func:`cir_exact_cost`: first/second-moment recursions of the CIR Euler chain (exact while the
  truncation ``X^+`` is inactive, i.e. up to an event of negligible probability).
- :func:`finite_difference_gradient`: central differences with common random numbers.
"""

from __future__ import annotations

import torch

from .sde import ControlledSDE, check_steps, check_theta, path_costs, resolve_noise

__all__ = [
    "cir_exact_cost",
    "finite_difference_gradient",
    "lq_exact_cost",
    "lq_exact_gradient",
]


def _affine_gain(problem: ControlledSDE, theta: torch.Tensor):
    net = problem.network
    if net is None or len(net.sizes) != 2 or net.sizes != (5, 2):
        raise ValueError(
            "lq_exact_cost needs the affine control point_mass_lq(hidden=())"
        )
    ((W, b),) = net.layers(theta)
    return W[:, 1:], W[:, 0], b  # W_x (2, 4), w_t (2,), b (2,)


def lq_exact_cost(
    problem: ControlledSDE, theta: torch.Tensor, *, n_steps: int, scheme: str = "euler"
) -> torch.Tensor:
    """Expected cost of the point mass with affine control (differentiable in ``theta``).

    ``scheme="euler"``: with ``M = I + h (A + B W_x)``, ``e_k = w_t t_k + b``,
    ``m_{k+1} = M m_k + h B e_k``, ``P_{k+1} = M P_k M' + h Sigma Sigma'``, and
    ``E C = sum_k h [m'Qm + tr(QP) + u'Ru + tr(W_x'RW_x P)] + m_N'Q_T m_N + tr(Q_T P_N)``
    (``u = W_x m + e``): exactly the Euler chain's expected cost.
    ``scheme="ode"``: ``dm/dt = (A + B W_x) m + B e(t)``, ``dP/dt = F P + P F' + Sigma Sigma'``
    and the running cost integrated alongside, by classical RK4 with ``n_steps`` steps.
    """
    check_theta(problem, theta)
    check_steps(n_steps)
    if scheme not in ("euler", "ode"):
        raise ValueError(f"scheme must be 'euler' or 'ode', got {scheme!r}")
    info = problem.info
    A, B, S, Q, R, QT = (info[k].to(theta) for k in ("A", "B", "Sigma", "Q", "R", "QT"))
    Wx, wt, b = _affine_gain(problem, theta)
    F = A + B @ Wx
    SS = S @ S.T
    h = problem.T / n_steps
    m = problem.x0.to(theta)
    P = torch.zeros(4, 4, dtype=theta.dtype, device=theta.device)

    def running(t, m, P):
        u = Wx @ m + wt * t + b
        return (
            m @ Q @ m + torch.trace(Q @ P) + u @ R @ u + torch.trace(Wx.T @ R @ Wx @ P)
        )

    total = torch.zeros((), dtype=theta.dtype, device=theta.device)
    if scheme == "euler":
        Mk = torch.eye(4, dtype=theta.dtype, device=theta.device) + h * F
        for k in range(n_steps):
            t = k * h
            total = total + h * running(t, m, P)
            m = Mk @ m + h * (B @ (wt * t + b))
            P = Mk @ P @ Mk.T + h * SS
    else:

        def f(t, m, P):
            return F @ m + B @ (wt * t + b), F @ P + P @ F.T + SS, running(t, m, P)

        for k in range(n_steps):
            t = k * h
            k1 = f(t, m, P)
            k2 = f(t + h / 2, m + h / 2 * k1[0], P + h / 2 * k1[1])
            k3 = f(t + h / 2, m + h / 2 * k2[0], P + h / 2 * k2[1])
            k4 = f(t + h, m + h * k3[0], P + h * k3[1])
            m = m + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            P = P + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            total = total + h / 6 * (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2])
    return total + m @ QT @ m + torch.trace(QT @ P)


def lq_exact_gradient(
    problem: ControlledSDE, theta: torch.Tensor, *, n_steps: int, scheme: str = "euler"
) -> torch.Tensor:
    """``grad_theta`` of :func:`lq_exact_cost` by autograd, shape ``(n,)``."""
    th = theta.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(
        lq_exact_cost(problem, th, n_steps=n_steps, scheme=scheme), th
    )
    return g


def cir_exact_cost(
    problem: ControlledSDE, theta: torch.Tensor, *, n_steps: int
) -> torch.Tensor:
    """``E[sum_k X_k h + X_N^2]`` for the CIR Euler chain by its moment recursions.

    ``a_{k+1} = a_k + kappa (m - a_k) h``,
    ``b_{k+1} = (1 - kappa h)^2 b_k + 2 (1 - kappa h) kappa m h a_k + (kappa m h)^2 + s^2 h a_k``
    (``a = E X``, ``b = E X^2``): exact as long as the truncation ``X^+`` never acts.
    """
    if problem.name != "cir":
        raise ValueError(f"cir_exact_cost needs the cir problem, got {problem.name!r}")
    check_theta(problem, theta)
    check_steps(n_steps)
    kappa, mean, vol = theta[0], theta[1], theta[2]
    h = problem.T / n_steps
    a = problem.x0.to(theta)[0]
    b = a * a
    total = torch.zeros((), dtype=theta.dtype, device=theta.device)
    for _ in range(n_steps):
        total = total + a * h
        c = 1 - kappa * h
        a, b = (
            c * a + kappa * mean * h,
            c * c * b
            + 2 * c * kappa * mean * h * a
            + (kappa * mean * h) ** 2
            + vol**2 * h * a,
        )
    return total + b


def finite_difference_gradient(
    problem: ControlledSDE,
    theta: torch.Tensor,
    *,
    n_paths: int | None = None,
    n_steps: int | None = None,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    eps: float = 1e-3,
    coords=None,
) -> torch.Tensor:
    """Per-path central differences ``(C(theta + eps e_i) - C(theta - eps e_i)) / (2 eps)``.

    Common random numbers: the same increments for every evaluation. Returns ``(M, len(coords))``
    (all coordinates by default); average over paths for the estimate.
    """
    check_theta(problem, theta)
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    noise, _, M, _ = resolve_noise(problem, theta, n_paths, n_steps, generator, noise)
    coords = range(problem.n_params) if coords is None else list(coords)
    out = []
    th = theta.detach()
    for i in coords:
        if not 0 <= int(i) < problem.n_params:
            raise ValueError(f"coordinate {i} out of range [0, {problem.n_params})")
        e = torch.zeros_like(th)
        e[int(i)] = eps
        plus, minus = (
            path_costs(problem, th + e, noise),
            path_costs(problem, th - e, noise),
        )
        out.append((plus - minus) / (2 * eps))
    return torch.stack(out, dim=1)
