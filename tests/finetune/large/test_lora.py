"""The large-model path on a tiny random diffusers UNet: LoRA fine-tuning step, DDP with gloo."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import diffctrl
from diffctrl.finetune.large import ddp
from diffctrl.finetune.large.lora import add_lora, lora_state, tiny_unet

pytest.importorskip("diffusers")
pytest.importorskip("peft")


def test_one_step_changes_only_the_adapters():
    obj = ddp.build("pift_ac", n_traj=4, T=3)
    unet = obj.control.unet
    before = {k: v.detach().clone() for k, v in unet.named_parameters()}
    ddp.train(obj, 1, lr=1e-3, seed=0)
    changed = {k for k, v in unet.named_parameters() if not torch.equal(v, before[k])}
    assert changed and all("lora_" in k for k in changed)
    assert any("lora_B" in k for k in changed)
    # the control starts at zero (B = 0) and is nonzero after the step
    y = torch.randn(2, 1, 8, 8)
    assert obj.control(1, y).abs().max() > 0


def test_lora_rank_must_be_positive():
    with pytest.raises(ValueError, match="rank"):
        add_lora(tiny_unet(), rank=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process(tmp_path):
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(Path(diffctrl.__file__).resolve().parents[1])
        + os.pathsep
        + os.environ.get("PYTHONPATH", ""),
    )
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
        str(tmp_path),
        "--steps",
        "2",
        "--n-traj",
        "4",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "lora_rank0.pt")
    r1 = torch.load(tmp_path / "lora_rank1.pt")
    single = ddp.build("pift_ac", n_traj=4, T=4)
    ddp.train(single, 2, lr=3e-4, seed=0)
    ref = lora_state(single.control.unet)
    assert set(r0) == set(ref)
    for k in ref:
        assert torch.equal(r0[k], r1[k]), k
        torch.testing.assert_close(r0[k], ref[k], rtol=0, atol=1e-6)
    assert (
        max(float(v.abs().max()) for k, v in ref.items() if "lora_B" in k) > 1e-4
    )  # it moved
