"""MLP on a flat parameter vector: against torch.nn layers with the same weights."""

import pytest
import torch

from diffctrl.gradients.networks import MLP, mlp_width_for


@pytest.mark.parametrize(
    "sizes,act",
    [
        ((5, 2), "tanh"),
        ((5, 7, 7, 7, 2), "tanh"),
        ((2, 8, 2), "relu"),
        ((3, 4, 1), "softplus"),
    ],
)
def test_mlp_matches_torch_nn(sizes, act):
    gen = torch.Generator().manual_seed(0)
    net = MLP(sizes, activation=act)
    theta = net.init(gen, dtype=torch.float64)
    acts = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "softplus": torch.nn.Softplus}
    mods = []
    for k, (w, b) in enumerate(net.layers(theta)):
        lin = torch.nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        mods.append(lin)
        if k < len(sizes) - 2:
            mods.append(acts[act]())
    ref = torch.nn.Sequential(*mods)
    x = torch.randn(11, sizes[0], generator=gen, dtype=torch.float64)
    torch.testing.assert_close(net(theta, x), ref(x), rtol=0, atol=1e-12)
    assert net.n_params == sum(p.numel() for p in ref.parameters())


def test_init_bounds_and_determinism():
    net = MLP((5, 30, 30, 2))
    a = net.init(torch.Generator().manual_seed(3))
    b = net.init(torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    for (w, bias), fan_in in zip(net.layers(a), net.sizes[:-1]):
        assert w.abs().max() <= fan_in**-0.5 + 1e-7
        assert bias.abs().max() <= fan_in**-0.5 + 1e-7
    small = net.init(torch.Generator().manual_seed(3), last_layer_scale=0.01)
    assert small[-62:].abs().max() <= 0.01 * 30**-0.5 + 1e-9


def test_width_for_n_params():
    for target in (100, 1e3, 1e4, 1e5, 1e6):
        w = mlp_width_for(target)
        assert MLP((5, w, w, w, 2)).n_params >= target
        assert MLP((5, w - 1, w - 1, w - 1, 2)).n_params < target
    assert mlp_width_for(1e8) == 7069  # 2 W^2 + 12 W + 2 >= 1e8


def test_counter_and_errors():
    net = MLP((3, 4, 2))
    theta = net.init()
    net(theta, torch.zeros(2, 3))
    net(theta, torch.zeros(5, 3))
    assert net.counter.calls == 2
    with pytest.raises(ValueError, match="theta must have shape"):
        net(theta[:-1], torch.zeros(2, 3))
    with pytest.raises(ValueError, match="inputs must end in dimension 3"):
        net(theta, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="sizes"):
        MLP((3,))
    with pytest.raises(ValueError, match="sizes"):
        MLP((3, 0, 2))
    with pytest.raises(ValueError, match="activation"):
        MLP((3, 2), activation="gelu")
    with pytest.raises(ValueError, match="n_params"):
        mlp_width_for(0)


@pytest.mark.parametrize("act", ["tanh", "relu", "softplus"])
def test_hand_written_tangents_match_torch_func_jvp(act):
    gen = torch.Generator().manual_seed(1)
    net = MLP((3, 9, 9, 2), activation=act)
    theta = net.init(gen, dtype=torch.float64)
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    v = torch.randn(4, 5, 3, generator=gen, dtype=torch.float64)
    out, dout = net.with_tangents(theta, x, v)
    torch.testing.assert_close(out, net(theta, x))
    for k in range(4):
        _, ref = torch.func.jvp(lambda y: net(theta, y), (x,), (v[k],))
        torch.testing.assert_close(dout[k], ref)
    with pytest.raises(ValueError, match="tangents"):
        net.with_tangents(theta, x, v[:, :2])
