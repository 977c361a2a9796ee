"""The compute counter behind the compute table: what every method charges per iteration against
an independent count of the samples that actually pass forward and backward through each
network (pre-trained mean, control, critic) and the reward.

Units (``diffctrl.finetune.budget``): one network evaluation = one sample through one network
once; a backward pass through a network counts as one more; likewise for the reward. The count
here: forward samples at every call, backward samples by a hook on every output that a gradient
reaches.
"""

import pytest
import torch
from torch import nn

from diffctrl.control.chain import ControlledChain
from diffctrl.control.rewards import QuadraticReward
from diffctrl.diffusion import data as ddata
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.finetune.budget import Budget, Timer
from diffctrl.finetune.losses import METHODS
from diffctrl.finetune.nets import ControlMLP, ValueMLP
from diffctrl.finetune.objective import FinetuneObjective

T, N_TRAJ = 5, 6


class Tally:
    def __init__(self):
        self.fwd = 0
        self.bwd = 0

    def seen(self, out: torch.Tensor) -> torch.Tensor:
        self.fwd += out.shape[0]
        if out.requires_grad:
            out.register_hook(lambda g, b=out.shape[0]: self._back(b))
        return out

    def _back(self, b):
        self.bwd += b

    @property
    def total(self):
        return self.fwd + self.bwd


class Counted(nn.Module):
    def __init__(self, net: nn.Module, tally: Tally):
        super().__init__()
        self.net, self.tally = net, tally

    def forward(self, t, y):
        return self.tally.seen(self.net(t, y))


class CountedChain:
    """The chain with a counted pre-trained mean (the score network's evaluations)."""

    def __init__(self, chain, tally: Tally):
        self._chain, self.tally = chain, tally
        self.T, self.sigma, self.beta, self.dim = (
            chain.T,
            chain.sigma,
            chain.beta,
            chain.dim,
        )

    def mean(self, t, y):
        return self.tally.seen(self._chain.mean(t, y))


@pytest.fixture(scope="module")
def setting():
    p0 = ddata.ring_mixture(K=4, radius=2.0, var=0.1)
    chain = ControlledChain.from_data(p0, vp_sde_schedule(T), 0.5, variance="large")
    return chain, QuadraticReward.linear([0.6, 0.3])


def run_counted(setting, method, truncation=None, iters=2):
    chain, reward = setting
    nets, rew = Tally(), Tally()
    torch.manual_seed(0)
    ctrl = Counted(ControlMLP(2, chain.sigma, chain.beta, hidden=8), nets)
    critic = (
        Counted(ValueMLP(2, T + 1, hidden=8), nets) if method == "pift_ac" else None
    )
    obj = FinetuneObjective(
        CountedChain(chain, nets),
        lambda y: rew.seen(reward(y)),
        ctrl,
        method,
        critic=critic,
        n_traj=N_TRAJ,
        truncation=truncation,
    )
    gen = torch.Generator().manual_seed(1)
    for _ in range(iters):
        obj.zero_grad(set_to_none=True)
        obj(gen).backward()
    return obj.budget, nets, rew


@pytest.mark.parametrize("method", METHODS)
def test_charged_evaluations_equal_the_counted_ones(setting, method):
    budget, nets, rew = run_counted(setting, method)
    assert budget.nfe == nets.total
    assert budget.reward_evals == rew.total


@pytest.mark.parametrize("K", [None, 1, 3])
def test_draft_charges_against_the_count(setting, K):
    """DRaFT-K: T n means, T n controls and their T n backward passes, the reward and its
    gradient. The backward passes through the pre-trained mean are K - 1 per trajectory: at
    step T - K the state is detached, so no gradient reaches that mean."""
    budget, nets, rew = run_counted(setting, "draft", truncation=K)
    k = T if K is None else K
    assert nets.total == 2 * (3 * T * N_TRAJ + (k - 1) * N_TRAJ)
    assert budget.nfe == nets.total
    assert budget.reward_evals == rew.total


def test_budget_counter_and_timer():
    b = Budget()
    b.charge(nfe=5, reward=2)
    b.charge(nfe=3)
    assert (b.nfe, b.reward_evals) == (8, 2)
    with pytest.raises(ValueError, match="charges"):
        b.charge(nfe=-1)
    with Timer(b):
        sum(range(1000))
    assert b.wall > 0
    assert Budget().load(b.as_dict()) == b
