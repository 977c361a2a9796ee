"""The linear-quadratic case solved exactly: Gaussian data, quadratic reward.

``book/notation.md``, *The linear-quadratic case* (closed form, [ours]). Data ``N(mu0, S0)`` has the exact score
``s_k(x) = -Sigma_k^{-1} (x - sqrt(abar_k) mu0)``, ``Sigma_k = abar_k S0 + (1 - abar_k) I``, so the
pre-trained mean is affine, ``m_t(y) = A_t y + c_t``. With ``r(y) = -1/2 y^T P_T y + p_T^T y + c_T``
(:class:`~.rewards.QuadraticReward`) every value function is quadratic,
``V_t(y) = -1/2 y^T P_t y + p_t^T y + c_t``, and one Bellman step is (``K = (I + s^2 P/beta)^{-1}``,
``s = sigma_t``, ``(P, p, c) = (P_{t+1}, p_{t+1}, c_{t+1})``, ``beta = beta_t``):

    u*_t(y)  = s^2 (beta I + s^2 P)^{-1} (p - P m_t(y))          (first-order condition)
    P_t      = A^T K P A
    p_t      = A^T (K p - K P c_t)
    c_t      = c + s^2/(2 beta) p^T K p - 1/2 c_t^T K P c_t + p^T K c_t - s^2/2 tr P      (mean shift)

(the Riccati-type recursion). With ``kernel="full"`` the fine-tuned kernel may also change its
covariance (the unrestricted soft-Bellman optimum, kernel ``N(m + u*, s^2 K)``): then ``P_t`` and
``p_t`` are the same and only the constant changes, ``- s^2/2 tr P -> - beta/2 log det(I + s^2 P/beta)``.
Everything is exact in float64, in any dimension ``d``, batched over evaluation points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..checks import check_data
from ..diffusion.exact import GaussianMixture
from ..diffusion.metrics import gaussian_kl
from ..diffusion.samplers import VARIANCES
from ..diffusion.schedules import Schedule
from .chain import ControlledChain, beta_schedule, check_horizon, step_sigmas
from .rewards import QuadraticReward, check_psd

KERNELS = ("mean-shift", "full")


def _sym(M: torch.Tensor) -> torch.Tensor:
    return 0.5 * (M + M.transpose(-1, -2))


# --------------------------------------------------------------------------- the problem
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


# --------------------------------------------------------------------------- Gaussian moments
def quadratic_mean(P, p, c, mean, cov) -> torch.Tensor:
    """``E[-1/2 Y^T P Y + p^T Y + c]`` for ``Y ~ N(mean, cov)``."""
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
    """``sqrt(E|G Y + g|^2)`` for ``Y ~ N(mean, cov)``."""
    G, g, mean, cov = (_np(x) for x in (G, g, mean, cov))
    v = G @ mean + g
    return float(np.sqrt(v @ v + max(np.trace(G @ cov @ G.T), 0.0)))


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


# --------------------------------------------------------------------------- one Bellman step
# The recursions run over T steps with d x d matrices: sequential and tiny, so they are computed in
# NumPy float64 on the CPU (3-4x less per-step overhead than torch) and returned as tensors on the
# problem's device.


def _bellman_np(P, p, c, A, cvec, s2: float, beta: float, kernel: str):
    d = P.shape[0]
    eye = np.eye(d)
    Minv = np.linalg.inv(beta * eye + s2 * P)  # (beta I + s^2 P)^{-1}
    K = beta * Minv
    K = 0.5 * (K + K.T)
    KP = K @ P
    KP = 0.5 * (KP + KP.T)
    G = -s2 * Minv @ P @ A
    g = s2 * Minv @ (p - P @ cvec)
    P_new = A.T @ KP @ A
    P_new = 0.5 * (P_new + P_new.T)
    Kp = K @ p
    p_new = A.T @ (Kp - KP @ cvec)
    c_new = c + s2 / (2 * beta) * (p @ Kp) - 0.5 * (cvec @ KP @ cvec) + Kp @ cvec
    if kernel == "mean-shift":
        c_new = c_new - 0.5 * s2 * np.trace(P)
        kcov = s2 * eye
    elif kernel == "full":
        c_new = c_new - 0.5 * beta * np.linalg.slogdet(eye + s2 * P / beta)[1]
        kcov = s2 * K
    else:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {KERNELS}")
    return P_new, p_new, c_new, G, g, kcov


def bellman_step(
    P, p, c, A, cvec, sigma: float, beta: float, kernel: str = "mean-shift"
):
    """The exact Bellman step for a quadratic ``V_{t+1} = (P, p, c)`` and ``m_t(y) = A y + cvec``.

    Returns ``(P_t, p_t, c_t, G, g, kernel_cov)`` (float64 tensors): the value at step t, the
    optimal affine control ``u*(y) = G y + g`` and the fine-tuned kernel's covariance
    (``s^2 I`` for the mean shift, ``s^2 K`` for the full kernel).
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    out = _bellman_np(
        _np(P),
        _np(p),
        float(c),
        _np(A),
        _np(cvec),
        float(sigma) ** 2,
        float(beta),
        kernel,
    )
    return tuple(torch.as_tensor(np.asarray(x, dtype=np.float64)) for x in out)


