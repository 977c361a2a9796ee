"""Score models: a small MLP for vectors and a small U-Net for 8x8 images.

Both take ``(x, k)`` with ``k`` the noise level (int or (B,) long tensor in 0..N) and predict, by
their ``parametrisation``, the noise eps (``"eps"``), the clean sample x_0 (``"x0"``) or the score
(``"score"``). :func:`to_score` converts any of them to grad log p_k:

    score = -eps / sqrt(1 - ab_k) = (sqrt(ab_k) x0 - x) / (1 - ab_k).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .exact import ScoreFn
from .schedules import Schedule

__all__ = [
    "PARAMETRISATIONS",
    "ScoreMLP",
    "SmallUNet",
    "batch_levels",
    "check_levels",
    "dsm_loss",
    "model_score",
    "timestep_embedding",
    "to_score",
]

#: what a network predicts: the noise, the clean data or the score
PARAMETRISATIONS = ("eps", "x0", "score")


def _check_param(p: str) -> str:
    if p not in PARAMETRISATIONS:
        raise ValueError(
            f"unknown parametrisation {p!r}; choose one of {PARAMETRISATIONS}"
        )
    return p


def timestep_embedding(k: torch.Tensor, dim: int, N: int) -> torch.Tensor:
    """Sinusoidal embedding of the level ``k`` (B,) scaled to [0, 1000]: (B, dim)."""
    if dim % 2:
        raise ValueError(f"embedding dim must be even, got {dim}")
    t = k.float() * (1000.0 / N)
    freqs = torch.exp(
        -math.log(10_000.0) * torch.arange(dim // 2, device=k.device) / (dim // 2)
    )
    ang = t[:, None] * freqs[None]
    return torch.cat([ang.sin(), ang.cos()], dim=1)


def _embed(k, x: torch.Tensor, dim: int, N: int) -> torch.Tensor:
    """Embedding of the levels for a batch x: computed once and broadcast when k is one int."""
    if isinstance(k, int) or (torch.is_tensor(k) and k.ndim == 0):
        e = timestep_embedding(torch.as_tensor(k, device=x.device).reshape(1), dim, N)
        return e.to(x).expand(x.shape[0], -1)
    return timestep_embedding(batch_levels(k, x), dim, N).to(x)


def batch_levels(k, x: torch.Tensor) -> torch.Tensor:
    """``k`` (int, 0-d or (B,) tensor) as a (B,) tensor for the batch ``x``; wrong shapes raise."""
    k = torch.as_tensor(k, device=x.device)
    if k.ndim == 0:
        k = k.expand(x.shape[0])
    if k.shape != (x.shape[0],):
        raise ValueError(
            f"k must be an int or shape ({x.shape[0]},), got {tuple(k.shape)}"
        )
    return k


class ScoreMLP(nn.Module):
    """MLP ``f(x, k)`` for x in R^d: [x, emb(k)] -> hidden (SiLU) x depth -> R^d."""

    def __init__(
        self,
        dim: int,
        N: int,
        hidden: int = 128,
        depth: int = 3,
        emb_dim: int = 32,
        parametrisation: str = "eps",
    ):
        super().__init__()
        if dim < 1 or N < 1 or hidden < 1 or depth < 1:
            raise ValueError(
                f"dim, N, hidden, depth must be >= 1; got {dim}, {N}, {hidden}, {depth}"
            )
        self.dim, self.N, self.emb_dim = dim, N, emb_dim
        self.parametrisation = _check_param(parametrisation)
        layers: list[nn.Module] = [nn.Linear(dim + emb_dim, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, k) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(x.shape)}")
        return self.net(torch.cat([x, _embed(k, x, self.emb_dim, self.N)], dim=1))


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(8, cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(min(8, cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, e):
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = h + self.emb(e)[:, :, None, None]
        h = self.conv2(nn.functional.silu(self.norm2(h)))
        return h + self.skip(x)


class SmallUNet(nn.Module):
    """A two-scale U-Net for (B, C, 8, 8) images: 8x8 -> 4x4 -> 8x8 with a skip connection."""

    def __init__(
        self,
        N: int,
        channels: int = 1,
        base: int = 32,
        emb_dim: int = 64,
        parametrisation: str = "eps",
    ):
        super().__init__()
        if N < 1 or channels < 1 or base < 1:
            raise ValueError(
                f"N, channels, base must be >= 1; got {N}, {channels}, {base}"
            )
        self.N, self.channels, self.emb_dim = N, channels, emb_dim
        self.parametrisation = _check_param(parametrisation)
        self.emb = nn.Sequential(
            nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.inp = nn.Conv2d(channels, base, 3, padding=1)
        self.down = _ResBlock(base, base, emb_dim)
        self.pool = nn.Conv2d(base, 2 * base, 3, stride=2, padding=1)
        self.mid = _ResBlock(2 * base, 2 * base, emb_dim)
        self.upsample = nn.ConvTranspose2d(2 * base, base, 2, stride=2)
        self.up = _ResBlock(2 * base, base, emb_dim)
        self.out = nn.Sequential(
            nn.GroupNorm(8, base), nn.SiLU(), nn.Conv2d(base, channels, 3, padding=1)
        )

    def forward(self, x: torch.Tensor, k) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels or x.shape[-2:] != (8, 8):
            raise ValueError(
                f"x must have shape (B, {self.channels}, 8, 8), got {tuple(x.shape)}"
            )
        e = self.emb(_embed(k, x, self.emb_dim, self.N))
        h0 = self.down(self.inp(x), e)
        h = self.mid(self.pool(h0), e)
        h = self.up(torch.cat([self.upsample(h), h0], dim=1), e)
        return self.out(h)


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (x.ndim - 1))).to(x)


def to_score(
    pred: torch.Tensor, x: torch.Tensor, k, sched: Schedule, parametrisation: str
) -> torch.Tensor:
    """Convert a model's prediction at level k to the score grad log p_k(x)."""
    _check_param(parametrisation)
    if parametrisation == "score":
        return pred
    if isinstance(k, int):  # one level for the whole batch: scalar arithmetic
        ab = float(sched.alpha_bar[k])
        return (
            -pred / (1 - ab) ** 0.5
            if parametrisation == "eps"
            else (ab**0.5 * pred - x) / (1 - ab)
        )
    k = batch_levels(k, x)
    ab = _bcast(sched.alpha_bar.to(x.device)[k], x)
    if parametrisation == "eps":
        return -pred / (1 - ab).sqrt()
    return (ab.sqrt() * pred - x) / (1 - ab)


