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


def _sched():
    from diffctrl.diffusion.schedules import vp_sde_schedule

    return vp_sde_schedule(10)


def test_output_layer_fine_tunes_merge_to_the_fused_score_exactly():
    # the output W h + b is linear in (W, b): averaging them averages the outputs
    from diffctrl.fusion import FusedScore, fine_tune, network_score

    sched = _sched()
    torch.manual_seed(0)
    base = ScoreMLP(1, sched.N, hidden=16)
    before = {n: p.clone() for n, p in base.state_dict().items()}
    pair = [
        fine_tune(
            base, sched, torch.randn(64, 1) + m, 20, seed=i, output_layer_only=True
        )
        for i, m in enumerate((-3.0, 3.0))
    ]
    for n, p in base.state_dict().items():  # the base is left unchanged
        torch.testing.assert_close(p, before[n], msg=n)
    for a in pair:  # only the output layer moved
        for (n, p), q in zip(a.state_dict().items(), before.values()):
            moved = not torch.equal(p, q)
            assert moved == n.startswith("net.6"), n
        assert all(p.requires_grad for p in a.parameters())
    x = torch.randn(32, 1)
    merged = network_score(merge_checkpoints(pair, [0.3, 0.7]), sched)
    fused = FusedScore(pair, sched, weights=[0.3, 0.7])
    for k in (1, 5, 10):
        torch.testing.assert_close(
            merged(x, k), fused(x, k).detach(), rtol=1e-5, atol=1e-5
        )


def test_full_fine_tunes_merge_only_approximately():
    from diffctrl.fusion import FusedScore, fine_tune, network_score

    sched = _sched()
    torch.manual_seed(0)
    base = ScoreMLP(1, sched.N, hidden=16)
    pair = [
        fine_tune(base, sched, torch.randn(64, 1) + m, 50, lr=1e-2, seed=i)
        for i, m in enumerate((-3.0, 3.0))
    ]
    x = torch.randn(64, 1)
    gap = (
        (
            network_score(merge_checkpoints(pair), sched)(x, 3)
            - FusedScore(pair, sched)(x, 3)
        )
        .abs()
        .max()
    )
    assert gap > 1e-4  # every layer moved: the network is not linear in what moved
    with pytest.raises(ValueError, match="steps"):
        fine_tune(base, sched, x, 0)
