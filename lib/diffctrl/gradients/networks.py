"""Multilayer perceptrons on a flat parameter vector, with a call counter.

The gradient estimators of Wang, Blanchet & Glynn (NeurIPS 2024) need the control's parameters
as one vector ``theta`` of length ``n`` (the quantity whose dimension the paper lets grow to
~1e8), so an MLP here is a *description* (layer sizes, activation) plus a pure function
``mlp(theta, inputs)`` that slices ``theta`` into weights. That keeps every estimator a plain
function of ``theta`` that ``torch.func`` can differentiate, vmap over paths, or
forward-differentiate.

Shapes: ``theta`` is ``(n,)``; ``inputs`` is ``(..., sizes[0])``; the output is
``(..., sizes[-1])``. Layout of ``theta``: for each layer, the weight ``(out, in)`` row-major,
then the bias ``(out,)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

__all__ = [
    "ACTIVATIONS",
    "CallCounter",
    "MLP",
    "mlp_width_for",
]

ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "softplus": torch.nn.functional.softplus,
}


def _activation_derivative(name: str, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``act'(z)`` given ``z`` and ``a = act(z)``."""
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return (z > 0).to(z.dtype)
    return torch.sigmoid(z)


@dataclass
class CallCounter:
    """Counts Python-level network passes (a vmapped / tangent-batched pass counts once)."""

    calls: int = 0

    def reset(self) -> None:
        self.calls = 0


@dataclass(frozen=True)
class MLP:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]`` on a flat parameter vector.

    ``len(sizes) - 1`` linear layers; the activation acts between layers, not after the last.
    ``sizes=(5, 2)`` is an affine map (no hidden layer).
    """

    sizes: tuple[int, ...]
    activation: str = "tanh"
    counter: CallCounter = field(default_factory=CallCounter, compare=False, repr=False)

    def __post_init__(self):
        sizes = tuple(self.sizes)
        if len(sizes) < 2 or any((not isinstance(s, int)) or s < 1 for s in sizes):
            raise ValueError(
                f"sizes must be >= 2 positive ints (in, ..., out), got {self.sizes!r}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, "
                f"got {self.activation!r}"
            )
        object.__setattr__(self, "sizes", sizes)

    @property
    def n_params(self) -> int:
        return sum(o * i + o for i, o in zip(self.sizes[:-1], self.sizes[1:]))

    def layers(self, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Views ``[(W (out, in), b (out,)), ...]`` into ``theta``."""
        if theta.ndim != 1 or theta.shape[0] != self.n_params:
            raise ValueError(
                f"theta must have shape ({self.n_params},) for sizes {self.sizes}, "
                f"got {tuple(theta.shape)}"
            )
        out, pos = [], 0
        for i, o in zip(self.sizes[:-1], self.sizes[1:]):
            w = theta[pos : pos + o * i].view(o, i)
            pos += o * i
            b = theta[pos : pos + o]
            pos += o
            out.append((w, b))
        return out

    def params(self, theta):
        """``theta`` split once into layer views (pass the result instead of ``theta``)."""
        return theta if isinstance(theta, (list, tuple)) else self.layers(theta)

    def __call__(self, theta, inputs: torch.Tensor) -> torch.Tensor:
        """``theta``: the flat ``(n,)`` vector or its split :meth:`params`."""
        if inputs.shape[-1] != self.sizes[0]:
            raise ValueError(
                f"inputs must end in dimension {self.sizes[0]}, "
                f"got shape {tuple(inputs.shape)}"
            )
        self.counter.calls += 1
        act = ACTIVATIONS[self.activation]
        layers = self.params(theta)
        h = inputs
        for k, (w, b) in enumerate(layers):
            h = h @ w.T + b
            if k < len(layers) - 1:
                h = act(h)
        return h

    def with_tangents(
        self, theta, inputs: torch.Tensor, tangents: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Output and its directional derivatives in ``inputs``: forward-mode by hand.

        ``inputs (B, in)``, ``tangents (K, B, in)`` -> ``(out (B, out), d_out (K, B, out))``.
        The primal and the ``K`` tangents share one matmul per layer (stacked rows), without
        the per-call overhead of ``torch.func`` transforms; one counted network pass.
        """
        if inputs.shape[-1] != self.sizes[0] or tangents.shape[1:] != inputs.shape:
            raise ValueError(
                f"inputs must be (B, {self.sizes[0]}) and tangents (K, B, "
                f"{self.sizes[0]}), got {tuple(inputs.shape)}, "
                f"{tuple(tangents.shape)}"
            )
        self.counter.calls += 1
        act = ACTIVATIONS[self.activation]
        layers = self.params(theta)
        k = tangents.shape[0]
        h = torch.cat([inputs[None], tangents], 0)  # (1 + K, B, in)
        for i, (w, b) in enumerate(layers):
            h = h @ w.T
            z = h[0] + b
            if i < len(layers) - 1:
                a = act(z)
                h = torch.cat(
                    [a[None], h[1:] * _activation_derivative(self.activation, z, a)], 0
                )
            else:
                h = torch.cat([z[None], h[1:]], 0)
        return h[0], h[1 : 1 + k]

    def init(
        self,
        generator: torch.Generator | None = None,
        *,
        dtype=torch.float32,
        device: str | torch.device = "cpu",
        last_layer_scale: float = 1.0,
    ) -> torch.Tensor:
        """PyTorch's default ``nn.Linear`` init, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, flat.

        ``last_layer_scale`` multiplies the last layer (a small value starts near the zero control).
        """
        theta = torch.empty(self.n_params, dtype=dtype, device=device)
        pos = 0
        n_layers = len(self.sizes) - 1
        for k, (i, o) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            bound = 1.0 / math.sqrt(i)
            scale = last_layer_scale if k == n_layers - 1 else 1.0
            size = o * i + o
            chunk = torch.rand(size, generator=generator, dtype=dtype, device=device)
            theta[pos : pos + size] = (2 * chunk - 1) * bound * scale
            pos += size
        return theta


def mlp_width_for(
    n_params: float, n_in: int = 5, n_out: int = 2, n_hidden: int = 3
) -> int:
    """Smallest width ``W`` with ``MLP((n_in, W, ..., W, n_out)).n_params >= n_params``.

    ``n_hidden`` hidden layers of width ``W`` (the paper's "4-layer" network has 3 hidden layers
    and 4 linear maps): ``n = (n_in + 1) W + (n_hidden - 1)(W^2 + W) + (W + 1) n_out``.
    """
    if n_params < 1:
        raise ValueError(f"n_params must be >= 1, got {n_params!r}")
    a = n_hidden - 1
    b = (n_in + 1) + (n_hidden - 1) + n_out
    c = n_out - n_params
    if a == 0:
        return max(1, math.ceil(-c / b))
    w = max(1, math.ceil((-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)))
    while MLP((n_in, *([w] * n_hidden), n_out)).n_params < n_params:
        w += 1
    return w
