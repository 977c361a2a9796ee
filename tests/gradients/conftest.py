"""Shared settings of the gradient-estimator tests."""

import pytest


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
