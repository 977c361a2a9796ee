"""Exact scores, densities and posterior means for Gaussian and Gaussian-mixture data.

For data ``X_0 ~ sum_j w_j N(m_j, S_j)`` the level-k marginal is the mixture
``p_k = sum_j w_j N(sqrt(ab_k) m_j, Sigma_jk)``, ``Sigma_jk = ab_k S_j + (1 - ab_k) I``, so

- score: ``grad log p_k(x) = -sum_j r_j(x) Sigma_jk^{-1} (x - sqrt(ab_k) m_j)`` with the
  responsibilities ``r_j(x) ∝ w_j N(x; sqrt(ab_k) m_j, Sigma_jk)``;
- posterior mean (Tweedie): ``E[X_0 | X_k = x] = sum_j r_j(x) (m_j + sqrt(ab_k) S_j Sigma_jk^{-1}
  (x - sqrt(ab_k) m_j)) = (x + (1 - ab_k) grad log p_k(x)) / sqrt(ab_k)``.

A Gaussian is the mixture with one component. These are the ground truth of the whole book.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch

from .schedules import Schedule

__all__ = [
    "GaussianMixture",
    "ScoreFn",
    "exact_score_fn",
    "posterior_mean",
    "posterior_moments",
    "score_at",
]

#: a score function ``s(x, k)``: x (B, *event), an int level k in 1..N -> (B, *event)
ScoreFn = Callable[[torch.Tensor, int], torch.Tensor]


def _as_tensor(x, dtype, device) -> torch.Tensor:
    return torch.as_tensor(x, dtype=dtype, device=device)


@dataclass(frozen=True)
class GaussianMixture:
    """``sum_j w_j N(m_j, S_j)`` in R^d: weights (K,), means (K, d), covs (K, d, d).

    Build it with :meth:`create` or :meth:`~diffctrl.diffusion.exact.GaussianMixture.gaussian`, which validate the input.
    """

    weights: torch.Tensor
    means: torch.Tensor
    covs: torch.Tensor

    def validate(self) -> GaussianMixture:
        """Check shapes, weights and covariances (run by :meth:`create` and
        :meth:`~diffctrl.diffusion.exact.GaussianMixture.gaussian`)."""
        w, m, S = self.weights, self.means, self.covs
        if w.ndim != 1 or m.ndim != 2 or S.ndim != 3:
            raise ValueError(
                "weights must be (K,), means (K, d), covs (K, d, d); got "
                f"{tuple(w.shape)}, {tuple(m.shape)}, {tuple(S.shape)}"
            )
        K, d = m.shape
        if w.shape[0] != K or S.shape != (K, d, d):
            raise ValueError(
                f"shape mismatch: weights {tuple(w.shape)}, means {tuple(m.shape)}, "
                f"covs {tuple(S.shape)}"
            )
        for name, v in (("weights", w), ("means", m), ("covs", S)):
            if not bool(torch.isfinite(v).all()):
                raise ValueError(f"{name} must be finite, got NaN or inf")
        if torch.any(w < 0) or not math.isclose(
            float(w.sum()), 1.0, rel_tol=1e-6, abs_tol=1e-6
        ):
            raise ValueError("weights must be non-negative and sum to 1")
        if not torch.allclose(
            S, S.transpose(-1, -2), atol=1e-10 * max(1.0, float(S.abs().max()))
        ):
            raise ValueError("covs must be symmetric")
        if torch.any(torch.linalg.eigvalsh(S) < -1e-12):
            raise ValueError(
                "covs must be positive semi-definite (a negative variance was given)"
            )
        return self

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls, weights, means, covs, dtype=torch.float64, device="cpu"
    ) -> GaussianMixture:
        """Build from array-likes; ``covs`` may be (K, d, d), (K, d) diagonals or (K,) scalars."""
        m = _as_tensor(means, dtype, device)
        if m.ndim == 1:
            m = m[:, None]
        K, d = m.shape
        S = _as_tensor(covs, dtype, device)
        if S.ndim == 1 and S.shape[0] == K:
            S = S[:, None, None] * torch.eye(d, dtype=dtype, device=device)
        elif S.ndim == 2 and S.shape == (K, d):
            S = torch.diag_embed(S)
        w = _as_tensor(weights, dtype, device)
        if S.ndim != 3 or S.shape != (K, d, d) or w.shape != (K,):
            raise ValueError(
                f"covs must be (K, d, d), (K, d) or (K,) and weights (K,) for K={K}, "
                f"d={d}; got covs {tuple(S.shape)}, weights {tuple(w.shape)}"
            )
        for name, v in (("weights", w), ("means", m), ("covs", S)):
            if not bool(torch.isfinite(v).all()):
                raise ValueError(f"{name} must be finite, got NaN or inf")
        if torch.any(torch.diagonal(S, dim1=-2, dim2=-1) < 0):
            raise ValueError("covs: variances must be non-negative")
        return cls(w, m, S).validate()

    @classmethod
    def gaussian(cls, mean, cov, dtype=torch.float64, device="cpu") -> GaussianMixture:
        mean = _as_tensor(mean, dtype, device).reshape(1, -1)
        cov = _as_tensor(cov, dtype, device)
        for name, v in (("mean", mean), ("cov", cov)):
            if not bool(torch.isfinite(v).all()):
                raise ValueError(f"{name} must be finite, got NaN or inf")
        d = mean.shape[1]
        if cov.ndim == 0:
            cov = cov * torch.eye(d, dtype=dtype, device=device)
        if cov.shape != (d, d):
            raise ValueError(
                f"cov must be ({d}, {d}) for a mean of dimension {d}, got {tuple(cov.shape)}"
            )
        return cls.create(torch.ones(1), mean, cov[None], dtype, device)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def to(self, dtype=None, device=None) -> GaussianMixture:
        kw = {"dtype": dtype, "device": device}
        return GaussianMixture(
            self.weights.to(**kw), self.means.to(**kw), self.covs.to(**kw)
        )

    # ------------------------------------------------------------------ moments and sampling
    def mean(self) -> torch.Tensor:
        return self.weights @ self.means

    def cov(self) -> torch.Tensor:
        mu = self.mean()
        dm = self.means - mu
        return torch.einsum(
            "k,kij->ij", self.weights, self.covs + dm[:, :, None] * dm[:, None, :]
        )

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact samples, shape (n, d)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        dev, dt = self.means.device, self.means.dtype
        comp = torch.multinomial(
            self.weights.cpu().float(), n, replacement=True, generator=generator
        ).to(dev)
        z = torch.randn(n, self.dim, generator=generator, dtype=dt).to(dev)
        L = torch.linalg.cholesky(
            self.covs + 1e-12 * torch.eye(self.dim, dtype=dt, device=dev)
        )
        return self.means[comp] + torch.einsum("nij,nj->ni", L[comp], z)

    # ------------------------------------------------------------------ the level-k marginal
    def marginal(self, alpha_bar: float | torch.Tensor) -> GaussianMixture:
        """The law of ``sqrt(ab) X_0 + sqrt(1 - ab) Z``."""
        ab = float(alpha_bar)
        if not 0 <= ab <= 1:
            raise ValueError(f"alpha_bar must lie in [0, 1], got {ab}")
        eye = torch.eye(self.dim, dtype=self.covs.dtype, device=self.covs.device)
        return GaussianMixture(
            self.weights, ab**0.5 * self.means, ab * self.covs + (1 - ab) * eye
        )

    @cached_property
    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Precisions S_j^{-1} (K, d, d) and log-normalisers log w_j - (log det S_j + d log 2pi)/2."""
        L, info = torch.linalg.cholesky_ex(self.covs)
        if info.device.type != "meta" and bool((info > 0).any()):
            bad = torch.nonzero(info > 0).flatten().tolist()
            raise ValueError(
                f"covs of components {bad} are singular (not positive definite): the "
                "mixture has no density, so no score"
            )
        eye = torch.eye(self.dim, dtype=self.covs.dtype, device=self.covs.device)
        prec = torch.cholesky_solve(eye.expand_as(self.covs), L)
        logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        lognorm = torch.log(self.weights) - 0.5 * (
            logdet + self.dim * math.log(2 * math.pi)
        )
        return prec, lognorm

    def _components(self, x: torch.Tensor):
        """log(w_j N(x; m_j, S_j)) (B, K) and S_j^{-1}(x - m_j) (B, K, d)."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(x.shape)}")
        prec, lognorm = self._factors
        diff = x.to(self.means)[:, None, :] - self.means[None]  # (B, K, d)
        prec_diff = torch.einsum("kij,bkj->bki", prec, diff)
        logn = lognorm - 0.5 * (diff * prec_diff).sum(-1)
        return logn, prec_diff

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x), shape (B,)."""
        logn, _ = self._components(x)
        return torch.logsumexp(logn, dim=1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """grad log p(x), shape (B, d)."""
        logn, prec_diff = self._components(x)
        r = torch.softmax(logn, dim=1)
        return -(r[:, :, None] * prec_diff).sum(1)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        logn, _ = self._components(x)
        return torch.softmax(logn, dim=1)


def score_at(data: GaussianMixture, alpha_bar: float, x: torch.Tensor) -> torch.Tensor:
    """Exact score of the level with cumulative alpha ``alpha_bar``: grad log p_k(x).

    At ``alpha_bar = 1`` the level is the data law itself; where a component covariance is
    singular it has no density, and a ValueError naming ``alpha_bar`` says so (any
    ``alpha_bar < 1`` adds ``(1 - alpha_bar) I`` and is regular)."""
    level = data.marginal(alpha_bar)
    if float(alpha_bar) == 1.0:
        _, info = torch.linalg.cholesky_ex(level.covs)
        if bool((info > 0).any()):
            raise ValueError(
                "alpha_bar = 1 is the data law, whose component covariances "
                f"{torch.nonzero(info > 0).flatten().tolist()} are singular: it has no "
                "density and no score; use alpha_bar < 1"
            )
    return level.score(x).to(x.dtype)


def posterior_moments(
    data: GaussianMixture, alpha_bar: float | torch.Tensor, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact ``E[X_0 | X = x]`` (B, d) and ``tr Cov(X_0 | X = x)`` (B,) for
    ``X = sqrt(ab) X_0 + sqrt(1 - ab) Z``; ``alpha_bar`` a number or one level per row (B,).

    ``X_0 | X = x`` is the mixture with responsibilities ``r_j ∝ w_j N(x; a m_j, Sigma_j)``,
    ``a = sqrt(ab)``, ``Sigma_j = ab S_j + (1 - ab) I``, component means
    ``mu_j = m_j + a S_j Sigma_j^{-1} (x - a m_j)`` and covariances
    ``C_j = S_j - ab S_j Sigma_j^{-1} S_j`` (Gaussian conditioning; module docstring). The one
    implementation of the posterior mean: ``diffctrl.score_theory.regression`` calls it with
    the levels ``alpha_bar(t)`` of its times. Computed in float64, returned in ``x.dtype``.
    """
    if x.ndim != 2 or x.shape[1] != data.dim:
        raise ValueError(f"x must have shape (B, {data.dim}), got {tuple(x.shape)}")
    ab = torch.as_tensor(alpha_bar, dtype=torch.float64, device=x.device)
    if ab.ndim == 0:
        ab = ab.reshape(1)
    elif ab.shape != (x.shape[0],):
        raise ValueError(
            f"alpha_bar must be a number or have shape ({x.shape[0]},), got "
            f"{tuple(ab.shape)}"
        )
    if not torch.all((ab >= 0) & (ab <= 1)):
        raise ValueError("alpha_bar must lie in [0, 1]")
    mix = data.to(dtype=torch.float64, device=x.device)
    xx = x.to(torch.float64)
    d = mix.dim
    eye = torch.eye(d, dtype=torch.float64, device=x.device)
    a = ab.sqrt()
    S = mix.covs[None]  # (1, K, d, d)
    Sigma = (
        ab[:, None, None, None] * S + (1 - ab)[:, None, None, None] * eye
    )  # (1 or B, K, d, d)
    L = torch.linalg.cholesky(Sigma)
    diff = xx[:, None, :] - a[:, None, None] * mix.means[None]  # (B, K, d)
    y = torch.linalg.solve_triangular(L, diff.unsqueeze(-1), upper=False)
    maha = (y.squeeze(-1) ** 2).sum(-1)
    logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    logn = -0.5 * (maha + logdet + d * math.log(2 * math.pi))
    r = torch.softmax(logn + torch.log(mix.weights), dim=1)  # (B, K)
    prec_diff = torch.linalg.solve_triangular(
        L.transpose(-1, -2), y, upper=True
    ).squeeze(-1)
    mu = mix.means[None] + a[:, None, None] * torch.einsum(
        "kij,nkj->nki", mix.covs, prec_diff
    )
    mean = (r[:, :, None] * mu).sum(1)
    # C_j = S_j - ab S_j Sigma_j^{-1} S_j; tr(S Sigma^{-1} S) = ||L^{-1} S||_F^2
    LinvS = torch.linalg.solve_triangular(L, S.expand_as(Sigma), upper=False)
    trC = torch.diagonal(S, dim1=-2, dim2=-1).sum(-1) - ab[:, None] * (LinvS**2).sum(
        (-1, -2)
    )
    tr_cov = (r * (trC + (mu**2).sum(-1))).sum(1) - (mean**2).sum(-1)
    return mean.to(x.dtype), tr_cov.clamp_min(0).to(x.dtype)


def posterior_mean(
    data: GaussianMixture, alpha_bar: float | torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """``E[X_0 | X = x]`` in closed form (B, d): the mean of :func:`posterior_moments`."""
    return posterior_moments(data, alpha_bar, x)[0]


def exact_score_fn(data: GaussianMixture, sched: Schedule) -> ScoreFn:
    """The exact score as a score function ``s(x, k)`` for the levels of ``sched``."""
    alpha_bar = sched.alpha_bar
    marginals = {}

    def score(x: torch.Tensor, k: int) -> torch.Tensor:
        key = (int(k), x.device)  # one copy per device: a chain may serve several
        if key not in marginals:
            marginals[key] = data.marginal(alpha_bar[key[0]]).to(device=x.device)
        flat = x.reshape(x.shape[0], -1)
        return marginals[key].score(flat).to(x.dtype).reshape(x.shape)

    return score
