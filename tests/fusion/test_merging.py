"""Checkpoint merging and the digits helpers."""

import pytest
import torch

from diffctrl.diffusion.exact import GaussianMixture as GM
from diffctrl.diffusion.models import ScoreMLP
from diffctrl.fusion import QuadratureGrid, merge_checkpoints
from diffctrl.fusion.experiments import digit_mixture_sampler, geometric_class_share


def test_merged_parameters_are_the_weighted_average():
    torch.manual_seed(0)
    a, b = ScoreMLP(2, 10, hidden=8), ScoreMLP(2, 10, hidden=8)
    m = merge_checkpoints([a, b], [0.25, 0.75])
    for (n, pm), pa, pb in zip(m.named_parameters(), a.parameters(), b.parameters()):
        torch.testing.assert_close(pm, 0.25 * pa + 0.75 * pb, msg=n)
    x = torch.randn(4, 2)
    torch.testing.assert_close(merge_checkpoints([a, a, a])(x, 3), a(x, 3))
    with pytest.raises(ValueError, match="architecture"):
        merge_checkpoints([a, ScoreMLP(2, 10, hidden=16)])
    with pytest.raises(ValueError, match="K = 0"):
        merge_checkpoints([])


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
