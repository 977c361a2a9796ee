"""The linear-quadratic case solved exactly: Gaussian data, quadratic reward.

``book/notation.md``, *The linear-quadratic case* (closed form, [ours]). Data ``N(mu0, S0)`` has
the exact score ``s_k(x) = -Sigma_k^{-1} (x - sqrt(abar_k) mu0)``,
``Sigma_k = abar_k S0 + (1 - abar_k) I``, so the pre-trained mean is affine,
``m_t(y) = A_t y + c_t``. With ``r(y) = -1/2 y^T P_T y + p_T^T y + c_T``
(:class:`~.rewards.QuadraticReward`) every value function is quadratic,
``V_t(y) = -1/2 y^T P_t y + p_t^T y + c_t``, and the optimum is the backward Riccati-type
recursion of :mod:`diffctrl.control.riccati` from ``V_T = r`` (:func:`solve_lq`); any affine control is
evaluated exactly by the same recursion with the control fixed (:func:`evaluate_affine_policy`).
Both return an :class:`~.affine_policy.AffinePolicy`. Everything is exact in float64, in any
dimension ``d``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..diffusion.exact import GaussianMixture
from ..diffusion.samplers import VARIANCES
from ..diffusion.schedules import Schedule, vp_sde_schedule
from .affine_policy import AffinePolicy
from .chain import ControlledChain, beta_schedule, check_horizon, step_sigmas
from .moments import _np, _sym
from .rewards import QuadraticReward, check_psd
from .riccati import KERNELS, _bellman_np, _policy_value_np

__all__ = [
    "LQProblem",
    "evaluate_affine_policy",
    "pretrained_policy",
    "random_lq_problem",
    "solve_lq",
]


@dataclass(frozen=True)
class LQProblem:
    """Gaussian data ``N(mu0, S0)``, quadratic reward, KL weights ``beta`` (T,), the DDPM chain of
    ``sched`` with ``variance``, and the initial law ``N(init_mean, init_cov)`` of ``Y_0``."""

    sched: Schedule
    mu0: torch.Tensor
    S0: torch.Tensor
    reward: QuadraticReward
    beta: torch.Tensor
    variance: str
    init_mean: torch.Tensor
    init_cov: torch.Tensor

    @classmethod
    def create(
        cls,
        sched: Schedule,
        mu0,
        S0,
        reward: QuadraticReward,
        beta,
        variance: str = "large",
        init="standard",
        dtype=torch.float64,
        device="cpu",
    ) -> LQProblem:
        """Validate and build. ``S0`` may be a scalar (times I) or (d, d) PSD; ``init`` is
        ``"standard"`` (N(0, I), the sampler's start), ``"exact"`` (the level-N marginal of the
        data) or a pair ``(mean, cov)``."""
        if not isinstance(sched, Schedule):
            raise TypeError(
                f"sched must be a diffusion Schedule, got {type(sched).__name__}"
            )
        check_horizon(sched.N)
        if variance not in VARIANCES:
            raise ValueError(
                f"unknown variance {variance!r}; choose one of {VARIANCES}"
            )
        if not isinstance(reward, QuadraticReward):
            raise TypeError(
                f"reward must be a QuadraticReward, got {type(reward).__name__}"
            )
        mu0 = torch.as_tensor(mu0, dtype=dtype, device=device).reshape(-1)
        d = mu0.shape[0]
        S0 = torch.as_tensor(S0, dtype=dtype, device=device)
        if S0.ndim == 0:
            S0 = S0 * torch.eye(d, dtype=dtype, device=device)
        if S0.shape != (d, d):
            raise ValueError(
                f"S0 must be ({d}, {d}) to match mu0 of dimension {d}, got "
                f"{tuple(S0.shape)}"
            )
        check_psd(S0, "S0")
        if reward.dim != d:
            raise ValueError(
                f"reward has dimension {reward.dim}, data has dimension {d}"
            )
        reward = reward.to(dtype=dtype, device=device)
        beta = beta_schedule(beta, sched.N, dtype, device)
        sched = sched.to(torch.float64)
        if isinstance(init, str):
            if init == "standard":
                im, ic = (
                    torch.zeros(d, dtype=dtype, device=device),
                    torch.eye(d, dtype=dtype, device=device),
                )
            elif init == "exact":
                ab = float(sched.alpha_bar[-1])
                im = ab**0.5 * mu0
                ic = ab * S0 + (1 - ab) * torch.eye(d, dtype=dtype, device=device)
            else:
                raise ValueError(
                    f"init must be 'standard', 'exact' or (mean, cov), got {init!r}"
                )
        else:
            im, ic = (torch.as_tensor(x, dtype=dtype, device=device) for x in init)
            if im.shape != (d,) or ic.shape != (d, d):
                raise ValueError(
                    f"init must be (mean ({d},), cov ({d}, {d})), got "
                    f"{tuple(im.shape)}, {tuple(ic.shape)}"
                )
            check_psd(ic, "init cov")
        return cls(sched, mu0, _sym(S0), reward, beta, variance, im, _sym(ic))

    @property
    def d(self) -> int:
        return self.mu0.shape[0]

    @property
    def T(self) -> int:
        return self.sched.N

    @property
    def dtype(self):
        return self.mu0.dtype

    @property
    def device(self):
        return self.mu0.device

    @property
    def sigma(self) -> torch.Tensor:
        return step_sigmas(self.sched, self.variance).to(
            dtype=self.dtype, device=self.device
        )

    @property
    def data(self) -> GaussianMixture:
        return GaussianMixture.gaussian(
            self.mu0, self.S0, dtype=self.dtype, device=self.device
        )

    def _out(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=self.dtype, device=self.device)

    def chain(self) -> ControlledChain:
        """The same chain with the exact score of the data, for Monte Carlo."""
        return ControlledChain.from_data(
            self.data, self.sched, self.beta, self.variance
        )

    def with_beta(self, beta) -> LQProblem:
        return LQProblem(
            self.sched,
            self.mu0,
            self.S0,
            self.reward,
            beta_schedule(beta, self.T, self.dtype, self.device),
            self.variance,
            self.init_mean,
            self.init_cov,
        )

    def pretrained_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A (T, d, d), c (T, d))`` with ``m_t(y) = A_t y + c_t``:
        ``A = (I - b_k Sigma_k^{-1}) / sqrt(alpha_k)``, ``c = b_k Sigma_k^{-1} sqrt(abar_k) mu0 / sqrt(alpha_k)``."""
        d, T = self.d, self.T
        eye = torch.eye(d, dtype=self.dtype, device=self.device)
        k = self.sched.N - torch.arange(T)
        ab = self.sched.alpha_bar[k].to(self.mu0)[:, None, None]
        b = self.sched.betas[k].to(self.mu0)[:, None, None]
        Sig_inv = _sym(torch.linalg.inv(ab * self.S0 + (1 - ab) * eye))
        A = _sym(eye - b * Sig_inv) / (1 - b).sqrt()
        c = (b * ab.sqrt() / (1 - b).sqrt())[:, :, 0] * (Sig_inv @ self.mu0)
        return A, c


