"""The digits page's label law and stratified target samples."""

import pytest
import torch

from diffctrl.fusion.digits_experiments import label_tv, stratified_sample


def test_label_tv_closed_forms():
    # exact target law: zero; all images "neither": one; share 0.5 with no others: 0.1
    assert label_tv(0.6, 0.0, 0.6) == pytest.approx(0.0)
    assert label_tv(0.3, 1.0, 0.6) == pytest.approx(1.0)
    assert label_tv(0.5, 0.0, 0.6) == pytest.approx(0.1)
    # (p7, p9, p_other) = (0.45, 0.45, 0.1) against (0.6, 0.4, 0): (0.15 + 0.05 + 0.1) / 2
    assert label_tv(0.5, 0.1, 0.6) == pytest.approx(0.15)
    with pytest.raises(ValueError, match="other"):
        label_tv(0.5, 1.5, 0.6)


def test_stratified_sample_holds_the_target_proportions_exactly():
    labels = torch.tensor([7] * 20 + [9] * 20 + [3] * 5)
    images = labels[:, None].float().repeat(1, 4)
    x = stratified_sample(
        images, labels, (7, 9), 0.6, 15, torch.Generator().manual_seed(0)
    )
    assert x.shape == (15, 4)
    assert int((x[:, 0] == 7).sum()) == 9 and int((x[:, 0] == 9).sum()) == 6
    # without replacement: 0.6 * 40 = 24 sevens > 20 available
    with pytest.raises(ValueError, match="pool holds 20"):
        stratified_sample(images, labels, (7, 9), 0.6, 40, torch.Generator())
