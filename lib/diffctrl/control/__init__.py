"""KL-regularised fine-tuning of diffusion models as stochastic control (PI-FT).

Han, Razaviyayn, Xu, "Stochastic Control for Fine-tuning Diffusion Models: Optimality,
Regularity, and Convergence" (ICML 2025, arXiv 2412.18164); our reading and notation in
``book/notation.md`` (*The controlled chain*, *The tilted target and the Bellman recursion*).
In the order of the chapters:

- :mod:`.rewards`   quadratic/linear (the LQ class), bump and log-sigmoid rewards, with
  gradients;
- :mod:`.chain`     the controlled DDPM chain, the KL cost, Monte Carlo of the objective J(u);
- :mod:`.bellman`   the Bellman bracket of one step, Bellman and first-order-condition residuals;
- :mod:`.moments`   Gaussian moments of quadratic values and affine controls;
- :mod:`diffctrl.control.riccati`   one exact Bellman step of the LQ case (Riccati-type), policy evaluation;
- :mod:`.affine_policy` an affine control with its exact value and laws;
- :mod:`.lq`        the LQ problem, its exact optimum, the pre-trained policy, random problems;
- :mod:`.tilted`    the tilted target p* in closed form (Gaussian, Gaussian mixture);
- :mod:`.continuous` the continuous-time limit: Riccati ODEs of the HJB equation, Cole-Hopf
  value;
- :mod:`.rates`     contraction rates of the (damped) improvement iteration, predicted and
  measured;
- :mod:`.pift_affine` PI-FT in the LQ class (exact);
- :mod:`.grid`      Catmull-Rom interpolation, Gauss-Hermite quadrature, finite-difference
  Lipschitz constants on 1-D/2-D grids;
- :mod:`.pift`      PI-FT with values on a grid (any score, any reward);
- :mod:`.policy_iteration` plain (outer) policy iteration, the comparison;
- :mod:`.regularity` [ours] Lipschitz bounds of the iterates and measured/bound ratios;
- :mod:`.analysis`  the sweeps behind the chapters' figures;
- :mod:`.lq_experiments`, :mod:`.wellposed_experiments`, :mod:`.convergence_experiments`,
  :mod:`.regularity_experiments`, :mod:`.lipschitz_bound_analysis`,
  :mod:`.regularity_analysis`: the chapters' experiments and the verdicts on their claims
  (not re-exported here).
"""

from .affine_policy import AffinePolicy
from .bellman import bellman_residuals, foc_residuals, one_step_objective
from .chain import (
    ControlledChain,
    ObjectiveEstimate,
    Rollout,
    estimate_objective,
    kl_cost,
    simulate,
    step_sigmas,
)
from .continuous import ContinuousLQSolution, cole_hopf_value, solve_hjb_lq
from .grid import Grid, GridFunction, gauss_hermite, interpolate
from .lq import (
    LQProblem,
    evaluate_affine_policy,
    pretrained_policy,
    random_lq_problem,
    solve_lq,
)
from .moments import affine_rms, quadratic_mean, quadratic_rms
from .pift import PIFTGridResult, evaluate_grid_policy, pift_grid
from .pift_affine import (
    PIFTDivergence,
    PIFTLQResult,
    pift_lq,
    pift_lq_step,
    pift_lq_work,
)
from .policy_iteration import OuterPIResult, outer_pi_grid, outer_pi_lq
from .rates import damped_rate, lq_iteration_rate, measured_rate, optimal_damping
from .regularity import (
    a_priori_value_bounds,
    control_lipschitz_bound,
    fixed_point_value_bound,
    regularity_ratios,
    value_lipschitz_bounds,
)
from .rewards import BumpReward, LogSigmoidReward, QuadraticReward
from .riccati import bellman_step, policy_value_step
from .tilted import law_gap, tilted_gaussian, tilted_mixture

__all__ = [
    # rewards and the controlled chain
    "BumpReward",
    "LogSigmoidReward",
    "QuadraticReward",
    "ControlledChain",
    "Rollout",
    "ObjectiveEstimate",
    "estimate_objective",
    "kl_cost",
    "simulate",
    "step_sigmas",
    # one Bellman step
    "one_step_objective",
    "bellman_residuals",
    "foc_residuals",
    # the LQ case, exactly
    "quadratic_mean",
    "quadratic_rms",
    "affine_rms",
    "bellman_step",
    "policy_value_step",
    "AffinePolicy",
    "LQProblem",
    "solve_lq",
    "evaluate_affine_policy",
    "pretrained_policy",
    "random_lq_problem",
    "tilted_gaussian",
    "tilted_mixture",
    "law_gap",
    # the continuous-time limit
    "ContinuousLQSolution",
    "solve_hjb_lq",
    "cole_hopf_value",
    # PI-FT and its rates
    "damped_rate",
    "optimal_damping",
    "lq_iteration_rate",
    "measured_rate",
    "PIFTDivergence",
    "PIFTLQResult",
    "pift_lq",
    "pift_lq_step",
    "pift_lq_work",
    "Grid",
    "GridFunction",
    "gauss_hermite",
    "interpolate",
    "PIFTGridResult",
    "pift_grid",
    "evaluate_grid_policy",
    "OuterPIResult",
    "outer_pi_lq",
    "outer_pi_grid",
    # regularity
    "control_lipschitz_bound",
    "value_lipschitz_bounds",
    "fixed_point_value_bound",
    "a_priori_value_bounds",
    "regularity_ratios",
]
