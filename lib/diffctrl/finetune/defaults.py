"""The paper's fine-tuning settings, shared by the small path and the large-model path.

Han, Razaviyayn, Xu (2025, Sec. 6) fine-tune Stable Diffusion 1.5 with LoRA adapters towards
ImageReward: beta = 0.01, AdamW lr 3e-4, 10 trajectories x 50 transitions per gradient step,
1000 steps, LoRA rank 4 (:data:`PAPER_DEFAULTS`). The digits experiment uses the paper's
learning rate with its LoRA control; the large-model path (:mod:`diffctrl.finetune.large`)
uses them all as defaults.
"""

from __future__ import annotations

__all__ = ["PAPER_DEFAULTS"]

#: The paper's settings (Han, Razaviyayn, Xu 2025, Sec. 6): KL weight, AdamW learning rate,
#: trajectories and transitions per gradient step, gradient steps, LoRA rank.
PAPER_DEFAULTS = dict(beta=0.01, lr=3e-4, n_traj=10, n_steps=50, steps=1000, rank=4)
