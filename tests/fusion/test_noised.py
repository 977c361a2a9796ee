"""The fused score at a noise level: the noised barycenter's score, the truncated chain."""

import pytest
import torch

from diffctrl.diffusion.exact import GaussianMixture as GM
from diffctrl.diffusion.exact import exact_score_fn
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.fusion import QuadratureGrid
from diffctrl.fusion.noised import (
    law_distance,
    noised_barycenter_score,
    relative_score_gap,
    sample_from_level,
    truncated,
)

F64 = torch.float64


def test_truncated_schedule_keeps_the_first_levels():
    sched = vp_sde_schedule(50)
    sub = truncated(sched, 10)
    assert sub.N == 10
    torch.testing.assert_close(sub.alpha_bar, sched.alpha_bar[:11])
    with pytest.raises(ValueError, match="k_c"):
        truncated(sched, 51)


def test_noised_barycenter_score_of_one_gaussian_is_its_exact_noised_score():
    # the barycenter of one auxiliary is the auxiliary; Tweedie over the grid gives the
    # closed-form score of N(sqrt(ab) m, ab s^2 + 1 - ab)
    gm = GM.create([1.0], [[1.5]], [0.8])
    sched = vp_sde_schedule(20)
    bary = QuadratureGrid.create([gm], -12, 12, 4000).barycenter([1.0])
    x = torch.linspace(-3, 4, 15, dtype=F64)[:, None]
    for k in (3, 10, 20):
        got = noised_barycenter_score(bary, sched)(x, k)
        torch.testing.assert_close(
            got, exact_score_fn(gm, sched)(x, k), atol=1e-5, rtol=0
        )


def test_relative_score_gap_of_a_scaled_score_is_its_squared_relative_error():
    gm = GM.create([0.5, 0.5], [[-2.0], [2.0]], [0.5, 0.5])
    sched = vp_sde_schedule(20)
    s = exact_score_fn(gm, sched)
    x0 = gm.sample(500, torch.Generator().manual_seed(0))
    gaps = relative_score_gap(
        lambda x, k: 1.1 * s(x, k), s, x0, sched, [1, 10, 20], torch.Generator()
    )
    assert gaps == pytest.approx([0.01] * 3, rel=1e-9)


def test_sample_from_level_with_the_exact_score_draws_the_data_law():
    gm = GM.create([0.4, 0.6], [[-2.0], [2.0]], [0.3, 0.3])
    sched = vp_sde_schedule(100)
    grid = QuadratureGrid.create([gm], -8, 8, 4000)
    law = grid.barycenter([1.0])
    g = torch.Generator().manual_seed(0)
    n = 4000
    x0 = gm.sample(n, g)
    assert torch.equal(
        sample_from_level(exact_score_fn(gm, sched), sched, x0, 0, g), x0
    )
    x = sample_from_level(exact_score_fn(gm, sched), sched, gm.sample(n, g), 30, g)
    floor = law_distance(gm.sample(n, g), law)  # an exact sample of the same size
    assert law_distance(x, law) < 3 * floor
    with pytest.raises(ValueError, match="reference"):
        law_distance(
            torch.zeros(3, 2),
            QuadratureGrid.create(
                [GM.create([1.0], [[0.0, 0.0]], [1.0])], -4, 4, 20
            ).barycenter([1.0]),
        )
