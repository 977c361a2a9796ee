"""One regression problem: shapes, determinism, the mixture's geometry, checkpoints."""

import pytest
import torch

from diffctrl.score_theory import (
    bimodal_mixture,
    log_checkpoints,
    make_problem,
)


def test_problem_and_mixture():
    data = bimodal_mixture(3, separation=2.0, var=0.25)
    torch.testing.assert_close(
        data.means[0].norm(), torch.tensor(2.0, dtype=torch.float64)
    )
    prob = make_problem(data, 40, 10, 50, 1e-3, 1.0, seed=0)
    assert (
        prob.z.shape == (40, 5)
        and prob.y.shape == (40, 3)
        and prob.f_test.shape == (50, 3)
    )
    assert prob.z_val.shape == (10, 5) and prob.n == 40 and prob.d == 3
    assert 0 < prob.sigma2 < float(data.cov().diagonal().sum())
    again = make_problem(data, 40, 10, 50, 1e-3, 1.0, seed=0)
    torch.testing.assert_close(prob.z, again.z)
    assert log_checkpoints(100, 5) == [0, 1, 3, 10, 32, 100]
    with pytest.raises(ValueError, match="d must be"):
        bimodal_mixture(0)
