"""The mixture notebook's rules, on hand-made runs: the compute to a goal and the comparison
decided outside the seed spread."""

import math
from types import SimpleNamespace

import pytest

from diffctrl.finetune.mixture_analysis import compute_to_goal, separated
from diffctrl.finetune.mixture_experiments import COMPARED
from diffctrl.finetune.trainer import FinetuneResult
from diffctrl.repro import Outcome


@pytest.mark.parametrize(
    "better, worse, n, want",
    [
        ([True, True], [False, False], 2, "confirmed"),
        ([True, True], [False, False], 1, "inconclusive"),  # one seed decides nothing
        ([False, False], [True, False], 3, "not reproduced"),
        ([True, False], [False, True], 3, "inconclusive"),
        ([False, False], [False, False], 3, "inconclusive"),
    ],
)
def test_separated_follows_the_declared_rule(better, worse, n, want):
    assert separated(better, worse, n) == want


def test_compute_to_goal_is_the_first_evaluation_below_the_goal():
    cfg = SimpleNamespace(
        rewards=["linear"], method_seeds=[0, 1, 2], target_factor=2.0, err_goal=0.1
    )

    def history(w2s, errs):
        return FinetuneResult(
            history=[
                {"forward_equivalents": 100 * i, "wall": 0.5 * i, "w2": w, "err": e}
                for i, (w, e) in enumerate(zip(w2s, errs))
            ]
        )

    # the optimum's W2 is 0.5: the W2 goal is 1.0; seed 2 never reaches the error goal
    reaches = history([3.0, 1.5, 1.0], [1, 0.05, 0.01])
    stalls = history([3.0, 0.8, 0.7], [1, 0.5, 0.4])
    runs = {
        ("linear", m, s): reaches if s < 2 else stalls
        for m in COMPARED
        for s in cfg.method_seeds
    }
    refs = {"linear": {"opt": {"w2": 0.5}}}
    out = compute_to_goal(Outcome({}, data=dict(runs=runs, refs=refs)), cfg)
    v = out.values
    # W2 goal: seeds 0, 1 at the third evaluation (200 forward-equivalents), seed 2 at the second (100)
    assert v["fe_to_w2_pift_linear"] == 200 and v["n_reached_w2_pift_linear"] == 3
    assert v["wall_to_w2_pift_linear"] == 1.0
    # error goal: seeds 0, 1 at 100, seed 2 never: the median is 100
    assert v["fe_to_err_dpok_linear"] == 100 and v["n_reached_err_dpok_linear"] == 2
    assert len(out.data["lines"]) == 1 + len(COMPARED)
    runs = {k: history([3.0, 2.0], [1, 0.5]) for k in runs}  # nobody gets there
    v = compute_to_goal(Outcome({}, data=dict(runs=runs, refs=refs)), cfg).values
    assert (
        math.isinf(v["fe_to_w2_adjoint_linear"]) and v["n_reached_err_pift_linear"] == 0
    )
