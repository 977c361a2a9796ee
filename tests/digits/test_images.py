"""Images as states of the controlled chain: the image model's chain, the tiled grid, and the
scores of a chain's samples."""

import math

import pytest
import torch

from diffctrl.diffusion.models import SmallUNet
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.digits.classifiers import DigitClassifier, class_entropy
from diffctrl.digits.images import image_grid, model_chain, score_samples, to_images


def test_image_chain_is_differentiable_and_matches_the_ancestral_mean():
    sched = vp_sde_schedule(4)
    torch.manual_seed(0)
    unet = SmallUNet(4, base=8)
    chain = model_chain(unet, sched, 0.5, (1, 8, 8))
    assert chain.dim == 64 and chain.T == 4 and chain.sigma.shape == (4,)
    y = torch.randn(
        3, 64, generator=torch.Generator().manual_seed(1), requires_grad=True
    )
    m = chain.mean(1, y)
    k = 3  # level N - t
    b = float(sched.betas[k])
    eps = unet(y.detach().reshape(3, 1, 8, 8), k).reshape(3, 64)
    ref = (y.detach() - b * eps / (1 - float(sched.alpha_bar[k])) ** 0.5) / (
        1 - b
    ) ** 0.5
    torch.testing.assert_close(m.detach(), ref, rtol=1e-5, atol=1e-5)
    (g,) = torch.autograd.grad(m.sum(), y)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert all(not p.requires_grad for p in unet.parameters())


def test_the_image_chain_checks_its_model():
    with pytest.raises(ValueError, match="N="):
        model_chain(SmallUNet(5, base=8), vp_sde_schedule(4), 0.5, (1, 8, 8))


def test_image_grid_tiles_row_by_row_with_gaps():
    y = torch.arange(4 * 4, dtype=torch.float32).reshape(4, 1, 2, 2)
    g = image_grid(y, 2, pad=1, background=-1.0)
    assert g.shape == (7, 7)
    assert torch.equal(g[1:3, 1:3], y[0, 0]) and torch.equal(g[1:3, 4:6], y[1, 0])
    assert torch.equal(g[4:6, 1:3], y[2, 0]) and torch.equal(g[4:6, 4:6], y[3, 0])
    assert torch.all(g[0] == -1) and torch.all(g[:, 3] == -1) and torch.all(g[-1] == -1)
    assert torch.equal(image_grid(y.reshape(4, 4), 2), g)  # flattened square images
    with pytest.raises(ValueError, match="side"):
        image_grid(y, 3)
    assert torch.equal(to_images(y.reshape(4, 4), (1, 2, 2)), y)


def test_score_samples_of_the_pretrained_chain_by_hand():
    # the pre-trained chain (no control): KL 0; the reward and the label scores recomputed
    # from the returned samples with the classifier itself
    sched = vp_sde_schedule(3)
    torch.manual_seed(0)
    chain = model_chain(SmallUNet(3, base=8), sched, 1.0, (1, 8, 8))
    clf = DigitClassifier(64, 10, hidden=8).eval()

    def reward(y):
        return torch.log_softmax(clf(y), 1)[:, 3]

    sc, y = score_samples(chain, None, reward, clf, 3, 40, seed=2, judge=clf)
    assert y.shape == (40, 64)
    assert sc["kl"] == 0.0 and sc["kl_se"] == 0.0
    with torch.no_grad():
        r = reward(y).double()
        labels = clf(y).argmax(1)
    assert math.isclose(sc["reward"], float(r.mean()), rel_tol=1e-6)
    assert math.isclose(sc["reward_se"], float(r.std()) / math.sqrt(40), rel_tol=1e-5)
    assert sc["target_frac"] == float((labels == 3).double().mean())
    assert sc["judge_target_frac"] == sc["target_frac"]  # the same network judges
    assert sc["class_entropy"] == class_entropy(labels, 10) == sc["judge_entropy"]
    again, y2 = score_samples(chain, None, reward, clf, 3, 40, seed=2)
    assert torch.equal(y, y2) and "judge_entropy" not in again


def test_images_and_the_small_path_import_without_the_large_extra():
    # a fresh interpreter: drawing an image grid and fine-tuning on the small path must not
    # import diffusers, peft or transformers (the `large` extra)
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import diffctrl.digits, diffctrl.digits.images, diffctrl.finetune\n"
        "import diffctrl.finetune.large\n"  # its libraries are imported where used
        "print(sorted(m for m in ('diffusers', 'peft', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