def model_score(model: nn.Module, sched: Schedule) -> ScoreFn:
    """A trained model as a score function ``s(x, k)`` (no gradients tracked)."""
    if model.N != sched.N:
        raise ValueError(
            f"model was built for N={model.N} levels, schedule has N={sched.N}"
        )

    param = model.parametrisation
    _check_param(param)
    # eps -> score at one level: -eps / sqrt(1 - abar_k), the divisor read once per level
    # (p / -c equals -p / c bitwise)
    neg_root = [-((1 - ab) ** 0.5) for ab in sched.alpha_bar.tolist()]

    def score(x: torch.Tensor, k: int) -> torch.Tensor:
        with torch.no_grad():
            if param == "eps" and isinstance(k, int):
                return model(x, k) / neg_root[k]
            return to_score(model(x, k), x, k, sched, param)

    if param == "eps":  # lets the DDPM sampler fuse the conversion into its step
        score.eps_net, score.eps_divisor = model, neg_root

    return score


def check_levels(levels: tuple[int, int] | None, N: int) -> tuple[int, int]:
    """The level range ``(lo, hi)`` with ``1 <= lo <= hi <= N`` (``None``: all levels 1..N)."""
    if levels is None:
        return 1, N
    try:
        lo, hi = (int(v) for v in levels)
    except (TypeError, ValueError):
        raise ValueError(
            f"levels must be a pair (lo, hi) of ints, got {levels!r}"
        ) from None
    if not 1 <= lo <= hi <= N:
        raise ValueError(f"levels must satisfy 1 <= lo <= hi <= N={N}, got {levels!r}")
    return lo, hi


def dsm_loss(
    model: nn.Module,
    sched: Schedule,
    x0: torch.Tensor,
    generator: torch.Generator | None = None,
    levels: tuple[int, int] | None = None,
    *,
    cond: torch.Tensor | None = None,
    per_entry: bool = False,
) -> torch.Tensor:
    """Denoising score matching (Vincent 2011; Ho et al. 2020), k ~ U{lo..hi}, eps ~ N(0, I).

    eps: |eps_hat - eps|^2; x0: |x0_hat - x0|^2 ab/(1-ab); score: |s_hat + eps/sqrt(1-ab)|^2 (1-ab).
    All three equal (1 - ab_k) |s_hat - s_target|^2, the lambda(k) = 1 - ab_k weighted DSM loss.
    ``levels=(lo, hi)`` restricts the noise levels drawn (default: all, 1..N), e.g. to the small
    levels only.

    Two extensions (the sequential chapter): ``per_entry=True`` draws one level per *entry* of
    ``x0`` (``k`` has the shape of ``x0``, each entry noised at its own level) instead of one per
    sample; ``cond`` (rows aligned with ``x0``) is a conditioning input handed to the model as
    ``model(x_k, k, cond)``. The sequential score network takes ``cond = x0`` and reads only
    the clean prefix X_{<j} for entry j. Defaults reproduce the plain loss draw for draw.
    """
    lo, hi = check_levels(levels, sched.N)
    if cond is not None and (not torch.is_tensor(cond) or cond.shape[0] != x0.shape[0]):
        raise ValueError(
            f"cond must be a tensor with {x0.shape[0]} rows (one per sample of x0)"
        )
    n = x0.shape[0]
    gdev = generator.device if generator is not None else torch.device("cpu")
    kshape = tuple(x0.shape) if per_entry else (n,)
    k = torch.randint(lo, hi + 1, kshape, generator=generator, device=gdev).to(
        x0.device
    )
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=gdev).to(
        x0.device
    )
    ab = (
        sched.alpha_bar.to(x0.device)[k].to(x0)
        if per_entry
        else _bcast(sched.alpha_bar.to(x0.device)[k], x0)
    )
    xk = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    pred = model(xk, k) if cond is None else model(xk, k, cond)
    p = model.parametrisation
    if p == "eps":
        err = (pred - eps) ** 2
    elif p == "x0":
        err = (pred - x0) ** 2 * ab / (1 - ab)
    else:
        err = (pred + eps / (1 - ab).sqrt()) ** 2 * (1 - ab)
    return err.reshape(n, -1).sum(1).mean()
