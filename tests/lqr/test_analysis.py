"""The chapter's verdicts on the batch of runs: the convergence rule judges the runs the
zero-iteration baseline leaves open; Fig. 1(b)'s pattern per model seed."""

import numpy as np
import pytest

from diffctrl.lqr import RunSpec
from diffctrl.lqr.analysis import convergence_verdict, fig1b_patterns, fig1b_verdict


def _outcomes(final, start):
    """A minimal ``run_pg_batch`` result: majority and zero-iteration outcomes per run."""
    final = np.array(["converged" if c else "stalled" for c in final])
    seeds = np.stack([final] * 3)
    return dict(
        outcome=final,
        outcome_baseline=np.array(["converged" if c else "stalled" for c in start]),
        outcome_seeds=seeds,
        n_estimator_seeds=3,
    )


def test_convergence_verdict_judges_the_runs_the_baseline_leaves_open():
    T, F = True, False
    # run 0 starts converged and decides nothing; of runs 1..3, two converge; the baseline
    # (1 of 4 runs) is not positive: confirmed with caveat
    out = _outcomes([T, T, F, T], [T, F, F, F])
    v = convergence_verdict(out, [0, 1, 2, 3])
    assert (v["verdict"], v["baseline_passes"]) == ("confirmed with caveat", False)
    assert v["per_seed"] == [True, False, True]
    assert v["evidence"]["n"] == 4 and v["evidence"]["baseline_converged"] == 1
    assert v["evidence"]["converged"] == 3
    assert v["evidence"]["converged_not_baseline"] == 2
    assert v["evidence"]["estimator_seeds_converged"] == [3, 3, 0, 3]
    assert "other_scale" not in v["evidence"]
    # the baseline converges on half the runs: those decide nothing and are set aside, the
    # decided runs are judged alone (the baseline fails on them by construction, and says so)
    out = _outcomes([T, T, T, T], [T, T, F, F])
    v = convergence_verdict(out, [0, 1, 2, 3], idx_other=[0, 1])
    assert (v["verdict"], v["baseline_passes"]) == ("confirmed", False)
    assert v["per_seed"] == [True, True] and v["evidence"]["n_decided"] == 2
    assert v["evidence"]["baseline_fails_by_construction"] is True
    assert v["evidence"]["other_scale"] == dict(n=2, converged=2, baseline_converged=2)
    out = _outcomes([T, T, F, F], [T, T, F, F])
    v = convergence_verdict(out, [0, 1, 2, 3])
    assert (v["verdict"], v["baseline_passes"]) == ("not reproduced", False)
    assert v["per_seed"] == [False, False]
    # every run starts converged: nothing decided
    out = _outcomes([T, T], [T, T])
    v = convergence_verdict(out, [0, 1])
    assert (v["verdict"], v["baseline_passes"], v["per_seed"]) == (
        "inconclusive",
        True,
        None,
    )
    # only the runs idx count
    out = _outcomes([F, T, T], [F, F, T])
    v = convergence_verdict(out, [1])
    assert (v["verdict"], v["baseline_passes"]) == ("confirmed", False)
    with pytest.raises(ValueError, match="idx"):
        convergence_verdict(out, [])


def _fig1b_batch(conv, base, rho_init):
    """Runs from K^lin on model seeds 0, 1 at l = 1, 3, 5 and two scales: outcomes given per
    (seed, l) as rows of ``conv`` / ``base`` (the same at both scales)."""
    specs, outcome, baseline, rho0 = [], [], [], []
    for rho in (0.5, 0.2):
        for s in (0, 1):
            for j, l in enumerate((1.0, 3.0, 5.0)):
                specs.append(RunSpec(s, l, rho))
                outcome.append("converged" if conv[s][j] else "stalled")
                baseline.append("converged" if base[s][j] else "stalled")
                rho0.append(rho_init[s][j])
    return dict(
        specs=specs,
        outcome=np.array(outcome, dtype=object),
        outcome_baseline=np.array(baseline, dtype=object),
        rho_init=np.array(rho0),
    )


def test_fig1b_pattern_is_converged_up_to_four_and_not_beyond():
    T, F = True, False
    # model seed 0 shows the paper's pattern; seed 1 converges at l = 5 too
    out = _fig1b_batch(
        [[T, T, F], [T, T, T]], [[F, F, F], [T, F, F]], [[0.5, 0.9, 1.1]] * 2
    )
    pt = fig1b_patterns(out, [0, 1], [1, 3, 5], 0.5)
    assert pt["pattern"].tolist() == [True, False]
    assert pt["pattern_base"].tolist() == [False, False]
    assert pt["stable"].tolist() == [[True, True, False]] * 2
    v = fig1b_verdict(out, [0, 1], [1, 3, 5], [0.5, 0.2])
    assert (v["verdict"], v["baseline_passes"]) == ("confirmed with caveat", False)
    assert v["per_seed"].tolist() == [True, False]
    assert v["evidence"]["pattern_per_model_calibrated"].tolist() == [True, False]
    # the same pattern at zero iterations: the positive verdict decides nothing
    out = _fig1b_batch([[T, T, F]] * 2, [[T, T, F]] * 2, [[0.5, 0.9, 1.1]] * 2)
    v = fig1b_verdict(out, [0, 1], [1, 3, 5], [0.5, 0.2])
    assert (v["verdict"], v["baseline_passes"]) == ("inconclusive", True)
