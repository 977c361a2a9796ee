"""The digit classifiers, the log-probability reward, the quality and diversity scores."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.stats import entropy

from diffctrl.diffusion import data as ddata
from diffctrl.digits.classifiers import (
    ClassLogProb,
    DigitClassifier,
    DigitCNN,
    accuracy,
    class_entropy,
    data_nn_floor,
    digit_quality,
    frechet_distance,
    label_tv,
    max_entropy,
    mean_pairwise_distance,
    nearest_distance,
    train_classifier,
)


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
    assert (
        class_entropy(torch.arange(10).repeat(3), 10)
        == pytest.approx(math.log(10))
        == max_entropy(10)
    )
    assert class_entropy(torch.full((5,), 4), 10) == 0.0


def test_mean_pairwise_distance_against_scipy():
    x = torch.randn(13, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert mean_pairwise_distance(x) == pytest.approx(
        pdist(x.reshape(13, -1).numpy()).mean(), rel=1e-6
    )


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
    with pytest.raises(ValueError, match="at least 2"):
        data_nn_floor(torch.zeros(1, 64))


def test_a_cnn_judge_of_another_architecture_learns_the_digits(trained):
    _, _, xte, yte = trained
    x, y = ddata.load_digits()
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    judge = DigitCNN(10, width=8, hidden=32)
    train_classifier(judge, x[perm[:1300]], y[perm[:1300]], 300, seed=1)
    assert accuracy(judge, xte, yte) > 0.9
    assert judge.features(xte[:5]).shape == (5, 32)


def test_frechet_distance_against_scipy_sqrtm():
    from scipy.linalg import sqrtm

    g = torch.Generator().manual_seed(3)
    a = torch.randn(200, 4, generator=g, dtype=torch.float64) @ torch.randn(
        4, 4, generator=g, dtype=torch.float64
    )
    b = torch.randn(150, 4, generator=g, dtype=torch.float64) * 0.5 + 1.0
    ca, cb = np.cov(a.numpy().T), np.cov(b.numpy().T)
    want = ((a.mean(0) - b.mean(0)) ** 2).sum().item() + np.trace(
        ca + cb - 2 * np.real(sqrtm(ca @ cb))
    )
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-8)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-8)


def test_label_tv_and_nearest_distance_by_hand():
    assert label_tv(
        torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 3
    ) == pytest.approx(0.25)
    assert label_tv(torch.tensor([2, 2]), torch.tensor([0, 1]), 3) == pytest.approx(1.0)
    from scipy.spatial.distance import cdist

    g = torch.Generator().manual_seed(0)
    x, ref = torch.randn(7, 3, generator=g), torch.randn(11, 3, generator=g)
    want = cdist(x.double().numpy(), ref.double().numpy()).min(1)
    assert np.allclose(nearest_distance(x, ref).numpy(), want)


def test_digit_quality_tells_digits_from_noise(trained):
    clf = trained[0]
    x, _ = ddata.load_digits()
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(5))
    real = x[
        perm[:300]
    ]  # digits that are not the comparison sets' (seed 1 draws others)
    q_real = digit_quality(real, x, clf, seed=1)
    noise = torch.rand(300, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    q_noise = digit_quality(noise, x, clf, seed=1)
    # real digits sit near the data-vs-data floors; uniform noise is far above every one
    assert (
        q_noise["fd"] > 10 * q_noise["fd_floor"]
        and q_noise["nn"] > 1.5 * q_noise["nn_floor"]
    )
    # the class histogram alone is a weak test: the classifier spreads noise over many classes
    assert q_noise["tv"] > q_real["tv"]
    assert (
        q_real["fd"] < 3 * q_real["fd_floor"]
        and q_real["nn"] < 1.25 * q_real["nn_floor"]
    )
    assert q_real["tv"] < 0.15
    with pytest.raises(ValueError, match="2 n"):
        digit_quality(x[:1000], x, clf)


def test_data_nn_floor_against_scipy():
    # the median over the digits of the distance to the nearest other digit, by scipy (the
    # lower of the two middle values for an even count, as torch.median)
    from scipy.spatial.distance import cdist

    x, _ = ddata.load_digits()
    sub = x[:300].reshape(300, -1).double().numpy()
    d = cdist(sub, sub)
    np.fill_diagonal(d, np.inf)
    assert math.isclose(
        data_nn_floor(x[:300]), float(np.sort(d.min(1))[149]), rel_tol=1e-12
    )
    # three points on a line at 0, 1, 3: nearest others 1, 1, 2 -> median 1
    line = torch.tensor([[0.0], [1.0], [3.0]])
    assert data_nn_floor(line) == 1.0
