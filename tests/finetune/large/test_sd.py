"""The Stable Diffusion path on a tiny random model in the SD layout (no download): the strided
schedule and the pre-trained chain against diffusers' own DDPM scheduler, prompt encoding,
decoded reward, the first fine-tuning step of every method against Adam's closed-form first
step, the DRaFT-with-LoRA gradient against finite differences, and the ``ddp`` command line
(checks before loading, the paper's defaults, two gloo processes end to end)."""

import copy
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("peft")

import diffctrl  # noqa: E402
from diffctrl.finetune.large import ddp  # noqa: E402
from diffctrl.finetune.large import sd as sdmod  # noqa: E402
from diffctrl.finetune.large.lora import (  # noqa: E402
    DiffusersChain,
    LoRAControl,
    add_lora,
    lora_state,
    schedule_from_diffusers,
    tiny_unet,
)
from diffctrl.finetune.large.sd import (  # noqa: E402
    DecodedReward,
    build_objective,
    check_sd_folder,
    encode_prompt,
    green_reward,
    load_sd,
    tiny_sd_folder,
)
from diffctrl.finetune.losses import METHODS  # noqa: E402
from diffctrl.finetune.respacing import strided_schedule  # noqa: E402
from diffctrl.finetune.trainer import finetune  # noqa: E402
from diffctrl.finetune.trajectories import rollout  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_sd_folder(tmp_path_factory.mktemp("sd"))


@pytest.fixture(scope="module")
def sd(folder):
    return load_sd(folder)


def test_strided_schedule_reads_the_scheduler(sd):
    ac = sd.scheduler.alphas_cumprod.double()
    sched, ts = strided_schedule(ac, 50, offset=1)
    assert ts.tolist() == list(
        range(1, 1000, 20)
    )  # diffusers' "leading" spacing with steps_offset=1
    assert torch.allclose(sched.alpha_bar[1:], ac[ts], rtol=1e-12)
    full, ts_full = strided_schedule(
        ac, 1000, offset=0
    )  # every level: the scheduler's own chain
    # float32 alphas_cumprod in diffusers: betas agree to its round-off (betas are ~1e-3)
    assert torch.allclose(
        full.betas, schedule_from_diffusers(sd.scheduler).betas, rtol=0, atol=1e-6
    )
    assert ts_full.tolist() == list(range(1000))


def test_pretrained_chain_is_diffusers_ddpm_sampler(sd):
    """Our pre-trained chain (adapters off, zero control) on the strided schedule, from the same
    noise, gives the same samples as diffusers' DDPMScheduler ("leading" spacing,
    ``fixed_large`` variance, no clipping) driving the same UNet."""
    from diffusers import DDPMScheduler

    T, n = 4, 2
    sched, ts = strided_schedule(sd.scheduler.alphas_cumprod, T, offset=1)
    cond = encode_prompt(sd, "A green colored rabbit")
    chain = DiffusersChain(sd.unet, sched, 0.01, (4, 8, 8), cond=cond, timesteps=ts)
    ref = DDPMScheduler.from_config(
        sd.scheduler.config, variance_type="fixed_large", clip_sample=False
    )
    ref.set_timesteps(T)
    assert ref.timesteps.tolist() == ts.flip(0).tolist()
    g = torch.Generator().manual_seed(3)
    y = torch.randn((n, 4, 8, 8), generator=g)
    with torch.no_grad():
        for t in ref.timesteps:
            eps = sd.unet(y, t, encoder_hidden_states=cond.expand(n, -1, -1)).sample
            y = ref.step(eps, t, y, generator=g).prev_sample
    zero = lambda t, x: torch.zeros_like(x)  # noqa: E731
    ours = rollout(
        chain, zero, lambda x: x.sum((1, 2, 3)), n, torch.Generator().manual_seed(3)
    )
    torch.testing.assert_close(ours.y[-1], y, rtol=1e-4, atol=1e-4)
    assert float((ours.y[-1] - ours.y[-2]).abs().max()) > 1e-2  # the chain moved


