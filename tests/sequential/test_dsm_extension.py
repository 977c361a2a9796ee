"""The DSM loss and training loop with a conditioning input and per-entry noising."""

import pytest
import torch
from torch import nn

from diffctrl.diffusion.models import dsm_loss
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.diffusion.training import train_dsm


class Posterior(nn.Module):
    """The exact eps-predictor E[eps | x_k] for x0 ~ N(0, s^2 I), levels per entry."""

    parametrisation = "eps"

    def __init__(self, sched, s2):
        super().__init__()
        self.sched, self.s2, self.N = sched, s2, sched.N
        self.seen = []

    def forward(self, x, k):
        self.seen.append(k)
        ab = self.sched.alpha_bar[k].to(x)
        if ab.shape != x.shape:  # one level per sample
            ab = ab[:, None]
        return (1 - ab).sqrt() * x / (ab * self.s2 + 1 - ab)


def test_per_entry_loss_of_the_exact_predictor_is_the_posterior_variance():
    sched = vp_sde_schedule(10)
    s2 = 0.3
    x0 = s2**0.5 * torch.randn(
        40_000, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    model = Posterior(sched, s2)
    loss = float(
        dsm_loss(
            model,
            sched,
            x0,
            torch.Generator().manual_seed(1),
            levels=(2, 7),
            per_entry=True,
        )
    )
    k = model.seen[0]
    assert k.shape == x0.shape and int(k.min()) == 2 and int(k.max()) == 7
    assert (k != k[:, :1]).any()  # levels differ within a sample
    ab = sched.alpha_bar[2:8]
    exact = 5 * float(
        (1 - (1 - ab) / (ab * s2 + 1 - ab)).mean()
    )  # Var(eps | x_k), 5 entries
    assert loss == pytest.approx(exact, rel=0.01)


class Oracle(nn.Module):
    """Reads x0 from cond and returns the exact noise: the loss is 0 only if cond, k and the
    noising are aligned entry by entry."""

    parametrisation = "eps"

    def __init__(self, sched):
        super().__init__()
        self.sched, self.N = sched, sched.N
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x, k, cond):
        ab = self.sched.alpha_bar[k].to(x)
        return (x - ab.sqrt() * cond) / (1 - ab).sqrt() + self.w


def test_conditioning_input_reaches_the_model_row_by_row():
    sched = vp_sde_schedule(10)
    x0 = torch.randn(64, 4, dtype=torch.float64)
    loss = dsm_loss(
        Oracle(sched),
        sched,
        x0,
        torch.Generator().manual_seed(0),
        cond=x0,
        per_entry=True,
    )
    assert float(loss.detach()) < 1e-20
    losses = train_dsm(
        Oracle(sched),
        sched,
        x0.float(),
        3,
        batch_size=8,
        cond=x0.float(),
        per_entry=True,
        progress=False,
    )
    assert losses[0] < 1e-10  # before Adam moves the offset w
    shuffled = x0[torch.randperm(64)]
    assert (
        float(
            dsm_loss(Oracle(sched), sched, x0, cond=shuffled, per_entry=True).detach()
        )
        > 0.1
    )


def test_defaults_reproduce_the_plain_loss_draw_for_draw():
    sched = vp_sde_schedule(10)
    x0 = torch.randn(16, 3)
    model = Posterior(sched, 1.0)
    got = dsm_loss(model, sched, x0, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    k = torch.randint(1, 11, (16,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    ab = sched.alpha_bar[k].float()[:, None]
    pred = model(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, k)
    assert float(got) == pytest.approx(
        float(((pred - eps) ** 2).sum(1).mean()), rel=1e-6
    )


def test_conditioned_training_resumes_on_the_same_trajectory(tmp_path):
    from diffctrl.sequential.networks import WindowScoreNet

    sched = vp_sde_schedule(8)
    x = torch.randn(100, 5)

    def fresh():
        torch.manual_seed(0)
        return WindowScoreNet(5, 8, d_trunc=2, hidden=8)

    full = train_dsm(
        fresh(), sched, x, 6, batch_size=8, cond=x, per_entry=True, progress=False
    )
    ck = tmp_path / "ck.pt"
    train_dsm(
        fresh(),
        sched,
        x,
        3,
        batch_size=8,
        cond=x,
        per_entry=True,
        checkpoint=ck,
        progress=False,
    )
    resumed = train_dsm(
        fresh(),
        sched,
        x,
        6,
        batch_size=8,
        cond=x,
        per_entry=True,
        checkpoint=ck,
        progress=False,
    )
    assert resumed == pytest.approx(full, rel=1e-6)


def test_bad_cond():
    sched = vp_sde_schedule(8)
    with pytest.raises(ValueError, match="cond must be a tensor with 4 rows"):
        dsm_loss(Oracle(sched), sched, torch.zeros(4, 2), cond=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="cond must be a tensor"):
        train_dsm(
            Oracle(sched),
            sched,
            lambda n, g: torch.zeros(n, 2),
            1,
            cond=torch.zeros(3, 2),
            progress=False,
        )
