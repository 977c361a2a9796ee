"""ScoreFusion (Liu, Ye, Blanchet & Si 2025): fusing score models through KL barycenters.

- :mod:`.scores`      the fused score ``sum_i lambda_i s_i(x, k)`` over K frozen auxiliaries
  (exact Gaussian mixtures or networks of one architecture, vmapped), and fitting lambda by DSM
  at the small noise levels;
- :mod:`.barycenter`  the exact barycenter ``q_lambda ∝ prod_i p_i^lambda_i`` of Gaussian-mixture
  auxiliaries by quadrature (1-D, 2-D): normaliser, density, samples, noised score, and the
  KL-, Fisher- and DSM-optimal lambda;
- :mod:`.merging`     checkpoint merging (parameter averaging), the comparison of the paper;
- :mod:`.experiments` the chapter's experiments (1-D mixtures, 8x8 digits) as functions.
"""

from .barycenter import (
    Barycenter,
    QuadratureGrid,
    kl_optimal_weights,
    kl_to_barycenter,
    score_matching_weights,
    w1_barycenter_to_mixture_1d,
    w1_to_cdf_1d,
)
from .merging import merge_checkpoints
from .scores import FusedScore, fit_weights, mixture_score_levels

__all__ = [
    "Barycenter",
    "FusedScore",
    "QuadratureGrid",
    "fit_weights",
    "kl_optimal_weights",
    "kl_to_barycenter",
    "merge_checkpoints",
    "mixture_score_levels",
    "score_matching_weights",
    "w1_barycenter_to_mixture_1d",
    "w1_to_cdf_1d",
]
