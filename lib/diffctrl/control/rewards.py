"""Rewards r(y) for KL-regularised fine-tuning: value and gradient, batched over points.

Every reward maps ``y`` of shape ``(B, d)`` to ``r(y)`` of shape ``(B,)`` and has ``grad(y)``
(``(B, d)``) and ``lip_grad`` (a bound on the Lipschitz constant of ``grad r``, i.e. on
``sup ||Hess r||``), which sets the contraction factor of the policy-improvement map at the last
step (``book/notation.md``, *The controlled chain*). Values and gradients are computed in the
reward's dtype on the device of ``y`` (the reward's own tensors follow the points), so a reward
built on the CPU serves samples on any device.

- :class:`QuadraticReward` ``r(y) = -1/2 (y - a)^T Q (y - a) + g^T y`` (Q PSD): the LQ class, in
  which every value function stays quadratic (:mod:`.lq`); a linear reward is ``Q = 0``;
- :class:`BumpReward` ``r(y) = h exp(-|y - a|^2 / (2 w^2))``: smooth, bounded, non-concave;
- :class:`LogSigmoidReward` ``r(y) = s log sigmoid(kappa (g^T y - c))``: a smooth classifier-like
  log-probability reward, concave, with bounded gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "BumpReward",
    "LogSigmoidReward",
    "QuadraticReward",
    "check_psd",
]


def _tensor(x, dtype, device, name: str) -> torch.Tensor:
    try:
        return torch.as_tensor(x, dtype=dtype, device=device)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from exc


def _check_points(y: torch.Tensor, d: int) -> None:
    if not isinstance(y, torch.Tensor):
        raise TypeError(
            f"y must be a torch.Tensor of shape (B, {d}), got {type(y).__name__}"
        )
    if y.ndim != 2 or y.shape[1] != d:
        raise ValueError(f"y must have shape (B, {d}), got {tuple(y.shape)}")


def check_psd(M: torch.Tensor, name: str, tol: float = 1e-10) -> None:
    """Raise ``ValueError`` unless ``M`` is a symmetric positive semi-definite (d, d) matrix."""
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(
            f"{name} must be a square (d, d) matrix, got shape {tuple(M.shape)}"
        )
    if not bool(torch.isfinite(M).all()):
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    scale = max(1.0, float(M.abs().max()))
    if not torch.allclose(M, M.T, atol=1e-10 * scale):
        raise ValueError(f"{name} must be symmetric")
    lam_min = float(torch.linalg.eigvalsh(M).min())
    if lam_min < -tol * scale:
        raise ValueError(
            f"{name} must be positive semi-definite; its smallest eigenvalue is "
            f"{lam_min:.3g}"
        )


@dataclass(frozen=True)
class QuadraticReward:
    """``r(y) = -1/2 (y - a)^T Q (y - a) + g^T y`` with Q (d, d) PSD, a (d,), g (d,)."""

    Q: torch.Tensor
    a: torch.Tensor
    g: torch.Tensor

    def __post_init__(self):
        d = self.Q.shape[0] if self.Q.ndim == 2 else -1
        check_psd(self.Q, "Q")
        if self.a.shape != (d,) or self.g.shape != (d,):
            raise ValueError(
                f"a and g must have shape ({d},) to match Q {tuple(self.Q.shape)}; "
                f"got a {tuple(self.a.shape)}, g {tuple(self.g.shape)}"
            )

    @classmethod
    def create(
        cls,
        Q=None,
        a=None,
        g=None,
        d: int | None = None,
        dtype=torch.float64,
        device="cpu",
    ) -> QuadraticReward:
        """Build from array-likes; Q may be a scalar (times I), a (d,) diagonal or (d, d)."""
        if d is None:
            for x in (a, g):
                if x is not None:
                    d = _tensor(x, dtype, device, "a/g").reshape(-1).shape[0]
                    break
            else:
                if Q is not None and _tensor(Q, dtype, device, "Q").ndim >= 1:
                    d = _tensor(Q, dtype, device, "Q").shape[0]
        if d is None or d < 1:
            raise ValueError("give the dimension d (or a, g, or a matrix Q)")
        eye = torch.eye(d, dtype=dtype, device=device)
        if Q is None:
            Qt = torch.zeros(d, d, dtype=dtype, device=device)
        else:
            Qt = _tensor(Q, dtype, device, "Q")
            if Qt.ndim == 0:
                Qt = Qt * eye
            elif Qt.ndim == 1:
                Qt = torch.diag(Qt)
        at = (
            torch.zeros(d, dtype=dtype, device=device)
            if a is None
            else _tensor(a, dtype, device, "a").reshape(-1)
        )
        gt = (
            torch.zeros(d, dtype=dtype, device=device)
            if g is None
            else _tensor(g, dtype, device, "g").reshape(-1)
        )
        return cls(Qt, at, gt)

    @classmethod
    def linear(cls, g, dtype=torch.float64, device="cpu") -> QuadraticReward:
        """``r(y) = g^T y``."""
        return cls.create(Q=None, g=g, dtype=dtype, device=device)

    @property
    def dim(self) -> int:
        return self.Q.shape[0]

    @property
    def lip_grad(self) -> float:
        """Lip(grad r) = lambda_max(Q)."""
        return float(torch.linalg.eigvalsh(self.Q).max())

    def quadratic_form(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(P, p, c)`` with ``r(y) = -1/2 y^T P y + p^T y + c``: P = Q, p = Q a + g, c = -a^T Q a / 2."""
        return self.Q, self.Q @ self.a + self.g, -0.5 * self.a @ self.Q @ self.a

    def _on(self, y: torch.Tensor):
        """``y`` in the reward's dtype and ``(Q, a, g)`` on ``y``'s device: the values live
        where the points do."""
        y = y.to(self.Q.dtype)
        return y, (x.to(y.device) for x in (self.Q, self.a, self.g))

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        _check_points(y, self.dim)
        y, (Q, a, g) = self._on(y)
        diff = y - a
        return -0.5 * ((diff @ Q) * diff).sum(-1) + y @ g

    def grad(self, y: torch.Tensor) -> torch.Tensor:
        _check_points(y, self.dim)
        y, (Q, a, g) = self._on(y)
        return -(y - a) @ Q + g

    def value_and_grad(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self(y), self.grad(y)

    def to(self, dtype=None, device=None) -> QuadraticReward:
        kw = {"dtype": dtype, "device": device}
        return QuadraticReward(self.Q.to(**kw), self.a.to(**kw), self.g.to(**kw))


@dataclass(frozen=True)
class BumpReward:
    """``r(y) = h exp(-|y - a|^2 / (2 w^2))``; Lip(grad r) = h / w^2 (attained at y = a)."""

    a: torch.Tensor
    height: float = 1.0
    width: float = 1.0

    def __post_init__(self):
        if self.a.ndim != 1:
            raise ValueError(
                f"a must be a (d,) centre, got shape {tuple(self.a.shape)}"
            )
        if not self.width > 0:
            raise ValueError(f"width must be > 0, got {self.width}")

    @classmethod
    def create(
        cls,
        a,
        height: float = 1.0,
        width: float = 1.0,
        dtype=torch.float64,
        device="cpu",
    ) -> BumpReward:
        return cls(
            _tensor(a, dtype, device, "a").reshape(-1), float(height), float(width)
        )

    @property
    def dim(self) -> int:
        return self.a.shape[0]

    @property
    def lip_grad(self) -> float:
        return abs(self.height) / self.width**2

    def _diff(self, y: torch.Tensor) -> torch.Tensor:
        """``y - a`` in the reward's dtype, on ``y``'s device."""
        y = y.to(self.a.dtype)
        return y - self.a.to(y.device)

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        _check_points(y, self.dim)
        diff = self._diff(y)
        return self.height * torch.exp(-(diff**2).sum(-1) / (2 * self.width**2))

    def grad(self, y: torch.Tensor) -> torch.Tensor:
        diff = self._diff(y)
        return -(self(y) / self.width**2)[:, None] * diff

    def value_and_grad(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self(y)
        return v, -(v / self.width**2)[:, None] * self._diff(y)


@dataclass(frozen=True)
class LogSigmoidReward:
    """``r(y) = s log sigmoid(kappa (g^T y - c))``; grad = s kappa g (1 - sigmoid);
    Hess = -s kappa^2 sigmoid (1 - sigmoid) g g^T, so Lip(grad r) = s kappa^2 |g|^2 / 4."""

    g: torch.Tensor
    c: float = 0.0
    kappa: float = 1.0
    scale: float = 1.0

    def __post_init__(self):
        if self.g.ndim != 1:
            raise ValueError(
                f"g must be a (d,) direction, got shape {tuple(self.g.shape)}"
            )
        if not self.kappa > 0 or not self.scale > 0:
            raise ValueError(
                f"kappa and scale must be > 0, got {self.kappa}, {self.scale}"
            )

    @classmethod
    def create(
        cls,
        g,
        c: float = 0.0,
        kappa: float = 1.0,
        scale: float = 1.0,
        dtype=torch.float64,
        device="cpu",
    ) -> LogSigmoidReward:
        return cls(
            _tensor(g, dtype, device, "g").reshape(-1),
            float(c),
            float(kappa),
            float(scale),
        )

    @property
    def dim(self) -> int:
        return self.g.shape[0]

    @property
    def lip_grad(self) -> float:
        return self.scale * self.kappa**2 * float(self.g @ self.g) / 4

    def _z(self, y):
        _check_points(y, self.dim)
        y = y.to(self.g.dtype)
        return self.kappa * (y @ self.g.to(y.device) - self.c)

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.nn.functional.logsigmoid(self._z(y))

    def grad(self, y: torch.Tensor) -> torch.Tensor:
        z = self._z(y)
        return (self.scale * self.kappa * torch.sigmoid(-z))[:, None] * self.g.to(
            z.device
        )

    def value_and_grad(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self._z(y)
        return (
            self.scale * torch.nn.functional.logsigmoid(z),
            (self.scale * self.kappa * torch.sigmoid(-z))[:, None]
            * self.g.to(z.device),
        )
