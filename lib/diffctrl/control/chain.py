"""The controlled DDPM chain and the KL-regularised fine-tuning objective.

``book/notation.md``, *The controlled chain* ([ours] reading of Han, Razaviyayn, Xu 2025, Sec. 2): reverse steps
``t = 0..T-1`` (noise level ``k = N - t``, ``T = N``), pre-trained kernel
``Y_{t+1} = m_t(Y_t) + sigma_t W`` with ``m_t(y) = (y + beta_k s_k(y)) / sqrt(alpha_k)``. The
fine-tuned kernel shifts the mean by a control ``u_t(y)``:

    Y_{t+1} = m_t(Y_t) + u_t(Y_t) + sigma_t W,     W ~ N(0, I).

Both kernels are Gaussians with covariance ``sigma_t^2 I``, so the per-step KL is the quadratic
control cost ``KL_t(y) = |u_t(y)|^2 / (2 sigma_t^2)``, and the objective is

    J(u) = E[ r(Y_T) ] - sum_t beta_t E[ KL_t(Y_t) ],     Y_0 ~ N(0, I).

``beta_t`` may be a scalar or a schedule of length ``T``. Where ``sigma_t = 0`` (the last step of
the "small"-variance DDPM sampler) the kernel is a point mass: only ``u_t = 0`` has finite KL.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..checks import call_reward
from ..diffusion.exact import GaussianMixture, ScoreFn, exact_score_fn
from ..diffusion.samplers import VARIANCES, ancestral_mean
from ..diffusion.schedules import Schedule

__all__ = [
    "Rollout",
    "Control",
    "ControlledChain",
    "ObjectiveEstimate",
    "beta_schedule",
    "check_horizon",
    "estimate_objective",
    "kl_cost",
    "simulate",
    "sqrt_psd",
    "step_sigmas",
]


Control = Callable[[int, torch.Tensor], torch.Tensor]  # u_t(y): (t, (B, d)) -> (B, d)


def sqrt_psd(S: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a PSD matrix (eigenvalues clipped at 0)."""
    w, V = torch.linalg.eigh(0.5 * (S + S.T))
    return (V * w.clamp_min(0).sqrt()) @ V.T


def step_sigmas(sched: Schedule, variance: str = "large") -> torch.Tensor:
    """``(T,)`` float64 tensor of sigma_t, t = 0..T-1 (level k = N - t), vectorised
    :func:`~diffctrl.diffusion.samplers.ancestral_sigma`: ``sqrt(tilde beta_k)`` ("small") or
    ``sqrt(beta_k)`` ("large")."""
    if variance not in VARIANCES:
        raise ValueError(f"unknown variance {variance!r}; choose one of {VARIANCES}")
    k = sched.N - torch.arange(sched.N)
    v = sched.posterior_variance if variance == "small" else sched.betas
    return v.double()[k].clamp_min(0).sqrt()


def check_horizon(T) -> int:
    """``T`` must be an int >= 1 (the number of reverse steps)."""
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T (number of reverse steps) must be an int >= 1, got {T!r}")
    return T


