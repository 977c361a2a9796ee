"""Parametric PI-FT as the paper states it: the backward sweep of Algorithm 1 (Han, Razaviyayn,
Xu 2025, Sec. 4-5; chapter ``book/finetune.md``).

For ``t = T - 1, ..., 0`` (from the last step down), with the controls of the steps after ``t``
already improved and ``V_T = r``:

1. *evaluate* ``V_{t+1}`` (for ``t < T - 1``): regress a critic on the one-step Bellman targets
   of the current controls, ``V_{t+1}(Y_{t+1}) ~ V_{t+2}(Y_{t+2}) - beta_{t+1} |u_{t+1}(Y_{t+1})|^2
   / (2 sigma_{t+1}^2)``, over states ``Y_{t+1}`` drawn from the current fine-tuned chain,
   ``critic_steps`` (the paper's K) AdamW steps;
2. *improve* ``u_t`` by the first-order condition of the per-step Bellman problem, ``m_t``
   rounds (``rounds``) of the fixed-point map
   ``u_t(y) <- (1 - eta) u_t(y) + eta (sigma_t^2 / beta_t) E_W grad V_{t+1}(m_t(y) + u_t(y) +
   sigma_t W)`` (``eta = 1``: the paper's plain iteration; ``eta < 1``: the damped variant of
   the convergence chapter), each round a regression of the control network of step ``t`` on
   these targets over fresh states, ``improve_steps`` AdamW steps.

The map of step 2 contracts with factor ``rho_t = sigma_t^2 Lip(grad V_{t+1}) / beta_t``
(the convergence theorem; ``book/pift_convergence.md``): ``rounds`` iterations take the error
of ``u_t`` down by about ``rho_t^rounds``. Each step has its own control and critic network
(:class:`StepwiseControl`, :class:`StepwiseValue`), so that improving ``u_t`` leaves the steps
already improved as they are. The control regresses ``g_t = (beta_t / sigma_t^2) u_t`` on
``E grad V_{t+1}``, a quantity of order one for every beta, so its learning rate does not
depend on beta.

The budget counts forward network evaluations (``nfe``; a backward pass counts as one more
there, and once more in ``backward``: forward-equivalents ``nfe + backward``, a backward pass
worth two forwards) and reward evaluations (a reward gradient counts as one more).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..checks import call_reward
from .budget import Budget, Timer
from .nets import _mlp
from .trajectories import chain_arrays, event_shape, sqnorm

__all__ = ["StepwiseControl", "StepwiseValue", "SweepResult", "pift_sweep"]


def _grouped(nets: nn.ModuleList, t, y: torch.Tensor, out_dim: int) -> torch.Tensor:
    """``nets[t](y)`` for an int ``t`` or row by row for a (B,) tensor of steps."""
    if isinstance(t, int) or (torch.is_tensor(t) and t.ndim == 0):
        return nets[int(t)](y)
    out = y.new_zeros((y.shape[0], out_dim))
    for s in torch.unique(t).tolist():
        rows = t == s
        out[rows] = nets[s](y[rows])
    return out


class StepwiseControl(nn.Module):
    """``u_t(y) = (sigma_t^2 / beta_t) g_t(y)``, one MLP ``g_t`` per step (last layer zero:
    the pre-trained model at the start). ``sigma``, ``beta``: the chain's (T,) tensors."""

    def __init__(self, dim: int, sigma, beta, hidden: int = 64, depth: int = 2):
        super().__init__()
        sigma, beta = torch.as_tensor(sigma).float(), torch.as_tensor(beta).float()
        if sigma.ndim != 1 or sigma.shape != beta.shape:
            raise ValueError("sigma and beta must be (T,) tensors of the same length")
        if torch.any(beta <= 0):
            raise ValueError("beta must be > 0 at every step")
        if dim < 1 or hidden < 1 or depth < 1:
            raise ValueError(
                f"dim, hidden, depth must be >= 1; got {dim}, {hidden}, {depth}"
            )
        self.dim, self.T = dim, sigma.shape[0]
        self.register_buffer("scale", sigma**2 / beta)
        self.g = nn.ModuleList(_mlp(dim, hidden, depth, dim) for _ in range(self.T))
        for net in self.g:
            nn.init.zeros_(net[-1].weight)
            nn.init.zeros_(net[-1].bias)

    def g_of(self, t, y: torch.Tensor) -> torch.Tensor:
        return _grouped(self.g, t, y, self.dim)

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        if y.ndim != 2 or y.shape[1] != self.dim:
            raise ValueError(f"y must have shape (B, {self.dim}), got {tuple(y.shape)}")
        scale = self.scale.to(y)[t]
        return (scale[:, None] if scale.ndim else scale) * self.g_of(t, y)


