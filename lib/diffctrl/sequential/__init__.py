"""Adapted sequential data generation with diffusion models (Cao, Chen, Han, Xu 2026).

- :mod:`.gaussian`: exact Gaussian conditionals X_k | X_{<k} (with history truncation), the
  oracle sampler, exact paths;
- :mod:`.arma`: ARMA(p, q) with its exact autocovariance; :mod:`.gp`: RBF, Matérn-3/2 and
  fBm covariances on a grid; :mod:`.portfolio`: mean-variance portfolios from scenarios;
- :mod:`.networks`: the conditional score networks g(prefix, k, level) (MLP on a truncated
  window, causal transformer); :mod:`.sampling`: training, the adapted entry-by-entry sampler,
  the whole-sequence DDPM baseline, the adaptedness check and the exact-score sampler floor;
  :mod:`.metrics`: ACF, PACF, conditional regressions, a total-variation proxy;
- :mod:`.generators`: the generators the chapter compares, trained on the same paths;
- :mod:`.experiments`: the chapter's experiments on adaptedness and conditional laws with their
  criteria and verdicts, :mod:`.size_experiments`: the sweep in the training-set size with and
  without truncation, :mod:`.portfolio_experiments`: the multi-period portfolio, and
  :mod:`.bench`: sampling costs (imported as modules, not re-exported here).
"""

from .arma import ARMA, arma_acf, arma_acov, arma_cov, arma_paths, fit_ar1, psi_weights
from .gaussian import (
    check_cov,
    check_d_trunc,
    conditionals,
    gaussian_paths,
    oracle_sample,
    sequential_law,
)
from .generators import GENERATORS, fit_and_generate, make_sequential
from .gp import KERNELS, fbm_kernel, gp_cov, grid, matern32_kernel, rbf_kernel
from .metrics import (
    assess_sample,
    assessment_table,
    conditional_errors,
    conditional_fit,
    empirical_acf,
    fitted_kl,
    oracle_power,
    pacf_from_acf,
    truncated_oracle_tv,
    tv_proxy,
)
from .networks import (
    CausalTransformerScoreNet,
    SequentialScoreNet,
    WindowScoreNet,
    param_count,
)
from .portfolio import (
    factor_market,
    mean_variance_weights,
    myopic_weights,
    portfolio_stats,
    quadratic_utility,
    scenario_weights,
)
from .sampling import (
    adaptedness_gaps,
    data_scale,
    draw_noise,
    perturb_future,
    sample_next,
    sample_sequential,
    sample_whole,
    sampler_floor,
    train_sequential,
    train_whole,
    whole_sequence_model,
)

__all__ = [
    "ARMA",
    "CausalTransformerScoreNet",
    "GENERATORS",
    "KERNELS",
    "SequentialScoreNet",
    "WindowScoreNet",
    "adaptedness_gaps",
    "arma_acf",
    "arma_acov",
    "arma_cov",
    "arma_paths",
    "assess_sample",
    "assessment_table",
    "check_cov",
    "check_d_trunc",
    "conditional_errors",
    "conditional_fit",
    "conditionals",
    "data_scale",
    "draw_noise",
    "empirical_acf",
    "factor_market",
    "fbm_kernel",
    "fit_ar1",
    "fit_and_generate",
    "fitted_kl",
    "gaussian_paths",
    "gp_cov",
    "grid",
    "make_sequential",
    "matern32_kernel",
    "mean_variance_weights",
    "myopic_weights",
    "oracle_power",
    "oracle_sample",
    "pacf_from_acf",
    "param_count",
    "perturb_future",
    "portfolio_stats",
    "psi_weights",
    "quadratic_utility",
    "rbf_kernel",
    "sample_next",
    "sample_sequential",
    "sample_whole",
    "sampler_floor",
    "scenario_weights",
    "sequential_law",
    "train_sequential",
    "train_whole",
    "truncated_oracle_tv",
    "tv_proxy",
    "whole_sequence_model",
]
