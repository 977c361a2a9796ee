"""The loss of one iteration of every fine-tuning method, and the registry of methods.

Every method maximises the same objective over the control ``u_theta`` of the controlled chain
(``book/notation.md``, *The controlled chain*; Han, Razaviyayn, Xu 2025, Sec. 2),

    J(theta) = E[r(Y_T)] - sum_t beta_t E[|u_theta(t, Y_t)|^2 / (2 sigma_t^2)],

so all share the optimum; each iteration draws ``n_traj`` trajectories (the paper: 10
trajectories x 50 transitions per step). A loss is a function ``loss(objective, generator)
-> scalar`` of a :class:`.objective.FinetuneObjective` (its chain, reward, control, critic,
budget, shard); it charges the budget for the local shard.

- ``"pift_ac"`` actor-critic PI-FT, a variant of parametric PI-FT (ours; the paper's algorithm, a backward
  sweep, is :func:`.backward_sweep.pift_sweep`): one AdamW step on all steps t at once;
  *policy evaluation* regresses a critic ``V_phi(t, y)`` on the Monte Carlo cost-to-go
  ``G_t = r(Y_T) - sum_{s >= t} beta_s KL_s`` of the sampled trajectories; *policy improvement*
  ascends the per-step Bellman objective at every sampled transition at once,
  ``-beta_t |u_theta(t, Y_t)|^2 / (2 sigma_t^2) + V_{t+1}(m_t(Y_t) + u_theta(t, Y_t) + sigma_t W')``
  with ``V_T = r`` and ``V_{t+1} = V_phi`` (frozen) before, fresh noise ``W'``; each step's
  objective is weighted by ``beta_t / sigma_t^2`` (a preconditioner: its maximiser is unchanged);
- ``"draft"`` reward backpropagation through the sampler, truncated to the last ``K`` steps
  (DRaFT-K, Clark et al. 2024), plus the KL term so that it targets the same optimum:
  loss ``-(r(Y_T) - sum_t beta_t KL_t)`` with the reparametrised noise, gradients of ``r``
  through the last K steps only (``K = None``: all steps, plain reward backpropagation);
- ``"dpok"`` KL-regularised policy gradient over the Gaussian transition kernels (DPOK, Fan et
  al. 2023, the paper's comparison): REINFORCE with the reward-to-go ``G_{t+1}`` and a
  leave-one-out baseline per step, plus the exact gradient of the per-step KL
  ``|u|^2/(2 sigma_t^2)``;
- ``"adjoint"`` Adjoint Matching (Domingo-Enrich et al. 2024), discrete time: the *lean
  adjoint* ``a_T = grad r(Y_T)``, ``a_t = Dm_t(Y_t)^T a_{t+1}`` (the Jacobian of the
  *pre-trained* mean only) and the regression ``u_theta(t, Y_t) -> (sigma_t^2 / beta_t) a_{t+1}``;
  its fixed point is the optimum because ``grad V_t = Dm_t^T E[grad V_{t+1}]`` (envelope
  theorem) and ``u*_t = (sigma_t^2/beta_t) E[grad V_{t+1}(Y_{t+1}) | Y_t]``. The chain must be
  memoryless (``Y_T`` independent of ``Y_0`` under the pre-trained model, ``alpha_bar_N ~ 0``)
  for the optimum to have terminal law p*; our schedules are (``alpha_bar_N ~ 4e-5``).

A new method is one entry of :data:`LOSSES`: a :class:`Loss` holding its function and whether
it trains a critic beside the control.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..checks import call_reward
from .trajectories import Trajectories, event_shape, rollout, sqnorm

if TYPE_CHECKING:
    from .objective import FinetuneObjective

__all__ = [
    "LOSSES",
    "METHODS",
    "Loss",
    "adjoint_loss",
    "dpok_loss",
    "draft_loss",
    "pift_loss",
]


def _frozen(module: nn.Module) -> Callable:
    """``module`` evaluated with its parameters detached (gradients flow to inputs only)."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    buffers = dict(module.named_buffers())

    def f(*args):
        return torch.func.functional_call(module, {**params, **buffers}, args)

    return f


def _flat_steps(obj: FinetuneObjective, roll: Trajectories):
    """The step index ``t`` of every one of the ``T n`` sampled transitions (T n,), with its
    ``sigma_t^2`` and ``beta_t`` (T n,) on the objective's device."""
    T, n = roll.u.shape[:2]
    tt = torch.arange(T, device=obj.device).repeat_interleave(n)
    s2 = (obj.sigma**2).to(obj.device, obj.dtype)[tt]
    b = obj.beta.to(obj.device, obj.dtype)[tt]
    return tt, s2, b


