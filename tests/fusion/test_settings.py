"""The chapter's settings: the paper's mixtures, the linear mixture, the digit mixtures."""

import pytest
import torch

from diffctrl.diffusion.exact import GaussianMixture as GM
from diffctrl.fusion import QuadratureGrid
from diffctrl.fusion.settings import (
    digit_mixture_sampler,
    geometric_class_share,
    linear_mixture,
    paper_1d_setting,
    paper_2d_auxiliaries,
)


def test_paper_settings_are_the_stated_mixtures():
    target, aux = paper_1d_setting()
    assert target.mean().item() == pytest.approx(0.6 * -6 + 0.4 * 6)
    assert [a.mean().item() for a in aux] == pytest.approx([3.5, -2.2])
    aux2 = paper_2d_auxiliaries()
    assert [a.dim for a in aux2] == [2, 2]
    torch.testing.assert_close(
        aux2[1].mean(), torch.tensor([0.6, 0.8], dtype=torch.float64)
    )


def test_linear_mixture_density_is_the_weighted_sum():
    _, aux = paper_1d_setting()
    lin = linear_mixture(aux, [0.3, 0.7])
    x = torch.linspace(-12, 12, 50, dtype=torch.float64)[:, None]
    want = 0.3 * aux[0].log_prob(x).exp() + 0.7 * aux[1].log_prob(x).exp()
    torch.testing.assert_close(lin.log_prob(x).exp(), want)
    # a zero weight drops the auxiliary's components
    assert linear_mixture(aux, [1.0, 0.0]).n_components == aux[0].n_components


def test_geometric_class_share_matches_the_quadrature_barycenter_of_separated_classes():
    w = torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=torch.float64)
    aux = [GM.create(wi, [[-12.0], [12.0]], [1.0, 1.0]) for wi in w]
    lam = torch.tensor([0.3, 0.7], dtype=torch.float64)
    bary = QuadratureGrid.create(aux, -25, 25, 5000).barycenter(lam)
    left = float(bary.mass[bary.grid.points[:, 0] < 0].sum())
    assert abs(left - float(geometric_class_share(w, lam)[0])) < 1e-8


def test_digit_mixture_sampler_draws_the_proportions():
    images = torch.arange(6, dtype=torch.float32)[:, None].repeat(1, 64)
    labels = torch.tensor([7, 7, 7, 9, 9, 1])
    data = digit_mixture_sampler(images, labels, [7, 9], [0.3, 0.7])
    x = data(20_000, torch.Generator().manual_seed(0))
    share7 = float((x[:, 0] < 3).double().mean())
    assert abs(share7 - 0.3) < 4 * (0.3 * 0.7 / 20_000) ** 0.5
    assert set(x[:, 0].tolist()) == {0.0, 1.0, 2.0, 3.0, 4.0}
    with pytest.raises(ValueError, match="proportions"):
        digit_mixture_sampler(images, labels, [7, 9], [0.5, 0.6])
