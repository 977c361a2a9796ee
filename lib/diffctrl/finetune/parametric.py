"""Parametric PI-FT and three baselines behind one interface, one budget counter, one trainer.

The controlled chain (``book/notation.md``, *The controlled chain*; Han, Razaviyayn, Xu 2025, Sec. 2): reverse steps
``t = 0..T-1``, ``Y_{t+1} = m_t(Y_t) + u_theta(t, Y_t) + sigma_t W_t``, ``Y_0 ~ N(0, I)``, objective
``J(theta) = E[r(Y_T)] - sum_t beta_t E[|u_theta(t, Y_t)|^2 / (2 sigma_t^2)]`` (the path KL to the
pre-trained chain). Every method below maximises this same J, so all share the optimum; each
iteration draws ``n_traj`` trajectories (the paper: 10 trajectories x 50 transitions per step).

- ``"pift"`` parametric PI-FT ([ours] reading of the paper's practical recipe): *policy
  evaluation* regresses a critic ``V_phi(t, y)`` on the Monte Carlo cost-to-go
  ``G_t = r(Y_T) - sum_{s >= t} beta_s KL_s`` of the sampled trajectories; *policy improvement*
  ascends the per-step Bellman objective at every sampled transition at once,
  ``-beta_t |u_theta(t, Y_t)|^2 / (2 sigma_t^2) + V_{t+1}(m_t(Y_t) + u_theta(t, Y_t) + sigma_t W')``
  with ``V_T = r`` and ``V_{t+1} = V_phi`` (frozen) before, fresh noise ``W'``; each step's objective
  is weighted by ``beta_t / sigma_t^2`` (a preconditioner: its maximiser is unchanged);
- ``"draft"`` reward backpropagation through the sampler, truncated to the last ``K`` steps
  (DRaFT-K, Clark et al. 2024), plus the KL term so that it targets the same optimum:
  loss ``-(r(Y_T) - sum_t beta_t KL_t)`` with the reparametrised noise, gradients of ``r`` through
  the last K steps only (``K = None``: all steps, plain reward backpropagation);
- ``"dpok"`` KL-regularised policy gradient over the Gaussian transition kernels (DPOK, Fan et al.
  2023, the paper's comparison): REINFORCE with the reward-to-go ``G_{t+1}`` and a batch-mean
  baseline per step, plus the exact gradient of the per-step KL ``|u|^2/(2 sigma_t^2)``;
- ``"adjoint"`` Adjoint Matching (Domingo-Enrich et al. 2024), discrete time: the *lean adjoint*
  ``a_T = grad r(Y_T)``, ``a_t = Dm_t(Y_t)^T a_{t+1}`` (the Jacobian of the *pre-trained* mean only)
  and the regression ``u_theta(t, Y_t) -> (sigma_t^2 / beta_t) a_{t+1}``; its fixed point is the
  optimum because ``grad V_t = Dm_t^T E[grad V_{t+1}]`` (envelope theorem) and
  ``u*_t = (sigma_t^2/beta_t) E[grad V_{t+1}(Y_{t+1}) | Y_t]``. The chain must be memoryless
  (``Y_T`` independent of ``Y_0`` under the pre-trained model, ``alpha_bar_N ~ 0``) for the optimum to
  have terminal law p*; our schedules are (``alpha_bar_N ~ 4e-5``).

:class:`FinetuneObjective` is an ``nn.Module`` whose ``forward(generator)`` returns the loss of
one iteration, so the same code runs in one process or under ``DistributedDataParallel``
(:mod:`.ddp`): every rank draws the same global batch of noise and keeps its shard.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .budget import Budget, Timer
from .targets import check_beta

METHODS = ("pift", "draft", "dpok", "adjoint")


def call_reward(reward: Callable, y: torch.Tensor) -> torch.Tensor:
    """``reward(y)`` checked: shape (B,) and finite, else ``ValueError``."""
    r = reward(y)
    if not isinstance(r, torch.Tensor) or r.shape != (y.shape[0],):
        got = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
        raise ValueError(
            f"reward must return a tensor of shape ({y.shape[0]},), got {got}"
        )
    if not torch.all(torch.isfinite(r)):
        raise ValueError("reward returned non-finite values (NaN or inf)")
    return r


def chain_arrays(chain) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sigma (T,), beta (T,))`` of a chain, checked: sigma_t > 0, beta_t > 0."""
    sigma = torch.as_tensor(chain.sigma, dtype=torch.float64).cpu()
    beta = torch.as_tensor(chain.beta, dtype=torch.float64).cpu()
    if sigma.shape != (chain.T,) or beta.shape != (chain.T,):
        raise ValueError("chain.sigma and chain.beta must have shape (T,)")
    if torch.any(beta <= 0) or not torch.all(torch.isfinite(beta)):
        raise ValueError("beta (KL weight) must be finite and > 0 at every step")
    if torch.any(sigma <= 0):
        raise ValueError("every step needs sigma_t > 0 (use the 'large' DDPM variance)")
    return sigma, beta


