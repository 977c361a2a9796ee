"""Test problems for the gradient estimators (each returns ``(problem, theta0)``).

- :func:`point_mass_lq`: the experiment of Wang, Blanchet & Glynn (NeurIPS 2024, Sec. 5): LQ
  control of a 2-D point mass, state ``x = (position, velocity) in R^4``, force ``u = MLP(t, x)``,
  ``dX = (A X + B u) dt + Sigma dB``, ``rho = x'Qx + u'Ru``, ``g = x'Q_T x``. With
  ``hidden=()`` the control is affine in ``(t, x)`` and the cost has an exact gradient
  (``references.lq_exact_cost``).
- :func:`cir`: ``dX = kappa (m - X^+) dt + s sqrt(X^+) dB`` (full-truncation Euler),
  ``theta = (kappa, m, s)``; sigma depends on theta (paper, appendix example).
- :func:`relu_drift`: ``dX = (-X + W2 relu(W1 X + b1) + b2) dt + s dB`` in R^2 (appendix example).
- :func:`volatility_net`: a 2-D SDE whose diffusion ``diag(s0 + s1 tanh(W X + b))`` depends on
  theta and on x, so the generator gradient needs the second variation process.

``problem.info["sigma_coords"]`` lists the coordinates of theta that enter sigma (when any).

Costs, horizons, initial states and sizes are our reconstruction (the chapter says so).
"""

from __future__ import annotations

import torch

from .networks import MLP
from .sde import ControlledSDE

__all__ = [
    "cir",
    "point_mass_lq",
    "relu_drift",
    "volatility_net",
]


def _tensor(v, dtype, device):
    return torch.as_tensor(v, dtype=dtype, device=device)


def point_mass_lq(
    hidden: tuple[int, ...] = (64, 64, 64),
    *,
    T: float = 1.0,
    x0=(1.0, 1.0, 0.0, 0.0),
    noise: float = 0.5,
    q: float = 1.0,
    r: float = 0.1,
    q_T: float = 1.0,
    activation: str = "tanh",
    last_layer_scale: float = 1.0,
    generator: torch.Generator | None = None,
    dtype=torch.float32,
    device: str | torch.device = "cpu",
) -> tuple[ControlledSDE, torch.Tensor]:
    """LQ control of a 2-D point mass with an MLP force ``u = MLP(t, x)``, ``(5, *hidden, 2)``.

    ``A = [[0, I], [0, 0]]``, ``B = [[0], [I]]``, noise ``Sigma = [[0], [noise I]]`` on the
    velocities (``m = 2``), ``Q = q I_4``, ``R = r I_2``, ``Q_T = q_T I_4``.
    """
    if not isinstance(hidden, (tuple, list)):
        raise TypeError(
            f"hidden must be a tuple of widths, got {type(hidden).__name__}"
        )
    net = MLP((5, *hidden, 2), activation=activation)
    z2, i2 = torch.zeros(2, 2), torch.eye(2)
    A = _tensor(
        torch.cat([torch.cat([z2, i2], 1), torch.cat([z2, z2], 1)], 0), dtype, device
    )
    B = _tensor(torch.cat([z2, i2], 0), dtype, device)
    S = _tensor(torch.cat([z2, noise * i2], 0), dtype, device)
    Q = q * torch.eye(4, dtype=dtype, device=device)
    R = r * torch.eye(2, dtype=dtype, device=device)
    QT = q_T * torch.eye(4, dtype=dtype, device=device)

    def drift_cost(theta, t, x):
        u = net(theta, torch.cat([t[:, None], x], dim=-1))
        mu = x @ A.T + u @ B.T
        rho = ((x @ Q) * x).sum(-1) + ((u @ R) * u).sum(-1)
        return mu, rho

    def drift_cost_jvp(theta, t, x, v):
        inp = torch.cat([t[:, None], x], dim=-1)
        v_inp = torch.cat([torch.zeros_like(v[..., :1]), v], dim=-1)
        u, du = net.with_tangents(theta, inp, v_inp)
        mu = x @ A.T + u @ B.T
        dmu = v @ A.T + du @ B.T
        rho = ((x @ Q) * x).sum(-1) + ((u @ R) * u).sum(-1)
        drho = 2 * ((v @ Q) * x).sum(-1) + 2 * ((du @ R) * u).sum(-1)
        return (mu, rho), (dmu, drho)

    def diffusion(theta, t, x):
        return S.expand(x.shape[0], -1, -1)

    def terminal_cost(theta, x):
        return ((x @ QT) * x).sum(-1)

    problem = ControlledSDE(
        name="point_mass_lq" if hidden else "point_mass_lq_linear",
        x0=_tensor(x0, dtype, device),
        T=float(T),
        noise_dim=2,
        n_params=net.n_params,
        drift_cost=drift_cost,
        diffusion=diffusion,
        terminal_cost=terminal_cost,
        sigma_depends_on_theta=False,
        sigma_depends_on_x=False,
        network=net,
        drift_cost_jvp=drift_cost_jvp,
        prepare=net.params,
        info=dict(A=A, B=B, Sigma=S, Q=Q, R=R, QT=QT, hidden=tuple(hidden)),
    )
    theta0 = net.init(
        generator, dtype=dtype, device=device, last_layer_scale=last_layer_scale
    )
    return problem, theta0