def _rollout(obj: FinetuneObjective, gen: torch.Generator) -> Trajectories:
    return rollout(
        obj.chain,
        obj.control,
        obj.reward,
        obj.n_traj,
        gen,
        device=obj.device,
        dtype=obj.dtype,
        shard=obj.shard,
    )


def _rollout_with_kl_tails(obj: FinetuneObjective, gen: torch.Generator):
    """A rollout, its weighted per-step KL ``beta_t KL_t`` (T, n) and the tails
    ``sum_{s >= t} beta_s KL_s`` (T, n)."""
    roll = _rollout(obj, gen)
    wkl = obj.beta.to(obj.device, obj.dtype)[:, None] * roll.kl
    return roll, wkl, torch.flip(torch.cumsum(torch.flip(wkl, [0]), 0), [0])


def pift_loss(obj: FinetuneObjective, gen: torch.Generator) -> torch.Tensor:
    """Parametric PI-FT (actor-critic, module docstring): critic regression plus the
    ``beta_t / sigma_t^2``-weighted per-step Bellman objective, negated."""
    roll, _, tails = _rollout_with_kl_tails(obj, gen)
    T, n = roll.kl.shape
    shape = roll.y.shape[2:]
    G = roll.r[None] - tails  # cost-to-go G_t, t=0..T-1
    # policy evaluation: V_phi(t, Y_t) -> G_t, t = 1..T-1
    tc = torch.arange(1, T, device=obj.device).repeat_interleave(n)
    v = obj.critic(tc, roll.y[1:T].reshape(-1, *shape))
    critic_loss = ((v - G[1:].reshape(-1)) ** 2).mean()
    # policy improvement: the per-step Bellman objective at every sampled transition
    tt, s2, b = _flat_steps(obj, roll)
    y = roll.y[:T].reshape(-1, *shape)
    m = roll.m.reshape(-1, *shape)
    u = obj.control(tt, y)
    z = torch.randn(
        (T, obj.n_traj, *shape), generator=gen, dtype=obj.dtype, device=gen.device
    )[:, obj.shard[0] * n : (obj.shard[0] + 1) * n]
    z = z.reshape(T * n, *shape).to(obj.device)
    nxt = m + u + s2.sqrt().reshape(-1, *([1] * len(shape))) * z
    last = tt == T - 1
    vnext = torch.empty_like(s2)
    vnext[last] = call_reward(obj.reward, nxt[last]).to(obj.dtype)
    if T > 1:
        vnext[~last] = _frozen(obj.critic)(tt[~last] + 1, nxt[~last])
    bellman = -b * sqnorm(u) / (2 * s2) + vnext
    ctrl_loss = -(bellman * b / s2).mean()
    obj.budget.charge(
        nfe=2 * T * n + 2 * (T - 1) * n + 2 * T * n + 2 * (T - 1) * n,
        reward=3 * n,
        backward=(T - 1) * n + T * n + (T - 1) * n,
    )
    return ctrl_loss + critic_loss


def draft_loss(obj: FinetuneObjective, gen: torch.Generator) -> torch.Tensor:
    """DRaFT-K plus the KL term (module docstring): ``-(r(Y_T) - sum_t beta_t KL_t)``, the
    state detached before the last ``K = obj.truncation`` steps."""
    rank, world = obj.shard
    n = obj.n_traj // world
    loc = slice(rank * n, (rank + 1) * n)
    shape = event_shape(obj.chain)
    T = obj.chain.T
    K = T if obj.truncation is None else obj.truncation
    y = torch.randn(
        (obj.n_traj, *shape), generator=gen, dtype=obj.dtype, device=gen.device
    )[loc].to(obj.device)
    kl = torch.zeros(n, dtype=obj.dtype, device=obj.device)
    for t in range(T):
        if t == T - K:
            y = y.detach()
        if t < T - K:
            with torch.no_grad():
                m = obj.chain.mean(t, y).to(obj.dtype)
            u = obj.control(t, y)
            y_next_u = u.detach()
        else:
            m = obj.chain.mean(t, y).to(obj.dtype)
            u = obj.control(t, y)
            y_next_u = u
        z = torch.randn(
            (obj.n_traj, *shape),
            generator=gen,
            dtype=obj.dtype,
            device=gen.device,
        )[loc].to(obj.device)
        kl = kl + float(obj.beta[t]) * sqnorm(u) / (2 * float(obj.sigma[t]) ** 2)
        y = m + y_next_u + float(obj.sigma[t]) * z
    r = call_reward(obj.reward, y).to(obj.dtype)
    # backward through the pre-trained mean: K - 1 steps (the state is detached at T - K)
    obj.budget.charge(
        nfe=3 * T * n + (K - 1) * n, reward=2 * n, backward=T * n + (K - 1) * n
    )
    return -(r - kl).mean()


