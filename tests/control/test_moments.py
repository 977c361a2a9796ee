"""Gaussian moments in closed form (diffctrl.control.moments) against Gauss-Hermite
quadrature, exact for these polynomials (3 nodes per axis: degree <= 5)."""

import pytest
import torch

from diffctrl.control.grid import gauss_hermite
from diffctrl.control.moments import affine_rms, quadratic_mean, quadratic_rms

F64 = torch.float64


def _law():
    g = torch.Generator().manual_seed(3)
    B = torch.randn(2, 2, generator=g, dtype=F64)
    cov = B @ B.T + 0.2 * torch.eye(2, dtype=F64)
    mean = torch.randn(2, generator=g, dtype=F64)
    P = torch.randn(2, 2, generator=g, dtype=F64)
    P = P + P.T
    p = torch.randn(2, generator=g, dtype=F64)
    G = torch.randn(2, 2, generator=g, dtype=F64)
    gv = torch.randn(2, generator=g, dtype=F64)
    return mean, cov, P, p, 0.7, G, gv


def _samples_of(mean, cov, nodes):
    return mean + nodes @ torch.linalg.cholesky(cov).T


def test_quadratic_moments_match_quadrature():
    mean, cov, P, p, c, _, _ = _law()
    nodes, w = gauss_hermite(3, 2)
    y = _samples_of(mean, cov, nodes)
    f = -0.5 * ((y @ P) * y).sum(-1) + y @ p + c
    assert float(quadratic_mean(P, p, c, mean, cov)) == pytest.approx(
        float(f @ w), abs=1e-12
    )
    assert quadratic_rms(P, p, c, mean, cov) == pytest.approx(
        float((f**2 @ w).sqrt()), rel=1e-12
    )


def test_affine_rms_matches_quadrature():
    mean, cov, _, _, _, G, g = _law()
    nodes, w = gauss_hermite(3, 2)
    y = _samples_of(mean, cov, nodes)
    v = y @ G.T + g
    assert affine_rms(G, g, mean, cov) == pytest.approx(
        float(((v**2).sum(-1) @ w).sqrt()), rel=1e-12
    )