class StepwiseValue(nn.Module):
    """Critics ``V_t(y)``, one MLP per step ``t = 0..T - 1`` (``V_T = r`` is the reward)."""

    def __init__(self, dim: int, T: int, hidden: int = 64, depth: int = 2):
        super().__init__()
        self.dim, self.T = dim, T
        self.v = nn.ModuleList(_mlp(dim, hidden, depth, 1) for _ in range(T))

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        return _grouped(self.v, t, y, 1)[:, 0]


@dataclass
class SweepResult:
    """Per step ``t`` (keys) the callback's metrics after each improvement round
    (``rounds[t]``: a list of dicts with ``round``, the budget so far and the metrics), the
    critic's last regression loss per step, and the final budget."""

    rounds: dict = field(default_factory=dict)
    critic_loss: dict = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)


def _states(chain, control, t: int, n: int, gen, device, dtype) -> torch.Tensor:
    """``n`` states ``Y_t`` of the current fine-tuned chain (no gradients)."""
    shape = event_shape(chain)
    sigma, _ = chain_arrays(chain)
    y = torch.randn((n, *shape), generator=gen, dtype=dtype).to(device)
    with torch.no_grad():
        for s in range(t):
            z = torch.randn((n, *shape), generator=gen, dtype=dtype).to(device)
            y = chain.mean(s, y).to(dtype) + control(s, y) + float(sigma[s]) * z
    return y


