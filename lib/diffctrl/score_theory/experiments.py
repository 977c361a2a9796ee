"""The chapter's experiments on score estimation as regression (chapter ``book/score_estimation.md``, [ours]).

One *problem* is a training set of ``n`` denoising pairs ``((X_t, t), X_0)`` on a Gaussian
mixture, a hold-out set of ``n_val`` pairs (noisy labels, for the validation stopping rule) and a
test set of inputs with their exact regression targets ``f*(X_t, t) = E[X_0 | X_t]``; the test
error ``mean ||f - f*||^2`` is therefore the exact excess risk up to Monte Carlo over the inputs
only. The sweeps below are vectorised over samples and loop only over widths, seeds, sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..diffusion.exact import GaussianMixture, score_at
from ..stats import loglog_fit as loglog_slope  # noqa: F401  (re-exported for the chapter)
from .kernels import (
    KernelGD,
    critical_radius,
    fit_kernel_gd,
    kernel_gd_predict,
    relu_ntk,
    rwy_stopping_step,
    validation_stop,
)
from .network import empirical_ntk, features, init_two_layer, train_gd
from .regression import (
    DenoisingSample,
    dsm_loss,
    posterior_mean,
    posterior_moments,
    regression_loss,
    sample_denoising,
    score_from_denoiser,
    vp_coefficients,
)


def bimodal_mixture(
    d: int,
    separation: float = 2.0,
    var: float = 0.25,
    dtype=torch.float64,
    device="cpu",
) -> GaussianMixture:
    """``0.5 N(+mu, var I) + 0.5 N(-mu, var I)`` in R^d with ``mu = separation (1, ..., 1)/sqrt(d)``
    (the modes are ``2 separation`` apart whatever the dimension)."""
    if not isinstance(d, int) or d < 1:
        raise ValueError(f"d must be an int >= 1, got {d!r}")
    mu = torch.full((d,), separation / d**0.5, dtype=torch.float64)
    return GaussianMixture.create(
        [0.5, 0.5], torch.stack([mu, -mu]), [var, var], dtype=dtype, device=device
    )


@dataclass(frozen=True)
class Problem:
    """Training, validation and test data of one score-regression problem (float64)."""

    z: torch.Tensor  # (n, d + 2) training inputs (x_t, t, 1)
    y: torch.Tensor  # (n, d) noisy labels X_0
    z_val: torch.Tensor
    y_val: torch.Tensor
    z_test: torch.Tensor
    f_test: torch.Tensor  # (n_test, d) exact targets E[X_0 | X_t]
    sigma2: (
        float  # label-noise variance per coordinate, E tr Cov(X_0 | X_t) / d (exact)
    )
    bayes_risk: float  # E tr Cov(X_0 | X_t): the noisy-label loss of f* (test inputs)
    test: DenoisingSample  # the test draws (X_0, t, X_t, Z) behind z_test

    @property
    def n(self) -> int:
        return self.z.shape[0]

    @property
    def d(self) -> int:
        return self.y.shape[1]


def make_problem(
    data: GaussianMixture,
    n: int,
    n_val: int,
    n_test: int,
    t0: float,
    T: float,
    seed: int,
    device="cpu",
) -> Problem:
    """Draw a problem with a CPU generator seeded by ``seed`` (same data on every device)."""
    gen = torch.Generator().manual_seed(int(seed))
    tr = sample_denoising(data, n, t0, T, gen, device)
    va = sample_denoising(data, n_val, t0, T, gen, device)
    te = sample_denoising(data, n_test, t0, T, gen, device)
    _, trc_train = posterior_moments(data, tr.t, tr.xt)
    f_test, trc_test = posterior_moments(data, te.t, te.xt)
    return Problem(
        features(tr.xt, tr.t),
        tr.x0,
        features(va.xt, va.t),
        va.x0,
        features(te.xt, te.t),
        f_test,
        float(trc_train.mean()) / data.dim,
        float(trc_test.mean()),
        te,
    )


def tweedie_error(
    data: GaussianMixture, times: Sequence[float], n: int, seed: int
) -> float:
    """Largest relative deviation, over ``times`` and ``n`` draws of ``X_t`` each, between the
    score obtained from the exact denoiser by Tweedie (:func:`~diffctrl.score_theory.regression.score_from_denoiser`) and the exact
    marginal score of :func:`diffctrl.diffusion.exact.score_at`."""
    gen = torch.Generator().manual_seed(int(seed))
    worst = 0.0
    for t in times:
        smp = sample_denoising(data, n, float(t), float(t), gen)
        a, _ = vp_coefficients(smp.t[:1])
        via_tweedie = score_from_denoiser(
            posterior_mean(data, smp.t, smp.xt), smp.xt, smp.t
        )
        exact = score_at(data, float(a[0]) ** 2, smp.xt)
        worst = max(worst, float((via_tweedie - exact).abs().max() / exact.abs().max()))
    return worst


def dsm_decomposition(
    data: GaussianMixture, sample: DenoisingSample, preds: torch.Tensor
) -> dict:
    """For denoisers with values ``preds`` (S, N, d) at ``(sample.xt, sample.t)``: the weighted
    DSM loss of their scores, the noisy-label regression loss, the excess risk
    ``mean ||f - f*||^2`` and the constant ``C = mean tr Cov(X_0 | X_t)`` over the same draws.
    ``dsm = noisy`` pointwise; ``dsm - excess - C`` is the Monte Carlo cross term
    ``2 mean <f - f*, f* - X_0>`` (mean zero), reported as ``cross`` with its standard error.
    The curves (S,) are returned on the CPU, wherever the draws live."""
    f_star, tr_cov = posterior_moments(data, sample.t, sample.xt)
    dsm = torch.stack(
        [dsm_loss(score_from_denoiser(p, sample.xt, sample.t), sample) for p in preds]
    )
    noisy = torch.stack([regression_loss(p, sample.x0) for p in preds])
    excess = mse(preds, f_star)
    const = float(tr_cov.mean())
    terms = 2 * ((preds - f_star) * (f_star - sample.x0)).sum(-1)  # (S, N)
    return {
        "dsm": dsm.cpu(),
        "noisy": noisy.cpu(),
        "excess": excess.cpu(),
        "const": const,
        "cross": (dsm - excess - const).cpu(),
        "cross_se": (terms.std(-1) / terms.shape[-1] ** 0.5).cpu(),
    }


def log_checkpoints(max_steps: int, num: int = 40) -> list[int]:
    """0 and about ``num`` log-spaced step counts up to ``max_steps`` (distinct, increasing)."""
    if max_steps < 1 or num < 2:
        raise ValueError(f"need max_steps >= 1 and num >= 2, got {max_steps}, {num}")
    grid = torch.logspace(
        0, torch.log10(torch.tensor(float(max_steps))), num, dtype=torch.float64
    )
    return sorted({0, *[int(round(float(v))) for v in grid]})


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean_i ||pred_i - target_i||^2`` over the last two dims: (..., n, p) -> (...)."""
    return ((pred - target) ** 2).sum(-1).mean(-1)


