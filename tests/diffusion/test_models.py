import pytest
import torch

from diffctrl.diffusion.data import load_digits, ring_mixture
from diffctrl.diffusion.exact import exact_score_fn
from diffctrl.diffusion.models import (
    ScoreMLP,
    SmallUNet,
    dsm_loss,
    model_score,
    to_score,
)
from diffctrl.diffusion.schedules import linear_schedule, vp_sde_schedule
from diffctrl.diffusion.training import train_dsm


def test_parametrisations_agree_on_the_exact_score():
    """eps-, x0- and score-predictions of the exact model all map to the same score."""
    data = ring_mixture(K=3, var=0.2)
    sched = linear_schedule(50)
    s = exact_score_fn(data, sched)
    x = torch.randn(10, 2, dtype=torch.float64)
    k = 17
    ab = float(sched.alpha_bar[k])
    score = s(x, k)
    eps = -((1 - ab) ** 0.5) * score
    x0 = (x + (1 - ab) * score) / ab**0.5
    for pred, p in ((eps, "eps"), (x0, "x0"), (score, "score")):
        assert torch.allclose(to_score(pred, x, k, sched, p), score, atol=1e-12)


def test_dsm_training_learns_the_score():
    torch.manual_seed(0)
    data = ring_mixture(K=4, radius=2.0, var=0.1)
    sched = linear_schedule(50, scale_with_N=True)
    model = ScoreMLP(2, sched.N, hidden=64, depth=2)
    exact = exact_score_fn(data, sched)

    def err(score):
        tot = 0.0
        for k in (5, 15, 30, 50):
            x = (
                data.marginal(sched.alpha_bar[k])
                .sample(2000, torch.Generator().manual_seed(k))
                .float()
            )
            tot += float(
                ((score(x, k) - exact(x, k)) ** 2).sum(1).mean()
                * (1 - sched.alpha_bar[k])
            )
        return tot / 4

    before = err(model_score(model, sched))
    train_dsm(
        model,
        sched,
        lambda n, g: data.sample(n, g),
        steps=600,
        batch_size=256,
        lr=3e-3,
        progress=False,
    )
    after = err(model_score(model, sched))
    assert after < 0.15 * before and after < 0.2


def test_checkpoint_resume_continues_the_same_trajectory(tmp_path):
    sched = linear_schedule(20)
    x, _ = load_digits()
    x = x[:64]

    def fresh():
        torch.manual_seed(1)
        return SmallUNet(sched.N, base=8, emb_dim=16)

    full = fresh()
    l_full = train_dsm(full, sched, x, steps=6, batch_size=8, seed=3, progress=False)
    part = fresh()
    ck = tmp_path / "ck.pt"
    train_dsm(
        part, sched, x, steps=3, batch_size=8, seed=3, checkpoint=ck, progress=False
    )
    resumed = fresh()
    l_res = train_dsm(
        resumed, sched, x, steps=6, batch_size=8, seed=3, checkpoint=ck, progress=False
    )
    assert l_res == pytest.approx(l_full, rel=1e-6)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)


def test_digits_are_bundled_and_scaled():
    x, y = load_digits()
    assert x.shape == (1797, 1, 8, 8) and y.shape == (1797,)
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0


def test_bad_inputs():
    sched = linear_schedule(10)
    with pytest.raises(ValueError, match="parametrisation"):
        ScoreMLP(2, 10, parametrisation="v")
    m = ScoreMLP(2, 10)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        m(torch.zeros(4, 3), 1)
    with pytest.raises(ValueError, match="N=10"):
        model_score(m, linear_schedule(20))
    with pytest.raises(ValueError, match="batch_size"):
        train_dsm(m, sched, torch.zeros(4, 2), steps=1, batch_size=0)
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        SmallUNet(10)(torch.zeros(2, 1, 4, 4), 1)
    assert dsm_loss(m, sched, torch.zeros(4, 2)).ndim == 0


def test_dsm_loss_draws_only_the_requested_levels():
    sched = vp_sde_schedule(50)
    seen = []

    class Recorder(torch.nn.Module):
        parametrisation = "eps"

        def forward(self, x, k):
            seen.append(k.clone())
            return torch.zeros_like(x)

    x0 = torch.zeros(4000, 2)
    dsm_loss(
        Recorder(), sched, x0, generator=torch.Generator().manual_seed(0), levels=(3, 7)
    )
    ks = seen[0]
    assert int(ks.min()) == 3 and int(ks.max()) == 7  # both ends reached in 4000 draws
    dsm_loss(Recorder(), sched, x0, generator=torch.Generator().manual_seed(0))
    assert int(seen[1].min()) == 1 and int(seen[1].max()) == 50
    with pytest.raises(ValueError, match="levels"):
        dsm_loss(Recorder(), sched, x0, levels=(0, 7))
    with pytest.raises(ValueError, match="levels"):
        train_dsm(ScoreMLP(2, 50), sched, x0, steps=1, levels=(8, 51), progress=False)
