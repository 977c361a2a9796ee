"""ARMA: exact autocovariance against statsmodels, paths, argument checks."""

import numpy as np
import pytest
import torch
from statsmodels.tsa.arima_process import ArmaProcess

from diffctrl.sequential.arma import (
    ARMA,
    arma_acf,
    arma_acov,
    arma_cov,
    arma_paths,
    fit_ar1,
    psi_weights,
)

PROCS = [
    ARMA((0.8,)),
    ARMA((0.5,), (0.4,)),
    ARMA((1.5, -0.56), (0.4,)),
    ARMA((), (0.7, -0.2)),
    ARMA((0.3, 0.2, -0.1), (0.5,), sigma=2.0),
]


def _sm(proc):
    return ArmaProcess(np.r_[1, -np.array(proc.phi)], np.r_[1, np.array(proc.theta)])


@pytest.mark.parametrize("proc", PROCS, ids=str)
def test_acf_equals_statsmodels(proc):
    ours = arma_acf(proc, 20).numpy()
    assert np.allclose(ours, _sm(proc).acf(21), atol=1e-12)


@pytest.mark.parametrize("proc", PROCS, ids=str)
def test_acov_equals_statsmodels_and_psi_sum(proc):
    sm = _sm(proc)
    assert np.allclose(
        arma_acov(proc, 10).numpy(), proc.sigma**2 * sm.acovf(11), atol=1e-10
    )
    # gamma(0) = sigma^2 sum psi_j^2 (MA(infinity) representation)
    assert np.allclose(psi_weights(proc, 12), sm.arma2ma(12), atol=1e-12)
    psi = psi_weights(proc, 3000)
    assert float(arma_acov(proc, 0)[0]) == pytest.approx(
        proc.sigma**2 * (psi**2).sum(), rel=1e-9
    )


def test_stationary_and_burnin_paths_have_the_exact_covariance():
    proc = ARMA((0.5,), (0.4,))
    cov = arma_cov(proc, 5)
    n = 40_000
    for start in ("stationary", "burnin"):
        x = arma_paths(
            proc, 5, n, torch.Generator().manual_seed(0), start=start, burnin=200
        )
        emp = torch.cov(x.T)
        # Monte Carlo: sd of a sample covariance entry <= sqrt(2) max var / sqrt(n)
        tol = 5 * 2**0.5 * float(cov.diagonal().max()) / n**0.5
        assert float((emp - cov).abs().max()) < tol, start


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="phi=.*not stationary"):
        ARMA((1.0,))
    with pytest.raises(ValueError, match="phi=.*not stationary"):
        ARMA((0.5, 0.6))
    with pytest.raises(ValueError, match="theta=.*not invertible"):
        ARMA((0.5,), (1.2,))
    with pytest.raises(ValueError, match="sigma"):
        ARMA((0.5,), sigma=0.0)
    with pytest.raises(ValueError, match="nlags"):
        arma_acov(ARMA((0.5,)), -1)
    with pytest.raises(ValueError, match="start"):
        arma_paths(ARMA((0.5,)), 4, 2, start="zero")
    with pytest.raises(ValueError, match="L must be"):
        arma_cov(ARMA((0.5,)), 0)


def test_fit_ar1_is_statsmodels_yule_walker_on_one_path_and_consistent_on_many():
    from statsmodels.regression.linear_model import yule_walker

    g = torch.Generator().manual_seed(3)
    x = arma_paths(ARMA((0.7,), sigma=1.5), 400, 1, generator=g) + 2.0
    proc, m = fit_ar1(x)
    rho, sigma = yule_walker(x[0].numpy(), order=1, method="adjusted", demean=True)
    assert proc.phi[0] == pytest.approx(float(rho[0]), rel=1e-10)
    assert proc.sigma == pytest.approx(float(sigma), rel=1e-10)
    assert m == pytest.approx(float(x.mean()), rel=1e-12)
    # 4000 stationary paths of 40: phi and sigma within a few standard errors
    many, _ = fit_ar1(arma_paths(ARMA((0.95,)), 40, 4000, generator=g))
    assert many.phi[0] == pytest.approx(0.95, abs=0.005)
    assert many.sigma == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueError, match="paths"):
        fit_ar1(torch.zeros(5))