def beta_schedule(beta, T: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """The KL weights ``beta_t`` as a ``(T,)`` tensor from a scalar or a length-T sequence.

    Raises ``ValueError`` unless every weight is finite and > 0.
    """
    check_horizon(T)
    b = torch.as_tensor(beta, dtype=dtype, device=device)
    if b.ndim == 0:
        b = b.expand(T).clone()
    if b.shape != (T,):
        raise ValueError(
            f"beta must be a scalar or have shape ({T},) (one weight per step), "
            f"got shape {tuple(b.shape)}"
        )
    if not torch.all(torch.isfinite(b)) or torch.any(b <= 0):
        raise ValueError(
            f"beta (KL weight) must be finite and > 0 at every step; got min "
            f"{float(b.min()):.3g}"
        )
    return b


def kl_cost(u: torch.Tensor, sigma: float) -> torch.Tensor:
    """``KL(N(m + u, s^2 I) || N(m, s^2 I)) = |u|^2 / (2 s^2)`` per row of ``u`` (B, d).

    For ``sigma = 0`` the KL is 0 where ``u = 0`` and ``+inf`` elsewhere.
    """
    sq = (u**2).sum(-1)
    if sigma > 0:
        return sq / (2 * sigma**2)
    return torch.where(sq == 0, torch.zeros_like(sq), torch.full_like(sq, math.inf))


@dataclass(frozen=True)
class ControlledChain:
    """A pre-trained DDPM chain (score, schedule, sampler variance) plus KL weights beta_t.

    ``sigma`` is the ``(T,)`` tensor of ancestral standard deviations sigma_t (float64);
    ``data`` is the Gaussian mixture behind an exact score, when there is one.
    """

    sched: Schedule
    score: ScoreFn
    beta: torch.Tensor
    dim: int
    variance: str = "large"
    data: GaussianMixture | None = None

    def __post_init__(self):
        if self.variance not in VARIANCES:
            raise ValueError(
                f"unknown variance {self.variance!r}; choose one of {VARIANCES}"
            )
        if self.beta.shape != (self.sched.N,):
            raise ValueError(
                f"beta must have shape ({self.sched.N},), got {tuple(self.beta.shape)}"
            )
        if not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"dim must be an int >= 1, got {self.dim!r}")

    @classmethod
    def create(
        cls, sched: Schedule, score: ScoreFn, beta, dim: int, variance: str = "large"
    ) -> ControlledChain:
        if not isinstance(sched, Schedule):
            raise TypeError(
                f"sched must be a diffusion Schedule, got {type(sched).__name__}"
            )
        return cls(sched, score, beta_schedule(beta, sched.N), dim, variance)

    @classmethod
    def from_data(
        cls, data: GaussianMixture, sched: Schedule, beta, variance: str = "large"
    ) -> ControlledChain:
        """The chain whose pre-trained model is the exact score of ``data``."""
        if not isinstance(data, GaussianMixture):
            raise TypeError(
                f"data must be a GaussianMixture, got {type(data).__name__}"
            )
        return cls(
            sched,
            exact_score_fn(data, sched),
            beta_schedule(beta, sched.N),
            data.dim,
            variance,
            data,
        )

    @property
    def T(self) -> int:
        return self.sched.N

    @property
    def sigma(self) -> torch.Tensor:
        return step_sigmas(self.sched, self.variance)

    def with_beta(self, beta) -> ControlledChain:
        return ControlledChain(
            self.sched,
            self.score,
            beta_schedule(beta, self.T),
            self.dim,
            self.variance,
            self.data,
        )

    def mean(self, t: int, y: torch.Tensor) -> torch.Tensor:
        """m_t(y), the pre-trained kernel's mean at reverse step t (level k = N - t)."""
        return ancestral_mean(self.score, self.sched, t, y)

    def step(
        self, t: int, y: torch.Tensor, u: torch.Tensor | None, noise: torch.Tensor
    ) -> torch.Tensor:
        """Y_{t+1} = m_t(y) + u + sigma_t noise."""
        out = self.mean(t, y) + float(self.sigma[t]) * noise
        return out if u is None else out + u


@dataclass(frozen=True)
class Rollout:
    """Samples of the controlled chain: terminal states ``y`` (n, d), the per-path KL sums
    ``kl = sum_t KL_t`` and ``weighted_kl = sum_t beta_t KL_t`` (n,), and optionally the path
    (T + 1, n, d)."""

    y: torch.Tensor
    kl: torch.Tensor
    weighted_kl: torch.Tensor
    path: torch.Tensor | None = None


def _initial(n: int, d: int, init, generator, dtype, device) -> torch.Tensor:
    gen_dev = generator.device if generator is not None else torch.device("cpu")
    z = torch.randn(n, d, generator=generator, dtype=dtype, device=gen_dev).to(device)
    if init is None:
        return z
    mean, cov = (torch.as_tensor(x, dtype=dtype, device=device) for x in init)
    if mean.shape != (d,) or cov.shape != (d, d):
        raise ValueError(
            f"init must be (mean ({d},), cov ({d}, {d})), got {tuple(mean.shape)}, "
            f"{tuple(cov.shape)}"
        )
    return mean + z @ sqrt_psd(cov).T


