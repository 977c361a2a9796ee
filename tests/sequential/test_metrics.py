"""Sequence metrics against statsmodels and closed forms."""

import numpy as np
import pytest
import torch
from statsmodels.tsa.arima_process import ArmaProcess

from diffctrl.sequential.arma import ARMA, arma_acf, arma_cov
from diffctrl.sequential.gaussian import gaussian_paths, oracle_sample
from diffctrl.sequential.metrics import (
    assess_sample,
    assessment_table,
    conditional_errors,
    conditional_fit,
    fitted_kl,
    oracle_power,
    pacf_from_acf,
    truncated_oracle_tv,
    tv_proxy,
)
from diffctrl.stats import loglog_slope


def test_pacf_from_exact_acf_equals_statsmodels():
    proc = ARMA((1.5, -0.56), (0.4,))
    ours = pacf_from_acf(arma_acf(proc, 8)).numpy()
    assert np.allclose(ours, ArmaProcess([1, -1.5, 0.56], [1, 0.4]).pacf(9), atol=1e-10)
    # an AR(2) has zero partial autocorrelation beyond lag 2
    ar2 = pacf_from_acf(arma_acf(ARMA((1.5, -0.56)), 6)).numpy()
    assert np.allclose(ar2[3:], 0.0, atol=1e-12) and ar2[2] == pytest.approx(-0.56)


def test_conditional_fit_recovers_the_ar1_law():
    proc = ARMA((0.8,), sigma=0.5)
    x = gaussian_paths(
        arma_cov(proc, 6), 50_000, generator=torch.Generator().manual_seed(0)
    )
    b, c, v = conditional_fit(x, 5)
    assert np.allclose(b.numpy(), [0, 0, 0, 0, 0.8], atol=0.02)
    assert abs(c) < 0.01 and v == pytest.approx(0.25, rel=0.03)
    ce = conditional_errors(x, arma_cov(proc, 6))
    assert float(ce["mean_err"].max()) < 0.05
    assert np.allclose(ce["var_ratio"].numpy(), 1.0, atol=0.03)


def test_conditional_errors_see_a_wrong_law():
    cov = arma_cov(ARMA((0.8,)), 6)
    x = gaussian_paths(
        arma_cov(ARMA((0.3,)), 6), 20_000, generator=torch.Generator().manual_seed(0)
    )
    ce = conditional_errors(x, cov)
    assert float(ce["mean_err"].max()) > 0.5


def test_tv_proxy_floor_and_slope():
    cov = arma_cov(ARMA((0.5,)), 4)
    n = 20_000
    x = gaussian_paths(cov, n, generator=torch.Generator().manual_seed(3))
    # E KL(fit || truth) ~ L(L + 3) / (4n) for exact samples: the proxy is near sqrt of half that
    floor = (4 * 7 / (8 * n)) ** 0.5
    assert 0.3 * floor < tv_proxy(x, cov) < 3 * floor
    assert loglog_slope([10, 100, 1000], [1.0, 0.1, 0.01]) == pytest.approx(-1.0)


def test_truncated_oracle_tv_is_zero_for_a_markov_law_and_matches_sampling_otherwise():
    # AR(1) is Markov: the last entry carries the whole history
    assert truncated_oracle_tv(arma_cov(ARMA((0.8,)), 6), 1) < 1e-7
    # AR(2) is not: the exact value against the proxy of many truncated-oracle samples
    cov = arma_cov(ARMA((0.5, 0.4)), 5)
    exact = truncated_oracle_tv(cov, 1)
    assert exact > 0.05
    assert truncated_oracle_tv(cov, 2) < 1e-7  # an AR(2) needs two entries
    x = oracle_sample(
        cov, 200_000, d_trunc=1, generator=torch.Generator().manual_seed(0)
    )
    assert tv_proxy(x, cov) == pytest.approx(exact, rel=0.05)


def test_assess_sample_passes_exact_samples_and_fails_a_wrong_law():
    proc = ARMA((0.8,))
    cov, acf = arma_cov(proc, 6), arma_acf(proc, 5).numpy()
    tol = dict(tol_mean=0.2, tol_var=1.2, tol_acf=0.05)
    g = torch.Generator().manual_seed(1)
    good = assess_sample(gaussian_paths(cov, 20_000, generator=g), cov, acf, **tol)
    bad = assess_sample(
        gaussian_paths(arma_cov(ARMA((0.3,)), 6), 20_000, generator=g), cov, acf, **tol
    )
    assert good["pass"] and not bad["pass"]
    # largest at lag 2: 0.8^2 - 0.3^2
    assert bad["acf_err"] == pytest.approx(0.55, abs=0.03)
    ce = conditional_errors(gaussian_paths(cov, 500, generator=g), cov)
    assert len(good["var_ratio"]) == len(ce["var_ratio"]) == 5
    runs = {("AR(1)", "oracle", 0): good, ("AR(1)", "oracle", 1): bad}
    table = assessment_table(runs, {"AR(1)": ("oracle",)}, [0, 1])
    assert "passes 1/2" in table and table.startswith("AR(1)")


def test_assess_sample_fails_a_sample_with_a_blown_up_path():
    proc = ARMA((0.8,))
    cov, acf = arma_cov(proc, 6), arma_acf(proc, 5).numpy()
    x = gaussian_paths(cov, 1000, generator=torch.Generator().manual_seed(2))
    x[3, 4:] = float("inf")
    a = assess_sample(x, cov, acf, tol_mean=0.2, tol_var=1.2, tol_acf=0.05)
    assert not a["pass"] and a["nonfinite"] == pytest.approx(0.001)
    assert a["mean_err"] == a["acf_err"] == 1e300 and len(a["var_ratio"]) == 5


def test_bad_arguments():
    with pytest.raises(ValueError, match="history"):
        conditional_fit(torch.randn(10, 4), 3, history=-1)
    with pytest.raises(ValueError, match="k must lie"):
        conditional_fit(torch.randn(10, 4), 4)


def test_fitted_kl_floor_matches_its_closed_form():
    # E KL(fitted || true) for exact samples ~ L (L + 3) / (4 n) (mean + covariance terms)
    L, n = 4, 400
    cov = arma_cov(ARMA((0.8,)), L)
    g = torch.Generator().manual_seed(0)
    kls = [fitted_kl(gaussian_paths(cov, n, generator=g), cov) for _ in range(200)]
    assert np.mean(kls) == pytest.approx(L * (L + 3) / (4 * n), rel=0.2)
    assert fitted_kl(gaussian_paths(cov, n, generator=g), 4 * cov) > 0.3


def test_oracle_power_is_the_closed_form_share_at_the_variance_margin():
    # L = 2, independent entries: the statistic is |log s^2 / v| of the residual variance
    # of X_1 regressed on [1, X_0], with s^2 (n - 2) / v ~ chi2(n - 2)
    from scipy.stats import chi2

    n, tol_var = 200, 1.15
    cov = torch.diag(torch.tensor([2.0, 3.0], dtype=torch.float64))
    out = oracle_power(cov, n, 400, tol_mean=10.0, tol_var=tol_var, tol_acf=1.0, seed=3)
    exact = chi2.cdf(tol_var * (n - 2), n - 2) - chi2.cdf((n - 2) / tol_var, n - 2)
    assert out["all"] == pytest.approx(exact, abs=0.07)
    assert out["mean"] == 1.0
    with pytest.raises(ValueError, match="reps"):
        oracle_power(cov, n, 0, tol_mean=1.0, tol_var=1.5, tol_acf=1.0)
