"""The trainer: a resumed run continues the same trajectory; a diverged run is retried at a
smaller step, and reported."""

import pytest
import torch

from diffctrl.control.chain import ControlledChain
from diffctrl.control.rewards import QuadraticReward
from diffctrl.diffusion import data as ddata
from diffctrl.diffusion.models import SmallUNet
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.digits.images import model_chain
from diffctrl.finetune.nets import ControlMLP, ValueMLP
from diffctrl.finetune.objective import FinetuneObjective
from diffctrl.finetune.trainer import finetune, finetune_guarded


def _objective(chain, reward, method, n_traj=8, seed=0):
    torch.manual_seed(seed)
    ctrl = ControlMLP(chain.dim, chain.sigma, chain.beta, hidden=32)
    critic = (
        ValueMLP(chain.dim, chain.T + 1, hidden=32) if method == "pift_ac" else None
    )
    return FinetuneObjective(chain, reward, ctrl, method, critic=critic, n_traj=n_traj)


@pytest.fixture(scope="module")
def mixture_case():
    p0 = ddata.ring_mixture(K=4, radius=2.0, var=0.1)
    chain = ControlledChain.from_data(p0, vp_sde_schedule(8), 0.5, variance="large")
    return chain, QuadraticReward.linear([0.6, 0.3])


def test_guarded_finetuning_retries_at_a_smaller_step_and_reports_divergence():
    sched = vp_sde_schedule(3)
    torch.manual_seed(0)
    chain = model_chain(SmallUNet(3, base=8), sched, 1.0, (1, 8, 8))

    def make():
        torch.manual_seed(0)
        ctrl = ControlMLP(64, chain.sigma, chain.beta, hidden=8)
        return FinetuneObjective(
            chain, lambda y: -(y**2).sum(1), ctrl, "dpok", n_traj=4
        )

    seen = []

    def check(obj):  # the first attempt "blows up", the second passes
        seen.append(obj)
        return len(seen) > 1

    obj, res, tries = finetune_guarded(
        make, 2, lr=0.1, lr_factors=(1.0, 0.25), check=check
    )
    assert [t["lr"] for t in tries] == [0.1, 0.025]
    assert [t["diverged"] for t in tries] == [True, False]
    assert obj is seen[1] and len(res.losses) == 2
    obj, res, tries = finetune_guarded(
        make, 1, lr=0.1, lr_factors=(1.0,), check=lambda o: False
    )
    assert obj is None and res is None and tries[0]["diverged"]

    def bad():  # a non-finite loss is a divergence, not an exception
        o = make()
        o.forward = lambda gen: torch.tensor(float("nan"), requires_grad=True)
        return o

    obj, _, tries = finetune_guarded(bad, 1, lr=0.1)
    assert obj is None and "non-finite" in tries[0]["reason"]
    with pytest.raises(ValueError, match="lr_factors"):
        finetune_guarded(make, 1, lr=0.1, lr_factors=())


@pytest.mark.parametrize("method", ["pift_ac", "adjoint"])
def test_resume_continues_the_same_trajectory(mixture_case, tmp_path, method):
    chain, reward = mixture_case
    full = _objective(chain, reward, method, n_traj=8)
    finetune(full, 4, lr=1e-2, seed=5)
    part = _objective(chain, reward, method, n_traj=8)
    ck = tmp_path / "ck.pt"
    finetune(part, 2, lr=1e-2, seed=5, checkpoint=ck)
    resumed = _objective(chain, reward, method, n_traj=8)
    res = finetune(resumed, 4, lr=1e-2, seed=5, checkpoint=ck)
    assert len(res.losses) == 4
    for a, b in zip(full.control.parameters(), resumed.control.parameters()):
        assert torch.equal(a, b)