def _policy_value_np(P, p, c, A, cvec, s2: float, beta: float, G, g):
    F = A + G
    f = cvec + g
    if s2 == 0:
        if np.any(G != 0) or np.any(g != 0):
            raise ValueError(
                "a nonzero control at a step with sigma_t = 0 has infinite KL cost"
            )
        w = 0.0
    else:
        w = beta / s2
    P_new = w * G.T @ G + F.T @ P @ F
    P_new = 0.5 * (P_new + P_new.T)
    p_new = -w * G.T @ g + F.T @ (p - P @ f)
    c_new = c - 0.5 * w * (g @ g) - 0.5 * (f @ P @ f) + p @ f - 0.5 * s2 * np.trace(P)
    return P_new, p_new, c_new


def policy_value_step(P, p, c, A, cvec, sigma: float, beta: float, G, g):
    """Value at step t of the affine control ``u(y) = G y + g`` (mean-shift kernel), given
    ``V_{t+1} = (P, p, c)``: ``V_t(y) = -beta |u|^2 / (2 s^2) + E V_{t+1}(m + u + s W)``."""
    out = _policy_value_np(
        _np(P),
        _np(p),
        float(c),
        _np(A),
        _np(cvec),
        float(sigma) ** 2,
        float(beta),
        _np(G),
        _np(g),
    )
    return tuple(torch.as_tensor(np.asarray(x, dtype=np.float64)) for x in out)