def simulate(
    chain: ControlledChain,
    control: Control | None,
    n: int,
    *,
    generator: torch.Generator | None = None,
    init=None,
    y0: torch.Tensor | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    return_path: bool = False,
    progress: bool = False,
) -> Rollout:
    """Run ``n`` paths of the controlled chain from ``Y_0 ~ N(0, I)`` (or ``init = (mean, cov)``,
    or given samples ``y0`` (n, d)); ``control=None`` is the pre-trained model.

    Batched over paths; noise from ``generator`` on its own device, then moved to ``device``.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    d = chain.dim
    if y0 is None:
        y = _initial(n, d, init, generator, dtype, device)
    else:
        if tuple(y0.shape) != (n, d):
            raise ValueError(f"y0 must have shape ({n}, {d}), got {tuple(y0.shape)}")
        y = y0.to(device=device, dtype=dtype)
    gen_dev = generator.device if generator is not None else torch.device("cpu")
    sigma = chain.sigma
    kl = torch.zeros(n, dtype=dtype, device=device)
    wkl = torch.zeros_like(kl)
    path = [y] if return_path else None
    with torch.no_grad():
        for t in tqdm(range(chain.T), desc="controlled chain", disable=not progress):
            u = None if control is None else control(t, y)
            if u is not None:
                if u.shape != y.shape:
                    raise ValueError(
                        f"control({t}, y) must return shape {tuple(y.shape)}, got "
                        f"{tuple(u.shape)}"
                    )
                k = kl_cost(u, float(sigma[t]))
                kl = kl + k
                wkl = wkl + float(chain.beta[t]) * k
            noise = torch.randn(
                n, d, generator=generator, dtype=dtype, device=gen_dev
            ).to(device)
            y = chain.step(t, y, u, noise)
            if return_path:
                path.append(y)
    return Rollout(y, kl, wkl, torch.stack(path) if return_path else None)


@dataclass(frozen=True)
class ObjectiveEstimate:
    """Monte Carlo estimate of ``J = E r(Y_T) - sum_t beta_t E KL_t`` with standard errors."""

    value: float
    stderr: float
    reward: float
    reward_stderr: float
    kl: float
    kl_stderr: float
    n: int


def estimate_objective(
    chain: ControlledChain,
    reward: Callable[[torch.Tensor], torch.Tensor],
    control: Control | None,
    n: int,
    *,
    generator: torch.Generator | None = None,
    init=None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    progress: bool = False,
) -> ObjectiveEstimate:
    """Estimate ``J(u)`` from ``n`` independent paths; ``stderr = std / sqrt(n)`` of the per-path
    values ``r(Y_T) - sum_t beta_t KL_t``.

    ``reward(y)`` must return shape (n,) and finite values (``ValueError`` naming ``reward``
    otherwise: an (n, 1) result is refused, not broadcast to (n, n))."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (number of paths) must be an int >= 1, got {n!r}")
    if not callable(reward):
        raise TypeError(
            f"reward must be callable (n, d) -> (n,), got {type(reward).__name__}"
        )
    roll = simulate(
        chain,
        control,
        n,
        generator=generator,
        init=init,
        device=device,
        dtype=dtype,
        progress=progress,
    )
    r = call_reward(reward, roll.y)
    per_path = r - roll.weighted_kl

    def mean_se(x):
        m = float(x.mean())
        se = float(x.std(unbiased=True)) / math.sqrt(n) if n > 1 else math.inf
        return m, se

    v, vse = mean_se(per_path)
    rm, rse = mean_se(r)
    km, kse = mean_se(roll.weighted_kl)
    return ObjectiveEstimate(v, vse, rm, rse, km, kse, n)
