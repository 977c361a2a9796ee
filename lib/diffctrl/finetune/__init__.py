"""Parametric KL-regularised fine-tuning (PI-FT, part 2) and its baselines, scored against the
exact tilted target ``p* ∝ p0 exp(r / beta)``.

- :mod:`.targets`     closed-form tilted targets (linear / quadratic rewards on Gaussian
  mixtures) and a quadrature target for any reward in 1-D/2-D;
- :mod:`.budget`      the compute counter shared by every method (network evaluations, reward
  evaluations, wall time);
- :mod:`.nets`        control networks ``u_theta(t, y)`` and value critics ``V_phi(t, y)``;
- :mod:`.parametric`  the trainer: parametric PI-FT and the three baselines (DRaFT-style reward
  backpropagation, DPOK-style policy gradient, Adjoint Matching) behind one interface;
- :mod:`.metrics`     reward, path KL, W2 to p* beside its noise floor, control error;
- :mod:`.optimum`     the T-step optimum by grid PI-FT (the yardstick of the control error) and
  the mode weights that show how far that optimum is from p* at finite T;
- :mod:`.classifier`  a small digit classifier, its class log-probability as a reward, and the
  diversity scores of the digits experiment, a judge CNN and the quality scores of a digit model;
- :mod:`.pretrained`  the book's shared pre-trained digit U-Net (train once or load the cached
  artifact, strided sub-chain);
- :mod:`.images`      a trained image score model (the core's SmallUNet) as the pre-trained chain;
- :mod:`.lora`        the large-model path: diffusers UNets with peft LoRA adapters;
- :mod:`.ddp`         the same trainer under ``torchrun`` with DistributedDataParallel.
"""
