"""Reverse-time samplers; each takes any score function ``score(x, k)``.

Every sampler is a loop of steps ``x_{k-1} = step(x_k, k, z)`` from level N to 0, where the step
is affine in the noise ``z ~ N(0, I)`` (and affine in ``x`` when the score is). With the exact
Gaussian score the steps are affine in ``x`` too, so :func:`propagate_gaussian` pushes a mean and
covariance through the chain exactly.

- ``"ddpm"``  ancestral step (Ho et al. 2020), written ``Y_{t+1} = m_t(Y_t) + sigma_t W`` with
  ``m_t(y) = (y + beta_k s_k(y)) / sqrt(alpha_k)``, ``k = N - t`` (``book/notation.md``, *The controlled chain*): the control
  chapters add a control to exactly this step (:func:`ancestral_mean`, :func:`ancestral_sigma`);
- ``"ddim"``  DDIM with parameter ``eta`` (Song, Meng, Ermon 2021);
- ``"em"``    Euler-Maruyama for the reverse VP-SDE in the integrated time b_k = -log alpha_k:
  ``x_{k-1} = x_k + b_k (x_k / 2 + s_k(x_k)) + sqrt(b_k) z``;
- ``"ode"``   probability-flow ODE ``dx/db = -(x + s)/2`` backwards, Heun's method (Euler on the
  last step, where no score at level 0 is needed).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from .exact import ScoreFn
from .schedules import Schedule

__all__ = [
    "METHODS",
    "VARIANCES",
    "ancestral_mean",
    "ancestral_sigma",
    "ancestral_step",
    "make_step",
    "propagate_gaussian",
    "sample",
]

#: the samplers: DDPM ancestral, DDIM, Euler-Maruyama (reverse SDE), Heun (probability-flow ODE)
METHODS = ("ddpm", "ddim", "em", "ode")
#: the ancestral step's variance: tilde beta_k ("small") or beta_k ("large")
VARIANCES = ("small", "large")


def _check_t(sched: Schedule, t: int) -> int:
    if not 0 <= int(t) < sched.N:
        raise ValueError(f"reverse step t must lie in 0..{sched.N - 1}, got {t}")
    return sched.N - int(t)


def ancestral_sigma(sched: Schedule, t: int, variance: str = "small") -> float:
    """sigma_t of the DDPM step t (level k = N - t): sqrt(tilde beta_k) ("small", diffusers'
    fixed_small) or sqrt(beta_k) ("large")."""
    k = _check_t(sched, t)
    if variance not in VARIANCES:
        raise ValueError(f"unknown variance {variance!r}; choose one of {VARIANCES}")
    v = sched.posterior_variance[k] if variance == "small" else sched.betas[k]
    return float(v) ** 0.5


def ancestral_mean(
    score: ScoreFn, sched: Schedule, t: int, y: torch.Tensor
) -> torch.Tensor:
    """m_t(y) = (y + beta_k s_k(y)) / sqrt(alpha_k), k = N - t: the pre-trained kernel's mean."""
    k = _check_t(sched, t)
    beta = float(sched.betas[k])
    return (y + beta * score(y, k)) / (1 - beta) ** 0.5


def ancestral_step(
    score: ScoreFn,
    sched: Schedule,
    t: int,
    y: torch.Tensor,
    noise: torch.Tensor,
    variance: str = "small",
) -> torch.Tensor:
    """Y_{t+1} = m_t(Y_t) + sigma_t W."""
    return (
        ancestral_mean(score, sched, t, y) + ancestral_sigma(sched, t, variance) * noise
    )


def _ddim_step(score, sched, k, x, z, eta):
    ab, ab_prev = float(sched.alpha_bar[k]), float(sched.alpha_bar[k - 1])
    eps = -((1 - ab) ** 0.5) * score(x, k)
    x0 = (x - (1 - ab) ** 0.5 * eps) / ab**0.5
    sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)) ** 0.5
    return ab_prev**0.5 * x0 + max(1 - ab_prev - sigma**2, 0.0) ** 0.5 * eps + sigma * z


def _em_step(score, sched, k, x, z):
    b = float(sched.b[k])
    return x + b * (0.5 * x + score(x, k)) + b**0.5 * z


def _ode_step(score, sched, k, x):
    b = float(sched.b[k])
    d1 = 0.5 * (x + score(x, k))
    x_euler = x + b * d1
    if k == 1:
        return x_euler
    d2 = 0.5 * (x_euler + score(x_euler, k - 1))
    return x + 0.5 * b * (d1 + d2)