def test_bad_inputs(sd, folder, tmp_path):
    with pytest.raises(ValueError, match="n_steps"):
        strided_schedule(sd.scheduler.alphas_cumprod, 0)
    with pytest.raises(FileNotFoundError):
        load_sd(tmp_path / "missing")
    with pytest.raises(ValueError, match="prompt"):
        encode_prompt(sd, "")
    with pytest.raises(ValueError, match="images"):
        green_reward(torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match="timesteps"):
        DiffusersChain(
            tiny_unet(),
            strided_schedule(sd.scheduler.alphas_cumprod, 4)[0],
            0.1,
            (1, 8, 8),
            timesteps=torch.arange(3),
        )
    assert check_sd_folder(folder, n_steps=50)["num_train_timesteps"] == 1000
    with pytest.raises(ValueError, match="n_steps"):
        check_sd_folder(folder, n_steps=1001)
    (tmp_path / "half" / "unet").mkdir(parents=True)
    (tmp_path / "half" / "unet" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="vae/config.json"):
        check_sd_folder(tmp_path / "half")


def test_prompt_and_decoded_reward(sd):
    e1, e2 = encode_prompt(sd, "a green rabbit"), encode_prompt(sd, "a dog on the moon")
    assert e1.shape == (1, 8, 16) and not torch.allclose(e1, e2)
    reward = DecodedReward(sd.vae, green_reward)
    y = torch.randn(3, 4, 8, 8, requires_grad=True)
    r = reward(y)
    assert r.shape == (3,)
    img = reward.decode(y.detach())
    assert torch.allclose(r.detach(), green_reward(img), atol=1e-6)
    # differentiable in the latents (reward backpropagation, Adjoint Matching): the gradient
    # against central differences, in float64 on a copy of the VAE
    reward64 = DecodedReward(copy.deepcopy(sd.vae).double(), green_reward)
    g = torch.Generator().manual_seed(1)
    y = torch.randn(3, 4, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, 4, 8, 8, generator=g, dtype=torch.float64)
    (grad,) = torch.autograd.grad(reward64(y).sum(), y)
    h = 1e-6
    with torch.no_grad():
        fd = (reward64(y + h * v).sum() - reward64(y - h * v).sum()) / (2 * h)
    assert abs(float(fd)) > 1e-3
    assert float((grad * v).sum()) == pytest.approx(float(fd), rel=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_first_step_is_adams_first_step_on_the_adapters(tmp_path, method):
    """One ``finetune`` step moves the LoRA weights by AdamW's closed-form first step
    ``-lr g / (|g| + eps)``, g the gradient of the method's loss on the step's noise (seed 0);
    every frozen weight of the UNet stays bit-identical; the B matrices get a nonzero gradient."""
    sd = load_sd(tiny_sd_folder(tmp_path))
    obj = build_objective(
        sd, "A green colored rabbit", method=method, n_steps=4, n_traj=2, rank=2
    )
    assert obj.chain.timesteps.tolist() == [1, 251, 501, 751]
    frozen = {k: v.clone() for k, v in sd.unet.state_dict().items() if "lora_" not in k}
    before = lora_state(sd.unet)
    critic0 = (
        {k: v.clone() for k, v in obj.critic.state_dict().items()}
        if obj.critic
        else None
    )
    loss = obj(torch.Generator().manual_seed(0))
    params = dict(sd.unet.named_parameters())
    grads = torch.autograd.grad(loss, [params[k] for k in before], allow_unused=True)
    g = {
        k: torch.zeros_like(before[k]) if gr is None else gr
        for k, gr in zip(before, grads)
    }
    assert max(float(g[k].abs().max()) for k in g if "lora_B" in k) > 0
    obj.budget.nfe = obj.budget.reward_evals = 0
    if critic0 is not None:
        obj.critic.load_state_dict(critic0)
    lr = 1e-2
    res = finetune(obj, 1, lr=lr, seed=0)
    assert res.losses[0] == pytest.approx(float(loss.detach()), rel=1e-5, abs=1e-6)
    after = lora_state(sd.unet)
    for k in after:
        expected = before[k] - lr * g[k] / (g[k].abs() + 1e-8)
        torch.testing.assert_close(after[k], expected, rtol=0, atol=1e-6, msg=k)
    assert all(torch.equal(v, sd.unet.state_dict()[k]) for k, v in frozen.items())


def _perturb_adapters(unet, seed=0, scale=0.3):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, p in unet.named_parameters():
            if "lora_" in k:
                p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def test_lora_control_input_jacobian_matches_finite_differences():
    """d(m + u)/dy of a LoRA control (B != 0) along a direction, against central differences in
    float64: the frozen base network must not cut the input gradient."""
    unet = add_lora(tiny_unet(seed=0), rank=2, seed=0).double()
    _perturb_adapters(unet)
    from diffctrl.diffusion.schedules import vp_sde_schedule

    chain = DiffusersChain(unet, vp_sde_schedule(4), 0.01, (1, 8, 8))
    control = LoRAControl(chain)
    g = torch.Generator().manual_seed(2)
    y = torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64)
    w = torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64)
    for t in (0, 2):
        f = lambda x, t=t: chain.mean(t, x) + control(t, x)  # noqa: E731
        (jvp,) = torch.autograd.grad((f(y) * w).sum(), y)
        h = 1e-5
        with torch.no_grad():
            fd = ((f(y + h * v) - f(y - h * v)) * w).sum() / (2 * h)
        assert float((jvp * v).sum()) == pytest.approx(float(fd), rel=1e-6)


