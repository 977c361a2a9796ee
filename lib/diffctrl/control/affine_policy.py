"""An affine control of the LQ case and its exact quadratic value.

``book/notation.md``, *The linear-quadratic case*: on an :class:`~.lq.LQProblem` a control
``u_t(y) = G_t y + g_t`` has the quadratic value ``V_t(y) = -1/2 y^T P_t y + p_t^T y + c_t``
(t = 0..T), and the controlled chain keeps Gaussian laws (its steps are affine), so the
objective, expected reward, KL and marginal laws are all closed forms.
:func:`~.lq.solve_lq` returns the optimal policy, :func:`~.lq.evaluate_affine_policy` any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .moments import _np, quadratic_mean

if TYPE_CHECKING:
    from .lq import LQProblem

__all__ = ["AffinePolicy"]


@dataclass(frozen=True)
class AffinePolicy:
    """An affine control ``u_t(y) = G_t y + g_t`` (G (T, d, d), g (T, d)) on an
    :class:`~.lq.LQProblem` together with its value ``V_t(y) = -1/2 y^T P_t y + p_t^T y + c_t``
    (P (T+1, d, d), p (T+1, d), c (T+1,)) and kernel covariances (T, d, d).

    :func:`~.lq.solve_lq` returns the optimal one; :func:`~.lq.evaluate_affine_policy` any other.
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
