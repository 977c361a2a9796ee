"""A two-layer ReLU network in NTK scaling with fixed ±1 output weights, trained by full-batch GD
(Han, Razaviyayn & Xu 2024; chapter ``book/score_estimation.md``).

``f(z) = m^{-1/2} A relu(W z)``: ``W`` (m, D) is trained, ``A`` (p, m) has fixed entries ±1,
``z = (x, t, 1)`` (D = d + 2; the constant 1 is a bias). With the *antisymmetric* initialisation
(neurons in pairs with equal ``w`` and opposite ``a``) the network is exactly 0 at
initialisation, so its GD trajectory can be compared with kernel GD started from 0.

Loss ``L(W) = (1/2n) sum_i ||f(z_i) - y_i||^2``; GD ``W <- W - lr grad L``. Its empirical NTK
``Theta_ij(z, z') = m^{-1} sum_r A_ir A_jr 1[w_r.z > 0] 1[w_r.z' > 0] z.z'`` (i, j output
coordinates) tends to ``delta_ij kappa(z, z')`` (:func:`diffctrl.score_theory.kernels.relu_ntk`)
as ``m -> infinity`` (Jacot et al. 2018).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..checks import check_data

__all__ = [
    "empirical_ntk",
    "features",
    "forward",
    "init_two_layer",
    "loss_and_grad",
    "train_gd",
    "TwoLayerReLU",
]


@dataclass(frozen=True)
class TwoLayerReLU:
    """Parameters: ``W`` (m, D) trained first layer, ``A`` (p, m) fixed ±1 output weights."""

    W: torch.Tensor
    A: torch.Tensor

    def __post_init__(self):
        if self.W.ndim != 2 or self.A.ndim != 2 or self.A.shape[1] != self.W.shape[0]:
            raise ValueError(
                f"W must be (m, D) and A (p, m); got {tuple(self.W.shape)}, "
                f"{tuple(self.A.shape)}"
            )

    @property
    def width(self) -> int:
        return self.W.shape[0]

    @property
    def in_dim(self) -> int:
        return self.W.shape[1]

    @property
    def out_dim(self) -> int:
        return self.A.shape[0]


def features(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Network input ``z = (x, t, 1)``: (n, d) and (n,) -> (n, d + 2)."""
    if x.ndim != 2 or t.shape != (x.shape[0],):
        raise ValueError(
            f"x must be (n, d) and t (n,), got {tuple(x.shape)}, {tuple(t.shape)}"
        )
    return torch.cat([x, t[:, None].to(x), torch.ones_like(x[:, :1])], dim=1)


def init_two_layer(
    in_dim: int,
    out_dim: int,
    width: int,
    generator: torch.Generator,
    dtype=torch.float64,
    device="cpu",
    antisymmetric: bool = True,
) -> TwoLayerReLU:
    """``w_r ~ N(0, I_D)``, ``A_ir`` uniform on {-1, +1}; with ``antisymmetric`` the second half
    of the neurons copies the first half's ``w`` with negated ``a`` (so ``f = 0`` at init).

    ``generator`` is a CPU generator (draws on CPU, then moved to ``device``).
    """
    if not isinstance(width, int) or width < 2 or (antisymmetric and width % 2):
        raise ValueError(
            f"width must be an int >= 2 (even when antisymmetric), got {width!r}"
        )
    if in_dim < 1 or out_dim < 1:
        raise ValueError(f"in_dim and out_dim must be >= 1, got {in_dim}, {out_dim}")
    half = width // 2 if antisymmetric else width
    W = torch.randn(half, in_dim, generator=generator, dtype=torch.float64)
    A = 2.0 * torch.randint(0, 2, (out_dim, half), generator=generator).double() - 1.0
    if antisymmetric:
        W, A = torch.cat([W, W]), torch.cat([A, -A], dim=1)
    return TwoLayerReLU(
        W.to(device=device, dtype=dtype), A.to(device=device, dtype=dtype)
    )