def test_chain_coefficients_follow_the_points_without_a_device_round_trip():
    """The schedule coefficients of an int step come from the host and land on the points'
    device ("meta" stands in for a GPU, where a round trip would be a sync per call)."""
    from diffctrl.diffusion.schedules import vp_sde_schedule

    chain = DiffusersChain(None, vp_sde_schedule(4), 0.01, (1, 8, 8))
    y = torch.zeros(3, 1, 8, 8)
    for t in (1, torch.tensor([0, 1, 3])):
        ref = chain._coef(t, y)
        out = chain._coef(t, y.to("meta"))
        assert all(o.device.type == "meta" for o in out)
        assert [o.shape for o in out] == [r.shape for r in ref] == [(3, 1, 1, 1)] * 2


def test_draft_with_lora_gradient_matches_finite_differences():
    """The DRaFT (+KL, full backpropagation) gradient with a LoRA control, along a random
    direction of the adapters, equals the central difference of the chain's sample mean of
    ``r(Y_T) - sum_t beta_t KL_t`` over the same noise (float64)."""
    obj = ddp.build("draft", n_traj=4, T=3, rank=2, seed=0)
    unet = obj.control.unet.double()
    obj.dtype = torch.float64
    _perturb_adapters(unet, seed=1)
    names = [k for k, p in unet.named_parameters() if p.requires_grad]
    params = dict(unet.named_parameters())
    gen = torch.Generator().manual_seed(5)
    dirs = {
        k: torch.randn(params[k].shape, generator=gen, dtype=torch.float64)
        for k in names
    }

    def loss():
        return obj(torch.Generator().manual_seed(11))

    grads = torch.autograd.grad(loss(), [params[k] for k in names])
    directional = sum(float((gr * dirs[k]).sum()) for gr, k in zip(grads, names))
    h = 1e-5
    with torch.no_grad():
        for k in names:
            params[k].add_(h * dirs[k])
        up = float(loss())
        for k in names:
            params[k].sub_(2 * h * dirs[k])
        down = float(loss())
        for k in names:
            params[k].add_(h * dirs[k])
    fd = (up - down) / (2 * h)
    assert abs(directional) > 1e-6
    assert directional == pytest.approx(fd, rel=1e-5)


# ------------------------------------------------------------------------- the command line
def test_cli_uses_the_papers_defaults_unless_overridden():
    args, _ = ddp.parse_args(["--out", "x", "--sd-path", "y"])
    # Han, Razaviyayn, Xu (2025), Sec. 6: 1000 steps, 10 trajectories x 50 transitions,
    # beta = 0.01, AdamW lr 3e-4, LoRA rank 4
    assert (args.steps, args.n_traj, args.T, args.beta, args.lr, args.lora_rank) == (
        1000,
        10,
        50,
        0.01,
        3e-4,
        4,
    )
    args, _ = ddp.parse_args(
        ["--out", "x", "--sd-path", "y", "--T", "20", "--beta", "0.1"]
    )
    assert (args.steps, args.T, args.beta) == (1000, 20, 0.1)
    args, _ = ddp.parse_args(["--out", "x"])  # the demo keeps its few-seconds settings
    assert (args.steps, args.T, args.n_traj) == (2, 4, 4)


