import pytest
import torch

from diffctrl.control.rewards import BumpReward, LogSigmoidReward, QuadraticReward

REWARDS = [
    QuadraticReward.create(Q=[[2.0, 0.5], [0.5, 1.0]], a=[1.0, -1.0], g=[0.3, 0.2]),
    BumpReward.create([0.5, -0.2], height=2.0, width=0.7),
    LogSigmoidReward.create([1.0, -2.0], c=0.3, kappa=1.5, scale=0.8),
]


@pytest.mark.parametrize("reward", REWARDS)
def test_gradient_and_hessian_bound_match_autograd(reward):
    y = (
        torch.randn(
            64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
        )
        * 2
    )
    y.requires_grad_(True)
    g_auto = torch.autograd.grad(reward(y).sum(), y)[0]
    assert torch.allclose(reward.grad(y.detach()), g_auto, atol=1e-12)
    v, g = reward.value_and_grad(y.detach())
    assert torch.allclose(v, reward(y.detach())) and torch.allclose(
        g, g_auto, atol=1e-12
    )
    # sup ||Hess r|| <= lip_grad, and attained (up to the sampling) where it should be
    pts = torch.cat(
        [y.detach(), getattr(reward, "a", torch.zeros(2)).reshape(1, 2).double()]
    )
    H = torch.stack(
        [
            torch.autograd.functional.hessian(lambda z: reward(z[None])[0], p)
            for p in pts
        ]
    )
    sup = torch.linalg.eigvalsh(H).abs().max()
    assert sup <= reward.lip_grad + 1e-10
    if not isinstance(reward, LogSigmoidReward):
        assert sup >= 0.99 * reward.lip_grad


def test_quadratic_form_and_linear_reward():
    r = REWARDS[0]
    P, p, c = r.quadratic_form()
    y = torch.randn(10, 2, dtype=torch.float64)
    assert torch.allclose(-0.5 * ((y @ P) * y).sum(-1) + y @ p + c, r(y))
    lin = QuadraticReward.linear([1.0, 2.0])
    assert torch.allclose(lin(y), y @ torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert lin.lip_grad == 0


def test_bad_rewards_raise():
    with pytest.raises(ValueError, match="positive semi-definite"):
        QuadraticReward.create(Q=[[1.0, 0.0], [0.0, -0.5]], a=[0.0, 0.0])
    with pytest.raises(ValueError, match="symmetric"):
        QuadraticReward.create(Q=[[1.0, 0.3], [0.0, 1.0]], a=[0.0, 0.0])
    with pytest.raises(ValueError, match="shape"):
        QuadraticReward.create(Q=torch.eye(2), a=[0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="shape"):
        REWARDS[0](torch.zeros(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="width"):
        BumpReward.create([0.0], width=0.0)


@pytest.mark.parametrize("reward", REWARDS)
def test_values_live_on_the_device_of_the_points(reward):
    # a reward built on the CPU serves points on any device; "meta" stands in for a GPU
    # (mixing it with a CPU tensor of more than one element raises, as CUDA does)
    y = torch.zeros(5, 2, dtype=torch.float32, device="meta")
    v, g = reward.value_and_grad(y)
    for out in (reward(y), reward.grad(y), v, g):
        assert out.device.type == "meta" and out.dtype == torch.float64
    assert v.shape == (5,) and g.shape == (5, 2)
