"""The two-layer ReLU network: gradients, antisymmetric init, empirical NTK, GD vs kernel GD."""

import math

import numpy as np
import pytest
import torch

from diffctrl.score_theory.kernels import fit_kernel_gd, kernel_gd_predict, relu_ntk
from diffctrl.score_theory.network import (
    TwoLayerReLU,
    empirical_ntk,
    features,
    forward,
    init_two_layer,
    loss_and_grad,
    train_gd,
)


def _data(n=30, d=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    t = torch.rand(n, generator=g, dtype=torch.float64) + 0.01
    y = torch.randn(n, d, generator=g, dtype=torch.float64)
    return features(x, t), y


def test_features_and_antisymmetric_init():
    z, _ = _data()
    assert z.shape == (30, 4)
    torch.testing.assert_close(z[:, -1], torch.ones(30, dtype=torch.float64))
    net = init_two_layer(4, 2, 100, torch.Generator().manual_seed(0))
    assert net.width == 100 and net.in_dim == 4 and net.out_dim == 2
    assert set(net.A.unique().tolist()) == {-1.0, 1.0}
    assert float(forward(net, z).abs().max()) < 1e-12
    free = init_two_layer(
        4, 2, 100, torch.Generator().manual_seed(0), antisymmetric=False
    )
    assert float(forward(free, z).abs().max()) > 0.1
    with pytest.raises(ValueError, match="width"):
        init_two_layer(4, 2, 7, torch.Generator())
    with pytest.raises(ValueError, match="z must have shape"):
        forward(net, z[:, :3])


def test_gradient_matches_autograd():
    z, y = _data()
    net = init_two_layer(
        4, 2, 64, torch.Generator().manual_seed(1), antisymmetric=False
    )
    loss, grad, f = loss_and_grad(net, z, y)
    W = net.W.clone().requires_grad_(True)
    f_ag = torch.relu(z @ W.T) @ net.A.T / math.sqrt(64)
    loss_ag = 0.5 * ((f_ag - y) ** 2).sum() / z.shape[0]
    loss_ag.backward()
    torch.testing.assert_close(loss, loss_ag.detach())
    torch.testing.assert_close(grad, W.grad, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(f, f_ag.detach())


def test_empirical_ntk_is_the_jacobian_gram_matrix():
    z, _ = _data(n=6)
    net = init_two_layer(4, 2, 16, torch.Generator().manual_seed(2))
    W = net.W.clone()
    jac = torch.autograd.functional.jacobian(
        lambda w: forward(TwoLayerReLU(w, net.A), z), W
    )  # (n, p, m, D)
    J = jac.reshape(6, 2, -1)
    ref = torch.einsum("aix,bjx->aibj", J, J)
    torch.testing.assert_close(empirical_ntk(net, z, z), ref, rtol=1e-12, atol=1e-12)


def test_relu_ntk_closed_form():
    """kappa(z, z) = |z|^2 / 2, kappa(z, -z) = 0, and a Monte Carlo average over w ~ N(0, I)."""
    z, _ = _data(n=5)
    K = relu_ntk(z, z)
    torch.testing.assert_close(K.diagonal(), (z**2).sum(1) / 2)
    torch.testing.assert_close(
        relu_ntk(z, -z).diagonal(), torch.zeros(5, dtype=torch.float64)
    )
    rng = np.random.default_rng(0)
    w = rng.standard_normal((400_000, 4))
    act = (z.numpy() @ w.T > 0).astype(float)
    mc = (act @ act.T / w.shape[0]) * (z.numpy() @ z.numpy().T)
    np.testing.assert_allclose(K.numpy(), mc, atol=5e-3 * float(K.max()))
    # psd
    assert (
        float(torch.linalg.eigvalsh(relu_ntk(*(2 * [_data(n=40)[0]]))).min()) > -1e-10
    )


def test_empirical_ntk_converges_to_the_analytic_ntk():
    """Relative Frobenius error of the empirical NTK (mean of 3 inits) falls like m^{-1/2}."""
    z, _ = _data(n=20)
    K = relu_ntk(z, z)
    target = K[:, None, :, None] * torch.eye(2, dtype=torch.float64)[None, :, None, :]
    errs = []
    for m in (256, 16384):
        e = 0.0
        for seed in range(3):
            net = init_two_layer(4, 2, m, torch.Generator().manual_seed(seed))
            theta = empirical_ntk(net, z, z)
            e += (
                float(torch.linalg.norm(theta - target) / torch.linalg.norm(target)) / 3
            )
        errs.append(e)
    assert errs[1] < 0.04
    assert errs[0] / errs[1] > 4  # m^{-1/2}: 8


def test_network_gd_tracks_kernel_gd_for_large_width():
    """On 40 points with Gaussian labels and lr = n / lambda_max(K): after k = 10 GD steps the
    width-16384 network is within 4% (relative RMS on 100 fresh inputs) of NTK kernel GD, after
    k = 100 steps within 10%; at width 64 the gap is at least 3 times larger."""
    z, y = _data(n=40, seed=4)
    z_eval, _ = _data(n=100, seed=5)
    K = relu_ntk(z, z)
    kgd = fit_kernel_gd(K, y)
    lr = 40 / float(kgd.eigvals[0])
    ker = kernel_gd_predict(kgd, relu_ntk(z_eval, z), [10, 100], lr)
    gaps = {}
    for m in (64, 16384):
        net = init_two_layer(4, 2, m, torch.Generator().manual_seed(6))
        _, _, pred = train_gd(net, z, y, lr, [0, 10, 100], z_eval)
        gaps[m] = [
            float(
                ((pred[i + 1] - ker[i]) ** 2).sum(1).mean().sqrt()
                / (ker[i] ** 2).sum(1).mean().sqrt()
            )
            for i in range(2)
        ]
    assert gaps[16384][0] < 0.04
    assert gaps[16384][1] < 0.10
    assert gaps[64][0] > 3 * gaps[16384][0] and gaps[64][1] > 3 * gaps[16384][1]


def test_train_gd_decreases_the_loss_and_validates():
    z, y = _data()
    net = init_two_layer(4, 2, 128, torch.Generator().manual_seed(7))
    final, train_pred, _ = train_gd(net, z, y, 1.0, [0, 5, 50])
    losses = [float(((p - y) ** 2).sum(1).mean()) for p in train_pred]
    assert losses[0] > losses[1] > losses[2]
    torch.testing.assert_close(forward(final, z), train_pred[-1])
    with pytest.raises(ValueError, match="increasing"):
        train_gd(net, z, y, 1.0, [5, 0])
    with pytest.raises(ValueError, match="lr"):
        train_gd(net, z, y, -1.0, [1])
    with pytest.raises(ValueError, match="y must have shape"):
        train_gd(net, z, y[:, :1], 1.0, [1])