def make_step(
    method: str,
    score: ScoreFn,
    sched: Schedule,
    eta: float = 0.0,
    variance: str = "small",
) -> tuple[Callable, Callable[[int], float]]:
    """``(step(x, k, z), noise_scale(k))`` of a sampler; the step maps level k to k - 1."""
    if method not in METHODS:
        raise ValueError(f"unknown sampler method {method!r}; choose one of {METHODS}")
    if variance not in VARIANCES:
        raise ValueError(f"unknown variance {variance!r}; choose one of {VARIANCES}")
    if not 0 <= eta <= 1:
        raise ValueError(f"eta must lie in [0, 1], got {eta}")
    N = sched.N
    if method == "ddpm":
        # ancestral_step with its per-level scalars read once, so that the loop costs little
        # more than its network evaluations (benchmarks/bench_samplers.py)
        betas = sched.betas.tolist()
        root_alpha = [(1 - b) ** 0.5 for b in betas]
        sigmas = [0.0] + [
            ancestral_sigma(sched, N - k, variance) for k in range(1, N + 1)
        ]
        net, divisor = (getattr(score, a, None) for a in ("eps_net", "eps_divisor"))
        if net is not None and divisor is not None:
            # an eps-network's score s = eps / divisor_k (model_score): one fused update,
            # x_{k-1} = (x + (beta_k / divisor_k) eps) / sqrt(alpha_k) + sigma_k z
            coef = [0.0] + [betas[k] / divisor[k] for k in range(1, N + 1)]

            def ddpm_step(x, k, z):
                with torch.no_grad():
                    m = torch.add(x, net(x, k), alpha=coef[k]).div_(root_alpha[k])
                    return m.add_(z, alpha=sigmas[k])

        else:

            def ddpm_step(x, k, z):
                m = score(x, k) * betas[k]
                m += x
                m /= root_alpha[k]
                return m.add_(z * sigmas[k])

        return ddpm_step, sigmas.__getitem__
    if method == "ddim":

        def ddim_scale(k):
            ab, ab_prev = float(sched.alpha_bar[k]), float(sched.alpha_bar[k - 1])
            return eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)) ** 0.5

        return (lambda x, k, z: _ddim_step(score, sched, k, x, z, eta)), ddim_scale
    if method == "em":
        return (lambda x, k, z: _em_step(score, sched, k, x, z)), (
            lambda k: float(sched.b[k]) ** 0.5
        )
    return (lambda x, k, z: _ode_step(score, sched, k, x)), (lambda k: 0.0)


def sample(
    score: ScoreFn,
    sched: Schedule,
    n: int,
    shape: tuple[int, ...] | int,
    method: str = "ddpm",
    *,
    eta: float = 0.0,
    variance: str = "small",
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    x_N: torch.Tensor | None = None,
    return_path: bool = False,
    progress: bool = False,
) -> torch.Tensor:
    """Draw ``n`` samples of event shape ``shape`` by running the reverse chain from N(0, I).

    Batched over samples; noise drawn from ``generator`` (on its own device, then moved), so the
    same seed gives the same samples on every device. Returns (n, *shape), or the whole path
    (N + 1, n, *shape) from level N down to 0 when ``return_path``.
    """
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    step, scale = make_step(method, score, sched, eta, variance)
    gen_dev = generator.device if generator is not None else torch.device("cpu")
    if x_N is None:
        x = torch.randn(
            (n, *shape), generator=generator, dtype=dtype, device=gen_dev
        ).to(device)
    else:
        if tuple(x_N.shape) != (n, *shape):
            raise ValueError(
                f"x_N must have shape {(n, *shape)}, got {tuple(x_N.shape)}"
            )
        x = x_N.to(device=device, dtype=dtype)
    path = [x] if return_path else None
    with torch.no_grad():
        for k in tqdm(
            range(sched.N, 0, -1), desc=f"{method} sampling", disable=not progress
        ):
            s = scale(k)
            z = (
                torch.randn(
                    x.shape, generator=generator, dtype=dtype, device=gen_dev
                ).to(device)
                if s > 0
                else torch.zeros_like(x)
            )
            x = step(x, k, z)
            if return_path:
                path.append(x)
    return torch.stack(path) if return_path else x


def propagate_gaussian(
    score: ScoreFn,
    sched: Schedule,
    method: str = "ddpm",
    mean: torch.Tensor | None = None,
    cov: torch.Tensor | None = None,
    d: int | None = None,
    *,
    eta: float = 0.0,
    variance: str = "small",
    return_path: bool = False,
):
    """Exact law of the sampler's output when every step is affine (exact Gaussian score).

    Starts from N(mean, cov) at level N (default N(0, I) in dimension ``d``) and applies
    ``x -> A_k x + c_k + s_k z``: mean <- A mean + c, cov <- A cov A^T + s_k^2 I, with
    ``c_k = step(0)`` and ``A_k = step(e_i) - c_k`` read off the step itself. float64.
    Returns (mean, cov), or lists of them per level when ``return_path``.
    """
    if mean is None:
        if d is None:
            raise ValueError("give mean/cov or the dimension d")
        mean = torch.zeros(d, dtype=torch.float64)
    mean = mean.double()
    d = mean.shape[0]
    cov = torch.eye(d, dtype=torch.float64) if cov is None else cov.double()
    if cov.shape != (d, d):
        raise ValueError(f"cov must be ({d}, {d}), got {tuple(cov.shape)}")
    step, scale = make_step(method, score, sched, eta, variance)
    eye = torch.eye(d, dtype=torch.float64)
    means, covs = [mean], [cov]
    with torch.no_grad():
        for k in range(sched.N, 0, -1):
            pts = torch.cat([torch.zeros(1, d, dtype=torch.float64), eye])
            out = step(pts, k, torch.zeros_like(pts))
            c, A = out[0], (out[1:] - out[0]).T  # column i = image of e_i
            mean = A @ mean + c
            cov = A @ cov @ A.T + scale(k) ** 2 * eye
            cov = 0.5 * (cov + cov.T)
            means.append(mean)
            covs.append(cov)
    return (means, covs) if return_path else (mean, cov)
