"""The fused score ``s_lambda(x, k) = sum_i lambda_i s_i(x, k)`` over K frozen auxiliaries.

ScoreFusion (Liu, Ye, Blanchet & Si 2025, Sec. 3): the KL barycenter
``q_lambda = argmin_q sum_i lambda_i KL(q || p_i) ∝ prod_i p_i^lambda_i`` has the score
``grad log q_lambda = sum_i lambda_i grad log p_i``; the paper uses the same weighted sum at every
noise level, with ``lambda = softmax(logits)`` fitted by denoising score matching at small levels.

At a level ``k > 0`` the sum is ``grad log g_{lambda,k}``, ``g_{lambda,k} ∝ prod_i p_{i,k}^lambda_i``
the geometric mixture of the *noised* auxiliaries, which in general is not the noised barycenter
(see :mod:`.barycenter` and the book's chapter).

Auxiliaries are either exact Gaussian mixtures (:class:`~diffctrl.diffusion.exact.GaussianMixture`)
or trained networks of one architecture; the networks are evaluated in one batched call
(``torch.func.stack_module_state`` + ``functional_call`` under ``vmap``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ..diffusion.exact import GaussianMixture
from ..diffusion.models import batch_levels, to_score
from ..diffusion.schedules import Schedule
from ..diffusion.training import train_dsm

__all__ = ["FusedScore", "fit_weights", "mixture_score_levels"]


def mixture_score_levels(
    gm: GaussianMixture, alpha_bar: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """Exact score of the noised mixture at a per-sample level: ``grad log p_{k_b}(x_b)``.

    ``p_k = sum_j w_j N(sqrt(ab_k) m_j, ab_k S_j + (1 - ab_k) I)``; ``alpha_bar`` (B,), ``x`` (B, d);
    returns (B, d) in the dtype of ``gm``.
    """
    if x.ndim != 2 or x.shape[1] != gm.dim:
        raise ValueError(f"x must have shape (B, {gm.dim}), got {tuple(x.shape)}")
    ab = alpha_bar.to(gm.means).reshape(-1)
    if ab.shape[0] != x.shape[0]:
        raise ValueError(
            f"alpha_bar must have shape ({x.shape[0]},), got {tuple(alpha_bar.shape)}"
        )
    d = gm.dim
    eye = torch.eye(d, dtype=gm.covs.dtype, device=gm.covs.device)
    sig = (
        ab[:, None, None, None] * gm.covs[None] + (1 - ab)[:, None, None, None] * eye
    )  # (B,C,d,d)
    L = torch.linalg.cholesky(sig)
    diff = (
        x.to(gm.means)[:, None, :] - ab.sqrt()[:, None, None] * gm.means[None]
    )  # (B, C, d)
    sol = torch.cholesky_solve(diff[..., None], L)[..., 0]
    logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    logn = torch.log(gm.weights) - 0.5 * (
        logdet + (diff * sol).sum(-1) + d * math.log(2 * math.pi)
    )
    r = torch.softmax(logn, dim=1)
    return -(r[..., None] * sol).sum(1)


def _check_auxiliaries(auxiliaries: Sequence) -> str:
    """'exact' or 'network'; raise on K = 0, mixed kinds, or different shapes/architectures."""
    if isinstance(auxiliaries, (nn.Module, GaussianMixture)) or not isinstance(
        auxiliaries, Sequence
    ):
        raise TypeError(
            "auxiliaries must be a list of GaussianMixture or of nn.Module score models"
        )
    if len(auxiliaries) == 0:
        raise ValueError("auxiliaries must hold at least one model (got K = 0)")
    if all(isinstance(a, GaussianMixture) for a in auxiliaries):
        dims = {a.dim for a in auxiliaries}
        if len(dims) > 1:
            raise ValueError(
                f"auxiliaries must share one dimension, got dimensions {sorted(dims)}"
            )
        return "exact"
    if all(isinstance(a, nn.Module) for a in auxiliaries):
        ref = [(n, tuple(p.shape)) for n, p in auxiliaries[0].state_dict().items()]
        for i, a in enumerate(auxiliaries[1:], 1):
            if (
                type(a) is not type(auxiliaries[0])
                or [(n, tuple(p.shape)) for n, p in a.state_dict().items()] != ref
            ):
                raise ValueError(
                    f"auxiliaries must share one architecture: auxiliary {i} has "
                    "different parameter shapes or type than auxiliary 0"
                )
            if getattr(a, "parametrisation", None) != auxiliaries[0].parametrisation:
                raise ValueError("auxiliaries must share one parametrisation")
        return "network"
    raise TypeError(
        "auxiliaries must all be GaussianMixture or all nn.Module, not a mix"
    )


class FusedScore(nn.Module):
    """``s_lambda(x, k) = sum_i softmax(logits)_i s_i(x, k)``: a score model (``parametrisation
    = "score"``) whose only trainable parameters are the K ``logits``.

    ``x`` (B, *event), ``k`` an int or (B,) levels in 1..N; returns (B, *event). ``evaluation``
    ``"vmap"`` (default) evaluates network auxiliaries in one vmapped call, ``"loop"`` one by one
    (the reference). :func:`~diffctrl.diffusion.training.train_dsm` fits the logits.
    """

    parametrisation = "score"

    def __init__(
        self,
        auxiliaries: Sequence[nn.Module] | Sequence[GaussianMixture],
        sched: Schedule,
        weights: Sequence[float] | torch.Tensor | None = None,
        evaluation: str = "vmap",
    ):
        super().__init__()
        self.kind = _check_auxiliaries(auxiliaries)
        if evaluation not in ("vmap", "loop"):
            raise ValueError(f"evaluation must be 'vmap' or 'loop', got {evaluation!r}")
        self.K, self.N, self.sched, self.evaluation = (
            len(auxiliaries),
            sched.N,
            sched,
            evaluation,
        )
        init = torch.zeros(self.K) if weights is None else _logits_from(weights, self.K)
        self.logits = nn.Parameter(init)
        self.register_buffer("alpha_bar", sched.alpha_bar.clone(), persistent=False)
        if self.kind == "exact":
            self.mixtures = list(auxiliaries)
            return
        for a in auxiliaries:
            if a.N != sched.N:
                raise ValueError(
                    f"auxiliaries were built for N={a.N} levels, schedule has N={sched.N}"
                )
        self.aux_parametrisation = auxiliaries[0].parametrisation
        params, buffers = stack_module_state([a.eval() for a in auxiliaries])
        self._names = {**{n: "p" for n in params}, **{n: "b" for n in buffers}}
        for n, t in {**params, **buffers}.items():
            self.register_buffer("aux__" + n.replace(".", "__"), t.detach().clone())
        self._base = [
            copy.deepcopy(auxiliaries[0]).to("meta")
        ]  # a list: not a submodule
        self._loop = [
            copy.deepcopy(a).eval().requires_grad_(False) for a in auxiliaries
        ]

    @property
    def weights(self) -> torch.Tensor:
        """lambda = softmax(logits), shape (K,), on the simplex."""
        return torch.softmax(self.logits, 0)

    def _stacked(self) -> dict[str, torch.Tensor]:
        return {n: getattr(self, "aux__" + n.replace(".", "__")) for n in self._names}

    def component_scores(self, x: torch.Tensor, k) -> torch.Tensor:
        """The K auxiliary scores ``s_i(x, k)``, shape (K, B, *event), without gradients."""
        with torch.no_grad():
            if self.kind == "exact":
                flat = x.reshape(x.shape[0], -1)
                if isinstance(
                    k, int
                ):  # one level for the batch: the closed-form marginal
                    ab1 = float(self.alpha_bar[k])
                    return torch.stack(
                        [
                            g.to(device=x.device)
                            .marginal(ab1)
                            .score(flat)
                            .to(x.dtype)
                            .reshape(x.shape)
                            for g in self.mixtures
                        ]
                    )
                ab = self.alpha_bar.to(x.device)[batch_levels(k, x)]
                return torch.stack(
                    [
                        mixture_score_levels(g.to(device=x.device), ab, flat)
                        .to(x.dtype)
                        .reshape(x.shape)
                        for g in self.mixtures
                    ]
                )
            if self.evaluation == "vmap":
                base = self._base[0]

                def one(p):
                    return functional_call(base, p, (x, k))

                pred = vmap(one)(self._stacked())
            else:
                for m in self._loop:
                    m.to(x.device)
                pred = torch.stack([m(x, k) for m in self._loop])
            return to_score(pred, x, k, self.sched, self.aux_parametrisation)

    def forward(self, x: torch.Tensor, k) -> torch.Tensor:
        s = self.component_scores(x, k)
        lam = self.weights.to(s.dtype)
        return torch.einsum("k,kb...->b...", lam, s)


def _logits_from(weights, K: int) -> torch.Tensor:
    w = torch.as_tensor(weights, dtype=torch.float64).reshape(-1)
    if (
        w.shape[0] != K
        or torch.any(w <= 0)
        or not math.isclose(float(w.sum()), 1.0, abs_tol=1e-6)
    ):
        raise ValueError(
            f"weights must be {K} positive numbers summing to 1, got {w.tolist()}"
        )
    return torch.log(w).float()


def fit_weights(
    fused: FusedScore,
    data: torch.Tensor | Callable,
    cutoff: int,
    steps: int,
    *,
    batch_size: int = 512,
    lr: float | Sequence[float] = (0.05, 0.005),
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> list[float]:
    """Fit ``fused.logits`` to a target sample by DSM restricted to the levels ``1..cutoff``.

    The paper's recipe (Sec. 3.2): the auxiliaries stay frozen, ``lambda = softmax(logits)``
    minimises the ``(1 - ab_k)``-weighted DSM loss over the small noise levels. ``data`` (n, *event)
    with n >= 1, or a sampler ``data(n, generator)``. ``lr`` a float or a sequence of rates run one
    after the other (``steps`` each, fresh Adam state, seed ``seed + phase``): the default anneals
    so that the constant-rate jitter of the logits averages out. Returns the per-step losses.
    """
    if not isinstance(fused, FusedScore):
        raise TypeError(f"fused must be a FusedScore, got {type(fused).__name__}")
    if isinstance(data, torch.Tensor) and (data.ndim < 2 or data.shape[0] < 1):
        raise ValueError(
            f"data (the target sample) must be (n, *event) with n >= 1, "
            f"got shape {tuple(data.shape)}"
        )
    if not isinstance(cutoff, int) or not 1 <= cutoff <= fused.N:
        raise ValueError(
            f"cutoff must be an int noise level in 1..N={fused.N}, got {cutoff!r}"
        )
    rates = [lr] if isinstance(lr, (int, float)) else list(lr)
    if not rates or any(r <= 0 for r in rates):
        raise ValueError(
            f"lr must be a positive rate or a non-empty sequence of them, got {lr!r}"
        )
    losses: list[float] = []
    for i, r in enumerate(rates):
        losses += train_dsm(
            fused,
            fused.sched,
            data,
            steps,
            batch_size=batch_size,
            lr=r,
            seed=seed + i,
            device=device,
            progress=progress,
            levels=(1, cutoff),
        )
    return losses
