"""NTK kernel regression by gradient descent / gradient flow, and early-stopping rules
(Han, Razaviyayn & Xu 2024; Raskutti, Wainwright & Yu 2014; chapter ``book/score_estimation.md``).

Kernel GD on the training inputs, started from 0, with the same loss and step as the network
(``L = (1/2n) sum ||f(z_i) - y_i||^2``), is ``F_{k+1} = F_k - (lr/n) K (F_k - Y)``. In the
eigenbasis ``K = U diag(lambda) U^T`` it is a spectral filter::

    f_k(z) = K(z, Z) U diag(g_k(lambda)) U^T Y,
    g_k(lambda) = (1 - (1 - lr lambda / n)^k) / lambda          (GD, k steps)
    g_tau(lambda) = (1 - exp(-tau lambda / n)) / lambda         (gradient flow, time tau = lr k)

so predictions after any number of steps cost one matrix product (no loop over steps). Vector
labels (n, p) are regressed coordinate-wise with the scalar kernel (the infinite-width NTK of
the network in :mod:`.network` is ``delta_ij kappa``); a matrix-valued kernel can be passed
flattened to (n p, n p) with labels (n p, 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..checks import check_data

__all__ = [
    "critical_radius",
    "fit_kernel_gd",
    "kernel_gd_predict",
    "KernelGD",
    "local_rademacher",
    "relu_ntk",
    "rwy_stopping_step",
    "rwy_stopping_time",
    "spectral_filter",
    "validation_stop",
]


def relu_ntk(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """NTK of ``m^{-1/2} sum_r a_r relu(w_r.z)`` in the first layer, ``w_r ~ N(0, I)``,
    ``a_r = ±1``, ``m -> infinity``: ``kappa(z, z') = z.z' (pi - theta) / (2 pi)`` with
    ``theta`` the angle between z and z' (Jacot et al. 2018; Cho & Saul 2009). (n1, D), (n2, D)
    -> (n1, n2), float64.
    """
    if z1.ndim != 2 or z2.ndim != 2 or z1.shape[1] != z2.shape[1]:
        raise ValueError(
            f"z1, z2 must be (n1, D), (n2, D), got {tuple(z1.shape)}, {tuple(z2.shape)}"
        )
    a, b = z1.double(), z2.double()
    dot = a @ b.T
    norms = a.norm(dim=1)[:, None] * b.norm(dim=1)[None, :]
    cos = (dot / norms.clamp_min(1e-300)).clamp(-1.0, 1.0)
    return dot * (math.pi - torch.arccos(cos)) / (2 * math.pi)


@dataclass(frozen=True)
class KernelGD:
    """Eigendecomposition of a training Gram matrix and the labels in its eigenbasis."""

    eigvals: torch.Tensor  # (n,) float64, >= 0, descending
    eigvecs: torch.Tensor  # (n, n)
    Uty: torch.Tensor  # (n, p) = U^T Y

    @property
    def n(self) -> int:
        return self.eigvals.shape[0]

    def max_stable_lr(self) -> float:
        """GD on the kernel converges for ``lr < 2 n / lambda_max``."""
        return 2 * self.n / float(self.eigvals[0])


def fit_kernel_gd(K: torch.Tensor, Y: torch.Tensor) -> KernelGD:
    """Eigendecompose the (n, n) Gram matrix ``K`` (float64) for labels ``Y`` (n, p)."""
    K, Y = check_data(K, "K", ndim=2), check_data(Y, "Y", ndim=2)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"K must be a square (n, n) Gram matrix, got {tuple(K.shape)}")
    if Y.ndim != 2 or Y.shape[0] != K.shape[0]:
        raise ValueError(f"Y must have shape ({K.shape[0]}, p), got {tuple(Y.shape)}")
    Kd = 0.5 * (K.double() + K.double().T)
    lam, U = torch.linalg.eigh(Kd)
    lam, U = lam.flip(0).clamp_min(0.0), U.flip(1)
    return KernelGD(lam, U, U.T @ Y.double())


def spectral_filter(
    eigvals: torch.Tensor, steps, lr: float, n: int, flow: bool = False
) -> torch.Tensor:
    """``g_k(lambda)`` for each step count in ``steps`` (S,) -> (S, n) (see module docstring).

    Fractional step counts interpolate GD (they are well defined while ``lr lambda_max / n <= 1``).
    """
    k = torch.as_tensor(steps, dtype=torch.float64, device=eigvals.device).reshape(
        -1, 1
    )
    if torch.any(k < 0):
        raise ValueError("steps must be >= 0")
    lam = eigvals.double()[None, :]
    h = lr * lam / n
    if flow:
        num = -torch.expm1(-k * h)
    else:
        if float(h.max()) >= 2:
            raise ValueError(
                f"lr={lr} is unstable for kernel GD (need lr < 2 n / lambda_max = "
                f"{2 * n / float(lam.max()):.4g})"
            )
        # 1 - (1 - h)^k: expm1/log1p where h is small (accurate), a plain power elsewhere
        # (h = 1 kills a mode in one step; 1 < h < 2 oscillates but still contracts)
        safe = h < 0.5
        num = torch.where(
            safe,
            -torch.expm1(k * torch.log1p(-torch.where(safe, h, 0.0))),
            1.0 - torch.pow(1.0 - h, k),
        )
    small = lam < 1e-12 * float(lam.max())
    g = torch.where(
        small, k * lr / n, num / torch.where(small, torch.ones_like(lam), lam)
    )
    return g


def kernel_gd_predict(
    kgd: KernelGD, K_eval: torch.Tensor | None, steps, lr: float, flow: bool = False
) -> torch.Tensor:
    """Kernel GD predictions after each of ``steps``: (S, n_eval, p) at the inputs whose kernel
    with the training inputs is ``K_eval`` (n_eval, n); ``None`` gives the training inputs."""
    g = spectral_filter(kgd.eigvals, steps, lr, kgd.n, flow)  # (S, n)
    coef = g[:, :, None] * kgd.Uty[None]  # (S, n, p)
    if K_eval is None:
        B = kgd.eigvecs * kgd.eigvals[None, :]  # K U = U diag(lambda)
    else:
        if K_eval.ndim != 2 or K_eval.shape[1] != kgd.n:
            raise ValueError(
                f"K_eval must have shape (n_eval, {kgd.n}), got {tuple(K_eval.shape)}"
            )
        B = K_eval.double() @ kgd.eigvecs
    return torch.einsum("en,snp->sep", B, coef)


# ----------------------------------------------------------------------------- early stopping
def validation_stop(val_losses: torch.Tensor | Sequence[float]) -> int:
    """Hold-out rule: the index of the smallest validation loss (noisy labels)."""
    v = torch.as_tensor(val_losses, dtype=torch.float64)
    if v.ndim != 1 or v.numel() == 0:
        raise ValueError("val_losses must be a non-empty 1-D sequence")
    if bool(torch.isnan(v).any()):
        raise ValueError(
            "val_losses has NaN entries (a diverged run cannot be stopped early)"
        )
    return int(torch.argmin(v))


def local_rademacher(eigvals_n: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Local empirical Rademacher complexity ``R(eps) = sqrt(mean_i min(lambda_i, eps^2))`` of
    the kernel class, with ``lambda_i`` the eigenvalues of ``K / n`` (Raskutti et al. 2014).
    ``eps`` (S,) -> (S,)."""
    lam = eigvals_n.double().clamp_min(0)[None, :]
    e2 = (
        torch.as_tensor(eps, dtype=torch.float64, device=lam.device).reshape(-1, 1) ** 2
    )
    return torch.minimum(lam, e2).mean(1).sqrt()


def _bisect_increasing(
    fn, target: float, lo: float, hi: float, iters: int = 200
) -> float:
    """Smallest x in [lo, hi] with fn(x) >= target for increasing fn (geometric bisection)."""
    if fn(hi) < target:
        return math.inf
    if fn(lo) >= target:
        return lo
    for _ in range(iters):
        mid = math.sqrt(lo * hi)
        if fn(mid) >= target:
            hi = mid
        else:
            lo = mid
        if hi / lo < 1 + 1e-12:
            break
    return hi


def rwy_stopping_time(
    eigvals: torch.Tensor, n: int, sigma: float, kernel_scale: float = 1.0
) -> float:
    """The early-stopping rule of Raskutti, Wainwright & Yu (2014), as a GD time.

    RWY run GD with unit steps on the normalised kernel ``K / c`` (``c = kernel_scale``, so that
    ``sup K / c <= 1`` on the sample), whose summed step size after ``t`` steps is ``eta_t = t``,
    and stop at ``T = min{t : R(1/sqrt(eta_t)) > 1 / (2 e sigma eta_t)} - 1`` with ``R`` the local
    empirical Rademacher complexity of ``K / (n c)`` (:func:`local_rademacher`). Their guarantee
    assumes ``||f*||_H <= 1`` and sub-Gaussian label noise with parameter ``sigma`` per
    coordinate. ``eta R(1/sqrt(eta)) = sqrt(mean min(eta^2 lambda, eta))`` increases in ``eta``,
    so the first crossing is found by bisection. Returns ``eta_T = T`` (a whole number); GD with
    step ``lr`` on the unnormalised kernel reaches it after ``T / (lr c)`` steps (see
    :func:`rwy_stopping_step`).
    """
    if not (sigma > 0 and kernel_scale > 0):
        raise ValueError(
            f"sigma and kernel_scale must be > 0, got {sigma}, {kernel_scale}"
        )
    # on the host: the bisection below reads hundreds of scalars
    lam = (eigvals.double().clamp_min(0) / (n * kernel_scale)).cpu()

    def phi(eta: float) -> float:
        return float(
            torch.minimum(eta**2 * lam, torch.full_like(lam, eta)).mean().sqrt()
        )

    target = 1.0 / (2 * math.e * sigma)
    eta_star = _bisect_increasing(phi, target, 1e-12, 1e18)
    if not math.isfinite(eta_star):
        raise ValueError(
            "the stopping condition is never met (check sigma and the eigenvalues)"
        )
    # the first integer t with phi(t) > target, minus one
    t_first = max(math.ceil(eta_star), 1)
    while (
        phi(t_first) <= target
    ):  # strict inequality in the rule; at most a step or two
        t_first += 1
    while t_first > 1 and phi(t_first - 1) > target:
        t_first -= 1
    return float(max(t_first - 1, 0))


def rwy_stopping_step(
    eigvals: torch.Tensor, n: int, lr: float, sigma: float, kernel_scale: float = 1.0
) -> float:
    """:func:`rwy_stopping_time` in (possibly fractional) steps of GD with step ``lr`` on the
    unnormalised kernel: ``T / (lr c)``."""
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    return rwy_stopping_time(eigvals, n, sigma, kernel_scale) / (lr * kernel_scale)


def critical_radius(
    eigvals: torch.Tensor, n: int, sigma: float, kernel_scale: float = 1.0
) -> float:
    """The critical empirical radius ``delta_n``: the smallest ``delta > 0`` with
    ``R(delta) <= delta^2 / (2 e sigma)`` (Raskutti et al. 2014). Their main theorem bounds
    the early-stopped error ``||f_T - f*||_n^2`` by a constant times ``delta_n^2`` (on the
    normalised kernel's scale), so ``delta_n^2`` traces the rate of the bound in ``n``."""
    # on the host: the bisection below reads hundreds of scalars
    lam = (eigvals.double().clamp_min(0) / (n * kernel_scale)).cpu()
    c = 1.0 / (2 * math.e * sigma)

    def ratio(delta: float) -> float:  # delta^2 / R(delta), increasing in delta
        return delta**2 / max(
            float(local_rademacher(lam, torch.tensor([delta]))[0]), 1e-300
        )

    return _bisect_increasing(ratio, 1.0 / c, 1e-12, 1e6)