def cir(
    *,
    kappa: float = 2.0,
    mean: float = 1.0,
    vol: float = 0.5,
    x0: float = 1.0,
    T: float = 1.0,
    dtype=torch.float32,
    device: str | torch.device = "cpu",
) -> tuple[ControlledSDE, torch.Tensor]:
    """CIR ``dX = kappa (mean - X^+) dt + vol sqrt(X^+) dB``, ``theta = (kappa, mean, vol)``.

    Cost ``int_0^T X_t dt + X_T^2``. Full-truncation Euler: coefficients see ``X^+``.
    """

    def pos(x):
        return x.clamp(min=1e-12)

    def drift_cost(theta, t, x):
        return theta[0] * (theta[1] - pos(x)), x[:, 0]

    def diffusion(theta, t, x):
        return (theta[2] * pos(x).sqrt())[:, :, None]

    def terminal_cost(theta, x):
        return x[:, 0] ** 2

    problem = ControlledSDE(
        name="cir",
        x0=_tensor([x0], dtype, device),
        T=float(T),
        noise_dim=1,
        n_params=3,
        drift_cost=drift_cost,
        diffusion=diffusion,
        terminal_cost=terminal_cost,
        sigma_depends_on_theta=True,
        sigma_depends_on_x=True,
        info=dict(sigma_coords=[2]),
    )
    return problem, _tensor([kappa, mean, vol], dtype, device)


def relu_drift(
    *,
    hidden: int = 8,
    noise: float = 0.5,
    x0=(1.0, 0.0),
    target=(1.0, 1.0),
    T: float = 1.0,
    generator: torch.Generator | None = None,
    dtype=torch.float32,
    device: str | torch.device = "cpu",
) -> tuple[ControlledSDE, torch.Tensor]:
    """``dX = (-X + net(X)) dt + noise dB`` in R^2 with a one-hidden-layer ReLU ``net``.

    Cost ``int_0^T |X_t|^2 / 2 dt + |X_T - target|^2``; ``theta`` = the net's parameters.
    """
    net = MLP((2, hidden, 2), activation="relu")
    tgt = _tensor(target, dtype, device)

    def drift_cost(theta, t, x):
        return -x + net(theta, x), 0.5 * (x * x).sum(-1)

    def drift_cost_jvp(theta, t, x, v):
        out, dout = net.with_tangents(theta, x, v)
        return (-x + out, 0.5 * (x * x).sum(-1)), (-v + dout, (v * x).sum(-1))

    def diffusion(theta, t, x):
        return noise * torch.eye(2, dtype=x.dtype, device=x.device).expand(
            x.shape[0], -1, -1
        )

    def terminal_cost(theta, x):
        return ((x - tgt) ** 2).sum(-1)

    problem = ControlledSDE(
        name="relu_drift",
        x0=_tensor(x0, dtype, device),
        T=float(T),
        noise_dim=2,
        n_params=net.n_params,
        drift_cost=drift_cost,
        diffusion=diffusion,
        terminal_cost=terminal_cost,
        network=net,
        drift_cost_jvp=drift_cost_jvp,
        prepare=net.params,
    )
    return problem, net.init(generator, dtype=dtype, device=device)


def volatility_net(
    *,
    s0: float = 0.4,
    s1: float = 0.2,
    x0=(1.0, -0.5),
    T: float = 1.0,
    generator: torch.Generator | None = None,
    dtype=torch.float32,
    device: str | torch.device = "cpu",
) -> tuple[ControlledSDE, torch.Tensor]:
    """``dX = (-X + A tanh X) dt + diag(s0 + s1 tanh(W X + b)) dB`` in R^2.

    ``theta = (A (2x2), W (2x2), b (2))`` (n = 10); cost ``int |X|^2 / 2 dt + |X_T|^2``.
    The diffusion depends on theta and on x: the likelihood ratio does not apply, and the
    generator gradient needs the Hessian of the value function (second variation process).
    """

    def split(theta):
        return theta[:4].view(2, 2), theta[4:8].view(2, 2), theta[8:10]

    def drift_cost(theta, t, x):
        a, _, _ = split(theta)
        return -x + torch.tanh(x) @ a.T, 0.5 * (x * x).sum(-1)

    def diffusion(theta, t, x):
        _, w, b = split(theta)
        return torch.diag_embed(s0 + s1 * torch.tanh(x @ w.T + b))

    def terminal_cost(theta, x):
        return (x * x).sum(-1)

    problem = ControlledSDE(
        name="volatility_net",
        x0=_tensor(x0, dtype, device),
        T=float(T),
        noise_dim=2,
        n_params=10,
        drift_cost=drift_cost,
        diffusion=diffusion,
        terminal_cost=terminal_cost,
        sigma_depends_on_theta=True,
        sigma_depends_on_x=True,
        info=dict(sigma_coords=list(range(4, 10))),
    )
    theta0 = torch.rand(10, generator=generator, dtype=dtype, device=device) - 0.5
    return problem, theta0.to(device)
