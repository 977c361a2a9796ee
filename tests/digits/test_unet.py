"""The shared digit U-Net: keyed by its configuration, trained once under a lock, loaded after;
the strided sub-chain against the schedule it is cut from."""

import json
import os
import sys
import threading

import pytest
import torch

from diffctrl.diffusion.schedules import linear_schedule
from diffctrl.digits import unet
from diffctrl.digits.unet import (
    DIGIT_UNET,
    StridedModel,
    artifact_key,
    digit_unet,
    sha256_file,
    strided,
)

TINY = dict(DIGIT_UNET["smoke"], steps=3, base=8, N=20)


@pytest.fixture()
def artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFCTRL_ARTIFACTS", str(tmp_path))
    monkeypatch.delenv("DIFFCTRL_WEIGHTS_URL", raising=False)
    for k in [k for k in os.environ if k.startswith("BINDER_")]:
        monkeypatch.delenv(k)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    return tmp_path


def test_the_key_changes_with_every_setting():
    keys = {
        artifact_key(dict(TINY, **{k: v}))
        for k, v in [
            ("steps", 4),
            ("base", 16),
            ("N", 21),
            ("lr", 1e-3),
            ("seed", 1),
            ("batch_size", 8),
            ("schedule", "cosine"),
        ]
    }
    keys.add(artifact_key(TINY))
    assert len(keys) == 8
    assert artifact_key(TINY) == artifact_key(dict(TINY))
    assert artifact_key("smoke") != artifact_key("full")


def test_trained_once_then_loaded_bit_for_bit(artifacts, monkeypatch):
    calls = []
    real = unet._train
    monkeypatch.setattr(unet, "_train", lambda *a: calls.append(1) or real(*a))
    net, sched, info = digit_unet(TINY)
    assert info["origin"] == "trained" and len(calls) == 1 and sched.N == 20
    assert info["sha256"] == sha256_file(info["path"])
    net2, _, info2 = digit_unet(TINY)
    assert (
        info2["origin"] == "cache" and len(calls) == 1 and info2["key"] == info["key"]
    )
    for (k, a), (_, b) in zip(net.state_dict().items(), net2.state_dict().items()):
        assert torch.equal(a, b), k
    # the same weights as training the same configuration by hand
    torch.manual_seed(TINY["seed"])
    from diffctrl.diffusion import data as ddata
    from diffctrl.diffusion.models import SmallUNet
    from diffctrl.diffusion.training import train_dsm

    ref = SmallUNet(20, base=8)
    train_dsm(
        ref,
        sched,
        ddata.load_digits()[0],
        steps=3,
        batch_size=TINY["batch_size"],
        lr=TINY["lr"],
        seed=TINY["seed"],
        progress=False,
    )
    for k, v in ref.state_dict().items():
        assert torch.equal(v, net.state_dict()[k]), k
    # an explicit source file is loaded; a file of another configuration is refused
    _, _, info3 = digit_unet(TINY, source=info["path"])
    assert info3["origin"] == "source"
    with pytest.raises(ValueError, match="key"):
        digit_unet(dict(TINY, seed=1), source=info["path"])
    with pytest.raises(ValueError, match="not a file"):
        digit_unet(TINY, source=artifacts / "missing.pt")


def test_parallel_callers_train_once(artifacts, monkeypatch):
    calls = []
    real = unet._train
    monkeypatch.setattr(unet, "_train", lambda *a: calls.append(1) or real(*a))
    out = []
    threads = [
        threading.Thread(target=lambda: out.append(digit_unet(TINY)[2]["origin"]))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and sorted(out) == ["cache", "cache", "trained"]
    assert [p.name for p in artifacts.glob("*.pt")] == [
        f"digit_unet-{artifact_key(TINY)}.pt"
    ]


def test_an_unreachable_weights_url_falls_back_to_training(artifacts, monkeypatch):
    monkeypatch.setenv(
        "DIFFCTRL_WEIGHTS_URL", "http://127.0.0.1:9/none"
    )  # nothing listens
    with pytest.warns(UserWarning, match="training"):
        _, _, info = digit_unet(TINY, timeout=2.0)
    assert info["origin"] == "trained"


def test_strided_chain_reads_the_model_at_the_kept_levels():
    sched = linear_schedule(100)
    torch.manual_seed(0)
    from diffctrl.diffusion.models import SmallUNet

    net = SmallUNet(100, base=8).eval()
    sub_net, sub = strided(net, sched, 10)
    levels = torch.arange(10) * 10 + 1  # 1, 11, ..., 91
    assert sub.N == 10 and sub_net.N == 10
    assert torch.allclose(sub.alpha_bar[1:], sched.alpha_bar[levels])
    # alpha_bar_j = prod of the kept transitions' alphas
    assert torch.allclose(torch.cumprod(1 - sub.betas[1:], 0), sched.alpha_bar[levels])
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(sub_net(x, 4), net(x, 31))
        k = torch.tensor([1, 10, 5])
        want = torch.cat(
            [net(x[i : i + 1], int(levels[int(k[i]) - 1])) for i in range(3)]
        )
        assert torch.allclose(sub_net(x, k), want, atol=1e-6)
    # a one-level call does not read the levels buffer (no device sync per step on a GPU):
    # it works with the buffer on "meta", where reading a value is impossible
    sub_net.levels = sub_net.levels.to("meta")
    with torch.no_grad():
        assert torch.equal(sub_net(x, 4), net(x, 31))
    with pytest.raises(ValueError, match="levels"):
        StridedModel(net, torch.tensor([5, 3]))
    with pytest.raises(ValueError, match="N="):
        strided(net, linear_schedule(50), 10)


def test_bad_configs():
    with pytest.raises(ValueError, match="one of"):
        artifact_key("large")
    with pytest.raises(ValueError, match="keys"):
        artifact_key({"N": 3})
    with pytest.raises(TypeError):
        artifact_key(3)
    assert json.dumps(DIGIT_UNET["full"])  # plain JSON: it is hashed


def test_the_code_fingerprint_ignores_layout_and_docstrings_only():
    a = 'def f(x):\n    """Doc."""\n    return x + 1  # one\n'
    b = "def f(x):\n\n    return (x\n            + 1)\n"
    c = 'def f(x):\n    """Doc."""\n    return x + 2\n'
    assert unet.code_fingerprint(a) == unet.code_fingerprint(b)
    assert unet.code_fingerprint(a) != unet.code_fingerprint(c)


def test_a_readers_copy_tries_the_published_book_then_trains(artifacts, monkeypatch):
    assert unet.weights_url() is None  # the build and CI never download
    monkeypatch.setenv("BINDER_LAUNCH_HOST", "https://mybinder.org/")
    assert unet.weights_url() == unet.PUBLISHED_ARTIFACTS
    monkeypatch.setattr(unet, "PUBLISHED_ARTIFACTS", "http://127.0.0.1:9/none")
    with pytest.warns(UserWarning, match="127.0.0.1"):
        _, _, info = digit_unet(TINY, timeout=2.0)
    assert info["origin"] == "trained"
