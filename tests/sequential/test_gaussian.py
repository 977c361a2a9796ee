"""Exact Gaussian conditionals, truncation, the oracle sampler."""

import numpy as np
import pytest
import torch
from scipy import stats

from diffctrl.sequential.arma import ARMA, arma_acf, arma_cov
from diffctrl.sequential.gaussian import (
    check_d_trunc,
    conditionals,
    oracle_sample,
    sequential_law,
)
from diffctrl.sequential.gp import fbm_kernel, gp_cov, grid
from diffctrl.sequential.metrics import empirical_acf


def _direct(cov, k, idx):
    """Gaussian conditioning by the Schur complement: X_k | X_idx."""
    S = cov.numpy()
    Sxx = S[np.ix_(idx, idx)]
    b = np.linalg.solve(Sxx, S[idx, k])
    return b, S[k, k] - S[k, idx] @ b


@pytest.mark.parametrize(
    "kernel,params",
    [
        ("rbf", dict(lengthscale=0.3)),
        ("matern32", dict(lengthscale=0.2)),
        ("fbm", dict(hurst=0.25)),
    ],
)
def test_gp_conditionals_equal_direct_conditioning(kernel, params):
    cov = gp_cov(kernel, 9, nugget=1e-2 if kernel == "rbf" else 0.0, **params)
    for d in (None, 1, 3):
        B, v = conditionals(cov, d)
        for k in range(9):
            lo = 0 if d is None else max(0, k - d)
            b, var = _direct(cov, k, list(range(lo, k)))
            assert np.allclose(B[k, lo:k].numpy(), b, atol=1e-9)
            assert np.allclose(B[k, :lo].numpy(), 0.0)
            assert float(v[k]) == pytest.approx(var, rel=1e-9)


def test_full_history_sequential_law_is_the_target_and_truncation_is_not():
    cov = gp_cov("fbm", 8, hurst=0.2)
    assert torch.allclose(sequential_law(*conditionals(cov)), cov, atol=1e-12)
    trunc = sequential_law(*conditionals(cov, 1))
    assert float((trunc - cov).abs().max()) > 1e-3
    # Brownian motion (H = 1/2) is Markov: one entry of history is exact
    bm = gp_cov("fbm", 8, hurst=0.5)
    assert torch.allclose(sequential_law(*conditionals(bm, 1)), bm, atol=1e-12)
    s = grid(8)
    assert torch.allclose(bm, torch.minimum(s[:, None], s[None, :]), atol=1e-12)


def test_oracle_acf_matches_within_monte_carlo_tolerance():
    proc = ARMA((0.5,), (0.4,))
    L, n = 12, 20_000
    x = oracle_sample(arma_cov(proc, L), n, generator=torch.Generator().manual_seed(1))
    rho_hat = empirical_acf(x, 3).numpy()
    rho = arma_acf(proc, 3).numpy()
    # pooled over L positions: the effective sample size is at least n; 5 sd of 1/sqrt(n)
    assert np.abs(rho_hat - rho).max() < 5 / n**0.5
    # and the marginal of the last entry is N(0, gamma(0)) (KS test)
    g0 = float(arma_cov(proc, 1)[0, 0])
    assert stats.kstest(x[:, -1].numpy() / g0**0.5, "norm").pvalue > 1e-3


def test_oracle_is_adapted_bitwise():
    cov = gp_cov("matern32", 6)
    z = torch.randn(
        50, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    z2 = z.clone()
    z2[:, 3:] = torch.randn(50, 3, dtype=torch.float64)
    a, b = oracle_sample(cov, 50, z=z), oracle_sample(cov, 50, z=z2)
    assert torch.equal(a[:, :3], b[:, :3]) and not torch.equal(a[:, 3:], b[:, 3:])


def test_bad_arguments():
    with pytest.raises(ValueError, match="d_trunc"):
        check_d_trunc(0, 5)
    with pytest.raises(ValueError, match="d_trunc"):
        conditionals(torch.eye(3, dtype=torch.float64), d_trunc=-2)
    with pytest.raises(ValueError, match="not positive definite"):
        conditionals(torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="hurst"):
        fbm_kernel(grid(3), grid(3), hurst=1.0)
    with pytest.raises(ValueError, match="hurst"):
        gp_cov("fbm", 4, hurst=0.0)
    with pytest.raises(ValueError, match="kernel .* not positive definite"):
        gp_cov(lambda s, t: -(s[:, None] - t[None, :]).abs(), 5)
    with pytest.raises(ValueError, match="lengthscale"):
        gp_cov("rbf", 4, lengthscale=-1.0)
    with pytest.raises(ValueError, match="unknown kernel"):
        gp_cov("cauchy", 4)
    with pytest.raises(TypeError, match="kernel"):
        gp_cov(3, 4)
