import numpy as np
import ot
import pytest
import torch
from scipy.stats import wasserstein_distance

from diffctrl.diffusion import metrics


def test_gaussian_kl_1d_closed_form():
    kl = metrics.gaussian_kl(
        torch.tensor([1.0]),
        torch.tensor([[2.0]]),
        torch.tensor([0.0]),
        torch.tensor([[1.0]]),
    )
    assert kl == pytest.approx(0.5 * (2.0 + 1.0 - 1 - np.log(2.0)))


def test_gaussian_kl_zero_and_positive():
    S = torch.tensor([[1.0, 0.3], [0.3, 0.5]])
    m = torch.tensor([0.2, -1.0])
    assert metrics.gaussian_kl(m, S, m, S) == pytest.approx(0.0, abs=1e-12)
    assert metrics.gaussian_kl(m, S, m + 0.1, S * 1.1) > 0


def test_gaussian_w2_against_pot():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 3))
    B = rng.standard_normal((3, 3))
    S1, S2 = A @ A.T + np.eye(3), B @ B.T + 0.5 * np.eye(3)
    m1, m2 = rng.standard_normal(3), rng.standard_normal(3)
    ref = float(np.sqrt(ot.gaussian.bures_wasserstein_distance(m1, m2, S1, S2) ** 2))
    ours = metrics.gaussian_w2(
        torch.tensor(m1), torch.tensor(S1), torch.tensor(m2), torch.tensor(S2)
    )
    assert ours == pytest.approx(ref, rel=1e-6)


def test_w1_1d_against_scipy():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(500), rng.standard_normal(500) + 0.3
    assert metrics.w1_1d(torch.tensor(x), torch.tensor(y)) == pytest.approx(
        wasserstein_distance(x, y), rel=1e-10
    )
    assert metrics.ot_distance(torch.tensor(x), torch.tensor(y), p=1) == pytest.approx(
        wasserstein_distance(x, y), rel=1e-6
    )


def test_ot_w2_of_a_shift():
    x = torch.randn(
        200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    assert metrics.ot_distance(x, x + torch.tensor([3.0, 4.0])) == pytest.approx(
        5.0, rel=1e-9
    )


def test_sliced_and_mmd_detect_difference():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 2, generator=g, dtype=torch.float64)
    y = torch.randn(2000, 2, generator=g, dtype=torch.float64)
    z = y + torch.tensor([1.0, 0.0])
    # a shift by v has sliced W2 = |v| sqrt(E cos^2) = |v| / sqrt(2) in 2-D
    sw = metrics.sliced_wasserstein(x, z, n_projections=2000, generator=g)
    assert sw == pytest.approx(1 / np.sqrt(2), abs=0.06)
    assert metrics.sliced_wasserstein(x, y, generator=g) < 0.1
    assert abs(metrics.mmd2(x[:500], y[:500])) < 0.01 < metrics.mmd2(x[:500], z[:500])


def test_shape_errors():
    with pytest.raises(ValueError, match="equal d"):
        metrics.ot_distance(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="mean must be"):
        metrics.gaussian_kl(torch.zeros(2), torch.eye(3), torch.zeros(2), torch.eye(2))
