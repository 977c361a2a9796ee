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
"""

from .schedules import (
    Schedule,
    cosine_schedule,
    linear_schedule,
    make_schedule,
    vp_sde_schedule,
)

__all__ = [
    "Schedule",
    "cosine_schedule",
    "linear_schedule",
    "make_schedule",
    "vp_sde_schedule",
]
