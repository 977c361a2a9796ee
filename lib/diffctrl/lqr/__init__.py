"""Policy gradient for nearly linear-quadratic regulators (Han, Razaviyayn, Xu; arXiv 2303.08431).

Chapter ``book/nearly_lq.md``; one module per piece of the paper:

- ``kernels``         the feature maps ``phi`` (``l sin x``, products of sines)
- ``system``          the nearly-LQ system ``x' = A x + B u + C phi(x)``, stacks, random models
- ``rollout``         policies ``u = -K [x; phi(x)]``, batched rollouts, the cost, stability
- ``riccati``         DARE, LQR gain, the ``K^lin`` initialisation, exact LQ costs
- ``zeroth_order``    the zeroth-order gradient estimator, exact and smoothed gradients
- ``policy_gradient`` the policy-gradient loop (Algorithm 1), random stabilising policies
- ``landscape``       Hessians, the optimum by (multi-start) damped Newton, linear rates
- ``identification``  least-squares estimates of ``(A, B, C)`` (the model-free variant)
- ``pg_batch``        many policy-gradient runs as one batch, and their outcomes

The chapter's experiments, record values and verdicts are in ``experiments`` (the drivers of
single questions), ``analysis`` (the batch of runs: Figs. 1(a) and 2), ``threshold_analysis``
(Fig. 1(b)) and ``model_free_analysis`` (the model-free variant); import them from there.
"""

from .identification import (
    collect_transitions,
    estimate_system,
    identification_curve,
    least_squares,
    model_free_k_lin,
)
from .kernels import (
    Kernel,
    product_kernel,
    sine_kernel,
    stack_kernels,
)
from .landscape import (
    cost_hessian,
    envelope_holds,
    hessian_extremes,
    observed_rate,
    optimal_policy,
    reference_optima,
)
from .pg_batch import (
    RunSpec,
    classify_runs,
    initial_policy,
    majority_outcome,
    outcome_grid,
    run_pg_batch,
    select_runs,
)
from .policy_gradient import (
    PGResult,
    evaluate_iterates,
    policy_gradient,
    random_stabilizing_policy,
)
from .riccati import (
    cancellation_policy,
    k_lin,
    linear_part_optimal,
    lqr_cost,
    lqr_gain,
    solve_dare,
)
from .rollout import (
    check_policy,
    check_stabilizing,
    closed_loop_matrix,
    closed_loop_radius,
    cost,
    features,
    join_policy,
    kernel_jacobian_at_zero,
    rollout,
    sample_x0,
    sphere_points,
    split_policy,
)
from .system import (
    NearlyLQ,
    make_system,
    random_system,
    stack_systems,
)
from .zeroth_order import (
    exact_gradient,
    sample_sphere,
    smoothed_gradient,
    zeroth_order_check,
    zeroth_order_gradient,
)

__all__ = [
    "cancellation_policy",
    "check_policy",
    "check_stabilizing",
    "classify_runs",
    "closed_loop_matrix",
    "closed_loop_radius",
    "collect_transitions",
    "cost",
    "cost_hessian",
    "envelope_holds",
    "estimate_system",
    "evaluate_iterates",
    "exact_gradient",
    "features",
    "hessian_extremes",
    "identification_curve",
    "initial_policy",
    "join_policy",
    "k_lin",
    "Kernel",
    "kernel_jacobian_at_zero",
    "least_squares",
    "linear_part_optimal",
    "lqr_cost",
    "lqr_gain",
    "majority_outcome",
    "make_system",
    "model_free_k_lin",
    "NearlyLQ",
    "observed_rate",
    "optimal_policy",
    "outcome_grid",
    "PGResult",
    "policy_gradient",
    "product_kernel",
    "random_stabilizing_policy",
    "random_system",
    "reference_optima",
    "rollout",
    "run_pg_batch",
    "RunSpec",
    "sample_sphere",
    "sample_x0",
    "select_runs",
    "sine_kernel",
    "smoothed_gradient",
    "solve_dare",
    "sphere_points",
    "split_policy",
    "stack_kernels",
    "stack_systems",
    "zeroth_order_check",
    "zeroth_order_gradient",
]
