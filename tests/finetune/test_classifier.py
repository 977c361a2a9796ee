"""The digit classifier, its log-probability reward, the diversity scores, and the image chain."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.stats import entropy

from diffctrl.diffusion import data as ddata
from diffctrl.diffusion.models import SmallUNet
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.finetune.classifier import (ClassLogProb, DigitClassifier, accuracy, class_entropy,
                                          max_entropy, mean_pairwise_distance, train_classifier)
from diffctrl.finetune.images import model_chain


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    x, y = ddata.load_digits()
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    tr, te = perm[:1300], perm[1300:]
    clf = DigitClassifier(64, 10, hidden=64)
    losses = train_classifier(clf, x[tr], y[tr], 300, noise_std=0.2, seed=0)
    return clf, losses, x[te], y[te]


def test_classifier_learns_the_digits(trained):
    clf, losses, xte, yte = trained
    assert np.mean(losses[-20:]) < 0.3 * np.mean(losses[:5])
    assert accuracy(clf, xte, yte) > 0.9  # held-out; chance is 0.1


def test_reward_is_the_log_softmax_of_the_target(trained):
    clf, _, xte, yte = trained
    r = ClassLogProb(clf, 3)
    out = r(xte)
    assert out.shape == (xte.shape[0],) and torch.all(out <= 0)
    logits = clf(xte).detach().double()
    ref = logits[:, 3] - torch.logsumexp(logits, 1)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    # exp(r) summed over the ten target classes is one
    tot = sum(ClassLogProb(clf, c)(xte).exp() for c in range(10))
    torch.testing.assert_close(tot, torch.ones_like(tot), rtol=1e-5, atol=1e-5)
    # real threes score higher than the other digits; the classifier is frozen, x is differentiable
    assert out[yte == 3].mean() > out[yte != 3].mean() + 2
    assert all(not p.requires_grad for p in clf.parameters())
    z = xte[:4].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(r(z).sum(), z)
    assert g.shape == z.shape and torch.isfinite(g).all() and g.abs().sum() > 0


def test_class_entropy_against_scipy():
    labels = torch.tensor([0, 0, 1, 2, 2, 2, 7])
    p = np.bincount(labels.numpy(), minlength=10) / labels.numel()
    assert class_entropy(labels, 10) == pytest.approx(entropy(p), abs=1e-12)
    assert class_entropy(torch.arange(10).repeat(3), 10) == pytest.approx(math.log(10)) == max_entropy(10)
    assert class_entropy(torch.full((5,), 4), 10) == 0.0


def test_mean_pairwise_distance_against_scipy():
    x = torch.randn(13, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert mean_pairwise_distance(x) == pytest.approx(pdist(x.reshape(13, -1).numpy()).mean(), rel=1e-6)


def test_image_chain_is_differentiable_and_matches_the_ancestral_mean():
    sched = vp_sde_schedule(4)
    torch.manual_seed(0)
    unet = SmallUNet(4, base=8)
    chain = model_chain(unet, sched, 0.5, (1, 8, 8))
    assert chain.dim == 64 and chain.T == 4 and chain.sigma.shape == (4,)
    y = torch.randn(3, 64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    m = chain.mean(1, y)
    k = 3  # level N - t
    b = float(sched.betas[k])
    eps = unet(y.detach().reshape(3, 1, 8, 8), k).reshape(3, 64)
    ref = (y.detach() - b * eps / (1 - float(sched.alpha_bar[k])) ** 0.5) / (1 - b) ** 0.5
    torch.testing.assert_close(m.detach(), ref, rtol=1e-5, atol=1e-5)
    (g,) = torch.autograd.grad(m.sum(), y)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert all(not p.requires_grad for p in unet.parameters())


def test_bad_inputs_raise():
    clf = DigitClassifier(64, 10, hidden=8)
    with pytest.raises(ValueError, match="target"):
        ClassLogProb(clf, 10)
    with pytest.raises(ValueError, match="labels"):
        train_classifier(clf, torch.zeros(4, 64), torch.tensor([0, 1, 2, 11]), 1)
    with pytest.raises(ValueError, match="pixels"):
        clf(torch.zeros(2, 63))
    with pytest.raises(ValueError, match="at least 2"):
        mean_pairwise_distance(torch.zeros(1, 64))
    with pytest.raises(ValueError, match="N="):
        model_chain(SmallUNet(5, base=8), vp_sde_schedule(4), 0.5, (1, 8, 8))
