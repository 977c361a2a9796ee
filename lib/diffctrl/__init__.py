"""diffctrl: diffusion models seen through stochastic control.

The installable package behind the companion book. Every algorithm a notebook uses lives here;
notebooks only set parameters, call into this package and plot. Symbols, indices and array
layouts follow the book's chapter *Notation and conventions* (``book/notation.md``); the API
reference (``book/api.md``) is generated from these docstrings.

Subpackages are named after the mathematical objects they hold:

- ``diffusion``    noise schedules, forward process, exact scores, score models, samplers, metrics
- ``control``      the KL-regularised controlled DDPM chain, the exact LQ solver, PI-FT
- ``finetune``     parametric PI-FT and its baselines, LoRA / Stable Diffusion, DDP training
- ``lqr``          policy gradient for nearly linear-quadratic regulators
- ``score_theory`` score estimation as regression, two-layer networks and their NTK
- ``gradients``    gradient estimators for parameterised SDE controls
- ``sequential``   adapted sequential data generation
- ``fusion``       fusing diffusion models through KL barycenters

Shared: ``checks`` (shape and finiteness checks of rewards and data), ``stats``. Book plumbing:
``profiles`` (parameter profiles), ``results`` (the results record), ``claims`` (claims and
verdicts), ``runtime`` (devices, seeds, versions), ``pipeline`` (jupytext -> papermill ->
Jupyter Book).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
