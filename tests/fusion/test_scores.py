"""The fused score: autograd of the geometric mixture of the noised auxiliaries, the vmapped
evaluation against the loop, the fit of lambda against the quadrature minimiser, and the errors."""

import pytest
import torch

from diffctrl.diffusion.exact import GaussianMixture as GM
from diffctrl.diffusion.models import ScoreMLP, SmallUNet
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.fusion import (
    FusedScore,
    QuadratureGrid,
    fit_weights,
    mixture_score_levels,
    score_matching_weights,
)
from diffctrl.fusion.settings import paper_1d_setting

F64 = torch.float64


def _aux2d():
    a1 = GM.create([0.5, 0.5], [[-2.0, 0.0], [2.0, 1.0]], [[1.0, 0.3], [0.3, 1.0]])
    a2 = GM.create([0.3, 0.7], [[0.0, -1.0], [1.0, 2.0]], [[2.0, 0.5], [0.4, 0.8]])
    return [a1, a2]


@pytest.mark.parametrize("dim", [1, 2])
def test_fused_score_is_the_score_of_the_geometric_mixture_of_noised_auxiliaries(dim):
    aux = paper_1d_setting()[1] if dim == 1 else _aux2d()
    sched = vp_sde_schedule(50)
    lam = torch.tensor([0.3, 0.7])
    fused = FusedScore(aux, sched, weights=lam)
    gen = torch.Generator().manual_seed(0)
    x = 3 * torch.randn(64, dim, generator=gen, dtype=F64)
    ks = torch.randint(1, 51, (64,), generator=gen)
    got = fused(x, ks).detach()
    for k in range(1, 51):  # autograd of log prod_i p_{i,k}^lam_i, one level at a time
        ab = float(sched.alpha_bar[k])
        xr = x.clone().requires_grad_(True)
        logg = sum(float(l) * a.marginal(ab).log_prob(xr) for l, a in zip(lam, aux))
        ref = torch.autograd.grad(logg.sum(), xr)[0]
        m = ks == k
        torch.testing.assert_close(got[m], ref[m], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fused(x, k).detach(), ref, rtol=1e-5, atol=1e-5)


def _gauss_bary(ms, ss, lam):
    prec = sum(l / s for l, s in zip(lam, ss))
    return sum(l * m / s for l, m, s in zip(lam, ms, ss)) / prec, 1 / prec


def test_fused_score_differs_from_the_noised_barycenter_by_the_stated_amount():
    """1-D Gaussians N(m_i, s_i): fused score at ab is -sum_i lam_i (x - sqrt(ab) m_i) / v_i,
    v_i = ab s_i + 1 - ab; the noised barycenter's is -(x - sqrt(ab) m) / (ab s + 1 - ab) with
    1/s = sum lam_i / s_i, m = s sum lam_i m_i / s_i. Both checked, the second by quadrature."""
    ms, ss, lam = [-1.0, 2.0], [0.25, 2.0], [0.4, 0.6]
    aux = [GM.gaussian([m], s) for m, s in zip(ms, ss)]
    grid = QuadratureGrid.create(aux, -8, 8, 3200)
    bary = grid.barycenter(lam)
    m, s = _gauss_bary(ms, ss, lam)
    x = torch.linspace(-3, 3, 13, dtype=F64)[:, None]
    for ab in (0.999, 0.9, 0.5, 0.1):
        fused = -sum(
            l * (x - ab**0.5 * mi) / (ab * si + 1 - ab)
            for l, mi, si in zip(lam, ms, ss)
        )
        noised = -(x - ab**0.5 * m) / (ab * s + 1 - ab)
        quad = bary.noised_score(ab, x)
        torch.testing.assert_close(quad, noised, rtol=1e-4, atol=1e-4)
        got = sum(
            l * mixture_score_levels(a, torch.full((13,), ab, dtype=F64), x)
            for l, a in zip(lam, aux)
        )
        torch.testing.assert_close(got, fused, rtol=1e-10, atol=1e-10)
    # the stated gap: at ab = 0.5 and x = 0 it is (closed form) about 0.23, far above round-off
    ab = 0.5
    gap = -sum(
        l * (0 - ab**0.5 * mi) / (ab * si + 1 - ab) for l, mi, si in zip(lam, ms, ss)
    ) + (0 - ab**0.5 * m) / (ab * s + 1 - ab)
    quad_gap = float(
        sum(
            l
            * mixture_score_levels(
                a, torch.tensor([ab], dtype=F64), torch.zeros(1, 1, dtype=F64)
            )
            for l, a in zip(lam, aux)
        )
        - bary.noised_score(ab, torch.zeros(1, 1, dtype=F64))
    )
    assert abs(quad_gap - gap) < 1e-4 and abs(gap) > 0.2