@dataclass(frozen=True)
class KernelFit:
    kgd: KernelGD
    lr: float
    kernel_scale: (
        float  # max_i K(z_i, z_i): normalises the kernel to sup <= 1 on the sample
    )


def fit_ntk(problem: Problem, lr_scale: float = 1.0) -> KernelFit:
    """Eigendecompose the infinite-width NTK Gram matrix; ``lr = lr_scale n / lambda_max(K)``."""
    if not 0 < lr_scale < 2:
        raise ValueError(f"lr_scale must lie in (0, 2) for stable GD, got {lr_scale}")
    K = relu_ntk(problem.z, problem.z)
    kgd = fit_kernel_gd(K, problem.y)
    return KernelFit(
        kgd, lr_scale * problem.n / float(kgd.eigvals[0]), float(K.diagonal().max())
    )


def kernel_curves(problem: Problem, fit: KernelFit, checkpoints: Sequence[int]) -> dict:
    """Kernel GD test error (exact target), validation loss (noisy labels) and training loss at
    each checkpoint: tensors of shape (S,), on the CPU whatever the problem's device."""
    kgd = fit.kgd
    test = kernel_gd_predict(
        kgd, relu_ntk(problem.z_test, problem.z), checkpoints, fit.lr
    )
    val = kernel_gd_predict(
        kgd, relu_ntk(problem.z_val, problem.z), checkpoints, fit.lr
    )
    train = kernel_gd_predict(kgd, None, checkpoints, fit.lr)
    return {
        "steps": torch.as_tensor(list(checkpoints)),
        "test": mse(test, problem.f_test).cpu(),
        "val": mse(val, problem.y_val).cpu(),
        "train": mse(train, problem.y).cpu(),
    }