def test_cli_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        ddp.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for opt in (
        "--out",
        "--sd-path",
        "--prompt",
        "--method",
        "--steps",
        "--n-traj",
        "--T",
        "--beta",
        "--lr",
        "--lora-rank",
        "--seed",
    ):
        assert opt in text
    assert text.count("the paper's") >= 6


@pytest.mark.parametrize(
    "argv, env, message",
    [
        (
            ["--n-traj", "4"],
            {"WORLD_SIZE": "3", "RANK": "0"},
            "divisible by the number of processes 3",
        ),
        (
            [],
            {"WORLD_SIZE": "4", "RANK": "0"},
            "--n-traj 10 must be divisible",
        ),  # the paper's 10
        (["--T", "1001"], {}, "n_steps"),
        (["--lr", "0"], {}, "--lr"),
        (["--beta", "nan"], {}, "--beta"),
        (["--steps", "0"], {}, "--steps"),
    ],
)
def test_cli_checks_before_loading_weights(
    folder, tmp_path, monkeypatch, capsys, argv, env, message
):
    for k, v in env.items():
        monkeypatch.setenv(k, v)

    def no_load(*a, **k):
        raise AssertionError("weights loaded before the checks")

    monkeypatch.setattr(sdmod, "load_sd", no_load)
    with pytest.raises(SystemExit) as exc:
        ddp.main(["--out", str(tmp_path / "run"), "--sd-path", str(folder), *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_checks_paths(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    for argv, message in [
        (["--sd-path", str(tmp_path / "none")], "no Stable Diffusion folder"),
        (["--sd-path", str(tmp_path)], "unet/config.json"),
        (["--out", str(tmp_path / "file")], "not a folder"),
    ]:
        with pytest.raises(SystemExit):
            ddp.main(["--out", str(tmp_path / "run"), *argv])
        assert message in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_run_the_sd_command_end_to_end(folder, tmp_path):
    """``torchrun --nproc_per_node 2 -m diffctrl.finetune.large.ddp --sd-path ...`` on the tiny model:
    progress and loss on rank 0, config/metrics/adapters in --out, adapters identical on both
    ranks and equal to one process training on the whole batch."""
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(Path(diffctrl.__file__).resolve().parents[1])
        + os.pathsep
        + os.environ.get("PYTHONPATH", ""),
    )
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "diffctrl.finetune.large.ddp",
        "--out",
        str(out),
        "--sd-path",
        str(folder),
        "--steps",
        "2",
        "--T",
        "3",
        "--n-traj",
        "4",
        "--lr",
        "1e-2",
        "--method",
        "draft",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "loss=" in proc.stderr and "2/2" in proc.stderr  # rank 0's progress bar
    assert (
        proc.stdout.count("final loss") == 1
        and str(out / "metrics.jsonl") in proc.stdout
    )
    config = json.loads((out / "config.json").read_text())
    assert (
        config["world_size"] == 2
        and config["beta"] == 0.01
        and config["lora_rank"] == 4
    )
    rows = [
        json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [1, 2]
    r0, r1 = torch.load(out / "lora_rank0.pt"), torch.load(out / "lora_rank1.pt")
    single = build_objective(
        load_sd(folder), "A green colored rabbit", method="draft", n_steps=3, n_traj=4
    )
    res = finetune(single, 2, lr=1e-2, seed=0)
    # the logged loss is the mean over the two shards: the single process's whole-batch loss
    assert [r["loss"] for r in rows] == pytest.approx(res.losses, rel=1e-4, abs=1e-6)
    assert rows[-1]["nfe"] == single.budget.nfe
    ref = lora_state(single.control.unet)
    assert set(r0) == set(ref)
    for k in ref:
        assert torch.equal(r0[k], r1[k]), k
        # Adam normalises each step to ~lr, so float32 reduction-order noise shows at ~1e-3 lr
        torch.testing.assert_close(r0[k], ref[k], rtol=0, atol=1e-4)
    assert (
        max(float(v.abs().max()) for k, v in ref.items() if "lora_B" in k) > 1e-3
    )  # it moved
