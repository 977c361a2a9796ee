"""Contraction rates (diffctrl.control.rates): the optimal damping minimises the damped
rate; the measured rate of a geometric sequence is its ratio, in both windows."""

import numpy as np
import pytest

from diffctrl.control.rates import damped_rate, measured_rate, optimal_damping


def test_damping_formulas():
    for rm, rp in [(0.5, 0.0), (3.0, 0.0), (10.0, 0.4)]:
        eta, rate = optimal_damping(rm, rp)
        assert damped_rate(eta, rm, rp) == pytest.approx(rate)
        grid = np.linspace(1e-3, 1, 2000)
        assert min(damped_rate(e, rm, rp) for e in grid) >= rate - 1e-9
        assert rate < 1
    assert damped_rate(1.0, 0.5) == 0.5
    with pytest.raises(ValueError):
        optimal_damping(1.0, 1.0)
    with pytest.raises(ValueError):
        damped_rate(0.0, 1.0)


def test_measured_rate_of_a_geometric_sequence():
    e = 3.0 * 0.37 ** np.arange(30)
    assert measured_rate(e) == pytest.approx(0.37)
    # round-off floor: the entries below floor * e_0 are left out of the fit
    e_floor = np.maximum(e, 3.0 * 1e-10)
    assert measured_rate(e_floor, 1e-9) == pytest.approx(0.37, rel=1e-12)
    assert measured_rate(e_floor) > 0.4  # the default floor 1e-11 keeps the plateau
    assert np.isnan(measured_rate([0.0, 1.0])) and np.isnan(measured_rate([1.0]))
    assert measured_rate([1.0, 0.0]) == 0.0


def test_measured_rate_up_to_a_noise_floor():
    """``final_factor``: fit up to the first error within k times the last one (a Monte
    Carlo floor), at least three points; the same as a fit against the iteration counts."""
    every = 20
    it = np.arange(0, 201, every)
    err = 0.6 ** (it / every) + 1e-3  # geometric, then a floor
    stop = max(int(np.argmax(err <= 3 * err[-1])) + 1, 3)
    slope = np.polyfit(it[:stop], np.log(err[:stop]), 1)[0]
    rate = measured_rate(err, final_factor=3.0)
    assert rate == pytest.approx(float(np.exp(slope * every)), rel=1e-12)
    assert 0.6 < rate < 0.7  # the floor biases the fit upwards, a little
    # a pure geometric sequence: the window ends at the first error within 3 e_last
    assert measured_rate(0.5 ** np.arange(8), final_factor=3.0) == pytest.approx(0.5)
    # at least three points even when the error is flat from the start
    flat = np.array([1.0, 0.5, 0.5, 0.5])
    assert measured_rate(flat, final_factor=3.0) == pytest.approx(
        float(np.exp(np.polyfit([0, 1, 2], np.log(flat[:3]), 1)[0]))
    )
