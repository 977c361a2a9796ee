"""ScoreFusion (Liu, Ye, Blanchet & Si 2025): fusing score models through KL barycenters.

- :mod:`.scores`      the fused score ``sum_i lambda_i s_i(x, k)`` over K frozen
  auxiliaries (exact Gaussian mixtures or networks of one architecture, vmapped), and
  fitting lambda by DSM at the small noise levels;
- :mod:`.barycenter`  the exact barycenter ``q_lambda ∝ prod_i p_i^lambda_i`` of
  Gaussian-mixture auxiliaries by quadrature (1-D, 2-D): normaliser, density, samples, noised
  score, and the KL-, Fisher- and DSM-optimal lambda;
- :mod:`.noised`      the fused score at a noise level above zero against the noised
  barycenter, and the law sampled when it is used on the small levels only;
- :mod:`.merging`     checkpoint merging (parameter averaging), the comparison of the paper,
  and fine-tuning a pre-trained base;
- :mod:`.settings`    the paper's 1-D mixtures, a 2-D pair, digit mixtures, the linear
  mixture; :mod:`.baselines` the model trained from scratch, the KDE, the size sweep and
  the class shares of digit samples;
- :mod:`.experiments` the chapter's experiments with their criteria and verdicts (the fused
  sampler's law, small target samples), :mod:`.weights_experiments` the fitted lambda's,
  :mod:`.merging_experiments` checkpoint merging's, :mod:`.digits_experiments` the digits
  page's, and :mod:`.bench` the cost of fused sampling (imported as modules, not re-exported
  here).
"""

from .barycenter import (
    Barycenter,
    QuadratureGrid,
    check_weights,
    kl_optimal_weights,
    kl_to_barycenter,
    mixture_cdf_1d,
    project_simplex,
    score_matching_weights,
    simplex_qp,
    w1_barycenter_to_mixture_1d,
    w1_to_cdf_1d,
)
from .baselines import (
    class_shares,
    kde_sample,
    network_score,
    size_sweep,
    train_score_mlp,
)
from .merging import fine_tune, merge_checkpoints
from .noised import (
    barycenter_gap,
    exact_score_sampler,
    law_distance,
    noised_barycenter_score,
    relative_score_gap,
    sample_from_level,
    truncated,
)
from .scores import FusedScore, fit_weights, mixture_score_levels
from .settings import (
    digit_mixture_sampler,
    geometric_class_share,
    linear_mixture,
    paper_1d_setting,
    paper_2d_auxiliaries,
)
from .standardised import moments, standardise_mixture, standardised_size_sweep

__all__ = [
    "Barycenter",
    "FusedScore",
    "QuadratureGrid",
    "barycenter_gap",
    "check_weights",
    "class_shares",
    "digit_mixture_sampler",
    "exact_score_sampler",
    "fine_tune",
    "fit_weights",
    "geometric_class_share",
    "kde_sample",
    "kl_optimal_weights",
    "kl_to_barycenter",
    "law_distance",
    "linear_mixture",
    "merge_checkpoints",
    "moments",
    "mixture_cdf_1d",
    "mixture_score_levels",
    "network_score",
    "noised_barycenter_score",
    "paper_1d_setting",
    "paper_2d_auxiliaries",
    "project_simplex",
    "relative_score_gap",
    "sample_from_level",
    "score_matching_weights",
    "simplex_qp",
    "size_sweep",
    "standardise_mixture",
    "standardised_size_sweep",
    "train_score_mlp",
    "truncated",
    "w1_barycenter_to_mixture_1d",
    "w1_to_cdf_1d",
]
