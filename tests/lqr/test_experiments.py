"""The batched experiment driver: consistent bookkeeping on a tiny batch."""

import numpy as np
import pytest
import torch

from diffctrl.lqr import RunSpec, cancellation_policy, random_system, run_pg_batch, split_policy


def test_cancellation_policy_removes_the_kernel_term():
    s = random_system(3, 3, scale=2.0, seed=4)
    K1, K2 = split_policy(s, cancellation_policy(s))
    assert torch.allclose(s.C - s.B @ K2, torch.zeros(3, 3, dtype=torch.float64), atol=1e-12)


def test_run_pg_batch_bookkeeping():
    specs = [RunSpec(0, 1.0, 0.2), RunSpec(0, 1.0, 0.2, "random", 0),
             RunSpec(0, 1.0, 0.2, "model_free", 0, n_samples=9), RunSpec(1, 2.0, 0.2)]
    out = run_pg_batch(specs, n_iter=6, step=1e-4, n_perturb=20, radius=0.6, horizon=6,
                       n_eval=24, eval_every=3, newton_iter=10, newton_starts=("klin",))
    assert len(out["models"]) == 2 and list(out["model_index"]) == [0, 0, 0, 1]
    assert out["rel_gap"].shape == (3, 4) and list(out["iters"]) == [0, 3, 6]
    assert np.all(out["rel_gap"] >= 0)                      # C* is the lowest cost seen
    assert set(out["outcome"]) <= {"converged", "stalled", "diverged"}
    K0 = out["result"].K[0]
    assert torch.allclose(K0[2], K0[0], atol=1e-10)          # model-free K^lin = K^lin
    assert out["notes"][2]["estimation_error"] < 1e-10
    assert out["reference"]["grad_norm"].max() < 1e-6
    with pytest.raises(ValueError, match="init"):
        run_pg_batch([RunSpec(0, 1.0, 0.2, "zeros")], n_iter=2, step=1e-4, n_perturb=5,
                     radius=0.6, horizon=4)