def test_equal_covariances_make_the_fused_score_the_noised_barycenter_score():
    aux = [GM.gaussian([m], 0.7) for m in (-2.0, 1.0, 3.0)]
    lam = [0.2, 0.5, 0.3]
    bary = QuadratureGrid.create(aux, -9, 9, 3600).barycenter(lam)
    x = torch.linspace(-3, 3, 7, dtype=F64)[:, None]
    for ab in (0.95, 0.5, 0.05):
        fused = sum(l * a.marginal(ab).score(x) for l, a in zip(lam, aux))
        torch.testing.assert_close(
            bary.noised_score(ab, x), fused, rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize("arch", ["mlp", "unet"])
def test_vmapped_evaluation_equals_the_loop(arch):
    sched = vp_sde_schedule(20)
    torch.manual_seed(0)
    if arch == "mlp":
        models = [ScoreMLP(3, 20, hidden=16, depth=2) for _ in range(4)]
        x = torch.randn(10, 3)
    else:
        models = [SmallUNet(20, base=8, emb_dim=8) for _ in range(3)]
        x = torch.randn(5, 1, 8, 8)
    lam = torch.softmax(torch.randn(len(models)), 0)
    fv = FusedScore(models, sched, weights=lam)
    fl = FusedScore(models, sched, weights=lam, evaluation="loop")
    for k in (1, 7, torch.randint(1, 21, (x.shape[0],))):
        torch.testing.assert_close(
            fv.component_scores(x, k), fl.component_scores(x, k), rtol=1e-5, atol=1e-5
        )
        torch.testing.assert_close(fv(x, k), fl(x, k), rtol=1e-5, atol=1e-5)
    # and the loop is the models' own scores
    ab = float(sched.alpha_bar[7])
    ref = torch.stack([-m(x, 7).detach() / (1 - ab) ** 0.5 for m in models])
    torch.testing.assert_close(fv.component_scores(x, 7), ref, rtol=1e-5, atol=1e-5)


def test_only_the_logits_are_trained():
    models = [ScoreMLP(1, 10, hidden=8, depth=1) for _ in range(2)]
    fused = FusedScore(models, vp_sde_schedule(10))
    assert [n for n, _ in fused.named_parameters()] == ["logits"]


def test_fitted_lambda_converges_to_the_population_dsm_minimiser():
    target, aux = paper_1d_setting()
    sched = vp_sde_schedule(100)
    cutoff = 10
    grid = QuadratureGrid.create(aux, -20, 25, 3000)
    ab = sched.alpha_bar[1 : cutoff + 1]
    lam_pop, _ = score_matching_weights(target, grid, ab, 1 - ab)
    errs = {}
    for n in (32, 8192):
        data = target.sample(n, torch.Generator().manual_seed(1)).float()
        fused = FusedScore(aux, sched)
        fit_weights(fused, data, cutoff, 150, batch_size=1024, seed=2)
        lam = fused.weights.detach().double()
        assert abs(float(lam.sum()) - 1) < 1e-6 and torch.all(lam >= 0)
        errs[n] = float((lam - lam_pop).abs().max())
    assert errs[8192] < 0.02 and errs[8192] < errs[32], errs


def test_errors_name_the_argument():
    sched = vp_sde_schedule(10)
    with pytest.raises(ValueError, match="K = 0"):
        FusedScore([], sched)
    with pytest.raises(ValueError, match="architecture"):
        FusedScore([ScoreMLP(1, 10), ScoreMLP(2, 10)], sched)
    with pytest.raises(ValueError, match="dimension"):
        FusedScore([GM.gaussian([0.0], 1.0), GM.gaussian([0.0, 0.0], 1.0)], sched)
    with pytest.raises(TypeError, match="auxiliaries"):
        FusedScore([ScoreMLP(1, 10), GM.gaussian([0.0], 1.0)], sched)
    with pytest.raises(ValueError, match="weights"):
        FusedScore([GM.gaussian([0.0], 1.0)] * 2, sched, weights=[0.5, 0.6])
    fused = FusedScore([GM.gaussian([0.0], 1.0)] * 2, sched)
    with pytest.raises(ValueError, match="data"):
        fit_weights(fused, torch.zeros(0, 1), 3, 5)
    for bad in (0, 11):
        with pytest.raises(ValueError, match="cutoff"):
            fit_weights(fused, torch.zeros(4, 1), bad, 5)
    with pytest.raises(ValueError, match="K = 0"):
        QuadratureGrid.create([], -1, 1, 10)
