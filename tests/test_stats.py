"""The shared statistics (``diffctrl.stats``): log-log fits against exact power laws (numpy
arrays and CPU tensors alike), Hotelling's test against scipy's one-sample t-test (p = 1) and
its behaviour under H0, the two-sample test, and the input checks."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from diffctrl.stats import (
    coordinate_z,
    hotelling_test,
    loglog_fit,
    loglog_slope,
    mean_and_se,
    two_sample_test,
)


@pytest.mark.parametrize("kind", ["list", "numpy", "torch"])
def test_loglog_fit_recovers_a_power_law(kind):
    x = np.array([10.0, 20.0, 40.0, 80.0])
    y = 3.0 * x[:, None] ** -0.6 * np.ones((1, 2))
    if kind == "torch":
        x, y = torch.as_tensor(x), torch.as_tensor(y)
    elif kind == "list":
        x, y = x.tolist(), y.tolist()
    slope, icpt = loglog_fit(x, y)
    assert slope == pytest.approx(-0.6, abs=1e-12)
    assert icpt == pytest.approx(math.log(3.0), abs=1e-12)
    assert loglog_slope(x, y) == slope
    with pytest.raises(ValueError, match="positive"):
        loglog_fit(x, -np.asarray(y))


def test_loglog_slope_is_the_least_squares_slope_of_the_logs():
    # against scipy's linear regression on noisy data, one column
    rng = np.random.default_rng(0)
    x = np.geomspace(1, 1e3, 9)
    y = 2 * x**-1.5 * np.exp(0.1 * rng.standard_normal(9))
    ref = stats.linregress(np.log(x), np.log(y))
    assert loglog_slope(torch.as_tensor(x), torch.as_tensor(y)) == pytest.approx(
        ref.slope, rel=1e-12
    )
    assert loglog_fit(x, y)[1] == pytest.approx(ref.intercept, rel=1e-12)
    with pytest.raises(ValueError, match="length >= 2"):
        loglog_slope([1.0], [1.0])


def test_mean_and_se():
    a = np.arange(10.0).reshape(5, 2)
    m, se = mean_and_se(a)
    np.testing.assert_allclose(m, a.mean(0))
    np.testing.assert_allclose(se, stats.sem(a, axis=0))
    with pytest.raises(ValueError, match="two samples"):
        mean_and_se(a[:1])


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


def test_stats_refuse_nan_samples_and_agree_with_scipy():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g, dtype=torch.float64)
    y = torch.randn(150, 3, generator=g, dtype=torch.float64) + 0.1
    bad = x.clone()
    bad[5, 1] = float("nan")
    with pytest.raises(ValueError, match="samples has non-finite"):
        coordinate_z(bad, torch.zeros(3))
    with pytest.raises(ValueError, match="ref has non-finite"):
        hotelling_test(x, torch.tensor([0.0, float("nan"), 0.0]))
    with pytest.raises(ValueError, match="a has non-finite"):
        two_sample_test(bad, y)
    with pytest.raises(ValueError, match="samples needs at least 2 rows"):
        coordinate_z(x[:1], torch.zeros(3))
    with pytest.raises(ValueError, match=r"ref_se must have shape \(3,\)"):
        coordinate_z(x, torch.zeros(3), ref_se=torch.ones(2))
    # well formed: the z-scores are one-sample t statistics (scipy)
    z = coordinate_z(x, torch.zeros(3, dtype=torch.float64))
    t = stats.ttest_1samp(x.numpy(), 0.0).statistic
    assert torch.allclose(z, torch.as_tensor(t), rtol=1e-10)
