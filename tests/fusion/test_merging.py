"""Checkpoint merging: the weighted average of the auxiliaries' parameters."""

import pytest
import torch

from diffctrl.diffusion.models import ScoreMLP
from diffctrl.fusion import merge_checkpoints


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
