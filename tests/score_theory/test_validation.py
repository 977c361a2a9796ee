"""Entry points of diffctrl.score_theory that take data (inputs, labels, Gram matrices,
validation losses) refuse a wrong shape or a non-finite value, naming the argument."""

import pytest
import torch

from diffctrl.score_theory.kernels import (
    fit_kernel_gd,
    kernel_gd_predict,
    relu_ntk,
    validation_stop,
)
from diffctrl.score_theory.network import init_two_layer, train_gd


def data(n=12, d=3, p=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, d, generator=g, dtype=torch.float64),
        torch.randn(n, p, generator=g, dtype=torch.float64),
    )


def test_fit_kernel_gd_refuses_nan_labels_and_interpolates():
    z, y = data()
    K = relu_ntk(z, z)
    bad = y.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="Y has non-finite"):
        fit_kernel_gd(K, bad)
    with pytest.raises(ValueError, match="K must have 2 dimensions"):
        fit_kernel_gd(K[None], y)
    # well formed: gradient flow run to infinity interpolates the labels (K invertible)
    kgd = fit_kernel_gd(K, y)
    pred = kernel_gd_predict(kgd, None, [1e12], lr=1.0, flow=True)[0]
    assert torch.allclose(pred, y, atol=1e-6)


def test_train_gd_refuses_nan_inputs():
    z, y = data()
    net = init_two_layer(3, 2, 8, torch.Generator().manual_seed(1))
    bad = z.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="z has non-finite"):
        train_gd(net, bad, y, 0.1, [0, 1])
    with pytest.raises(ValueError, match=r"eval_z must have shape \(\*, 3\)"):
        train_gd(net, z, y, 0.1, [0, 1], eval_z=torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="y must have 2 dimensions"):
        train_gd(net, z, y[:, 0], 0.1, [0, 1])


def test_validation_stop_refuses_nan_losses():
    with pytest.raises(ValueError, match="val_losses has NaN"):
        validation_stop([1.0, float("nan"), 0.5])
    assert validation_stop([1.0, 0.4, 0.5]) == 1
