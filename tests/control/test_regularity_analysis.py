"""The verdict rules on measured Lipschitz constants (diffctrl.control.regularity_analysis)
on constructed sequences, and the LQ control against the Riccati solution."""

from types import SimpleNamespace

import numpy as np
import pytest

from diffctrl.control.regularity_analysis import (
    kept_along_iterations,
    lq_1d_run,
    settled_under_refinement,
)


def _run(lip_gradV, L=None):
    return SimpleNamespace(lip_gradV=[np.asarray(x, float) for x in lip_gradV], L=L)


def test_kept_along_iterations_compares_with_both_ends():
    # rising to the fixed point, or falling from the pre-trained value: both kept
    assert kept_along_iterations(_run([[1.0, 1.2, 1.3], [2.0, 1.5, 1.4]]))
    # an overshoot of 1.4 x the larger end is kept at factor 1.5, not at 1.3
    run = _run([[1.0, 1.4, 1.0]])
    assert kept_along_iterations(run, 1.5) and not kept_along_iterations(run, 1.3)
    # a blow-up, or a non-finite constant, is not
    assert not kept_along_iterations(_run([[1.0, 10.0, 2.0]]))
    assert not kept_along_iterations(_run([[1.0, np.nan, 1.0]]))
    assert not kept_along_iterations(_run([[1.0, np.inf]]))
    with pytest.raises(ValueError, match="factor"):
        kept_along_iterations(run, 0.5)


def test_settled_under_refinement_needs_finite_close_constants():
    a = _run([], L=np.array([0.5, 1.0, 2.0]))  # the last entry is L_T (the reward's)
    b = _run([], L=np.array([0.95, 0.4, 2.0]))
    assert settled_under_refinement(a, b, tol=0.1)
    c = _run([], L=np.array([0.5, 0.8, 2.0]))
    assert not settled_under_refinement(a, c, tol=0.1)  # 20 % apart
    d = _run([], L=np.array([np.nan, 1.0, 2.0]))
    assert not settled_under_refinement(a, d)


def test_lq_control_run_matches_riccati_and_keeps_regularity():
    res = lq_1d_run(10)
    # Catmull-Rom and Gauss-Hermite are exact for quadratics: the grid run is the optimum
    assert max(e[-1] for e in res.u_err) < 1e-10
    assert max(e[-1] for e in res.v_err) < 1e-10
    # concave reward, contracting model: Lip(grad V_t) <= Lip(grad r) = 1 at every step
    assert np.all(res.L[:-1] <= 1 + 1e-9)
    assert kept_along_iterations(res)
