"""Control networks ``u_theta(t, y)`` and value critics ``V_phi(t, y)`` of parametric PI-FT.

The control is parametrised through the first-order condition of the per-step Bellman problem
(``book/notation.md``, *The tilted target and the Bellman recursion*), ``u_t(y) = (sigma_t^2 / beta_t) g_theta(t, y)``: the network ``g_theta``
approximates ``E_W grad V_{t+1}``, a quantity of order one for every beta, and its last layer
starts at zero, so training starts from the pre-trained model (u = 0). ``t`` is the reverse step
0..T-1 (an int or a (B,) long tensor), embedded sinusoidally.
"""

from __future__ import annotations

import torch
from torch import nn

from ..diffusion.models import batch_levels as _steps
from ..diffusion.models import timestep_embedding

__all__ = ["ControlMLP", "ValueCNN", "ValueMLP"]


def _mlp(inp: int, hidden: int, depth: int, out: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(inp, hidden), nn.SiLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(hidden, hidden), nn.SiLU()]
    layers.append(nn.Linear(hidden, out))
    return nn.Sequential(*layers)


class ControlMLP(nn.Module):
    """``u_theta(t, y) = (sigma_t^2 / beta_t) g_theta([y, emb(t)])`` for y in R^d, shape (B, d).

    ``sigma`` and ``beta`` are the chain's (T,) tensors (stored as buffers)."""

    def __init__(
        self,
        dim: int,
        sigma: torch.Tensor,
        beta: torch.Tensor,
        hidden: int = 64,
        depth: int = 2,
        emb_dim: int = 16,
    ):
        super().__init__()
        if dim < 1 or hidden < 1 or depth < 1:
            raise ValueError(
                f"dim, hidden, depth must be >= 1; got {dim}, {hidden}, {depth}"
            )
        sigma, beta = torch.as_tensor(sigma).float(), torch.as_tensor(beta).float()
        if sigma.ndim != 1 or sigma.shape != beta.shape:
            raise ValueError("sigma and beta must be (T,) tensors of the same length")
        if torch.any(beta <= 0):
            raise ValueError("beta must be > 0 at every step")
        self.dim, self.T, self.emb_dim = dim, sigma.shape[0], emb_dim
        self.register_buffer("scale", sigma**2 / beta)
        self.net = _mlp(dim + emb_dim, hidden, depth, dim)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        if y.ndim != 2 or y.shape[1] != self.dim:
            raise ValueError(f"y must have shape (B, {self.dim}), got {tuple(y.shape)}")
        t = _steps(t, y)
        e = timestep_embedding(t, self.emb_dim, self.T).to(y)
        return self.scale.to(y)[t][:, None] * self.net(torch.cat([y, e], 1))


class ValueMLP(nn.Module):
    """Critic ``V_phi(t, y)`` for y in R^d (t = 0..T), shape (B,)."""

    def __init__(
        self, dim: int, T: int, hidden: int = 64, depth: int = 2, emb_dim: int = 16
    ):
        super().__init__()
        self.dim, self.T, self.emb_dim = dim, T, emb_dim
        self.net = _mlp(dim + emb_dim, hidden, depth, 1)

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        y = y.reshape(y.shape[0], -1)
        t = _steps(t, y)
        e = timestep_embedding(t, self.emb_dim, self.T).to(y)
        return self.net(torch.cat([y, e], 1))[:, 0]


class ValueCNN(nn.Module):
    """Critic ``V_phi(t, y)`` for images (B, C, H, W) of any size: two strided convolutions,
    global average pooling, then an MLP with the step embedding; shape (B,)."""

    def __init__(self, channels: int, T: int, width: int = 32, emb_dim: int = 32):
        super().__init__()
        self.T, self.emb_dim = T, emb_dim
        self.conv = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = _mlp(width + emb_dim, width, 2, 1)

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        t = _steps(t, y)
        h = self.conv(y).flatten(1)
        e = timestep_embedding(t, self.emb_dim, self.T).to(h)
        return self.head(torch.cat([h, e], 1))[:, 0]
