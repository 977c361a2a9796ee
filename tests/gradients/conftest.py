"""Shared settings of the gradient-estimator tests."""

import pytest
import torch

from diffctrl.gradients.problems import point_mass_lq
from diffctrl.gradients.sde import brownian_increments

F64 = torch.float64


def pytest_collection_modifyitems(items):
    # torch.func's first forward-mode transform imports torch._dynamo, which warns about
    # torch.jit.script: not ours to fix.
    for item in items:
        if "tests/gradients/" in item.path.as_posix():
            item.add_marker(
                pytest.mark.filterwarnings(
                    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
                )
            )


@pytest.fixture(scope="module")
def linear_lq():
    return point_mass_lq(
        hidden=(), generator=torch.Generator().manual_seed(0), dtype=F64
    )


@pytest.fixture(scope="module")
def mlp_lq():
    return point_mass_lq(
        hidden=(8, 8, 8), generator=torch.Generator().manual_seed(0), dtype=F64
    )


def _noise_for(problem, n_steps, n_paths, seed):
    return brownian_increments(
        n_steps,
        n_paths,
        problem.m,
        problem.T / n_steps,
        torch.Generator().manual_seed(seed),
        dtype=F64,
    )


@pytest.fixture(scope="session")
def noise_for():
    """``noise_for(problem, n_steps, n_paths, seed)``: float64 Brownian increments of
    ``problem`` from a CPU generator seeded by ``seed``."""
    return _noise_for