# --------------------------------------------------------------------------- exact solution and policy evaluation
def solve_lq(problem: LQProblem, kernel: str = "mean-shift") -> AffinePolicy:
    """The exact optimum: backward Riccati-type recursion from ``V_T = r`` (module docstring)."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {KERNELS}")
    pb = problem
    T, d = pb.T, pb.d
    A, cv = (_np(x) for x in pb.pretrained_affine())
    s2 = _np(pb.sigma) ** 2
    beta = _np(pb.beta)
    P, p, c = np.empty((T + 1, d, d)), np.empty((T + 1, d)), np.empty(T + 1)
    G, g, kc = np.empty((T, d, d)), np.empty((T, d)), np.empty((T, d, d))
    P[T], p[T], c[T] = (_np(x) for x in pb.reward.quadratic_form())
    for t in range(T - 1, -1, -1):
        P[t], p[t], c[t], G[t], g[t], kc[t] = _bellman_np(
            P[t + 1], p[t + 1], c[t + 1], A[t], cv[t], s2[t], beta[t], kernel
        )
    o = pb._out
    return AffinePolicy(pb, o(G), o(g), o(P), o(p), o(c), o(kc), kernel)


def evaluate_affine_policy(
    problem: LQProblem, G: torch.Tensor, g: torch.Tensor
) -> AffinePolicy:
    """Exact value of the affine control ``u_t(y) = G_t y + g_t`` (G (T, d, d), g (T, d))."""
    pb = problem
    T, d = pb.T, pb.d
    G = torch.as_tensor(G, dtype=pb.dtype, device=pb.device)
    g = torch.as_tensor(g, dtype=pb.dtype, device=pb.device)
    if G.shape != (T, d, d) or g.shape != (T, d):
        raise ValueError(
            f"G must have shape ({T}, {d}, {d}) and g ({T}, {d}); got {tuple(G.shape)}, "
            f"{tuple(g.shape)}"
        )
    A, cv = (_np(x) for x in pb.pretrained_affine())
    s2 = _np(pb.sigma) ** 2
    beta = _np(pb.beta)
    Gn, gn = _np(G), _np(g)
    P, p, c = np.empty((T + 1, d, d)), np.empty((T + 1, d)), np.empty(T + 1)
    P[T], p[T], c[T] = (_np(x) for x in pb.reward.quadratic_form())
    for t in range(T - 1, -1, -1):
        P[t], p[t], c[t] = _policy_value_np(
            P[t + 1], p[t + 1], c[t + 1], A[t], cv[t], s2[t], beta[t], Gn[t], gn[t]
        )
    kc = s2[:, None, None] * np.eye(d)
    o = pb._out
    return AffinePolicy(pb, G, g, o(P), o(p), o(c), o(kc), "mean-shift")


def pretrained_policy(problem: LQProblem) -> AffinePolicy:
    """The pre-trained model (u = 0) and its value E[r(Y_T) | Y_t = y]."""
    T, d = problem.T, problem.d
    z = torch.zeros(T, d, d, dtype=problem.dtype, device=problem.device)
    return evaluate_affine_policy(problem, z, z[:, :, 0])


# --------------------------------------------------------------------------- random problems
def random_lq_problem(
    d: int,
    T: int,
    seed: int,
    beta: float | None = None,
    variance: str = "large",
    beta_range: tuple[float, float] = (0.03, 3.0),
    device="cpu",
) -> LQProblem:
    """A random LQ problem on the VP-SDE schedule with T steps (for tests and sweeps): data
    ``N(mu0, S0)`` with ``S0 = B B^T / d + 0.1 I``, reward ``Q = C C^T / d``, ``a``, ``g ~ 0.3 N(0, I)``,
    and, unless given, ``beta`` log-uniform in ``beta_range``; all from ``torch.Generator(seed)``."""
    g = torch.Generator().manual_seed(int(seed))
    B = torch.randn(d, d, generator=g, dtype=torch.float64)
    S0 = B @ B.T / d + 0.1 * torch.eye(d, dtype=torch.float64)
    C = torch.randn(d, d, generator=g, dtype=torch.float64)
    a = torch.randn(d, generator=g, dtype=torch.float64)
    mu0 = torch.randn(d, generator=g, dtype=torch.float64)
    gl = 0.3 * torch.randn(d, generator=g, dtype=torch.float64)
    lo, hi = (math.log(x) for x in beta_range)
    u = float(torch.rand(1, generator=g, dtype=torch.float64))
    if beta is None:
        beta = math.exp(lo + (hi - lo) * u)
    rew = QuadraticReward.create(Q=C @ C.T / d, a=a, g=gl)
    return LQProblem.create(
        vp_sde_schedule(T), mu0, S0, rew, beta, variance=variance, device=device
    )
