"""diffctrl: diffusion models seen through stochastic control.

The installable package behind the companion book: what a reader imports. Every algorithm a
notebook uses lives here; notebooks only set parameters, call into this package and plot.
Symbols, indices and array layouts follow the book's chapter *Notation and conventions*
(``book/notation.md``); the API reference (``book/api.md``) is generated from these docstrings.

Subpackages are named after the mathematical objects they hold:

- ``diffusion``    noise schedules, forward process, exact scores, score models, samplers, metrics
- ``control``      the KL-regularised controlled DDPM chain, the exact LQ solver, PI-FT
- ``finetune``     parametric PI-FT and its baselines; ``finetune.large``: LoRA, Stable
  Diffusion, DDP training (the ``large`` extra)
- ``digits``       the book's pre-trained digit U-Net, digit classifiers, image helpers
- ``lqr``          policy gradient for nearly linear-quadratic regulators
- ``score_theory`` score estimation as regression, two-layer networks and their NTK
- ``gradients``    gradient estimators for parameterised SDE controls
- ``sequential``   adapted sequential data generation
- ``fusion``       fusing diffusion models through KL barycenters
- ``repro``        the notebook harness: parameter profiles, claims and verdicts, the results
  record, devices, seeds and versions

A chapter's ``experiments`` / ``analysis`` modules run its experiments and judge its claims;
they are the only modules besides ``repro`` that import ``repro``. Shared: ``checks`` (shape
and finiteness checks of rewards and data), ``stats``, ``atomic`` (atomic file writes). The
book's build tool is a separate distribution (``lib/diffctrl_book``, the ``diffctrl-book``
command) that imports this package; this package never imports it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
