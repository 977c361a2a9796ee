"""Gradient estimators for highly parameterised SDE controls.

Wang, Blanchet & Glynn, "An Efficient High-dimensional Gradient Estimator for Stochastic
Differential Equations" (NeurIPS 2024, arXiv 2407.10065), and the methods it compares with
(chapter ``book/gradient_estimators.md``).

- ``sde``                controlled SDEs, Euler–Maruyama batched over paths, x-derivatives
- ``networks``           MLPs on a flat parameter vector (any width), hand-written forward mode
- ``problems``           the point-mass LQ problem, CIR, ReLU drift, a volatility network
- ``estimate``           the result of every estimator, ``GradientEstimate``
- ``generator_gradient`` the generator gradient (GG), the paper's estimator
- ``pathwise``           pathwise differentiation, forward sensitivities and reverse mode
- ``likelihood_ratio``   the likelihood-ratio (score-function) estimator
- ``estimators``         the registry of the four estimators, one call for all
- ``references``         exact LQ and CIR gradients of the Euler chain, finite differences
- ``costs``              network passes, flops, peak memory, wall time; the runtime-vs-n sweep
- ``optimise``           policy optimisation driven by an estimator
- ``tables``             rows of dicts as Markdown / HTML tables

The chapter's experiments, record values and verdicts are in ``experiments`` (the drivers),
``summaries`` (record values, printed summaries) and ``analysis`` (verdicts); the hypothesis
tests are in :mod:`diffctrl.stats`.
"""

from .costs import (
    benchmark_estimators,
    count_flops,
    count_network_calls,
    count_work,
    network_eval_flops,
    peak_memory,
    predicted_bytes,
    time_call,
    time_methods,
)
from .estimate import (
    GradientEstimate,
)
from .estimators import (
    ESTIMATORS,
    METHODS,
    estimate_gradient,
    state_dimension,
)
from .generator_gradient import (
    generator_gradient,
)
from .likelihood_ratio import (
    likelihood_ratio,
)
from .networks import (
    ACTIVATIONS,
    MLP,
    CallCounter,
    mlp_width_for,
)
from .optimise import (
    optimise_policy,
)
from .pathwise import (
    pathwise_forward,
    pathwise_reverse,
)
from .problems import (
    cir,
    point_mass_lq,
    relu_drift,
    volatility_net,
)
from .references import (
    cir_exact_cost,
    finite_difference_gradient,
    lq_exact_cost,
    lq_exact_gradient,
)
from .sde import (
    ControlledSDE,
    brownian_increments,
    check_steps,
    check_theta,
    euler_step,
    path_costs,
    resolve_noise,
    simulate,
    time_grid,
    value_and_x_derivatives,
)
from .tables import (
    html_table,
    markdown_table,
)

__all__ = [
    "ACTIVATIONS",
    "benchmark_estimators",
    "brownian_increments",
    "CallCounter",
    "check_steps",
    "check_theta",
    "cir",
    "cir_exact_cost",
    "ControlledSDE",
    "count_flops",
    "count_network_calls",
    "count_work",
    "estimate_gradient",
    "ESTIMATORS",
    "euler_step",
    "finite_difference_gradient",
    "generator_gradient",
    "GradientEstimate",
    "html_table",
    "likelihood_ratio",
    "lq_exact_cost",
    "lq_exact_gradient",
    "markdown_table",
    "METHODS",
    "MLP",
    "mlp_width_for",
    "network_eval_flops",
    "optimise_policy",
    "path_costs",
    "pathwise_forward",
    "pathwise_reverse",
    "peak_memory",
    "point_mass_lq",
    "predicted_bytes",
    "relu_drift",
    "resolve_noise",
    "simulate",
    "state_dimension",
    "time_call",
    "time_grid",
    "time_methods",
    "value_and_x_derivatives",
    "volatility_net",
]
