"""Adapted sequential data generation with diffusion models (Cao, Chen, Han, Xu 2026).

- :mod:`.gaussian`: exact Gaussian conditionals X_k | X_{<k} (with history truncation), the
  oracle sampler, exact paths;
- :mod:`.arma`: ARMA(p, q) with its exact autocovariance; :mod:`.gp`: RBF, Matérn-3/2 and
  fBm covariances on a grid; :mod:`.portfolio`: mean-variance portfolios from scenarios;
- :mod:`.networks`: the conditional score networks g(prefix, k, level) (MLP on a truncated
  window, causal transformer); :mod:`.sampling`: training, the adapted entry-by-entry sampler,
  the whole-sequence DDPM baseline and the adaptedness check; :mod:`.metrics`: ACF, PACF,
  conditional regressions, a total-variation proxy.
"""

from .arma import ARMA, arma_acf, arma_acov, arma_cov, arma_paths
from .gaussian import conditionals, gaussian_paths, oracle_sample, sequential_law
from .gp import gp_cov
from .networks import CausalTransformerScoreNet, WindowScoreNet
from .sampling import (
    adaptedness_gaps,
    draw_noise,
    sample_sequential,
    sample_whole,
    train_sequential,
    train_whole,
    whole_sequence_model,
)

__all__ = [
    "ARMA",
    "CausalTransformerScoreNet",
    "WindowScoreNet",
    "adaptedness_gaps",
    "arma_acf",
    "arma_acov",
    "arma_cov",
    "arma_paths",
    "conditionals",
    "draw_noise",
    "gaussian_paths",
    "gp_cov",
    "oracle_sample",
    "sample_sequential",
    "sample_whole",
    "sequential_law",
    "train_sequential",
    "train_whole",
    "whole_sequence_model",
]
