"""The chapter's experiments on score estimation as regression, one driver per question
(chapter ``book/score_estimation.md``, [ours]; Han, Razaviyayn & Xu 2024).

Each returns plain tensors for the notebook to plot; :mod:`~diffctrl.score_theory.analysis`
turns them into the record's values and verdicts. The sweeps are vectorised over samples
and loop only over widths, seeds, sizes.

- :func:`tweedie_error`, :func:`dsm_decomposition`: DSM is regression of ``X_0`` on ``X_t``
  (Tweedie's map against the exact score; the DSM loss split into excess risk and a constant);
- :func:`width_sweep`: network GD against NTK kernel GD as the width grows;
- :func:`early_stopping_runs`: kernel and network GD followed past their best step, and the
  stopping rules on them;
- :func:`sample_size_sweep`: the early-stopped error against the sample size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from ..diffusion.exact import GaussianMixture, score_at
from .early_stopping import rkhs_norm_lower_bound, stopping_summary
from .kernels import critical_radius, kernel_gd_predict, relu_ntk, rwy_stopping_step
from .network import empirical_ntk, init_two_layer
from .problems import Problem, log_checkpoints, make_problem, mse
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
from .trajectories import (
    KernelFit,
    fit_ntk,
    kernel_curves,
    kernel_test_error,
    network_curves,
)

__all__ = [
    "dsm_decomposition",
    "early_stopping_runs",
    "sample_size_sweep",
    "tweedie_error",
    "width_sweep",
]


def tweedie_error(
    data: GaussianMixture, times: Sequence[float], n: int, seed: int
) -> float:
    """Largest relative deviation, over ``times`` and ``n`` draws of ``X_t`` each, between the
    score obtained from the exact denoiser by Tweedie
    (:func:`~diffctrl.score_theory.regression.score_from_denoiser`) and the exact marginal
    score of :func:`diffctrl.diffusion.exact.score_at`."""
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
    ``gap_standard`` (same shape as ``gap``): the baseline, the same distance for the network
    with the standard (not antisymmetric) initialisation, whose random initial function
    ``f_0 != 0`` is not the kernel's starting point and does not vanish as ``m`` grows.
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
    gap_standard = torch.zeros_like(gap)
    ntk_gap = torch.zeros(len(widths), len(seeds), dtype=torch.float64)
    for i, m in enumerate(widths):
        for j, s in enumerate(seeds):
            out = network_curves(
                problem, int(m), fit.lr, checkpoints, s, dtype, progress
            )
            std = network_curves(
                problem, int(m), fit.lr, checkpoints, s, dtype, antisymmetric=False
            )
            for g, o in ((gap, out), (gap_standard, std)):
                dist = mse(o["pred"], ker).sqrt()
                g[i, j] = torch.where(
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
        "gap_standard": gap_standard,
        "ntk_gap": ntk_gap,
        "lr": fit.lr,
    }


def early_stopping_runs(
    data: GaussianMixture,
    seeds: Sequence[int],
    *,
    n: int,
    val_fraction: float,
    n_test: int,
    t0: float,
    T: float,
    width: int,
    max_steps: int,
    kernel_max_steps: int,
    lr_scale: float = 1.0,
    dtype=torch.float64,
    device="cpu",
    clean_baseline: bool = True,
) -> list[dict]:
    """Kernel GD (to ``kernel_max_steps``, 60 log-spaced checkpoints) and network GD (width
    ``width``, to ``max_steps``, 40 checkpoints) on the same ``n`` noisy pairs per seed (problem
    seed ``10_000 + seed``, initialisation ``seed``), followed past their best step.

    Per seed: the ``kernel`` and ``net`` curves, their stopping summaries ``ks`` and ``ns``
    (:func:`~diffctrl.score_theory.early_stopping.stopping_summary`; the network's RWY error
    read on its own curve), ``kernel_at_net_last`` (kernel GD's error after ``max_steps``),
    ``bayes`` (the problem's Bayes risk), and the paper's rule at its assumption
    ``||f*||_H <= 1``: labels (and noise) divided by a lower bound ``norm_lb`` on
    ``||f*||_H`` (kernel GD is linear in the labels: only sigma changes), its step
    ``k_rwy_scaled`` and error ``err_rwy_scaled``. ``kernel_val_large`` / ``net_val_large``:
    the test error where the noisy-label loss on the ``n_test`` test pairs (a hold-out set
    ``n_test / (val_fraction n)`` times larger) is smallest, the stopping rules' control (a
    data-driven stop with little hold-out noise). With ``clean_baseline`` also
    ``clean_kernel`` and ``clean_net``: the same kernel GD and network (same step, steps and
    initialisation) trained on the noise-free labels ``f*(z_i)``, the baseline of the U-shape
    claims (without label noise there is nothing to overfit).
    """
    runs = []
    for s in seeds:
        up = make_problem(
            data,
            n,
            max(int(val_fraction * n), 1),
            n_test,
            t0,
            T,
            seed=10_000 + s,
            device=device,
        )
        ufit = fit_ntk(up, lr_scale)
        k_ck, n_ck = (
            log_checkpoints(kernel_max_steps, 60),
            log_checkpoints(max_steps, 40),
        )
        kc = kernel_curves(up, ufit, k_ck)
        nc = network_curves(up, width, ufit.lr, n_ck, s, dtype)
        ker_test = kernel_gd_predict(ufit.kgd, relu_ntk(up.z_test, up.z), k_ck, ufit.lr)
        runs.append(
            dict(
                kernel_val_large=_large_holdout_error(ker_test, up),
                net_val_large=_large_holdout_error(nc["pred"], up),
                kernel=kc,
                net=nc,
                ks=stopping_summary(kc, ufit, up),
                ns=stopping_summary(nc, ufit, up, kernel_error_at_rwy=False),
                kernel_at_net_last=float(kernel_test_error(up, ufit, [max_steps])[0]),
                bayes=up.bayes_risk,
            )
        )
        d = up.d
        f_train = posterior_mean(data, up.z[:, d], up.z[:, :d])
        if clean_baseline:  # the same runs on the noise-free labels f*(z_i)
            clean = dataclasses.replace(up, y=f_train)
            kgd = dataclasses.replace(
                ufit.kgd, Uty=ufit.kgd.eigvecs.T @ f_train.double()
            )
            cfit = KernelFit(kgd, ufit.lr, ufit.kernel_scale)
            cnet = network_curves(clean, width, ufit.lr, n_ck, s, dtype)
            cnet.pop("pred")
            runs[-1].update(
                clean_kernel=kernel_curves(clean, cfit, k_ck), clean_net=cnet
            )
        # the paper's rule at its assumption ||f*||_H <= 1: labels (and noise) divided by a
        # lower bound B on ||f*||_H; kernel GD is linear in the labels: only sigma changes
        B = max(rkhs_norm_lower_bound(ufit, f_train), 1.0)
        k_s = rwy_stopping_step(
            ufit.kgd.eigvals, up.n, ufit.lr, up.sigma2**0.5 / B, ufit.kernel_scale
        )
        runs[-1].update(
            norm_lb=B,
            k_rwy_scaled=k_s,
            err_rwy_scaled=float(kernel_test_error(up, ufit, [k_s])[0]),
        )
    return runs


def _large_holdout_error(pred: torch.Tensor, problem: Problem) -> float:
    """Test error (exact target) of the checkpoint whose noisy-label loss on the test pairs
    ``(z_test, X_0)`` is smallest: a validation rule with ``n_test`` hold-out pairs."""
    i = int(torch.argmin(mse(pred, problem.test.x0.to(pred))))
    return float(mse(pred[i], problem.f_test))


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
    validation / RWY-stopped test errors and steps, the last iterate's error (after
    ``max_steps``: no early stopping), and the squared critical radius
    ``delta_n^2`` of the RWY bound. For the network the RWY error is read at the last checkpoint
    not after the rule's (fractional) step.
    """
    keys = (
        "err_oracle",
        "err_val",
        "err_rwy",
        "err_last",
        "k_oracle",
        "k_val",
        "k_rwy",
        "delta2",
    )
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