def pift_sweep(
    chain,
    reward: Callable,
    control: StepwiseControl,
    critic: StepwiseValue,
    *,
    n_traj: int = 64,
    rounds: int | list[int] = 5,
    critic_steps: int = 50,
    improve_steps: int = 50,
    n_noise: int = 8,
    lr: float = 1e-2,
    critic_lr: float | None = None,
    eta: float = 1.0,
    stop_at: int = 0,
    seed: int = 0,
    callback: Callable[[int], dict] | None = None,
    device="cpu",
    dtype=torch.float32,
) -> SweepResult:
    """One backward sweep of parametric PI-FT (module docstring) on ``chain`` (``T``,
    ``sigma``, ``beta``, ``mean(t, y)``) for ``reward``; trains ``control`` and ``critic`` in
    place. ``rounds``: the paper's ``m_t`` (an int, or one per step ``t = 0..T-1``);
    ``critic_steps``: its ``K``; ``improve_steps``: AdamW steps per regression of ``g_t``;
    ``n_noise``: draws of ``W`` per state in ``E_W grad V_{t+1}``; ``eta`` in (0, 1]: the
    damping. ``stop_at``: the sweep runs ``t = T - 1, ..., stop_at`` (0: the whole sweep; the
    steps before keep their controls). ``callback(t)`` returns metrics recorded after every
    round at step ``t``.
    """
    T = chain.T
    m = [rounds] * T if isinstance(rounds, int) else list(rounds)
    if len(m) != T or any(not isinstance(k, int) or k < 1 for k in m):
        raise ValueError(
            f"rounds must be an int >= 1 or T = {T} of them, got {rounds!r}"
        )
    for name, v in (
        ("critic_steps", critic_steps),
        ("improve_steps", improve_steps),
        ("n_noise", n_noise),
        ("n_traj", n_traj),
    ):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if not 0 < eta <= 1:
        raise ValueError(f"eta must be in (0, 1], got {eta}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not (isinstance(stop_at, int) and 0 <= stop_at < T):
        raise ValueError(f"stop_at must be an int in 0..{T - 1}, got {stop_at!r}")
    if control.T != T or critic.T != T:
        raise ValueError(f"control and critic must have T = {T} steps")
    sigma, beta = chain_arrays(chain)
    gen = torch.Generator().manual_seed(int(seed))
    res = SweepResult()
    budget, n, shape = res.budget, n_traj, event_shape(chain)

    def v_next(t: int, y: torch.Tensor) -> torch.Tensor:  # V_{t+1}, V_T = r
        if t == T - 1:
            budget.charge(reward=y.shape[0])
            return call_reward(reward, y).to(dtype)
        budget.charge(nfe=y.shape[0])
        return critic(t + 1, y)

    def fit(params, loss_fn, steps: int, rate: float) -> float:
        opt = torch.optim.AdamW(params, lr=rate, weight_decay=0.0)
        for _ in range(steps):
            loss = loss_fn()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return float(loss.detach())

    for t in range(T - 1, stop_at - 1, -1):
        s2, b = float(sigma[t]) ** 2, float(beta[t])
        with Timer(budget):
            if t < T - 1:  # evaluate V_{t+1} under the improved u_{t+1}, ..., u_{T-1}
                y1 = _states(chain, control, t + 1, n, gen, device, dtype)
                with torch.no_grad():
                    u1 = control(t + 1, y1)
                    z = torch.randn((n, *shape), generator=gen, dtype=dtype).to(device)
                    nxt = chain.mean(t + 1, y1).to(dtype) + u1 + float(sigma[t + 1]) * z
                    target = v_next(t + 1, nxt) - float(beta[t + 1]) * sqnorm(u1) / (
                        2 * float(sigma[t + 1]) ** 2
                    )
                budget.charge(nfe=2 * (t + 1) * n + 2 * n)
                res.critic_loss[t + 1] = fit(
                    critic.v[t + 1].parameters(),
                    lambda: ((critic(t + 1, y1) - target) ** 2).mean(),
                    critic_steps,
                    critic_lr or lr,
                )
                budget.charge(nfe=2 * critic_steps * n, backward=critic_steps * n)
        for k in range(m[t]):
            with Timer(budget):  # improve u_t: one round of the first-order condition
                y = _states(chain, control, t, n, gen, device, dtype)
                with torch.no_grad():
                    mt = chain.mean(t, y).to(dtype)
                    g_old = control.g_of(t, y)
                u_old = s2 / b * g_old
                z = torch.randn((n_noise, n, *shape), generator=gen, dtype=dtype).to(
                    device
                )
                nxt = (mt + u_old)[None] + s2**0.5 * z
                nxt = nxt.reshape(n_noise * n, *shape).requires_grad_(True)
                grad = torch.autograd.grad(v_next(t, nxt).sum(), nxt)[0]
                if t == T - 1:
                    budget.charge(reward=n_noise * n)  # the reward's gradient
                else:
                    budget.charge(nfe=n_noise * n, backward=n_noise * n)
                g_star = grad.reshape(n_noise, n, *shape).mean(0).detach()
                g_target = (1 - eta) * g_old + eta * g_star
                budget.charge(nfe=2 * t * n + 2 * n)
                fit(
                    control.g[t].parameters(),
                    lambda: sqnorm(control.g_of(t, y) - g_target).mean(),
                    improve_steps,
                    lr,
                )
                budget.charge(nfe=2 * improve_steps * n, backward=improve_steps * n)
            row = {"round": k + 1, **budget.as_dict()}
            if callback is not None:
                row.update(callback(t))
            res.rounds.setdefault(t, []).append(row)
    return res
