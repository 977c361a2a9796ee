"""Policy gradient for nearly linear-quadratic regulators (Han, Razaviyayn, Xu; arXiv 2303.08431).

- ``system``          the nearly-LQ system, kernels ``phi``, policies, batched rollouts, cost
- ``riccati``         DARE, LQR gain, the ``K^lin`` initialisation, exact LQ costs
- ``policy_gradient`` zeroth-order and autograd gradients, the policy-gradient loop
- ``landscape``       the optimum by damped Newton, autograd Hessians, observed rates
- ``identification``  least-squares estimates of ``(A, B, C)`` (the model-free variant)
- ``experiments``     batched drivers of the chapter's experiments (many runs at once)
"""

from .experiments import (
    RunSpec,
    cancellation_policy,
    initial_policy,
    reference_optima,
    run_pg_batch,
)
from .identification import (
    collect_transitions,
    estimate_system,
    least_squares,
    model_free_k_lin,
)
from .landscape import cost_hessian, hessian_extremes, observed_rate, optimal_policy
from .policy_gradient import (
    PGResult,
    evaluate_iterates,
    exact_gradient,
    policy_gradient,
    random_stabilizing_policy,
    sample_sphere,
    smoothed_gradient,
    zeroth_order_gradient,
)
from .riccati import k_lin, linear_part_optimal, lqr_cost, lqr_gain, solve_dare
from .system import (
    Kernel,
    NearlyLQ,
    check_policy,
    check_stabilizing,
    closed_loop_matrix,
    closed_loop_radius,
    cost,
    features,
    join_policy,
    kernel_jacobian_at_zero,
    make_system,
    product_kernel,
    random_system,
    rollout,
    sample_x0,
    sine_kernel,
    sphere_points,
    split_policy,
    stack_kernels,
    stack_systems,
)

__all__ = [
    "Kernel",
    "NearlyLQ",
    "PGResult",
    "RunSpec",
    "cancellation_policy",
    "check_policy",
    "check_stabilizing",
    "closed_loop_matrix",
    "closed_loop_radius",
    "collect_transitions",
    "cost",
    "cost_hessian",
    "estimate_system",
    "evaluate_iterates",
    "exact_gradient",
    "features",
    "hessian_extremes",
    "initial_policy",
    "join_policy",
    "k_lin",
    "kernel_jacobian_at_zero",
    "least_squares",
    "linear_part_optimal",
    "lqr_cost",
    "lqr_gain",
    "make_system",
    "model_free_k_lin",
    "observed_rate",
    "optimal_policy",
    "policy_gradient",
    "product_kernel",
    "random_stabilizing_policy",
    "random_system",
    "reference_optima",
    "rollout",
    "run_pg_batch",
    "sample_sphere",
    "sample_x0",
    "sine_kernel",
    "smoothed_gradient",
    "solve_dare",
    "sphere_points",
    "split_policy",
    "stack_kernels",
    "stack_systems",
    "zeroth_order_gradient",
]
