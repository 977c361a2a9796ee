"""LoRA adapters on the pre-trained image network as the control: u = m^theta - m."""

import pytest
import torch

from diffctrl.diffusion.models import SmallUNet
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.digits.images import model_chain
from diffctrl.finetune.large.lora import AdapterControl
from diffctrl.finetune.nets import ValueMLP
from diffctrl.finetune.objective import FinetuneObjective
from diffctrl.finetune.trainer import finetune

pytest.importorskip("peft")


@pytest.fixture()
def setup():
    sched = vp_sde_schedule(4)
    torch.manual_seed(0)
    unet = SmallUNet(4, base=8)
    chain = model_chain(unet, sched, 1.0, (1, 8, 8))
    return sched, unet, chain


def test_starts_at_zero_and_equals_the_difference_of_means(setup):
    sched, unet, chain = setup
    ctrl = AdapterControl(unet, sched, (1, 8, 8), rank=2)
    y = torch.randn(5, 64, generator=torch.Generator().manual_seed(1))
    assert torch.equal(ctrl(2, y), torch.zeros_like(y))  # B = 0: the pre-trained model
    with torch.no_grad():
        for name, p in ctrl.tuned.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    tuned_chain = model_chain(
        ctrl.tuned, sched, 1.0, (1, 8, 8)
    )  # the adapted network's own chain
    for t in range(4):
        want = tuned_chain.mean(t, y) - chain.mean(t, y)
        assert torch.allclose(ctrl(t, y), want, atol=1e-5), t
        assert want.abs().max() > 1e-3
    tt = torch.tensor([0, 1, 2, 3, 3])  # a batch of steps gives the same rows
    rows = torch.stack([ctrl(int(t), y[i : i + 1])[0] for i, t in enumerate(tt)])
    assert torch.allclose(ctrl(tt, y), rows, atol=1e-5)


def test_training_moves_only_the_adapters(setup):
    sched, unet, chain = setup
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    ctrl = AdapterControl(unet, sched, (1, 8, 8), rank=2)
    trainable = {k for k, p in ctrl.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in k for k in trainable)
    obj = FinetuneObjective(
        chain,
        lambda y: -(y**2).sum(1),
        ctrl,
        "pift_ac",
        critic=ValueMLP(64, 5, hidden=16),
        n_traj=4,
    )
    finetune(obj, 2, lr=1e-2, seed=0)
    assert all(torch.equal(before[k], v) for k, v in unet.state_dict().items())
    moved = max(
        float(p.detach().abs().max())
        for k, p in ctrl.named_parameters()
        if "lora_B" in k
    )
    assert moved > 0


def test_bad_inputs(setup):
    sched, unet, _ = setup
    with pytest.raises(ValueError, match="rank"):
        AdapterControl(unet, sched, (1, 8, 8), rank=0)
    with pytest.raises(ValueError, match="N="):
        AdapterControl(unet, vp_sde_schedule(5), (1, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        AdapterControl(unet, sched, (1, 8, 8))(0, torch.zeros(3, 10))


def _perturbed(setup, dtype=torch.float64):
    sched, unet, _ = setup
    unet = unet.to(dtype)
    chain = model_chain(unet, sched, 1.0, (1, 8, 8))
    ctrl = AdapterControl(unet, sched, (1, 8, 8), rank=2).to(dtype)
    with torch.no_grad():
        for name, p in ctrl.tuned.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3, generator=torch.Generator().manual_seed(len(name)))
    return chain, ctrl


def test_state_derivative_of_the_control_against_finite_differences(setup):
    # u = m^theta - m: both networks depend on the state; freezing the base network's parameters
    # must not cut its input derivative (the bug: D_y u came out as D_y m^theta alone)
    _, ctrl = _perturbed(setup)
    g = torch.Generator().manual_seed(2)
    y = torch.randn(3, 64, generator=g, dtype=torch.float64).requires_grad_(True)
    v = torch.randn(3, 64, generator=g, dtype=torch.float64)
    w = torch.randn(3, 64, generator=g, dtype=torch.float64)
    for t in (0, 2):
        grad = torch.autograd.grad((ctrl(t, y) * w).sum(), y)[0]
        h = 1e-5
        with torch.no_grad():
            fd = ((ctrl(t, y + h * v) - ctrl(t, y - h * v)) * w).sum() / (2 * h)
        assert float((grad * v).sum()) == pytest.approx(float(fd), rel=1e-6), t
        tuned_only = torch.autograd.grad(
            (
                ctrl._score(ctrl.tuned, y.reshape(-1, 1, 8, 8), 4 - t)
                * w.reshape(-1, 1, 8, 8)
            ).sum(),
            y,
        )[0]
        assert not torch.allclose(tuned_only * float(ctrl.coef[4 - t]), grad, rtol=1e-3)


def test_draft_gradient_with_adapters_against_finite_differences(setup):
    # the DRaFT loss (reward backpropagated through every step) is a smooth function of the
    # adapter weights for fixed noise: its autograd gradient must match central differences
    chain, ctrl = _perturbed(setup)
    obj = FinetuneObjective(
        chain,
        lambda y: -((y - 0.3) ** 2).sum(1),
        ctrl,
        "draft",
        n_traj=4,
        dtype=torch.float64,
    )
    params = [p for p in ctrl.parameters() if p.requires_grad]
    loss = obj(torch.Generator().manual_seed(7))
    grads = torch.autograd.grad(loss, params)
    g = torch.Generator().manual_seed(8)
    dirs = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
    analytic = sum(float((gr * d).sum()) for gr, d in zip(grads, dirs))
    h = 1e-5

    def at(sign):
        with torch.no_grad():
            for p, d in zip(params, dirs):
                p.add_(sign * h * d)
            out = float(obj(torch.Generator().manual_seed(7)))
            for p, d in zip(params, dirs):
                p.sub_(sign * h * d)
            return out

    assert analytic == pytest.approx((at(1) - at(-1)) / (2 * h), rel=1e-5)