def dpok_loss(obj: FinetuneObjective, gen: torch.Generator) -> torch.Tensor:
    """DPOK-style policy gradient (module docstring): the REINFORCE surrogate with a
    leave-one-out baseline plus the exact KL gradient, negated, per trajectory."""
    roll, wkl, tails = _rollout_with_kl_tails(obj, gen)
    T, n = roll.kl.shape
    shape = roll.y.shape[2:]
    G = roll.r[None] - (
        tails - wkl
    )  # reward-to-go after step t (KL of steps s > t), (T, n)
    # leave-one-out baseline: (G_i - mean) N / (N - 1) = G_i - mean of the other N - 1,
    # independent of trajectory i, so the score-function term stays unbiased (a batch mean
    # that includes G_i shrinks it by 1 - 1/N)
    if obj.shard[1] > 1:
        mean = G.mean(1, keepdim=True)
        torch.distributed.all_reduce(mean)
        N = n * obj.shard[1]
        adv = (G - mean / obj.shard[1]) * (N / (N - 1))
    else:
        adv = (G - G.mean(1, keepdim=True)) * (n / (n - 1))
    tt, s2, b = _flat_steps(obj, roll)
    y = roll.y[:T].reshape(-1, *shape)
    u = obj.control(tt, y)
    resid = roll.y[1:].reshape(-1, *shape) - roll.m.reshape(-1, *shape) - u
    logpi = -sqnorm(resid) / (2 * s2)
    surrogate = adv.reshape(-1).detach() * logpi - b * sqnorm(u) / (2 * s2)
    obj.budget.charge(nfe=4 * T * n, reward=n, backward=T * n)
    return -surrogate.sum() / n


def adjoint_loss(obj: FinetuneObjective, gen: torch.Generator) -> torch.Tensor:
    """Adjoint Matching (module docstring): the regression of ``(beta_t / sigma_t^2) u_theta``
    on the lean adjoint ``a_{t+1}``."""
    roll = _rollout(obj, gen)
    T, n = roll.kl.shape
    shape = roll.y.shape[2:]
    with torch.enable_grad():
        yT = roll.y[T].detach().requires_grad_(True)
        a = torch.autograd.grad(call_reward(obj.reward, yT).sum(), yT)[0].to(obj.dtype)
        targets = [None] * T
        for t in range(T - 1, -1, -1):
            targets[t] = a  # a_{t+1}
            if t > 0:
                yt = roll.y[t].detach().requires_grad_(True)
                m = obj.chain.mean(t, yt).to(obj.dtype)
                a = torch.autograd.grad(m, yt, grad_outputs=a)[0].detach()
    tt, s2, b = _flat_steps(obj, roll)
    tgt = torch.stack(targets).reshape(-1, *shape)
    u = obj.control(tt, roll.y[:T].reshape(-1, *shape))
    w = (b / s2).reshape(-1, *([1] * len(shape)))
    obj.budget.charge(
        nfe=2 * T * n + 2 * (T - 1) * n + 2 * T * n,
        reward=3 * n,
        backward=(T - 1) * n + T * n,
    )
    return sqnorm(w * u - tgt).mean()


@dataclass(frozen=True)
class Loss:
    """One fine-tuning method: ``fn(objective, generator) -> loss`` and whether it trains a
    critic ``V_phi(t, y)`` beside the control (``critic=True``: the objective needs one)."""

    fn: Callable[[FinetuneObjective, torch.Generator], torch.Tensor]
    critic: bool = False

    def __call__(self, obj: FinetuneObjective, gen: torch.Generator) -> torch.Tensor:
        return self.fn(obj, gen)


#: The registry of methods, name -> :class:`Loss` (module docstring); a new method is one entry.
LOSSES: dict[str, Loss] = {
    "pift_ac": Loss(pift_loss, critic=True),
    "draft": Loss(draft_loss),
    "dpok": Loss(dpok_loss),
    "adjoint": Loss(adjoint_loss),
}
#: The names of :data:`LOSSES`, in the order the chapter compares them.
METHODS: tuple[str, ...] = tuple(LOSSES)
