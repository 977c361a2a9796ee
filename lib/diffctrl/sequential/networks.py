"""Conditional score networks g(prefix, k, level) for the sequential diffusion.

Entry j of a sequence is noised alone, ``x_j^k = sqrt(ab_k) X_j + sqrt(1 - ab_k) eps``, while the
prefix X_{<j} stays clean and X_{>j} is hidden; the network predicts eps from
``(context(X_{<j}), x_j^k, k)``. A network splits into

- ``context(prefix)``: prefix (B, j) -> (B, C), the summary of the history (independent of the
  level, so a sampler computes it once per entry and reuses it at every level);
- ``head(x, k, ctx)``: x (B, 1), level k (int or (B,)), ctx (B, C) -> eps (B, 1);
- ``forward(x_k, k, cond)``: all L positions in parallel for training, x_k and k (B, L) (one
  level per entry), cond = the clean sequences (B, L); entry j reads only cond[:, :j].

Both derive from :class:`SequentialScoreNet` (the head and the parallel ``forward``). Two
conditioners: :class:`WindowScoreNet` (an MLP on the last ``d_trunc`` entries, the paper's
history truncation) and :class:`CausalTransformerScoreNet` (a causal
``torch.nn.TransformerEncoder`` over the whole prefix). Inputs are in standardised units; the
buffer ``scale`` (set by :func:`~diffctrl.sequential.sampling.train_sequential`) maps back.
"""

from __future__ import annotations

import torch
from torch import nn

from ..diffusion.models import _check_param, timestep_embedding
from .gaussian import check_d_trunc

__all__ = [
    "CausalTransformerScoreNet",
    "SequentialScoreNet",
    "WindowScoreNet",
    "param_count",
]


def _mlp(inp: int, hidden: int, depth: int, out: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(inp, hidden), nn.SiLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(hidden, hidden), nn.SiLU()]
    layers.append(nn.Linear(hidden, out))
    return nn.Sequential(*layers)


def _level_embedding(k, B: int, dim: int, N: int, like: torch.Tensor) -> torch.Tensor:
    """Sinusoidal embedding of levels k (int, or (B,) tensor) for a batch of B: (B, dim)."""
    if isinstance(k, int) or (torch.is_tensor(k) and k.ndim == 0):
        e = timestep_embedding(
            torch.as_tensor(k, device=like.device).reshape(1), dim, N
        )
        return e.to(like).expand(B, -1)
    k = torch.as_tensor(k, device=like.device).reshape(-1)
    if k.shape[0] != B:
        raise ValueError(f"k must be an int or have {B} entries, got {tuple(k.shape)}")
    return timestep_embedding(k, dim, N).to(like)


class SequentialScoreNet(nn.Module):
    """The part every sequential score network shares: the head MLP
    ``head(x, k, ctx) = MLP([ctx, x, emb(k)])`` (SiLU, ``depth`` hidden layers) predicting the
    noise of one entry, and ``forward``, which evaluates all L positions of a batch at once
    from ``contexts(cond)`` (per-entry DSM training). A subclass defines ``context(prefix)``
    (B, j) -> (B, C) and ``contexts(x)`` (B, L) -> (B, L, C) and calls ``_init`` with
    C = ``ctx_dim``. The buffer ``scale`` maps standardised units back to the data's."""

    def _init(
        self,
        L: int,
        N: int,
        ctx_dim: int,
        hidden: int,
        depth: int,
        emb_dim: int,
        parametrisation: str,
    ) -> None:
        if L < 1 or N < 1 or hidden < 1 or depth < 1:
            raise ValueError(
                f"L, N, hidden, depth must be >= 1; got {L}, {N}, {hidden}, {depth}"
            )
        self.L, self.N, self.emb_dim = L, N, emb_dim
        self.parametrisation = _check_param(parametrisation)
        self.head_net = _mlp(ctx_dim + 1 + emb_dim, hidden, depth)
        self.register_buffer("scale", torch.ones(()))

    def head(self, x: torch.Tensor, k, ctx: torch.Tensor) -> torch.Tensor:
        """eps prediction (B, 1) for the noisy entry x (B, 1) at level k given ctx (B, C)."""
        if x.ndim != 2 or x.shape[1] != 1 or ctx.shape[0] != x.shape[0]:
            raise ValueError(
                f"x must be (B, 1) and ctx (B, C); got {tuple(x.shape)}, {tuple(ctx.shape)}"
            )
        emb = _level_embedding(k, x.shape[0], self.emb_dim, self.N, x)
        return self.head_net(torch.cat([ctx, x, emb], dim=1))

    def forward(self, xk: torch.Tensor, k, cond: torch.Tensor) -> torch.Tensor:
        """All positions at once: xk, cond (B, L), k int or (B, L) -> eps (B, L)."""
        if xk.ndim != 2 or xk.shape[1] != self.L or cond.shape != xk.shape:
            raise ValueError(
                f"xk and cond must be (B, {self.L}); got {tuple(xk.shape)}, {tuple(cond.shape)}"
            )
        B, L = xk.shape
        ctx = self.contexts(cond)  # (B, L, C)
        if torch.is_tensor(k) and k.ndim > 0:
            k = k.reshape(-1)
        out = self.head(xk.reshape(B * L, 1), k, ctx.reshape(B * L, -1))
        return out.reshape(B, L)


