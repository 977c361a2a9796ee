"""diffctrl: diffusion models seen through stochastic control.

The installable package behind the companion book. Every algorithm a notebook uses lives here;
notebooks only set parameters, call into this package and plot.

Subpackages are named after the mathematical objects they hold:

- ``diffusion``    noise schedules, forward process, exact scores, score models, samplers, metrics
- ``control``      the KL-regularised controlled DDPM chain, the exact LQ solver, PI-FT
- ``lqr``          policy gradient for nearly linear-quadratic regulators
- ``score_theory`` score estimation as regression, two-layer networks and their NTK
- ``gradients``    gradient estimators for parameterised SDE controls

Book plumbing: ``profiles`` (parameter profiles), ``results`` (the results record),
``runtime`` (devices, seeds, versions), ``pipeline`` (jupytext -> papermill -> Jupyter Book).
"""

__version__ = "0.1.0"
