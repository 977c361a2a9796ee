import pytest
import torch

from diffctrl.control.grid import (
    Grid,
    GridFunction,
    gauss_hermite,
    hessian_bounds,
    interpolate,
    lipschitz_field,
    pad_values,
    smoothed_value_and_grad,
    smoothing_matrices,
    sup_grad,
)

F64 = torch.float64
G1 = Grid.create(-3, 3, 61)
G2 = Grid.create([-3, -2], [3, 2], [31, 21])


def quad(y):
    out = -0.65 * (y**2).sum(-1) + 0.7 * y[:, 0] + 2
    return out + 0.4 * y[:, 0] * y[:, -1] if y.shape[1] == 2 else out


@pytest.mark.parametrize("grid", [G1, G2])
def test_interpolation_reproduces_quadratics_and_is_third_order(grid):
    V = quad(grid.points()).reshape(grid.shape)
    y = (
        torch.rand(500, grid.d, dtype=F64, generator=torch.Generator().manual_seed(0))
        - 0.5
    ) * 7
    y.requires_grad_(True)
    g_true = torch.autograd.grad(quad(y).sum(), y)[0]
    val, grad = interpolate(grid, V, y.detach())
    assert torch.allclose(val, quad(y.detach()), atol=1e-9)  # also 1 box-width outside
    assert torch.allclose(grad, g_true, atol=1e-8)
    errs = []
    for k in (1, 2):
        g = Grid.create(grid.lo, grid.hi, [(n - 1) * k + 1 for n in grid.n])
        f = lambda x: torch.sin(x).sum(-1)  # noqa: E731
        yi = (torch.rand(2000, grid.d, dtype=F64) - 0.5) * 3
        errs.append(
            float(
                (interpolate(g, f(g.points()).reshape(g.shape), yi)[0] - f(yi))
                .abs()
                .max()
            )
        )
    assert 5 < errs[0] / errs[1] < 12  # O(h^3)


def test_channels_and_grid_function():
    u = torch.stack([torch.sin(G2.points()[:, 0]), G2.points()[:, 1] ** 2], -1).reshape(
        *G2.shape, 2
    )
    y = torch.rand(7, 2, dtype=F64)
    val, grad = interpolate(G2, u, y)
    assert val.shape == (7, 2) and grad.shape == (7, 2, 2)
    f = GridFunction(G2, u[..., 1])
    assert torch.allclose(f(y), y[:, 1] ** 2, atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        GridFunction(G2, torch.zeros(3, 3))
    with pytest.raises(ValueError):
        Grid.create(0, 1, 3)


@pytest.mark.parametrize("d", [1, 2])
def test_gauss_hermite_and_smoothing_matrices(d):
    x, w = gauss_hermite(6, d)
    assert float(w.sum()) == pytest.approx(1.0)
    assert float((w * x[:, 0] ** 4).sum()) == pytest.approx(3.0)
    grid = G1 if d == 1 else G2
    V = torch.sin(grid.points()).prod(-1).reshape(grid.shape)
    base = torch.randn(40, d, dtype=F64)
    EV, EG = smoothed_value_and_grad(
        grid, pad_values(grid, V), smoothing_matrices(grid, base, 0.3, 6)
    )
    val, grad = interpolate(grid, V, (base[:, None, :] + 0.3 * x[None]).reshape(-1, d))
    assert torch.allclose(EV, val.view(40, -1) @ w, atol=1e-12)
    assert torch.allclose(
        EG, torch.einsum("gjd,j->gd", grad.view(40, -1, d), w), atol=1e-11
    )


def test_finite_difference_lipschitz_constants():
    P = G2.points()
    u = torch.stack([2 * P[:, 0] + P[:, 1], -P[:, 1]], -1).reshape(*G2.shape, 2)
    assert lipschitz_field(G2, u) == pytest.approx(
        float(
            torch.linalg.matrix_norm(
                torch.tensor([[2.0, 1.0], [0.0, -1.0]], dtype=F64), ord=2
            )
        ),
        rel=1e-10,
    )
    V = quad(P).reshape(G2.shape)
    lo, hi, nrm = hessian_bounds(G2, V)
    lam = torch.linalg.eigvalsh(torch.tensor([[-1.3, 0.4], [0.4, -1.3]], dtype=F64))
    assert (lo, hi) == pytest.approx((float(lam[0]), float(lam[1])), abs=1e-8)
    assert sup_grad(G1, (G1.points()[:, 0] * 3).reshape(G1.shape)) == pytest.approx(3.0)