def event_shape(chain) -> tuple[int, ...]:
    return tuple(getattr(chain, "event_shape", None) or (chain.dim,))


def _sqnorm(x: torch.Tensor) -> torch.Tensor:
    return (x**2).reshape(x.shape[0], -1).sum(1)


@dataclass
class Rollout:
    """A batch of trajectories: states (T+1, n, *shape), pre-trained means m_t(Y_t) (T, n, *shape),
    controls (T, n, *shape), per-step KL (T, n), terminal rewards (n,)."""

    y: torch.Tensor
    m: torch.Tensor
    u: torch.Tensor
    kl: torch.Tensor
    r: torch.Tensor


def rollout(
    chain,
    control,
    reward,
    n: int,
    generator: torch.Generator,
    *,
    device="cpu",
    dtype=torch.float32,
    shard: tuple[int, int] = (0, 1),
) -> Rollout:
    """``n`` (global) trajectories of the controlled chain without gradients; with
    ``shard = (rank, world)`` every rank draws the same global noise and keeps rows
    ``rank * n / world ...``. Vectorised over samples."""
    rank, world = shard
    if n % world:
        raise ValueError(
            f"n_traj={n} must be divisible by the number of processes {world}"
        )
    shape = event_shape(chain)
    sigma, _ = chain_arrays(chain)
    loc = slice(rank * (n // world), (rank + 1) * (n // world))
    gdev = generator.device
    y = torch.randn((n, *shape), generator=generator, dtype=dtype, device=gdev)[loc].to(
        device
    )
    ys, ms, us, kls = [y], [], [], []
    with torch.no_grad():
        for t in range(chain.T):
            m = chain.mean(t, y).to(dtype)
            u = control(t, y)
            if u.shape != y.shape:
                raise ValueError(
                    f"control(t, y) must return shape {tuple(y.shape)}, got {tuple(u.shape)}"
                )
            z = torch.randn((n, *shape), generator=generator, dtype=dtype, device=gdev)[
                loc
            ].to(device)
            y = m + u + float(sigma[t]) * z
            ms.append(m)
            us.append(u)
            kls.append(_sqnorm(u) / (2 * float(sigma[t]) ** 2))
            ys.append(y)
        r = call_reward(reward, y).to(dtype)
    return Rollout(
        torch.stack(ys), torch.stack(ms), torch.stack(us), torch.stack(kls), r
    )


def _frozen(module: nn.Module) -> Callable:
    """``module`` evaluated with its parameters detached (gradients flow to inputs only)."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    buffers = dict(module.named_buffers())

    def f(*args):
        return torch.func.functional_call(module, {**params, **buffers}, args)

    return f


class FinetuneObjective(nn.Module):
    """One iteration's loss of ``method`` (module docstring); ``forward(generator) -> loss``.

    ``chain``: anything with ``T``, ``sigma`` (T,), ``beta`` (T,), ``mean(t, y)`` and ``dim`` or
    ``event_shape`` (:class:`diffctrl.control.chain.ControlledChain` with ``variance="large"``,
    or :class:`.lora.DiffusersChain`); ``control``: an ``nn.Module`` ``u(t, y)``; ``critic``: an
    ``nn.Module`` ``V(t, y) -> (B,)`` (PI-FT only). The budget is charged for the local shard.
    """

    def __init__(
        self,
        chain,
        reward: Callable,
        control: nn.Module,
        method: str = "pift",
        *,
        critic: nn.Module | None = None,
        n_traj: int = 10,
        truncation: int | None = None,
        shard: tuple[int, int] = (0, 1),
        budget: Budget | None = None,
        device="cpu",
        dtype=torch.float32,
    ):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
        if method == "pift" and critic is None:
            raise ValueError(
                "method 'pift' needs a critic V_phi(t, y) (e.g. nets.ValueMLP)"
            )
        if not isinstance(n_traj, int) or n_traj < 2:
            raise ValueError(f"n_traj must be an int >= 2, got {n_traj!r}")
        if truncation is not None and not (
            isinstance(truncation, int) and 1 <= truncation <= chain.T
        ):
            raise ValueError(
                f"truncation K must be an int in 1..{chain.T} or None, got {truncation!r}"
            )
        for b in torch.as_tensor(chain.beta).reshape(-1).tolist():
            check_beta(b)
        self.sigma, self.beta = chain_arrays(chain)
        self.chain, self.reward, self.method = chain, reward, method
        self.control = control
        self.critic = critic
        self.n_traj, self.truncation, self.shard = n_traj, truncation, shard
        self.budget = budget if budget is not None else Budget()
        self.device, self.dtype = torch.device(device), dtype

    # --------------------------------------------------------------------- helpers
    def _flat(self, roll: Rollout):
        T, n = roll.u.shape[:2]
        tt = torch.arange(T, device=self.device).repeat_interleave(n)
        s2 = (self.sigma**2).to(self.device, self.dtype)[tt]
        b = self.beta.to(self.device, self.dtype)[tt]
        return tt, s2, b

    def forward(self, generator: torch.Generator) -> torch.Tensor:
        return getattr(self, f"_loss_{self.method}")(generator)

    # --------------------------------------------------------------------- PI-FT
    def _rollout_with_kl_tails(self, gen):
        """A rollout, its weighted per-step KL ``beta_t KL_t`` (T, n) and the tails
        ``sum_{s >= t} beta_s KL_s`` (T, n)."""
        roll = rollout(
            self.chain,
            self.control,
            self.reward,
            self.n_traj,
            gen,
            device=self.device,
            dtype=self.dtype,
            shard=self.shard,
        )
        wkl = self.beta.to(self.device, self.dtype)[:, None] * roll.kl
        return roll, wkl, torch.flip(torch.cumsum(torch.flip(wkl, [0]), 0), [0])

    def _loss_pift(self, gen):
        roll, _, tails = self._rollout_with_kl_tails(gen)
        T, n = roll.kl.shape
        shape = roll.y.shape[2:]
        G = roll.r[None] - tails  # cost-to-go G_t, t=0..T-1
        # policy evaluation: V_phi(t, Y_t) -> G_t, t = 1..T-1
        tc = torch.arange(1, T, device=self.device).repeat_interleave(n)
        v = self.critic(tc, roll.y[1:T].reshape(-1, *shape))
        critic_loss = ((v - G[1:].reshape(-1)) ** 2).mean()
        # policy improvement: the per-step Bellman objective at every sampled transition
        tt, s2, b = self._flat(roll)
        y = roll.y[:T].reshape(-1, *shape)
        m = roll.m.reshape(-1, *shape)
        u = self.control(tt, y)
        z = torch.randn(
            (T, self.n_traj, *shape), generator=gen, dtype=self.dtype, device=gen.device
        )[:, self.shard[0] * n : (self.shard[0] + 1) * n]
        z = z.reshape(T * n, *shape).to(self.device)
        nxt = m + u + s2.sqrt().reshape(-1, *([1] * len(shape))) * z
        last = tt == T - 1
        vnext = torch.empty_like(s2)
        vnext[last] = call_reward(self.reward, nxt[last]).to(self.dtype)
        if T > 1:
            vnext[~last] = _frozen(self.critic)(tt[~last] + 1, nxt[~last])
        obj = -b * _sqnorm(u) / (2 * s2) + vnext
        ctrl_loss = -(obj * b / s2).mean()
        self.budget.charge(
            nfe=2 * T * n + 2 * (T - 1) * n + 2 * T * n + 2 * (T - 1) * n, reward=3 * n
        )
        return ctrl_loss + critic_loss

    # --------------------------------------------------------------------- DRaFT-K (+ KL)
    def _loss_draft(self, gen):
        rank, world = self.shard
        n = self.n_traj // world
        loc = slice(rank * n, (rank + 1) * n)
        shape = event_shape(self.chain)
        T = self.chain.T
        K = T if self.truncation is None else self.truncation
        y = torch.randn(
            (self.n_traj, *shape), generator=gen, dtype=self.dtype, device=gen.device
        )[loc].to(self.device)
        kl = torch.zeros(n, dtype=self.dtype, device=self.device)
        for t in range(T):
            if t == T - K:
                y = y.detach()
            if t < T - K:
                with torch.no_grad():
                    m = self.chain.mean(t, y).to(self.dtype)
                u = self.control(t, y)
                y_next_u = u.detach()
            else:
                m = self.chain.mean(t, y).to(self.dtype)
                u = self.control(t, y)
                y_next_u = u
            z = torch.randn(
                (self.n_traj, *shape),
                generator=gen,
                dtype=self.dtype,
                device=gen.device,
            )[loc].to(self.device)
            kl = kl + float(self.beta[t]) * _sqnorm(u) / (2 * float(self.sigma[t]) ** 2)
            y = m + y_next_u + float(self.sigma[t]) * z
        r = call_reward(self.reward, y).to(self.dtype)
        # backward through the pre-trained mean: K - 1 steps (the state is detached at T - K)
        self.budget.charge(nfe=3 * T * n + (K - 1) * n, reward=2 * n)
        return -(r - kl).mean()

    # --------------------------------------------------------------------- DPOK-style PG
    def _loss_dpok(self, gen):
        roll, wkl, tails = self._rollout_with_kl_tails(gen)
        T, n = roll.kl.shape
        shape = roll.y.shape[2:]
        G = roll.r[None] - (
            tails - wkl
        )  # reward-to-go after step t (KL of steps s > t), (T, n)
        # leave-one-out baseline: (G_i - mean) N / (N - 1) = G_i - mean of the other N - 1,
        # independent of trajectory i, so the score-function term stays unbiased (a batch mean
        # that includes G_i shrinks it by 1 - 1/N)
        if self.shard[1] > 1:
            mean = G.mean(1, keepdim=True)
            torch.distributed.all_reduce(mean)
            N = n * self.shard[1]
            adv = (G - mean / self.shard[1]) * (N / (N - 1))
        else:
            adv = (G - G.mean(1, keepdim=True)) * (n / (n - 1))
        tt, s2, b = self._flat(roll)
        y = roll.y[:T].reshape(-1, *shape)
        u = self.control(tt, y)
        resid = roll.y[1:].reshape(-1, *shape) - roll.m.reshape(-1, *shape) - u
        logpi = -_sqnorm(resid) / (2 * s2)
        surrogate = adv.reshape(-1).detach() * logpi - b * _sqnorm(u) / (2 * s2)
        self.budget.charge(nfe=4 * T * n, reward=n)
        return -surrogate.sum() / n

    # --------------------------------------------------------------------- Adjoint Matching
    def _loss_adjoint(self, gen):
        roll = rollout(
            self.chain,
            self.control,
            self.reward,
            self.n_traj,
            gen,
            device=self.device,
            dtype=self.dtype,
            shard=self.shard,
        )
        T, n = roll.kl.shape
        shape = roll.y.shape[2:]
        with torch.enable_grad():
            yT = roll.y[T].detach().requires_grad_(True)
            a = torch.autograd.grad(call_reward(self.reward, yT).sum(), yT)[0].to(
                self.dtype
            )
            targets = [None] * T
            for t in range(T - 1, -1, -1):
                targets[t] = a  # a_{t+1}
                if t > 0:
                    yt = roll.y[t].detach().requires_grad_(True)
                    m = self.chain.mean(t, yt).to(self.dtype)
                    a = torch.autograd.grad(m, yt, grad_outputs=a)[0].detach()
        tt, s2, b = self._flat(roll)
        tgt = torch.stack(targets).reshape(-1, *shape)
        u = self.control(tt, roll.y[:T].reshape(-1, *shape))
        w = (b / s2).reshape(-1, *([1] * len(shape)))
        self.budget.charge(nfe=2 * T * n + 2 * (T - 1) * n + 2 * T * n, reward=3 * n)
        return _sqnorm(w * u - tgt).mean()


# ------------------------------------------------------------------------- the trainer
@dataclass
class FinetuneResult:
    """Losses per iteration, the evaluation history (dicts with ``step``, ``nfe``,
    ``reward_evals``, ``wall`` and the callback's metrics) and the final budget."""

    losses: list = field(default_factory=list)
    history: list = field(default_factory=list)
    budget: Budget = field(default_factory=Budget)


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def finetune(
    objective: FinetuneObjective,
    steps: int,
    *,
    lr: float = 3e-4,
    critic_lr: float | None = None,
    weight_decay: float = 0.0,
    seed: int = 0,
    max_grad_norm: float | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 100,
    callback: Callable | None = None,
    eval_every: int = 0,
    model: nn.Module | None = None,
    progress: bool = False,
) -> FinetuneResult:
    """Train with AdamW (the paper: lr 3e-4) for ``steps`` iterations from the fixed ``seed``.

    ``model`` is what the forward runs through (default ``objective``; a
    ``DistributedDataParallel`` wrapper of it under :mod:`.ddp`). ``callback(objective)`` returns a
    dict of metrics, recorded at step 0, every ``eval_every`` steps and at the end (its time is
    not charged). With ``checkpoint``, the whole state (parameters, optimiser, generator, budget,
    history) is saved every ``checkpoint_every`` steps and at the end, and resumed if present, so
    a resumed run continues the same trajectory as an uninterrupted one.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    model = objective if model is None else model
    groups = [
        {
            "params": [p for p in objective.control.parameters() if p.requires_grad],
            "lr": lr,
        }
    ]
    if objective.critic is not None:
        groups.append(
            {"params": list(objective.critic.parameters()), "lr": critic_lr or lr}
        )
    if not groups[0]["params"]:
        raise ValueError("the control has no trainable parameters")
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(int(seed))
    res = FinetuneResult(budget=objective.budget)
    start = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        st = torch.load(ckpt, map_location=objective.device, weights_only=False)
        objective.control.load_state_dict(st["control"])
        if objective.critic is not None:
            objective.critic.load_state_dict(st["critic"])
        opt.load_state_dict(st["optimizer"])
        gen.set_state(st["generator"])
        objective.budget.load(st["budget"])
        res.losses, res.history, start = (
            list(st["losses"]),
            list(st["history"]),
            int(st["step"]),
        )
        if start > steps:
            raise ValueError(f"checkpoint {ckpt} is at step {start} > steps={steps}")

    def save(step):
        if ckpt is not None:
            _atomic_save(
                {
                    "control": objective.control.state_dict(),
                    "critic": objective.critic.state_dict()
                    if objective.critic is not None
                    else None,
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    "budget": objective.budget.as_dict(),
                    "losses": res.losses,
                    "history": res.history,
                    "step": step,
                },
                ckpt,
            )

    def record(step):
        if callback is not None and (
            not res.history or res.history[-1]["step"] != step
        ):
            row = {"step": step, **objective.budget.as_dict()}
            row.update(callback(objective))
            res.history.append(row)

    if start == 0:
        record(0)
    params = [p for g in groups for p in g["params"]]
    bar = tqdm(
        range(start, steps),
        desc=f"fine-tuning ({objective.method})",
        disable=not progress,
        initial=start,
        total=steps,
    )
    for step in bar:
        with Timer(objective.budget):
            loss = model(gen)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{objective.method}: non-finite loss at step {step}"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            opt.step()
        res.losses.append(float(loss.detach()))
        if eval_every and (step + 1) % eval_every == 0:
            record(step + 1)
        if ckpt is not None and (step + 1) % checkpoint_every == 0:
            save(step + 1)
    record(steps)
    save(steps)
    return res