class WindowScoreNet(SequentialScoreNet):
    """MLP conditioner on the truncated history: ctx = [X_{j-d..j-1} (zero-padded), the padding
    mask, j / L] with d = ``d_trunc``; head = MLP([ctx, x, emb(k)]) with SiLU."""

    def __init__(
        self,
        L: int,
        N: int,
        d_trunc: int,
        hidden: int = 64,
        depth: int = 3,
        emb_dim: int = 16,
        parametrisation: str = "eps",
    ):
        super().__init__()
        self.d_trunc = check_d_trunc(d_trunc, L)
        self._init(L, N, 2 * self.d_trunc + 1, hidden, depth, emb_dim, parametrisation)

    def context(self, prefix: torch.Tensor) -> torch.Tensor:
        """prefix (B, j), 0 <= j < L -> (B, 2 d_trunc + 1)."""
        B, j = prefix.shape
        d = self.d_trunc
        m = min(j, d)
        win = prefix.new_zeros(B, d)
        mask = prefix.new_zeros(B, d)
        if m:
            win[:, d - m :] = prefix[:, j - m :]
            mask[:, d - m :] = 1.0
        return torch.cat([win, mask, prefix.new_full((B, 1), j / self.L)], dim=1)

    def contexts(self, x: torch.Tensor) -> torch.Tensor:
        """Contexts of every position of x (B, L) at once: (B, L, 2 d_trunc + 1)."""
        B, L = x.shape
        d = self.d_trunc
        pad = torch.cat([x.new_zeros(B, d), x], dim=1)
        win = pad.unfold(1, d, 1)[:, :L]  # win[:, j] = x[:, j-d..j-1]
        ones = torch.cat([x.new_zeros(d), x.new_ones(L)])
        mask = ones.unfold(0, d, 1)[:L].expand(B, L, d)
        pos = (torch.arange(L, device=x.device, dtype=x.dtype) / L).expand(B, L)[
            ..., None
        ]
        return torch.cat([win, mask, pos], dim=2)


class CausalTransformerScoreNet(SequentialScoreNet):
    """Causal transformer conditioner: tokens [start, X_0, ..., X_{j-1}] (+ learned positions)
    through ``nn.TransformerEncoder`` with a causal mask; ctx_j = the output at token j, which
    sees X_{<j} only. The head is the same MLP as :class:`WindowScoreNet`'s."""

    def __init__(
        self,
        L: int,
        N: int,
        d_model: int = 32,
        nhead: int = 4,
        layers: int = 2,
        hidden: int = 64,
        depth: int = 3,
        emb_dim: int = 16,
        parametrisation: str = "eps",
    ):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"d_model={d_model} must be a multiple of nhead={nhead}")
        self._init(L, N, d_model, hidden, depth, emb_dim, parametrisation)
        self.inp = nn.Linear(1, d_model)
        self.start = nn.Parameter(torch.zeros(d_model))
        self.pos = nn.Parameter(0.02 * torch.randn(L, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=2 * d_model, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, j) -> outputs (B, j + 1, d_model) of tokens [start, x_0..x_{j-1}]."""
        B, j = x.shape
        tok = torch.cat([self.start.expand(B, 1, -1), self.inp(x[..., None])], dim=1)
        tok = tok + self.pos[: j + 1]
        mask = nn.Transformer.generate_square_subsequent_mask(
            j + 1, device=x.device, dtype=tok.dtype
        )
        return self.encoder(tok, mask=mask, is_causal=True)

    def context(self, prefix: torch.Tensor) -> torch.Tensor:
        """prefix (B, j) -> (B, d_model): the output at the last token."""
        return self._encode(prefix)[:, -1]

    def contexts(self, x: torch.Tensor) -> torch.Tensor:
        """Contexts of every position of x (B, L) in one causal pass: (B, L, d_model)."""
        return self._encode(x[:, :-1])


def param_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