def forward(net: TwoLayerReLU, z: torch.Tensor) -> torch.Tensor:
    """``f(z) = m^{-1/2} relu(z W^T) A^T``: (n, D) -> (n, p)."""
    if z.ndim != 2 or z.shape[1] != net.in_dim:
        raise ValueError(f"z must have shape (n, {net.in_dim}), got {tuple(z.shape)}")
    return torch.relu(z @ net.W.T) @ net.A.T / net.width**0.5


def loss_and_grad(
    net: TwoLayerReLU, z: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Loss ``(1/2n) sum ||f(z_i) - y_i||^2``, its gradient in ``W`` (m, D) and ``f(z)`` (n, p).

    ``dL/dw_r = (1/n) m^{-1/2} sum_i (A^T (f_i - y_i))_r 1[w_r.z_i > 0] z_i`` (hand-written,
    checked against autograd in the tests).
    """
    pre = z @ net.W.T  # (n, m)
    mask = pre > 0
    f = pre.clamp_(min=0) @ net.A.T / net.width**0.5
    res = f - y
    n = z.shape[0]
    back = (res @ net.A).mul_(mask)  # (n, m)
    grad = (z.T @ back).T / (n * net.width**0.5)  # (z^T back)^T: faster than back^T z
    return 0.5 * (res**2).sum() / n, grad, f


def train_gd(
    net: TwoLayerReLU,
    z: torch.Tensor,
    y: torch.Tensor,
    lr: float,
    checkpoints: Sequence[int],
    eval_z: torch.Tensor | None = None,
    progress: bool = False,
) -> tuple[TwoLayerReLU, torch.Tensor, torch.Tensor]:
    """Full-batch GD on ``W`` for ``max(checkpoints)`` steps.

    Returns the final network, the training predictions (len(checkpoints), n, p) and the
    predictions at ``eval_z`` (len(checkpoints), n_eval, p) after each checkpoint's number of
    steps (0 = initialisation).
    """
    steps = sorted({int(k) for k in checkpoints})
    if not steps or steps[0] < 0:
        raise ValueError("checkpoints must be non-empty non-negative step counts")
    if list(checkpoints) != steps:
        raise ValueError("checkpoints must be strictly increasing")
    z, y = check_data(z, "z", ndim=2), check_data(y, "y", ndim=2)
    if eval_z is not None:
        eval_z = check_data(eval_z, "eval_z", shape=(None, z.shape[1]))
    if y.shape != (z.shape[0], net.out_dim):
        raise ValueError(
            f"y must have shape ({z.shape[0]}, {net.out_dim}), got {tuple(y.shape)}"
        )
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    eval_z = z[:0] if eval_z is None else eval_z
    train_out, eval_out = [], []
    cur = net
    want = iter(steps)
    nxt = next(want)
    for k in tqdm(range(steps[-1] + 1), disable=not progress, desc="GD"):
        if k == nxt:
            train_out.append(forward(cur, z))
            eval_out.append(forward(cur, eval_z))
            nxt = next(want, None)
        if k == steps[-1]:
            break
        _, grad, _ = loss_and_grad(cur, z, y)
        cur = TwoLayerReLU(cur.W - lr * grad, cur.A)
    return cur, torch.stack(train_out), torch.stack(eval_out)


def empirical_ntk(
    net: TwoLayerReLU, z1: torch.Tensor, z2: torch.Tensor
) -> torch.Tensor:
    """The network's NTK in ``W``: (n1, p, n2, p), entry ``<df_i(z1_a)/dW, df_j(z2_b)/dW>``."""
    g1 = (z1 @ net.W.T > 0).to(z1.dtype)  # (n1, m)
    g2 = (z2 @ net.W.T > 0).to(z2.dtype)
    M1 = g1[:, None, :] * net.A[None]  # (n1, p, m)
    M2 = g2[:, None, :] * net.A[None]
    return (
        torch.einsum("aim,bjm->aibj", M1, M2)
        / net.width
        * (z1 @ z2.T)[:, None, :, None]
    )
