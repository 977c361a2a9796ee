"""Gradient estimators for highly parameterised SDE controls.

Wang, Blanchet & Glynn, "An Efficient High-dimensional Gradient Estimator for Stochastic
Differential Equations" (NeurIPS 2024, arXiv 2407.10065), and the methods it compares with.

- ``networks``    MLPs on a flat parameter vector (any width), hand-written forward mode
- ``sde``         controlled SDEs, Euler–Maruyama batched over paths, x-derivatives
- ``problems``    the point-mass LQ problem, CIR, ReLU drift, a volatility network
- ``estimators``  generator gradient, pathwise (forward / reverse), likelihood ratio
- ``references``  exact LQ and CIR gradients of the Euler chain, finite differences
- ``stats``       z-scores, Hotelling's test, two-sample test
- ``costs``       network passes, flops, peak memory, wall time; the runtime-vs-n sweep
- ``optimise``    policy optimisation driven by an estimator
- ``experiments`` the chapter's experiments, one function per question
"""