def network_curves(
    problem: Problem,
    width: int,
    lr: float,
    checkpoints: Sequence[int],
    seed: int,
    dtype=torch.float64,
    progress: bool = False,
) -> dict:
    """Network GD (antisymmetric init from ``seed``, parameters in ``dtype``) test error,
    validation and training loss at each checkpoint (float64, on the CPU); also returns the
    test predictions (S, n_test, d) as ``"pred"`` (on the problem's device)."""
    gen = torch.Generator().manual_seed(int(seed))
    net = init_two_layer(
        problem.z.shape[1], problem.d, width, gen, dtype=dtype, device=problem.z.device
    )
    z_eval = torch.cat([problem.z_test, problem.z_val]).to(dtype)
    _, train_pred, pred = train_gd(
        net,
        problem.z.to(dtype),
        problem.y.to(dtype),
        lr,
        list(checkpoints),
        z_eval,
        progress,
    )
    nt = problem.z_test.shape[0]
    pred, train_pred = pred.double(), train_pred.double()
    return {
        "steps": torch.as_tensor(list(checkpoints)),
        "test": mse(pred[:, :nt], problem.f_test).cpu(),
        "val": mse(pred[:, nt:], problem.y_val).cpu(),
        "train": mse(train_pred, problem.y).cpu(),
        "pred": pred[:, :nt],
    }


def width_sweep(
    problem: Problem,
    widths: Sequence[int],
    checkpoints: Sequence[int],
    seeds: Sequence[int],
    lr_scale: float = 1.0,
    dtype=torch.float64,
    progress: bool = False,
) -> dict:
    """Distance between network GD and NTK kernel GD (same data, step and steps), and between
    the network's empirical NTK at initialisation and the infinite-width NTK.

    ``gap[w, s, k] = ||f_net - f_ker||_test / ||f_ker||_test`` (root mean squares over the test
    inputs) after ``checkpoints[k]`` steps, for width ``widths[w]`` and init seed ``seeds[s]``;
    ``ntk_gap[w, s] = ||Theta_m - I (x) K||_F / ||I (x) K||_F`` on the training inputs.
    """
    fit = fit_ntk(problem, lr_scale)
    ker = kernel_gd_predict(
        fit.kgd, relu_ntk(problem.z_test, problem.z), checkpoints, fit.lr
    )
    scale = mse(ker, torch.zeros_like(ker)).sqrt()
    K = relu_ntk(problem.z, problem.z)
    eye = torch.eye(problem.d, dtype=K.dtype, device=K.device)
    K_full = K[:, None, :, None] * eye[None, :, None, :]  # delta_ij kappa, (n, d, n, d)
    gap = torch.zeros(len(widths), len(seeds), len(checkpoints), dtype=torch.float64)
    ntk_gap = torch.zeros(len(widths), len(seeds), dtype=torch.float64)
    for i, m in enumerate(widths):
        for j, s in enumerate(seeds):
            out = network_curves(
                problem, int(m), fit.lr, checkpoints, s, dtype, progress
            )
            dist = mse(out["pred"], ker).sqrt()
            gap[i, j] = torch.where(
                scale > 0, dist / scale.clamp_min(1e-300), torch.zeros_like(scale)
            )
            net = init_two_layer(
                problem.z.shape[1],
                problem.d,
                int(m),
                torch.Generator().manual_seed(int(s)),
                device=problem.z.device,
            )
            theta = empirical_ntk(net, problem.z, problem.z)
            ntk_gap[i, j] = torch.linalg.norm(theta - K_full) / torch.linalg.norm(
                K_full
            )
    return {
        "widths": torch.as_tensor(list(widths)),
        "steps": torch.as_tensor(list(checkpoints)),
        "gap": gap,
        "ntk_gap": ntk_gap,
        "lr": fit.lr,
    }


def kernel_test_error(problem: Problem, fit: KernelFit, steps) -> torch.Tensor:
    """Kernel GD test error (exact target) after each of ``steps`` (may be fractional): (S,)."""
    pred = kernel_gd_predict(
        fit.kgd, relu_ntk(problem.z_test, problem.z), steps, fit.lr
    )
    return mse(pred, problem.f_test)


def stopping_summary(
    curves: dict, fit: KernelFit, problem: Problem, kernel_error_at_rwy: bool = True
) -> dict:
    """Oracle, validation and Raskutti-Wainwright-Yu choices on a kernel or network curve.

    The RWY time is computed on the NTK (the rule is stated for the kernel dynamics that the
    network tracks). With ``kernel_error_at_rwy`` its error is that of kernel GD at that
    (fractional) step count; otherwise the curve is read at the last checkpoint not after it.
    """
    steps, test = curves["steps"], curves["test"]
    i_orc = int(torch.argmin(test))
    i_val = validation_stop(curves["val"])
    k_rwy = rwy_stopping_step(
        fit.kgd.eigvals, problem.n, fit.lr, problem.sigma2**0.5, fit.kernel_scale
    )
    if kernel_error_at_rwy:
        err_rwy = float(kernel_test_error(problem, fit, [k_rwy])[0])
    else:
        i_rwy = (
            int(torch.searchsorted(steps.double(), torch.tensor(k_rwy), right=True)) - 1
        )
        err_rwy = float(test[max(i_rwy, 0)])
    return {
        "k_oracle": int(steps[i_orc]),
        "err_oracle": float(test[i_orc]),
        "k_val": int(steps[i_val]),
        "err_val": float(test[i_val]),
        "k_rwy": float(k_rwy),
        "err_rwy": err_rwy,
        "err_last": float(test[-1]),
        "err_init": float(test[0]),
    }


