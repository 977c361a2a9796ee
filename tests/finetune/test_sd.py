"""The Stable Diffusion path on a tiny random model in the SD layout (no download): the strided
schedule against diffusers' scheduler, prompt encoding, decoded reward, one LoRA fine-tuning step."""

import pytest
import torch

from diffctrl.finetune.lora import DiffusersChain, lora_state, schedule_from_diffusers, tiny_unet
from diffctrl.finetune.parametric import finetune
from diffctrl.finetune.sd import (DecodedReward, build_objective, encode_prompt, green_reward, load_sd,
                                  strided_schedule, tiny_sd_folder)


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    return load_sd(tiny_sd_folder(tmp_path_factory.mktemp("sd")))


def test_strided_schedule_reads_the_scheduler(sd):
    ac = sd.scheduler.alphas_cumprod.double()
    sched, ts = strided_schedule(ac, 50, offset=1)
    assert ts.tolist() == list(range(1, 1000, 20))  # diffusers' "leading" spacing with steps_offset=1
    assert torch.allclose(sched.alpha_bar[1:], ac[ts], rtol=1e-12)
    full, ts_full = strided_schedule(ac, 1000, offset=0)  # every level: the scheduler's own chain
    # float32 alphas_cumprod in diffusers: betas agree to its round-off (betas are ~1e-3)
    assert torch.allclose(full.betas, schedule_from_diffusers(sd.scheduler).betas, rtol=0, atol=1e-6)
    assert ts_full.tolist() == list(range(1000))


def test_bad_inputs(sd, tmp_path):
    with pytest.raises(ValueError, match="n_steps"):
        strided_schedule(sd.scheduler.alphas_cumprod, 0)
    with pytest.raises(FileNotFoundError):
        load_sd(tmp_path / "missing")
    with pytest.raises(ValueError, match="prompt"):
        encode_prompt(sd, "")
    with pytest.raises(ValueError, match="images"):
        green_reward(torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match="timesteps"):
        DiffusersChain(tiny_unet(), strided_schedule(sd.scheduler.alphas_cumprod, 4)[0], 0.1, (1, 8, 8),
                       timesteps=torch.arange(3))


def test_prompt_and_decoded_reward(sd):
    e1, e2 = encode_prompt(sd, "a green rabbit"), encode_prompt(sd, "a dog on the moon")
    assert e1.shape == (1, 8, 16) and not torch.allclose(e1, e2)
    reward = DecodedReward(sd.vae, green_reward)
    y = torch.randn(3, 4, 8, 8, requires_grad=True)
    r = reward(y)
    assert r.shape == (3,)
    img = reward.decode(y.detach())
    assert torch.allclose(r.detach(), green_reward(img), atol=1e-6)
    r.sum().backward()  # differentiable in the latents (reward backpropagation, Adjoint Matching)
    assert y.grad.abs().sum() > 0


@pytest.mark.parametrize("method", ["pift", "dpok"])
def test_one_fine_tuning_step_moves_only_the_adapters(tmp_path, method):
    sd = load_sd(tiny_sd_folder(tmp_path))
    obj = build_objective(sd, "A green colored rabbit", method=method, n_steps=4, n_traj=2, rank=2)
    frozen = {k: v.clone() for k, v in sd.unet.state_dict().items() if "lora_" not in k}
    before = lora_state(sd.unet)
    res = finetune(obj, 1, lr=1e-2, seed=0)
    assert len(res.losses) == 1 and torch.isfinite(torch.tensor(res.losses[0]))
    after = lora_state(sd.unet)
    assert any(not torch.equal(before[k], after[k]) for k in after if "lora_B" in k)
    assert all(torch.equal(v, sd.unet.state_dict()[k]) for k, v in frozen.items())
    assert obj.chain.timesteps.tolist() == [1, 251, 501, 751]


def test_the_ddp_command_runs_the_sd_problem(tmp_path):
    from diffctrl.finetune import ddp

    folder = tiny_sd_folder(tmp_path / "sd")
    assert ddp.main(["--out", str(tmp_path / "run"), "--sd-path", str(folder), "--steps", "1",
                     "--T", "4", "--n-traj", "2", "--lr", "1e-2"]) == 0
    state = torch.load(tmp_path / "run" / "lora_rank0.pt")
    assert state and max(float(v.abs().max()) for k, v in state.items() if "lora_B" in k) > 0
