"""The registry of the four estimators: each is unbiased against the exact gradient of the
linear LQ problem, its path-averaged mode gives the mean of its per-path samples, and bad
arguments raise clear errors."""

import pytest
import torch

from diffctrl.gradients import (
    METHODS,
    estimate_gradient,
    generator_gradient,
)
from diffctrl.gradients.references import (
    lq_exact_gradient,
)
from diffctrl.stats import coordinate_z, hotelling_test

F64 = torch.float64


@pytest.mark.parametrize("method", METHODS)
def test_unbiased_on_linear_lq(linear_lq, method):
    """Each estimator's mean vs the exact gradient of the Euler chain's expected cost."""
    problem, theta = linear_lq
    N, M = 10, 3000
    exact = lq_exact_gradient(problem, theta, n_steps=N)
    est = estimate_gradient(
        method,
        problem,
        theta,
        n_paths=M,
        n_steps=N,
        generator=torch.Generator().manual_seed(11),
    )
    z = coordinate_z(est.samples, exact)
    assert z.abs().max() < 4, z
    assert hotelling_test(est.samples, exact)["p"] > 1e-3


@pytest.mark.parametrize("method", METHODS)
def test_path_mean_mode_matches_per_path_mean(mlp_lq, method):
    problem, theta = mlp_lq
    kw = dict(n_paths=6, n_steps=5)
    a = estimate_gradient(
        method, problem, theta, generator=torch.Generator().manual_seed(7), **kw
    )
    b = estimate_gradient(
        method,
        problem,
        theta,
        generator=torch.Generator().manual_seed(7),
        per_path=False,
        **kw,
    )
    assert b.samples is None
    torch.testing.assert_close(a.mean, b.mean, rtol=1e-9, atol=1e-11)
    with pytest.raises(ValueError, match="per_path=True"):
        _ = b.stderr


def test_estimators_reject_bad_arguments(linear_lq):
    problem, theta = linear_lq
    for method in METHODS:
        with pytest.raises(ValueError, match="n_steps must be an int >= 1"):
            estimate_gradient(method, problem, theta, n_paths=4, n_steps=0)
        with pytest.raises(ValueError, match="n_paths must be an int >= 1"):
            estimate_gradient(method, problem, theta, n_paths=0, n_steps=3)
        with pytest.raises(ValueError, match="theta must have shape"):
            estimate_gradient(method, problem, theta[:-1], n_paths=4, n_steps=3)
        with pytest.raises(ValueError, match="noise must have shape"):
            estimate_gradient(
                method, problem, theta, noise=torch.zeros(3, 4, 1, dtype=F64)
            )
    with pytest.raises(ValueError, match="method must be one of"):
        estimate_gradient("ipa", problem, theta, n_paths=4, n_steps=3)
    with pytest.raises(ValueError, match=r"kappa must lie in \[0, 2\]"):
        generator_gradient(
            problem, theta, n_paths=4, n_steps=3, kappa=torch.full((4,), 3)
        )
    with pytest.raises(ValueError, match="kappa must be an integer tensor"):
        generator_gradient(problem, theta, n_paths=4, n_steps=3, kappa=torch.zeros(5))
