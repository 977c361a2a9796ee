"""The verdict rules of the regularity chapter's Lipschitz claims
(diffctrl.control.lipschitz_bound_analysis: bound_test, regularity_verdict) on concrete
ratios."""

import numpy as np
import pytest

from diffctrl.control.lipschitz_bound_analysis import bound_test, regularity_verdict
from diffctrl.repro import judge


def _ratios(v_max, v_base, T=3, M=4):
    """A regularity_ratios-like dict: ``v`` peaks at ``v_max`` (iterations m >= 1) and holds
    ``v_base`` in the zero-iteration column; ``u`` is NaN there (u^(0) = 0 has no ratio)."""
    v = np.full((T, M), 0.3)
    v[0, 1] = v_max
    v[:, 0] = v_base
    u = np.full((T, M), 0.9)
    u[:, 0] = np.nan
    return {"u": u, "v": v, "fixed_point": np.ones(T)}


def test_bound_test_needs_the_bound_to_hold_and_to_constrain():
    assert bound_test(np.array([[np.nan, 0.6], [0.2, 1.0005]]))
    assert not bound_test(np.array([0.2, 1.01]))  # the bound fails
    assert not bound_test(np.array([0.2, 0.4]))  # holds but never reaches 0.5: vacuous
    assert not bound_test(np.full((2, 2), np.nan))  # nothing measured
    assert bound_test(np.array([0.4]), lo=0.3)


def test_regularity_verdict_baseline_passing_in_one_setting_downgrades_a_positive_verdict():
    good = [_ratios(0.95, 0.2), _ratios(0.9, 0.1), _ratios(0.8, 0.2)]
    v = regularity_verdict(good, "v", names=["a", "b", "c"])
    assert v["verdict"] == "confirmed" and v["baseline_passes"] is False
    assert v["per_seed"] == [True, True, True]
    assert v["evidence"]["settings"] == ["a", "b", "c"]
    assert v["evidence"]["ratio_max"] == [0.95, 0.9, 0.8]
    assert v["evidence"]["baseline_ratio_max"] == [0.2, 0.1, 0.2]
    # zero iterations already pass in one setting of three: the claim is inconclusive,
    # where a per-setting count of the baseline (1/3 < 0.5) would have left it confirmed
    one = [_ratios(0.95, 0.2), _ratios(0.9, 0.7), _ratios(0.8, 0.2)]
    v = regularity_verdict(one, "v")
    assert v["verdict"] == "inconclusive" and v["baseline_passes"] is True
    assert v["per_seed"] == [True, True, True] and "settings" not in v["evidence"]
    assert judge(v["per_seed"], [False, True, False]).verdict == "confirmed"
    # a caveat verdict is downgraded the same way
    v = regularity_verdict([_ratios(0.9, 0.7), _ratios(1.2, 0.1)], "v")
    assert v["verdict"] == "inconclusive" and v["baseline_passes"] is True
    # controls: the zero-iteration column is NaN, so their baseline never passes
    v = regularity_verdict(one, "u")
    assert v["verdict"] == "confirmed" and v["baseline_passes"] is False
    assert v["evidence"]["baseline_ratio_max"] == [0.0, 0.0, 0.0]


def test_regularity_verdict_keeps_a_negative_verdict_and_checks_its_arguments():
    bad = [_ratios(1.2, 0.7), _ratios(1.5, 0.2)]  # the bound fails everywhere
    v = regularity_verdict(bad, "v")
    assert v["verdict"] == "not reproduced" and v["baseline_passes"] is True
    assert v["per_seed"] == [False, False]
    v = regularity_verdict(
        [_ratios(1.2, 0.7), _ratios(1.5, 0.2), _ratios(0.9, 0.2)], "v"
    )
    assert v["verdict"] == "inconclusive" and v["per_seed"] == [False, False, True]
    with pytest.raises(ValueError, match="kind"):
        regularity_verdict(bad, "w")
    with pytest.raises(ValueError, match="at least one"):
        regularity_verdict([], "v")
    with pytest.raises(ValueError, match="2 settings"):
        regularity_verdict(bad, "v", names=["only one"])
