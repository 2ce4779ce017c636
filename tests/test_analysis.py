"""The analysis: which models get a closed form, and the Runge–Kutta fallback against scipy."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import eqneuron as eqn

# Izhikevich (2001) resonate-and-fire: a damped oscillation of x + iy; it fires when y crosses 1
RESONATE_AND_FIRE = """
neuron ResonateAndFire
parameters:
    b = -0.1
    w = 1.0
    i0 = 0.7
state:
    x = 0.0
    y = 0.0
equations:
    dx/dt = b * x - w * y + i0
    dy/dt = w * x + b * y
threshold: y > 1
reset:
    x = 0
    y = 0
"""

# a damped spring with a constant drive; fires when the position reaches 1.5 (overshoot)
DAMPED_OSCILLATOR = """
neuron DampedOscillator
parameters:
    k = 2.0
    c = 0.3
    f = 2.0
equations:
    dx/dt = v
    dv/dt = f - k * x - c * v
threshold: x > 1.5
reset:
    x = 0
    v = 0
"""


def reference_spikes(f, y0, threshold, reset, t1):
    """solve_ivp with terminal events, restarted after each reset."""
    def event(t, y):
        return threshold(y)

    event.terminal, event.direction = True, 1
    t, y, spikes = 0.0, np.array(y0, float), []
    while t < t1:
        sol = solve_ivp(f, (t, t1), y, method="DOP853", rtol=1e-11, atol=1e-11, events=event)
        if not len(sol.t_events[0]):
            break
        t = sol.t_events[0][0]
        spikes.append(t)
        y = np.array(reset(sol.y_events[0][0]), float)
    return np.array(spikes)


@pytest.mark.parametrize("source, f, threshold, y0", [
    (RESONATE_AND_FIRE, lambda t, s: [-0.1 * s[0] - s[1] + 0.7, s[0] - 0.1 * s[1]], lambda s: s[1] - 1.0, [0.0, 0.0]),
    (DAMPED_OSCILLATOR, lambda t, s: [s[1], 2.0 - 2.0 * s[0] - 0.3 * s[1]], lambda s: s[0] - 1.5, [0.0, 0.0]),
])
def test_oscillating_linear_models_fall_back_to_runge_kutta_and_match_scipy(source, f, threshold, y0):
    model = eqn.compile_model(source)
    assert "Runge–Kutta" in model.integrator and "cycle" in model.integrator
    out = eqn.simulate(model.population(1, 0), None, t1=60.0, max_spikes=64, rtol=1e-10, atol=1e-10)
    reference = reference_spikes(f, y0, threshold, lambda s: [0.0, 0.0], 60.0)
    assert len(reference) >= 3 and int(out.n_spikes) == len(reference)
    np.testing.assert_allclose(np.asarray(out.spike_times[: len(reference)]), reference, atol=1e-6)


def test_a_triangular_linear_model_gets_the_closed_form():
    assert eqn.compile_model("lif").integrator.startswith("exact")


def test_three_decaying_modes_fall_back_to_runge_kutta():
    source = """
equations:
    dv/dt = (-v + i) / 10
    di/dt = (-i + j) / 5
    dj/dt = -j / 2
threshold: v > 1
reset:
    v = 0
"""
    model = eqn.compile_model(source)
    assert "Runge–Kutta" in model.integrator
    out = eqn.simulate(model.population(1, 0, params={}), None, t1=5.0, max_spikes=4)
    assert out.results[0] == eqn.RESULTS.ok and int(out.n_spikes) == 0


def test_a_quadratic_threshold_along_the_solution_has_its_extremum_written_directly():
    """dw/dt = 2, dv/dt = w: v(h) = v0 + w0 h + h^2 dips to its minimum at h = -w0/2 and crosses
    1 after it, at h = (-w0 + sqrt(w0^2 + 4 (1 - v0))) / 2."""
    model = eqn.compile_model("state:\n    w = -2.0\nequations:\n    dw/dt = 2\n    dv/dt = w\n"
                              "threshold: v > 1\nreset:\n    v = 0\n")
    assert model.integrator.startswith("exact")
    out = eqn.simulate(model.population(1, 0), None, t1=3.0, max_spikes=8)
    t, w, spikes = 0.0, -2.0, []
    while True:  # v restarts from 0 after each spike
        t, w = t + (-w + np.sqrt(w**2 + 4.0)) / 2.0, w + (-w + np.sqrt(w**2 + 4.0))
        if t > 3.0:
            break
        spikes.append(t)
    assert np.isclose(spikes[0], 1.0 + np.sqrt(2.0)) and int(out.n_spikes) == len(spikes) == 3
    np.testing.assert_allclose(np.asarray(out.spike_times[:3]), spikes, rtol=1e-12)
