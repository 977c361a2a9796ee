"""The losses of parametric PI-FT and the baselines, trained: LQ convergence to the exact
control, W2 to the exact tilted target on a 2-D mixture, the registry and input errors."""

import pytest
import torch

from diffctrl.control.chain import ControlledChain
from diffctrl.control.lq import LQProblem, solve_lq
from diffctrl.control.rewards import QuadraticReward
from diffctrl.diffusion import data as ddata
from diffctrl.diffusion.schedules import vp_sde_schedule
from diffctrl.finetune.losses import LOSSES, METHODS
from diffctrl.finetune.metrics import control_error, evaluate
from diffctrl.finetune.nets import ControlMLP, ValueMLP
from diffctrl.finetune.objective import FinetuneObjective
from diffctrl.finetune.optimum import grid_optimum
from diffctrl.finetune.targets import tilted_target
from diffctrl.finetune.trainer import finetune


def _objective(chain, reward, method, n_traj=32, seed=0):
    torch.manual_seed(seed)
    ctrl = ControlMLP(chain.dim, chain.sigma, chain.beta, hidden=32)
    critic = (
        ValueMLP(chain.dim, chain.T + 1, hidden=32) if method == "pift_ac" else None
    )
    return FinetuneObjective(chain, reward, ctrl, method, critic=critic, n_traj=n_traj)


def test_pift_converges_to_the_exact_lq_control():
    # Gaussian data, quadratic reward: the exact optimum is the affine control of part 1
    pb = LQProblem.create(
        vp_sde_schedule(5),
        [0.5, -0.5],
        [[0.6, 0.1], [0.1, 0.4]],
        QuadraticReward.create(Q=1.0, a=[1.0, 1.0]),
        0.5,
        variance="large",
    )
    exact = solve_lq(pb)
    chain = pb.chain()
    obj = _objective(chain, pb.reward, "pift_ac", n_traj=64)
    finetune(obj, 250, lr=3e-3, seed=0)
    err, _ = control_error(chain, obj.control, exact.as_control(), 2000, seed=1)
    size, _ = control_error(
        chain, lambda t, y: torch.zeros_like(y), exact.as_control(), 2000, seed=1
    )
    assert err < 0.05 * size  # stated tolerance: relative control error below 5 %


@pytest.fixture(scope="module")
def mixture_case():
    p0 = ddata.ring_mixture(K=4, radius=2.0, var=0.1)
    chain = ControlledChain.from_data(p0, vp_sde_schedule(8), 0.5, variance="large")
    reward = QuadraticReward.linear([0.6, 0.3])
    return chain, reward, tilted_target(p0, reward, 0.5)


def test_every_method_moves_towards_the_tilted_target(mixture_case):
    chain, reward, target = mixture_case
    base = evaluate(chain, None, reward, 400, target=target, seed=3)
    u_opt = grid_optimum(chain, reward, n=41, n_iter=40, n_gh=8).as_control()
    size, _ = control_error(
        chain, lambda t, y: torch.zeros_like(y), u_opt, 1000, seed=1
    )
    w2 = {}
    for method in METHODS:
        obj = _objective(chain, reward, method)
        finetune(obj, 60, lr=1e-2, seed=0)
        w2[method] = evaluate(
            chain, obj.control, reward, 400, target=target, seed=3, floor=False
        )["w2"]
        assert w2[method] < 0.7 * base["w2"], (method, w2[method], base["w2"])
        # path KL to the T-step optimum (grid PI-FT) below 20 % of the optimum's own KL
        err, _ = control_error(chain, obj.control, u_opt, 1000, seed=1)
        assert err < 0.2 * size, (method, err / size)
    assert (
        w2["pift_ac"] < 2.5 * base["w2_floor"]
    )  # stated factor of the noise floor at smoke size


def test_bad_inputs(mixture_case):
    chain, reward, _ = mixture_case
    with pytest.raises(ValueError, match="beta"):
        ControlledChain.from_data(chain.data, chain.sched, 0.0)
    with pytest.raises(ValueError, match="beta"):
        ControlMLP(2, chain.sigma, torch.zeros(chain.T))
    with pytest.raises(ValueError, match="method"):
        FinetuneObjective(chain, reward, ControlMLP(2, chain.sigma, chain.beta), "ppo")
    nan = lambda y: torch.full((y.shape[0],), float("nan"))  # noqa: E731
    with pytest.raises(ValueError, match="non-finite"):
        finetune(_objective(chain, nan, "dpok"), 1)
    wrong = lambda y: y  # noqa: E731  (B, d) instead of (B,)
    with pytest.raises(ValueError, match="shape"):
        finetune(_objective(chain, wrong, "draft"), 1)
    # a reward that returns no tensor: TypeError, as every entry point (diffctrl.checks)
    listed = lambda y: y.sum(1).tolist()  # noqa: E731
    for method in METHODS:
        with pytest.raises(TypeError, match="torch.Tensor"):
            finetune(_objective(chain, listed, method), 1)
    with pytest.raises(ValueError, match="critic"):
        FinetuneObjective(
            chain, reward, ControlMLP(2, chain.sigma, chain.beta), "pift_ac"
        )


def test_the_registry_names_every_method_once():
    assert METHODS == ("pift_ac", "draft", "dpok", "adjoint") == tuple(LOSSES)
    assert [m for m in METHODS if LOSSES[m].critic] == ["pift_ac"]