# --------------------------------------------------------------------------- policies and values
@dataclass(frozen=True)
class AffinePolicy:
    """An affine control ``u_t(y) = G_t y + g_t`` on an :class:`LQProblem` together with its value
    ``V_t(y) = -1/2 y^T P_t y + p_t^T y + c_t`` (t = 0..T) and kernel covariances (T, d, d).

    :func:`solve_lq` returns the optimal one; :func:`evaluate_affine_policy` any other.
    """

    problem: LQProblem
    G: torch.Tensor
    g: torch.Tensor
    P: torch.Tensor
    p: torch.Tensor
    c: torch.Tensor
    kernel_cov: torch.Tensor
    kernel: str = "mean-shift"

    def _check_y(self, y):
        """``y`` in the policy's dtype; the values are computed on ``y``'s device (the
        policy's tensors are moved there), so a policy solved on the CPU drives a chain on any
        device."""
        if (
            not isinstance(y, torch.Tensor)
            or y.ndim != 2
            or y.shape[1] != self.problem.d
        ):
            raise ValueError(f"y must be a tensor of shape (B, {self.problem.d})")
        return y.to(self.P.dtype)

    def value(self, t: int, y: torch.Tensor) -> torch.Tensor:
        """V_t(y), shape (B,), t in 0..T."""
        if not 0 <= t <= self.problem.T:
            raise ValueError(f"t must lie in 0..{self.problem.T}, got {t}")
        y = self._check_y(y)
        P, p, c = (x[t].to(y.device) for x in (self.P, self.p, self.c))
        return -0.5 * ((y @ P) * y).sum(-1) + y @ p + c

    def value_grad(self, t: int, y: torch.Tensor) -> torch.Tensor:
        y = self._check_y(y)
        return -y @ self.P[t].to(y.device) + self.p[t].to(y.device)

    def control(self, t: int, y: torch.Tensor) -> torch.Tensor:
        """u_t(y), shape (B, d), t in 0..T-1."""
        if not 0 <= t < self.problem.T:
            raise ValueError(f"t must lie in 0..{self.problem.T - 1}, got {t}")
        y = self._check_y(y)
        return y @ self.G[t].T.to(y.device) + self.g[t].to(y.device)

    def as_control(self):
        """The control as a callable ``u(t, y)`` for :func:`~.chain.simulate`."""
        return lambda t, y: self.control(t, y).to(y.dtype)

    def marginals(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact laws of ``Y_t`` under this policy: means (T+1, d), covs (T+1, d, d)."""
        pb = self.problem
        A, cv = (_np(x) for x in pb.pretrained_affine())
        G, g, kc = _np(self.G), _np(self.g), _np(self.kernel_cov)
        means = np.empty((pb.T + 1, pb.d))
        covs = np.empty((pb.T + 1, pb.d, pb.d))
        means[0], covs[0] = _np(pb.init_mean), _np(pb.init_cov)
        for t in range(pb.T):
            F = A[t] + G[t]
            means[t + 1] = F @ means[t] + cv[t] + g[t]
            C = F @ covs[t] @ F.T + kc[t]
            covs[t + 1] = 0.5 * (C + C.T)
        return pb._out(means), pb._out(covs)

    def terminal_law(self) -> tuple[torch.Tensor, torch.Tensor]:
        means, covs = self.marginals()
        return means[-1], covs[-1]

    def objective(self) -> float:
        """``J = E V_0(Y_0)``, the exact value of the policy."""
        pb = self.problem
        return float(
            quadratic_mean(self.P[0], self.p[0], self.c[0], pb.init_mean, pb.init_cov)
        )

    def expected_reward(self) -> float:
        """``E r(Y_T)`` under the exact terminal law."""
        m, C = self.terminal_law()
        return float(quadratic_mean(*self.problem.reward.quadratic_form(), m, C))

    def expected_kl(self, weighted: bool = True) -> float:
        """``sum_t beta_t E KL_t`` (or the unweighted path KL) of this policy's kernels from the
        pre-trained ones; equals ``expected_reward() - objective()`` when weighted."""
        pb = self.problem
        means, covs = (_np(x) for x in self.marginals())
        G, g = _np(self.G), _np(self.g)
        s2 = _np(pb.sigma) ** 2
        v = np.einsum("tij,tj->ti", G, means[:-1]) + g
        ms = (v**2).sum(-1) + np.einsum(
            "tij,tjk,tik->t", G, covs[:-1], G
        )  # E|u_t(Y_t)|^2
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(
                s2 > 0,
                0.5 * ms / np.where(s2 > 0, s2, 1.0),
                np.where(ms == 0, 0.0, np.inf),
            )
        if self.kernel == "full":
            d = pb.d
            for t in np.nonzero(s2 > 0)[0]:
                Kc = _np(self.kernel_cov[t]) / s2[t]
                kl[t] += 0.5 * float(np.trace(Kc) - d - np.linalg.slogdet(Kc)[1])
        w = _np(pb.beta) if weighted else np.ones_like(kl)
        return float(np.sum(w * kl))

    def rho(self) -> torch.Tensor:
        """Contraction factors ``rho_t = sigma_t^2 lambda_max(P_{t+1}) / beta_t`` (T,) of the
        policy-improvement map (Lip(grad V_{t+1}) = lambda_max(P_{t+1}) for quadratic V)."""
        pb = self.problem
        lam = torch.linalg.eigvalsh(self.P[1:])[:, -1]
        return pb.sigma**2 * lam.clamp_min(0) / pb.beta


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


# --------------------------------------------------------------------------- the tilted target
def tilted_target(
    mu0, S0, reward: QuadraticReward, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``p* ∝ N(mu0, S0) exp(r / beta)`` for a quadratic reward: ``S* = (S0^{-1} + Q/beta)^{-1}``,
    ``mu* = S* (S0^{-1} mu0 + (Q a + g)/beta)``, written as ``S* = (I + S0 Q/beta)^{-1} S0`` so a
    singular S0 is allowed."""
    beta = float(beta)
    if not beta > 0 or not math.isfinite(beta):
        raise ValueError(f"beta must be finite and > 0, got {beta}")
    S0 = torch.as_tensor(S0, dtype=reward.Q.dtype, device=reward.Q.device)
    mu0 = (
        check_data(mu0, "mu0", ndim=(1, 2), dtype=reward.Q.dtype)
        .to(reward.Q.device)
        .reshape(-1)
    )
    d = mu0.shape[0]
    if S0.ndim == 0:
        S0 = S0 * torch.eye(d, dtype=S0.dtype, device=S0.device)
    if S0.shape != (d, d) or reward.dim != d:
        raise ValueError(
            f"shapes: mu0 ({d},), S0 {tuple(S0.shape)}, reward dim {reward.dim}"
        )
    check_psd(S0, "S0")
    eye = torch.eye(d, dtype=S0.dtype, device=S0.device)
    Qm, h, _ = reward.quadratic_form()
    Minv = torch.linalg.inv(eye + S0 @ Qm / beta)
    return Minv @ (mu0 + S0 @ h / beta), _sym(Minv @ S0)


def tilted_mixture(
    data: GaussianMixture, reward: QuadraticReward, beta: float
) -> GaussianMixture:
    """``p* ∝ p0 exp(r / beta)`` for a Gaussian mixture p0 and a quadratic (or linear) reward: a
    Gaussian mixture again; component j becomes ``N(m_j*, S_j*)`` with weight
    ``∝ w_j |I + S_j Q/beta|^{-1/2} exp(1/2 eta_j^T m_j* - 1/2 m_j^T S_j^{-1} m_j)``,
    ``eta_j = S_j^{-1} m_j + h/beta``, ``h = Q a + g``."""
    beta = float(beta)
    if not beta > 0 or not math.isfinite(beta):
        raise ValueError(f"beta must be finite and > 0, got {beta}")
    if reward.dim != data.dim:
        raise ValueError(
            f"reward has dimension {reward.dim}, data has dimension {data.dim}"
        )
    reward = reward.to(dtype=data.means.dtype, device=data.means.device)
    Qm, h, _ = reward.quadratic_form()
    Qb, hb = Qm / beta, h / beta
    Lam = torch.linalg.inv(data.covs)  # (K, d, d)
    Lam_star = Lam + Qb
    S_star = _sym(torch.linalg.inv(Lam_star))
    eta = torch.einsum("kij,kj->ki", Lam, data.means) + hb
    m_star = torch.einsum("kij,kj->ki", S_star, eta)
    eye = torch.eye(data.dim, dtype=Qm.dtype, device=Qm.device)
    logdet = torch.linalg.slogdet(eye + data.covs @ Qb)[1]
    logz = (
        -0.5 * logdet
        + 0.5 * (eta * m_star).sum(-1)
        - 0.5 * torch.einsum("ki,kij,kj->k", data.means, Lam, data.means)
    )
    w = torch.softmax(torch.log(data.weights) + logz, 0)
    return GaussianMixture(w, m_star, S_star)


def law_gap(mean, cov, mean_ref, cov_ref) -> dict[str, float]:
    """Distances between two Gaussian laws: max |mean diff|, max |cov diff| and KL(law || ref)."""
    mean, mean_ref = (
        check_data(mean, "mean", ndim=1),
        check_data(mean_ref, "mean_ref", ndim=1),
    )
    d = mean.shape[0]
    cov = check_data(cov, "cov", shape=(d, d))
    cov_ref = check_data(cov_ref, "cov_ref", shape=(d, d))
    if mean_ref.shape != (d,):
        raise ValueError(
            f"mean_ref must have shape ({d},) like mean, got {tuple(mean_ref.shape)}"
        )
    return {
        "mean": float((mean - mean_ref).abs().max()),
        "cov": float((cov - cov_ref).abs().max()),
        "kl": gaussian_kl(mean, cov, mean_ref, cov_ref),
    }


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
    from ..diffusion.schedules import vp_sde_schedule

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
