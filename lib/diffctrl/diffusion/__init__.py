"""The diffusion core: schedules, forward process, exact scores, score models, samplers, metrics.

Conventions used throughout the book (``book/notation.md``, *Noise levels, schedules and the forward
process* and *The controlled chain*):

- noise levels ``k = 0, 1, ..., N``; level 0 is the data. Schedule arrays have length ``N + 1``
  with ``alpha_bar[0] = 1`` and ``betas[0] = 0``, so ``sched.betas[k]`` is beta_k of the papers;
- forward: ``x_k = sqrt(alpha_bar_k) x_0 + sqrt(1 - alpha_bar_k) eps``;
- a score function is any callable ``score(x, k)`` with ``x`` of shape ``(B, *event)`` and ``k``
  an int level in ``1..N``, returning ``grad log p_k(x)`` of the same shape. Exact scores
  (:mod:`.exact`) and trained networks (:func:`.models.model_score`) are interchangeable;
- reverse step ``t = 0..N-1`` goes from level ``k = N - t`` to ``k - 1``.

Modules: :mod:`.schedules`, :mod:`.forward`, :mod:`.exact` (Gaussian mixtures and their exact
scores), :mod:`.models` (score networks, DSM loss), :mod:`.training`, :mod:`.samplers`,
:mod:`.metrics`, :mod:`.data`; :mod:`.analysis` (the Preliminaries chapter's measurements and
verdicts) and :mod:`.bench` (sampler timings against diffusers) are imported as modules, not
re-exported here.
"""

from .data import (
    load_digits,
    ring_mixture,
)
from .exact import (
    GaussianMixture,
    ScoreFn,
    exact_score_fn,
    posterior_mean,
    posterior_moments,
    score_at,
)
from .forward import (
    q_sample,
    q_step,
)
from .metrics import (
    gaussian_kl,
    gaussian_w2,
    mmd2,
    moment_errors,
    ot_distance,
    sliced_wasserstein,
    w1_1d,
)
from .models import (
    PARAMETRISATIONS,
    ScoreMLP,
    SmallUNet,
    batch_levels,
    check_levels,
    dsm_loss,
    model_score,
    timestep_embedding,
    to_score,
)
from .samplers import (
    METHODS,
    VARIANCES,
    ancestral_mean,
    ancestral_sigma,
    ancestral_step,
    make_step,
    propagate_gaussian,
    sample,
)
from .schedules import (
    SCHEDULES,
    Schedule,
    cosine_schedule,
    linear_schedule,
    make_schedule,
    vp_beta,
    vp_log_alpha_bar,
    vp_sde_schedule,
)
from .training import (
    train_dsm,
)

__all__ = [
    "GaussianMixture",
    "METHODS",
    "PARAMETRISATIONS",
    "SCHEDULES",
    "Schedule",
    "ScoreFn",
    "ScoreMLP",
    "SmallUNet",
    "VARIANCES",
    "ancestral_mean",
    "ancestral_sigma",
    "ancestral_step",
    "batch_levels",
    "check_levels",
    "cosine_schedule",
    "dsm_loss",
    "exact_score_fn",
    "gaussian_kl",
    "gaussian_w2",
    "linear_schedule",
    "load_digits",
    "make_schedule",
    "make_step",
    "mmd2",
    "model_score",
    "moment_errors",
    "ot_distance",
    "posterior_mean",
    "posterior_moments",
    "propagate_gaussian",
    "q_sample",
    "q_step",
    "ring_mixture",
    "sample",
    "score_at",
    "sliced_wasserstein",
    "timestep_embedding",
    "to_score",
    "train_dsm",
    "vp_beta",
    "vp_log_alpha_bar",
    "vp_sde_schedule",
    "w1_1d",
]