def rkhs_norm_lower_bound(
    fit: KernelFit, f_train: torch.Tensor, rel_cutoff: float = 1e-8
) -> float:
    """A lower bound on ``||f*||_H`` in the RKHS of the normalised kernel ``K / c`` (the one
    the Raskutti-Wainwright-Yu rule assumes of norm <= 1), from ``f_train = f*(z_i)`` (n, p).

    Every ``f`` in ``H`` with these values has at least the norm of the minimum-norm
    interpolant, ``(c sum_i |u_i^T f_train|^2 / lambda_i)^(1/2)`` (``(lambda_i, u_i)`` the Gram
    matrix's eigenpairs); keeping only the terms with ``lambda_i >= rel_cutoff lambda_max``
    (the rest is round-off) lowers the sum, so the bound stays valid.
    """
    if f_train.shape[0] != fit.kgd.n:
        raise ValueError(f"f_train must have {fit.kgd.n} rows, got {f_train.shape[0]}")
    lam, U = fit.kgd.eigvals.double(), fit.kgd.eigvecs.double()
    keep = lam >= rel_cutoff * lam[0]
    coef = U[:, keep].T @ f_train.double().reshape(fit.kgd.n, -1)
    return float((fit.kernel_scale * (coef**2).sum(1) / lam[keep]).sum().sqrt())


def sample_size_sweep(
    data: GaussianMixture,
    ns: Sequence[int],
    seeds: Sequence[int],
    t0: float,
    T: float,
    n_test: int,
    max_steps: int,
    val_fraction: float = 0.25,
    lr_scale: float = 1.0,
    num_checkpoints: int = 60,
    width: int | None = None,
    dtype=torch.float64,
    device="cpu",
    progress: bool = False,
) -> dict:
    """Early-stopped error against the sample size, for NTK kernel GD (``width=None``) or the
    two-layer network of that width.

    For each ``n`` and seed: ``n`` training pairs, ``val_fraction n`` hold-out pairs (problem
    seed ``1000 seed + index of n``, the same for both methods), GD evaluated at log-spaced
    checkpoints up to ``max_steps``. Returns tensors (len(ns), len(seeds)) of the oracle /
    validation / RWY-stopped test errors and steps, and the squared critical radius
    ``delta_n^2`` of the RWY bound. For the network the RWY error is read at the last checkpoint
    not after the rule's (fractional) step.
    """
    keys = ("err_oracle", "err_val", "err_rwy", "k_oracle", "k_val", "k_rwy", "delta2")
    out = {k: torch.zeros(len(ns), len(seeds), dtype=torch.float64) for k in keys}
    ck = log_checkpoints(max_steps, num_checkpoints)
    for i, n in enumerate(tqdm(ns, disable=not progress, desc="n")):
        for j, s in enumerate(seeds):
            prob = make_problem(
                data,
                int(n),
                max(int(val_fraction * n), 1),
                n_test,
                t0,
                T,
                seed=1000 * int(s) + i,
                device=device,
            )
            fit = fit_ntk(prob, lr_scale)
            if width is None:
                curves = kernel_curves(prob, fit, ck)
            else:
                curves = network_curves(prob, int(width), fit.lr, ck, int(s), dtype)
            summ = stopping_summary(
                curves, fit, prob, kernel_error_at_rwy=width is None
            )
            for k in keys[:-1]:
                out[k][i, j] = summ[k]
            out["delta2"][i, j] = (
                critical_radius(
                    fit.kgd.eigvals, prob.n, prob.sigma2**0.5, fit.kernel_scale
                )
                ** 2
            )
    out["ns"] = torch.as_tensor(list(ns))
    return out


def ntk_rate_exponent(d: int) -> float:
    """Exponent of the early-stopped kernel-regression rate ``n^{-alpha/(alpha+1)}`` for the
    ReLU NTK on inputs ``(x, t, 1)`` in R^{d+2}: its eigenvalues decay like ``j^{-alpha}`` with
    ``alpha = (d + 2)/(d + 1)`` (NTK on the sphere S^{d+1}; Bietti & Mairal 2019), giving
    ``(d + 2)/(2d + 3)`` — our reconstruction of the rate of the paper's bound for this kernel."""
    return (d + 2) / (2 * d + 3)
