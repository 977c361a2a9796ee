"""Score estimation as regression (Han, Razaviyayn & Xu 2024; chapter
``book/score_estimation.md``; notation ``book/notation.md``, *Score estimation as regression*).

- ``regression``     denoising score matching as least squares, Tweedie's map
- ``network``        the two-layer ReLU network trained by GD, its empirical NTK
- ``kernels``        the infinite-width ReLU NTK, kernel GD in closed form, early-stopping rules
- ``problems``       one regression problem: data, train / validation / test sets, errors
- ``trajectories``   error curves along kernel GD and network GD
- ``early_stopping`` the stopping rules on a curve, the RKHS-norm bound, the rate exponent

The chapter's experiments, record values and verdicts are in ``experiments`` (the drivers)
and ``analysis`` (values and verdicts).
"""

from .early_stopping import (
    ntk_rate_exponent,
    rkhs_norm_lower_bound,
    stopping_summary,
)
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
from .problems import (
    Problem,
    bimodal_mixture,
    log_checkpoints,
    make_problem,
    mse,
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
from .trajectories import (
    KernelFit,
    fit_ntk,
    kernel_curves,
    kernel_test_error,
    network_curves,
)

__all__ = [
    "bimodal_mixture",
    "critical_radius",
    "denoiser_from_score",
    "DenoisingSample",
    "dsm_loss",
    "dsm_weight",
    "empirical_ntk",
    "features",
    "fit_kernel_gd",
    "fit_ntk",
    "forward",
    "init_two_layer",
    "kernel_curves",
    "kernel_gd_predict",
    "kernel_test_error",
    "KernelFit",
    "KernelGD",
    "local_rademacher",
    "log_checkpoints",
    "loss_and_grad",
    "make_problem",
    "mse",
    "network_curves",
    "ntk_rate_exponent",
    "posterior_mean",
    "posterior_moments",
    "Problem",
    "regression_loss",
    "relu_ntk",
    "rkhs_norm_lower_bound",
    "rwy_stopping_step",
    "rwy_stopping_time",
    "sample_denoising",
    "score_from_denoiser",
    "spectral_filter",
    "stopping_summary",
    "train_gd",
    "TwoLayerReLU",
    "validation_stop",
    "vp_coefficients",
]
