"""The registry of the estimators of ``grad_theta E[C]`` for a controlled SDE (each returning
per-path samples): ``ESTIMATORS`` maps a method name to its function, :func:`estimate_gradient`
dispatches.

All four target the gradient of the *discretised* objective ``E[C]`` of the Euler–Maruyama
chain (``sde.py``), and all accept the same arguments::

    estimate_gradient(method, problem, theta, n_paths=M, n_steps=N, generator=gen)
    -> GradientEstimate(mean (n,), samples (M, n) or None, cost (M,), ...)

- ``"gg"`` :func:`~diffctrl.gradients.generator_gradient.generator_gradient`: the generator
  gradient of Wang, Blanchet & Glynn (NeurIPS 2024, Thm. 1), in the discrete-time form derived in the chapter:
  pick ``kappa ~ U{0..N-1}`` per path and return
  ``T grad_theta[rho + mu . lambda + tr(sigma' H sigma) / 2](t_kappa, X_kappa)
  + grad_theta g(X_N)``, where ``lambda`` and ``H`` are the pathwise gradient / Hessian of the
  cost-to-go with respect to ``X_{kappa+1}``, carried by the first (d x d) and second
  (d x d x d) variation processes of the continuation of the same path. One VJP through the
  network per estimate.
- ``"pathwise_forward"`` :func:`~diffctrl.gradients.pathwise.pathwise_forward`: forward
  sensitivities ``Y = dX/dtheta`` (the ``d + d n``-dimensional SDE the paper compares with).
- ``"pathwise_reverse"`` :func:`~diffctrl.gradients.pathwise.pathwise_reverse`: reverse-mode
  autograd through the path.
- ``"lr"`` :func:`~diffctrl.gradients.likelihood_ratio.likelihood_ratio`: the score-function
  (likelihood ratio) estimator; it refuses a theta-dependent sigma and a drift whose
  theta-dependence leaves sigma's range.
"""

from __future__ import annotations

import torch

from .estimate import GradientEstimate
from .generator_gradient import generator_gradient
from .likelihood_ratio import likelihood_ratio
from .pathwise import pathwise_forward, pathwise_reverse
from .sde import ControlledSDE

__all__ = ["ESTIMATORS", "METHODS", "estimate_gradient", "state_dimension"]

METHODS = ("gg", "pathwise_forward", "pathwise_reverse", "lr")


ESTIMATORS = {
    "gg": generator_gradient,
    "pathwise_forward": pathwise_forward,
    "pathwise_reverse": pathwise_reverse,
    "lr": likelihood_ratio,
}


def estimate_gradient(
    method: str, problem: ControlledSDE, theta: torch.Tensor, **kwargs
) -> GradientEstimate:
    """Dispatch to one of ``METHODS`` (same keyword arguments for all)."""
    if method not in ESTIMATORS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return ESTIMATORS[method](problem, theta, **kwargs)


def state_dimension(method: str, problem: ControlledSDE) -> int:
    """Numbers carried forward per path by the simulation (the paper's cost measure).

    GG: ``d + d^2`` (``+ d^3`` when sigma depends on theta); forward sensitivities
    ``d + d n``; reverse mode and LR carry ``d`` forward but store the whole path
    (``(N + 1) d`` plus the network activations) for the backward pass.
    """
    d, n = problem.d, problem.n_params
    if method == "gg":
        return d + d * d + (d**3 if problem.sigma_depends_on_theta else 0)
    if method == "pathwise_forward":
        return d + d * n
    if method in ("pathwise_reverse", "lr"):
        return d
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
