"""The chapter's verdicts on the batch of runs: the convergence rule judges the runs the
zero-iteration baseline leaves open, against exact-gradient descent as positive control;
Fig. 1(b) as a threshold in l per model seed."""

import numpy as np
import pytest

from diffctrl.lqr import RunSpec
from diffctrl.lqr.analysis import convergence_verdict
from diffctrl.lqr.threshold_analysis import fig1b_patterns, fig1b_verdict
from diffctrl.repro import Diagnosis


def _word(c, fail="stalled"):
    return "converged" if c else fail


def _outcomes(final, start, control=None):
    """A minimal ``run_pg_batch`` result: majority, zero-iteration and control outcomes."""
    final = np.array([_word(c) for c in final], dtype=object)
    control = final if control is None else [_word(c) for c in control]
    return dict(
        outcome=final,
        outcome_baseline=np.array([_word(c) for c in start], dtype=object),
        outcome_control=np.array(control, dtype=object),
        outcome_seeds=np.stack([final] * 3),
        n_estimator_seeds=3,
    )


def test_convergence_verdict_judges_the_runs_the_baseline_leaves_open():
    T, F = True, False
    # run 0 starts converged and decides nothing; of runs 1..3, two converge
    out = _outcomes([T, T, F, T], [T, F, F, F], control=[T, T, T, T])
    v = convergence_verdict(out, [0, 1, 2, 3])
    j = v["verdict"]
    assert (j.verdict, j.baseline_passes, j.control_passes) == (
        "confirmed with caveat",
        False,
        True,
    )
    assert j.per_seed == [True, False, True]
    ev = v["evidence"]
    assert (ev["n"], ev["baseline_converged"], ev["converged"]) == (4, 1, 3)
    assert ev["converged_not_baseline"] == 2 and ev["n_decided"] == 3
    assert ev["baseline_fails_by_construction"] is True
    assert ev["control_converged"] == 3
    assert ev["estimator_seeds_converged"] == [3, 3, 0, 3]
    # none of the decided runs converges, the control does: not reproduced, diagnosed
    d = Diagnosis("setting", "smoothing")
    out = _outcomes([T, T, F, F], [T, T, F, F], control=[T, T, T, T])
    v = convergence_verdict(out, [0, 1, 2, 3], d)
    assert v["verdict"].verdict == "not reproduced" and v["diagnosis"] is d
    # ... and where the control fails too, the test cannot decide
    out = _outcomes([F, F], [F, F], control=[F, F])
    v = convergence_verdict(out, [0, 1], d)
    assert (v["verdict"].verdict, v["verdict"].why) == ("inconclusive", "control fails")
    # the estimator converges where exact descent does not: under-powered, not a crash
    out = _outcomes([T, T], [F, F], control=[F, F])
    v = convergence_verdict(out, [0, 1], d)
    assert v["verdict"] == "inconclusive" and v["diagnosis"].cause == "underpowered"
    # every run starts converged: nothing decided
    out = _outcomes([T, T], [T, T])
    v = convergence_verdict(out, [0, 1], d)
    assert (v["verdict"], v["baseline_passes"]) == ("inconclusive", True)
    assert v["diagnosis"] is d
    # a confirmed verdict carries no diagnosis; only the runs idx count
    out = _outcomes([F, T, T], [F, F, T])
    v = convergence_verdict(out, [1], d)
    assert v["verdict"].verdict == "confirmed" and "diagnosis" not in v
    with pytest.raises(ValueError, match="idx"):
        convergence_verdict(out, [])


def _fig1b_batch(final, base, control, rho_init):
    """Runs from K^lin on model seeds 0, 1 at l = 1, 3, 5: outcome words per (seed, l) as
    rows of ``final`` / ``control``, zero-iteration convergence in ``base``."""
    specs, outcome, baseline, ctl, rho0 = [], [], [], [], []
    for s in (0, 1):
        for j, l in enumerate((1.0, 3.0, 5.0)):
            specs.append(RunSpec(s, l, 0.5))
            outcome.append(final[s][j])
            baseline.append(_word(base[s][j]))
            ctl.append(control[s][j])
            rho0.append(rho_init[s][j])
    arr = lambda x: np.array(x, dtype=object)  # noqa: E731
    return dict(
        specs=specs,
        outcome=arr(outcome),
        outcome_baseline=arr(baseline),
        outcome_control=arr(ctl),
        rho_init=np.array(rho0),
    )


C, S, D = "converged", "stalled", "diverged"


def test_fig1b_threshold_in_l():
    T, F = True, False
    # seed 0: converges at l = 1, 3 (3 beyond K^lin's own 5%), diverges at 5: a threshold.
    # seed 1: converges at 5 after stalling at 3 (its control converged at 3): no threshold
    out = _fig1b_batch(
        [[C, C, D], [C, S, C]],
        [[T, F, F], [T, F, F]],
        [[C, C, D], [C, C, C]],
        [[0.5, 0.9, 1.1]] * 2,
    )
    pt = fig1b_patterns(out, [0, 1], [1, 3, 5])
    assert pt["pattern"] == [True, False]
    assert pt["pattern_base"] == [False, False]  # never converges beyond itself
    assert pt["pattern_ctl"] == [True, False]
    assert pt["l_star"][0] == 5.0 and pt["l_star"][1] == 3.0
    assert pt["stable"].tolist() == [[True, True, False]] * 2
    v = fig1b_verdict(out, [0, 1], [1, 3, 5], Diagnosis("setting", "x"))
    j = v["verdict"]
    assert (j.verdict, j.baseline_passes, j.control_passes) == (
        "confirmed with caveat",
        False,
        True,
    )
    assert v["diagnosis"].cause == "setting"
    # a run that barely moves (stalled, and its control stalled too) is not a failure:
    # without a failing l there is no threshold
    out = _fig1b_batch(
        [[C, C, S]] * 2, [[T, F, F]] * 2, [[C, C, S]] * 2, [[0.5, 0.9, 1.1]] * 2
    )
    pt = fig1b_patterns(out, [0, 1], [1, 3, 5])
    assert pt["fail"].tolist() == [[False, False, False]] * 2
    assert pt["pattern"] == [False, False]
    # converging only where K^lin already was within 5% is not a threshold of the method
    out = _fig1b_batch(
        [[C, D, D]] * 2, [[T, F, F]] * 2, [[C, D, D]] * 2, [[0.5, 1.1, 1.2]] * 2
    )
    assert fig1b_patterns(out, [0, 1], [1, 3, 5])["pattern"] == [False, False]
