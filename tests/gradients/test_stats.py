"""Hotelling's test against scipy's one-sample t-test (p = 1) and its behaviour under H0."""

import numpy as np
import pytest
import torch
from scipy import stats

from diffctrl.gradients.stats import coordinate_z, hotelling_test


def test_one_dimensional_hotelling_is_the_t_test():
    x = (
        torch.randn(
            200, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64
        )
        + 0.1
    )
    res = hotelling_test(x, torch.zeros(1, dtype=torch.float64))
    ref = stats.ttest_1samp(x[:, 0].numpy(), 0.0)
    assert res["T2"] == pytest.approx(ref.statistic**2, rel=1e-10)
    assert res["p"] == pytest.approx(ref.pvalue, rel=1e-8)


def test_hotelling_calibrated_and_powerful():
    gen = torch.Generator().manual_seed(1)
    L = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    ps = [
        hotelling_test(
            torch.randn(300, 6, generator=gen, dtype=torch.float64) @ L.T,
            torch.zeros(6, dtype=torch.float64),
        )["p"]
        for _ in range(200)
    ]
    assert stats.kstest(ps, "uniform").pvalue > 1e-3
    shifted = torch.randn(300, 6, generator=gen, dtype=torch.float64) @ L.T + 0.5
    assert hotelling_test(shifted, torch.zeros(6, dtype=torch.float64))["p"] < 1e-6


def test_constant_coordinates_and_z():
    x = torch.randn(
        50, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    x[:, 1] = 2.0
    ref = torch.tensor([0.0, 2.0, 0.0], dtype=torch.float64)
    assert hotelling_test(x, ref)["dof"] == 2
    assert (
        hotelling_test(x, ref + torch.tensor([0, 1e-3, 0], dtype=torch.float64))["p"]
        == 0.0
    )
    z = coordinate_z(x, ref)
    assert z[1] == 0
    np.testing.assert_allclose(z[0], x[:, 0].mean() / (x[:, 0].std() / 50**0.5))
    with pytest.raises(ValueError, match="samples must be"):
        hotelling_test(x, ref[:2])


def test_two_sample_test_calibrated_and_powerful():
    from diffctrl.gradients.stats import two_sample_test

    gen = torch.Generator().manual_seed(3)
    L = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    ps = [
        two_sample_test(
            torch.randn(400, 4, generator=gen, dtype=torch.float64) @ L.T,
            2 * torch.randn(300, 4, generator=gen, dtype=torch.float64) @ L.T,
        )["p"]
        for _ in range(200)
    ]
    assert stats.kstest(ps, "uniform").pvalue > 1e-3
    a = torch.randn(400, 4, generator=gen, dtype=torch.float64) + 0.3
    assert (
        two_sample_test(a, torch.randn(400, 4, generator=gen, dtype=torch.float64))["p"]
        < 1e-6
    )
    with pytest.raises(ValueError, match="same n"):
        two_sample_test(a, a[:, :3])
