"""Parametric KL-regularised fine-tuning (PI-FT, part 2) and its baselines, scored against the
exact tilted target ``p* ∝ p0 exp(r / beta)`` (chapter ``book/finetune.md``).

The small path, one module per object:

- :mod:`.targets`    closed-form tilted targets (linear / quadratic rewards on Gaussian
  mixtures) and a quadrature target for any reward in 1-D/2-D;
- :mod:`.trajectories` sampled trajectories of the controlled chain (:class:`~.trajectories.Trajectories`);
- :mod:`.nets`       control networks ``u_theta(t, y)`` and value critics ``V_phi(t, y)``;
- :mod:`.losses`     the loss of each method behind one registry, :data:`~.losses.LOSSES`:
  parametric PI-FT and three baselines (DRaFT-style reward backpropagation, DPOK-style policy
  gradient, Adjoint Matching);
- :mod:`.objective`  one problem and method as an ``nn.Module`` (:class:`~.objective.FinetuneObjective`);
- :mod:`.trainer`    the trainer (AdamW, evaluations, checkpoints, a retry at a smaller step);
- :mod:`.budget`     the compute counter shared by every method (network evaluations, reward
  evaluations, wall time);
- :mod:`.metrics`    reward, path KL, W2 to p* beside its noise floor, control error;
- :mod:`.optimum`    the T-step optimum by grid PI-FT (the yardstick of the control error) and
  the mode weights that show how far that optimum is from p* at finite T;
- :mod:`.respacing`  the strided sub-chain of an N-level model that fine-tuning trains;
- :mod:`.defaults`   the paper's settings (:data:`~.defaults.PAPER_DEFAULTS`);
- :mod:`.mixture_experiments`, :mod:`.digits_experiments`: the chapter's experiments and the
  verdicts on their claims (the notebooks' drivers; not re-exported here).

The large-model path (LoRA, Stable Diffusion, DDP; the ``large`` extra) is the subpackage
:mod:`diffctrl.finetune.large`, never imported here. The digit model, its classifiers and image
helpers of the digits experiment are :mod:`diffctrl.digits`.
"""

from .budget import Budget, Timer
from .defaults import PAPER_DEFAULTS
from .losses import (
    LOSSES,
    METHODS,
    Loss,
    adjoint_loss,
    dpok_loss,
    draft_loss,
    pift_loss,
)
from .metrics import control_error, evaluate, mean_se
from .nets import ControlMLP, ValueCNN, ValueMLP
from .objective import FinetuneObjective
from .optimum import grid_optimum, mode_fractions
from .respacing import strided_schedule
from .targets import GridTarget, check_beta, tilt_linear, tilt_quadratic, tilted_target
from .trainer import FinetuneResult, finetune, finetune_guarded
from .trajectories import Trajectories, chain_arrays, event_shape, rollout, sqnorm

__all__ = [
    "LOSSES",
    "METHODS",
    "PAPER_DEFAULTS",
    "Budget",
    "ControlMLP",
    "FinetuneObjective",
    "FinetuneResult",
    "GridTarget",
    "Loss",
    "Timer",
    "Trajectories",
    "ValueCNN",
    "ValueMLP",
    "adjoint_loss",
    "chain_arrays",
    "check_beta",
    "control_error",
    "dpok_loss",
    "draft_loss",
    "evaluate",
    "event_shape",
    "finetune",
    "finetune_guarded",
    "grid_optimum",
    "mean_se",
    "mode_fractions",
    "pift_loss",
    "rollout",
    "sqnorm",
    "strided_schedule",
    "tilt_linear",
    "tilt_quadratic",
    "tilted_target",
]
