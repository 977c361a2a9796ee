"""The quadrature barycenter against closed forms (Gaussian auxiliaries), scipy and its own samples."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from diffctrl.diffusion.exact import GaussianMixture as GM
from diffctrl.fusion import (
    QuadratureGrid,
    kl_optimal_weights,
    kl_to_barycenter,
    score_matching_weights,
    w1_barycenter_to_mixture_1d,
    w1_to_cdf_1d,
)
from diffctrl.fusion.barycenter import project_simplex, simplex_qp
from diffctrl.fusion.settings import paper_1d_setting

F64 = torch.float64


def _log_z_gauss(ms, Ss, lam):
    """log int prod_i N(x; m_i, S_i)^lam_i dx in closed form (sum lam_i = 1)."""
    d = ms[0].shape[0]
    P = sum(l * torch.linalg.inv(S) for l, S in zip(lam, Ss))
    h = sum(l * torch.linalg.solve(S, m) for l, m, S in zip(lam, ms, Ss))
    mu = torch.linalg.solve(P, h)
    c = sum(
        l * (-0.5 * m @ torch.linalg.solve(S, m) - 0.5 * torch.logdet(S))
        for l, m, S in zip(lam, ms, Ss)
    )
    c = c - 0.5 * d * math.log(2 * math.pi)
    return (
        float(
            c
            + 0.5 * mu @ P @ mu
            + 0.5 * d * math.log(2 * math.pi)
            - 0.5 * torch.logdet(P)
        ),
        mu,
        torch.linalg.inv(P),
    )


@pytest.mark.parametrize("d", [1, 2])
def test_normaliser_mean_and_covariance_of_gaussian_barycenters(d):
    if d == 1:
        ms, Ss = (
            [torch.tensor([-1.0], dtype=F64), torch.tensor([2.0], dtype=F64)],
            [torch.tensor([[0.5]], dtype=F64), torch.tensor([[2.0]], dtype=F64)],
        )
        n = 2000
    else:
        ms = [
            torch.tensor([-1.0, 0.5], dtype=F64),
            torch.tensor([1.0, -1.0], dtype=F64),
        ]
        Ss = [
            torch.tensor([[1.0, 0.4], [0.4, 0.6]], dtype=F64),
            torch.tensor([[0.7, -0.2], [-0.2, 1.5]], dtype=F64),
        ]
        n = 300
    lam = [0.35, 0.65]
    aux = [GM.create([1.0], m[None], S[None]) for m, S in zip(ms, Ss)]
    bary = QuadratureGrid.create(aux, -8, 8, n).barycenter(lam)
    log_z, mu, cov = _log_z_gauss(ms, Ss, lam)
    assert abs(bary.log_z - log_z) < 1e-6
    assert abs(float(bary.mass.sum()) - 1) < 1e-12
    torch.testing.assert_close(bary.mean(), mu, rtol=0, atol=1e-6)
    # the sampled law is piecewise constant on the cells: its covariance adds h^2 / 12 per axis
    h2 = bary.grid.h**2 / 12 * torch.eye(d, dtype=F64)
    torch.testing.assert_close(bary.cov(), cov + h2, rtol=0, atol=1e-6)
    x = torch.randn(5, d, dtype=F64)
    ref = torch.distributions.MultivariateNormal(mu, cov).log_prob(x)
    torch.testing.assert_close(bary.log_prob(x), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("d", [1, 2])
def test_samples_match_the_quadrature_moments_of_a_mixture_barycenter(d):
    aux = (
        paper_1d_setting()[1]
        if d == 1
        else [
            GM.create([0.5, 0.5], [[-2.0, 0.0], [2.0, 1.0]], [1.0, 0.5]),
            GM.create([0.3, 0.7], [[0.0, -1.0], [1.0, 2.0]], [2.0, 0.8]),
        ]
    )
    grid = (
        QuadratureGrid.create(aux, -20, 25, 4500)
        if d == 1
        else QuadratureGrid.create(aux, -8, 8, 200)
    )
    bary = grid.barycenter([0.4, 0.6])
    n = 200_000
    x = bary.sample(n, torch.Generator().manual_seed(0))
    m, C = bary.mean(), bary.cov()
    se = (torch.diagonal(C) / n).sqrt()
    assert torch.all((x.mean(0) - m).abs() < 4 * se)
    assert torch.all(
        (torch.cov(x.T).reshape(d, d) - C).abs() < 0.02 * torch.diagonal(C).max()
    )
    # and the samples' law is q_lambda: Kolmogorov-Smirnov against the quadrature CDF in 1-D
    if d == 1:
        edges, F = bary.cdf_1d()
        res = stats.kstest(
            x[:5000, 0].numpy(), lambda t: np.interp(t, edges.numpy(), F.numpy())
        )
        assert res.pvalue > 1e-3


def test_kl_to_barycenter_against_scipy_quad_and_the_kl_optimum_against_a_scan():
    target, aux = paper_1d_setting()
    grid = QuadratureGrid.create(aux, -20, 25, 4500)
    lam = [0.3, 0.7]
    bary = grid.barycenter(lam)

    def f(t):
        x = torch.tensor([[t]], dtype=F64)
        lp = float(target.log_prob(x))
        return math.exp(lp) * (lp - float(bary.log_prob(x)))

    ref = integrate.quad(f, -20, 20, points=[-6, 6], limit=200)[0]
    assert abs(kl_to_barycenter(target, grid, lam) - ref) < 1e-5
    lam_kl, kl = kl_optimal_weights(target, grid)
    scan = [kl_to_barycenter(target, grid, [a, 1 - a]) for a in np.linspace(0, 1, 401)]
    assert kl <= min(scan) + 1e-6
    assert abs(float(lam_kl[0]) - np.linspace(0, 1, 401)[int(np.argmin(scan))]) < 0.003


def test_score_matching_weights_minimise_the_stated_quadratic():
    """The Fisher-optimal lambda (ab = 1) against a scan of the Fisher divergence, computed here
    by scipy quadrature of E_{p*} |sum_i lam_i s_i - s*|^2."""
    target, aux = paper_1d_setting()
    grid = QuadratureGrid.create(aux, -20, 25, 4500)
    lam, val = score_matching_weights(target, grid, [1.0])

    def fisher(a):
        def f(t):
            x = torch.tensor([[t]], dtype=F64)
            s = a * aux[0].score(x) + (1 - a) * aux[1].score(x) - target.score(x)
            return math.exp(float(target.log_prob(x))) * float(s**2)

        return integrate.quad(f, -20, 20, points=[-6, 6], limit=200)[0]

    assert abs(fisher(float(lam[0])) - val) < 1e-4
    for a in (float(lam[0]) - 0.02, float(lam[0]) + 0.02, 0.0, 0.5, 1.0):
        assert fisher(a) > val


def test_simplex_helpers():
    torch.testing.assert_close(
        project_simplex(torch.tensor([0.2, 0.2, 0.2], dtype=F64)),
        torch.full((3,), 1 / 3, dtype=F64),
    )
    torch.testing.assert_close(
        project_simplex(torch.tensor([2.0, 0.0], dtype=F64)),
        torch.tensor([1.0, 0.0], dtype=F64),
    )
    A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]], dtype=F64)
    b = torch.tensor([1.0, 0.4, 0.3], dtype=F64)
    lam = simplex_qp(A, b)
    from scipy.optimize import minimize

    res = minimize(
        lambda v: v @ A.numpy() @ v - 2 * b.numpy() @ v,
        np.full(3, 1 / 3),
        constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1}],
        bounds=[(0, 1)] * 3,
        method="SLSQP",
        options={"ftol": 1e-14},
    )
    np.testing.assert_allclose(lam.numpy(), res.x, atol=1e-5)


def test_w1_helpers_against_closed_forms():
    edges, F = torch.tensor([0.0, 1.0], dtype=F64), torch.tensor([0.0, 1.0], dtype=F64)
    assert abs(w1_to_cdf_1d(torch.tensor([0.5]), edges, F) - 0.25) < 1e-12
    assert abs(w1_to_cdf_1d(torch.tensor([0.25, 0.75]), edges, F) - 0.125) < 1e-12
    assert abs(w1_to_cdf_1d(torch.tensor([3.0]), edges, F) - 2.5) < 1e-12
    aux = [GM.gaussian([1.0], 1.0)]
    bary = QuadratureGrid.create(aux, -10, 12, 4400).barycenter([1.0])
    assert abs(w1_barycenter_to_mixture_1d(bary, GM.gaussian([0.0], 1.0)) - 1.0) < 1e-4
    # against scipy's W1 between samples: an exact sample of the law and the law itself
    x = bary.sample(20_000, torch.Generator().manual_seed(3))
    y = torch.as_tensor(stats.norm(1, 1).ppf((np.arange(20_000) + 0.5) / 20_000))
    assert (
        abs(
            w1_to_cdf_1d(x, *bary.cdf_1d())
            - stats.wasserstein_distance(x[:, 0].numpy(), y.numpy())
        )
        < 2e-3
    )
