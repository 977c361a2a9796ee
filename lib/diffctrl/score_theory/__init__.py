"""Score estimation theory: denoising score matching as regression, a two-layer ReLU network
trained by GD, its neural tangent kernel, kernel GD and early stopping (chapter ``book/score_estimation.md``;
notation ``book/notation.md``, *Score estimation as regression*;
Han, Razaviyayn & Xu 2024)."""

from .kernels import (
    KernelGD,
    critical_radius,
    fit_kernel_gd,
    kernel_gd_predict,
    local_rademacher,
    relu_ntk,
    rwy_stopping_step,
    rwy_stopping_time,
    spectral_filter,
    validation_stop,
)
from .network import (
    TwoLayerReLU,
    empirical_ntk,
    features,
    forward,
    init_two_layer,
    loss_and_grad,
    train_gd,
)
from .regression import (
    DenoisingSample,
    denoiser_from_score,
    dsm_loss,
    dsm_weight,
    posterior_mean,
    posterior_moments,
    regression_loss,
    sample_denoising,
    score_from_denoiser,
    vp_coefficients,
)

__all__ = [
    "DenoisingSample",
    "KernelGD",
    "TwoLayerReLU",
    "critical_radius",
    "denoiser_from_score",
    "dsm_loss",
    "dsm_weight",
    "empirical_ntk",
    "features",
    "fit_kernel_gd",
    "forward",
    "init_two_layer",
    "kernel_gd_predict",
    "local_rademacher",
    "loss_and_grad",
    "posterior_mean",
    "posterior_moments",
    "regression_loss",
    "relu_ntk",
    "rwy_stopping_step",
    "rwy_stopping_time",
    "sample_denoising",
    "score_from_denoiser",
    "spectral_filter",
    "train_gd",
    "validation_stop",
    "vp_coefficients",
]
