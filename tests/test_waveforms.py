"""Input waveforms (`inputs:`): sampled currents interpolated by Diffrax, against scipy.

The references integrate the same equations with `solve_ivp` (DOP853, tolerance
1e-12), restarting at every sample time (where a piecewise-linear current has a
kink), with the current computed by NumPy (`np.interp`) or SciPy
(`CubicHermiteSpline` with the backward-difference slopes of Diffrax's
`backward_hermite_coefficients`), crossings located on the dense output
(`tests/scipy_reference.py`); a LIF neuron under a piecewise-linear current is
also solved in closed form, segment by segment. The engine runs at its default
tolerances: its steps stop at every sample time, so the kinks cost no accuracy.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.interpolate import CubicHermiteSpline
from scipy.optimize import brentq

import eqneuron as eqn
from eqneuron.codegen.waveforms import next_kink, waveform_at, waveform_entries

from .scipy_reference import scipy_spike_trains

SPIKE_TIME_TOL = 1e-6  # ms

LIF = """
# A LIF neuron driven by an injected current.
neuron DrivenLIF
parameters:
    tau = 10.0
    v_th = 1.0
inputs:
    I_ext ({interpolation})
equations:
    dv/dt = (-v + I_ext) / tau
threshold: v > v_th
reset:
    v = 0.0
"""
TIMES = np.linspace(0.0, 60.0, 13)  # a sample every 5 ms; simulated to 80 ms, beyond the last
CURRENT = np.array([0.0, 1.5, 2.5, 1.8, 3.0, 0.5, 0.2, 2.8, 3.5, 1.0, 2.0, 2.2, 1.6])
GAINS = np.array([0.8, 1.0, 1.3])  # per-neuron waveforms: one column per neuron
T1 = 80.0


def lif(interpolation="linear"):
    return eqn.compile_model(LIF.format(interpolation=interpolation))


def hermite_slopes(times, values):
    """The knot slopes of Diffrax's `backward_hermite_coefficients`: backward differences
    (a forward difference at the first knot)."""
    slopes = np.diff(values, axis=0) / np.diff(times)[(...,) + (None,) * (values.ndim - 1)]
    return np.concatenate([slopes[:1], slopes])


def current_function(interpolation, times, values):
    """I(t) of every neuron by NumPy / SciPy, holding the end values outside the samples."""
    values = values.reshape(len(times), -1)
    if interpolation == "linear":
        return lambda t: np.array([np.interp(t, times, column) for column in values.T])
    spline = CubicHermiteSpline(times, values, hermite_slopes(times, values), axis=0)
    return lambda t: spline(np.clip(t, times[0], times[-1])).T


def restarts(times):
    """Reference integrations stop and restart at every sample (a no-op jump)."""
    return [(float(s), lambda y: y) for s in times[1:-1]]


def lif_reference(interpolation, values, n, tau=10.0, v_th=1.0, t1=T1):
    current = current_function(interpolation, TIMES, np.asarray(values))

    def rhs(t, y):
        return (-y + np.broadcast_to(current(t), (n,))[None, :]) / tau

    def on_spike(y, k):
        y[0, k] = 0.0
        return y

    return scipy_spike_trains(rhs, np.zeros((1, n)), t1, lambda y: y[0] - v_th, on_spike, restarts(TIMES))


def trains(out, n):
    assert out.results[0] == eqn.RESULTS.ok, eqn.RESULTS[out.results[0]]
    times, ids = np.asarray(out.spike_times), np.asarray(out.spike_neurons)
    return [np.sort(times[ids == k]) for k in range(n)]


def assert_same_trains(ours, reference, tol=SPIKE_TIME_TOL):
    for k, (a, b) in enumerate(zip(ours, reference)):
        assert len(a) == len(b), f"neuron {k}: {len(a)} spikes, reference {len(b)}: {a} vs {b}"
        np.testing.assert_allclose(a, b, rtol=0, atol=tol, err_msg=f"neuron {k}")


def analytic_lif_spikes(times, values, t1, tau=10.0, v_th=1.0):
    """Spike times of dv/dt = (I(t) - v) / tau from v = 0, reset to 0, with I piecewise linear
    through the samples and held after the last one.

    Where I(t) = I_s + b (t - s): v(t) = I(t) - b tau + (v(s) - I_s + b tau) exp(-(t - s) / tau).
    A crossing of v_th is bracketed on a grid of the segment and found by `brentq` on this formula.
    """
    knots = np.append(times, t1)
    currents = np.append(values, values[-1])
    spikes, v = [], 0.0
    for s, e, i_s, i_e in zip(knots[:-1], knots[1:], currents[:-1], currents[1:]):
        b = (i_e - i_s) / (e - s)
        t0, v0, i0 = s, v, i_s
        while True:

            def v_at(t, t0=t0, v0=v0, i0=i0):
                return i0 + b * (t - t0) - b * tau + (v0 - i0 + b * tau) * np.exp(-(t - t0) / tau)

            grid = np.linspace(t0, e, 2001)
            above = np.flatnonzero((v_at(grid[:-1]) < v_th) & (v_at(grid[1:]) >= v_th))
            if above.size == 0:
                v = v_at(e)
                break
            t0 = brentq(lambda t: v_at(t) - v_th, grid[above[0]], grid[above[0] + 1], xtol=1e-14, rtol=1e-15)
            spikes.append(t0)
            v0, i0 = 0.0, i_s + b * (t0 - s)
    return np.array(spikes)


# ---- the interpolation itself


# fewer or more neurons than samples: each lane reads a row of all neurons or its own column
@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
@pytest.mark.parametrize("neurons", [3, 20])
def test_waveform_is_the_interpolant_and_holds_its_end_values(interpolation, neurons):
    per_neuron = CURRENT[:, None] * np.linspace(0.8, 1.3, neurons)
    grid = np.linspace(-10.0, 75.0, 1701)
    reference = current_function(interpolation, TIMES, per_neuron)(grid)  # (neurons, times)
    entries = waveform_entries("I", interpolation, jnp.asarray(TIMES), jnp.asarray(per_neuron))
    # one time per neuron (own clocks): the neurons at different times
    shifted = np.stack([grid if k % 2 else grid[::-1] for k in range(neurons)], axis=1)
    ours = jax.vmap(lambda t: waveform_at("I", t, entries))(jnp.asarray(shifted))
    expected = np.stack([reference[k] if k % 2 else reference[k][::-1] for k in range(neurons)], axis=1)
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=0, atol=1e-12)
    # a subset of the neurons, as the engine gathers them (neurons 2 and 0), and one shared time
    block = dict(entries, **{"I@neuron": entries["I@neuron"][jnp.array([2, 0])]})
    ours = jax.vmap(lambda t: waveform_at("I", jnp.stack([t, t + 1.0]), block))(jnp.asarray(grid))
    np.testing.assert_allclose(np.asarray(ours)[:, 0], reference[2], rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        np.asarray(ours)[:, 1], current_function(interpolation, TIMES, per_neuron)(grid + 1.0)[0], atol=1e-12
    )
    ours = jax.vmap(lambda t: waveform_at("I", t, entries))(jnp.asarray(grid))
    np.testing.assert_allclose(np.asarray(ours), reference.T, rtol=0, atol=1e-12)
    shared = waveform_entries("I", interpolation, jnp.asarray(TIMES), jnp.asarray(CURRENT))
    ours = np.asarray(jax.vmap(lambda t: waveform_at("I", t, shared))(jnp.asarray(grid)))
    np.testing.assert_allclose(
        ours, current_function(interpolation, TIMES, CURRENT)(grid)[0], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        ours[grid <= 0], CURRENT[0], rtol=0, atol=1e-12, err_msg="holds the first value"
    )
    np.testing.assert_allclose(
        ours[grid >= 60], CURRENT[-1], rtol=0, atol=1e-12, err_msg="holds the last value"
    )


# ---- spike times against scipy


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
@pytest.mark.parametrize("per_neuron", [False, True], ids=["shared", "per_neuron"])
def test_lif_driven_by_a_waveform_matches_scipy(interpolation, per_neuron):
    values = CURRENT[:, None] * GAINS if per_neuron else CURRENT
    pop = lif(interpolation).population(3, waveforms={"I_ext": (TIMES, values)})
    ours = trains(eqn.simulate(pop, None, t1=T1, max_spikes=128), 3)
    reference = lif_reference(interpolation, values, 3)
    assert_same_trains(ours, reference)
    assert len(ours[1]) >= 8 and np.any(ours[1] > TIMES[-1]), "fires through the waveform and after (held)"
    if per_neuron:
        assert len(ours[0]) < len(ours[1]) < len(ours[2]), "more current, more spikes"
    else:
        # one waveform, identical neurons: the same train up to rounding (XLA's vectorised and
        # remainder lanes may round differently, 1.4e-14 ms apart measured on an AVX2 CPU)
        assert all(len(train) == len(ours[0]) for train in ours)
        np.testing.assert_allclose(np.stack(ours), np.stack([ours[0]] * 3), rtol=0, atol=1e-12)


@pytest.mark.parametrize("recurrent", [False, True], ids=["own_clocks", "shared_clock"])
def test_steps_stop_at_the_samples_of_a_piecewise_linear_current(recurrent):
    """At the default tolerances, spike times as the closed-form solution of each linear piece."""
    values = CURRENT[:, None] * GAINS
    model = lif("linear")
    if recurrent:  # the same neurons on one clock: coupled through zero weights
        model = eqn.compile_model(
            LIF.format(interpolation="linear") + "weights:\n    w\non_spike:\n    v += w\n"
        )
    weights = {"w": jnp.zeros((3, 3))} if recurrent else None
    pop = model.population(3, recurrent=recurrent, weights=weights, waveforms={"I_ext": (TIMES, values)})
    ours = trains(eqn.simulate(pop, None, t1=T1, max_spikes=128), 3)
    reference = [analytic_lif_spikes(TIMES, values[:, k], T1) for k in range(3)]
    assert_same_trains(ours, reference)
    assert sum(len(train) for train in ours) >= 25


def test_the_next_kink_is_the_first_sample_time_after_each_time():
    times = np.array([0.0, 2.5, 5.0, 7.5])
    query = np.array([-3.0, 0.0, 1.0, 2.5, 2.5 + 1e-12, 7.4, 7.5, 20.0])
    expected = [times[times > t].min() if np.any(times > t) else np.inf for t in query]
    for interpolation in ("linear", "cubic"):
        entries = waveform_entries("I", interpolation, jnp.asarray(times), jnp.asarray(np.cos(times)))
        np.testing.assert_array_equal(np.asarray(next_kink(entries, jnp.asarray(query))), expected)
    assert next_kink({"tau": jnp.ones(3)}, jnp.asarray(query)) is None


RECURRENT = """
neuron CoupledLIF
parameters:
    tau = 10.0
    tau_syn = 2.0
inputs:
    I_ext (cubic)
    theta (linear)
equations:
    dv/dt = (-v + I_ext + i_syn) / tau
    di_syn/dt = -i_syn / tau_syn
threshold: v > 1.0 + theta
reset:
    v = 0.0
weights:
    w
on_spike:
    i_syn += w * I_ext
"""


def test_recurrent_population_with_waveforms_in_threshold_and_jumps_matches_scipy():
    """One shared clock; a time-varying threshold and a synaptic jump scaled by the target's input."""
    n = 3
    model = eqn.compile_model(RECURRENT)
    values = CURRENT[:, None] * GAINS
    theta = np.array([0.0, 0.2, -0.1, 0.3, 0.0, 0.1, 0.4, 0.0, 0.2, -0.2, 0.1, 0.0, 0.3])
    W = np.array([[0.0, 1.5, -1.0], [1.0, 0.0, 2.0], [-2.0, 1.0, 0.0]])
    pop = model.population(
        n,
        recurrent=True,
        weights={"w": jnp.asarray(W)},
        waveforms={"I_ext": (TIMES, values), "theta": (TIMES, theta)},
    )
    ours = trains(eqn.simulate(pop, None, t1=T1, max_spikes=128), n)

    current = current_function("cubic", TIMES, values)

    def rhs(t, y):  # the reference carries the time as a third state row: its condition sees y only
        v, i_syn, _ = y
        return np.stack([(-v + current(t) + i_syn) / 10.0, -i_syn / 2.0, np.ones(n)])

    def on_spike(y, k):
        y[1] += W[k] * current(y[2, k])
        y[0, k] = 0.0
        return y

    reference = scipy_spike_trains(
        rhs,
        np.zeros((3, n)),
        T1,
        lambda y: y[0] - 1.0 - np.interp(y[2], TIMES, theta),
        on_spike,
        restarts(TIMES),
    )
    assert_same_trains(ours, reference)
    assert sum(len(train) for train in ours) >= 20


def test_cubic_interpolation_of_a_smooth_current_converges_to_the_analytic_current():
    """Samples of I(t) = 1.6 + sin(2πt/25): spike times within a bound derived from the interpolation error."""

    def analytic(t):
        return 1.6 + np.sin(2 * np.pi * np.asarray(t) / 25.0)

    reference = scipy_spike_trains(
        lambda t, y: (-y + analytic(t)) / 10.0,
        np.zeros((1, 1)),
        T1,
        lambda y: y[0] - 1.0,
        lambda y, k: np.zeros_like(y),
    )[0]
    model = lif("cubic")
    errors = []
    for dt in (1.0, 0.5):
        times = np.arange(0.0, T1 + dt / 2, dt)
        grid = np.linspace(0.0, T1, 20001)
        # sup |I - I_h| (SciPy's spline of the same samples): a current error e moves v by at most e
        # (dv/dt = (-v + I)/tau contracts), hence a crossing by e / (dv/dt at the crossing), and
        # each reset restarts from 0: errors add over the spikes so far
        interpolation_error = np.max(
            np.abs(current_function("cubic", times, analytic(times))(grid)[0] - analytic(grid))
        )
        pop = model.population(1, waveforms={"I_ext": (times, analytic(times))})
        ours = trains(eqn.simulate(pop, None, t1=T1, max_spikes=64), 1)[0]
        assert len(ours) == len(reference)
        slopes = (-1.0 + analytic(reference)) / 10.0
        bound = np.cumsum(interpolation_error / slopes)
        assert np.all(np.abs(ours - reference) <= bound), (np.abs(ours - reference), bound)
        errors.append(np.max(np.abs(ours - reference)))
    assert errors[1] < errors[0] / 3, f"halving the sample spacing: {errors}"  # O(h^2) for backward Hermite


def test_an_input_used_only_in_jumps_keeps_the_closed_form():
    """The input scales each input spike's jump: the same spikes as the weight scaled instead."""
    source = (
        "parameters:\n    tau = 10.0\n    tau_syn = 5.0\n{inputs}"
        "equations:\n    dv/dt = (-v + i) / tau\n    di/dt = -i / tau_syn\nthreshold: v > 1.0\n"
        "reset:\n    v = 0.0\nweights:\n    w\non_input:\n    i += w * {scale}\n"
    )
    model = eqn.compile_model(source.format(inputs="inputs:\n    gain (cubic)\n", scale="gain"))
    assert model.integrator.startswith("exact")
    spikes = eqn.Spikes(jnp.array([1.0, 2.0, 3.0, 20.0, 21.0, 22.0]), jnp.zeros(6, int))
    gain = 2.0 + np.sin(TIMES / 9.0)
    W = {"w": jnp.array([[0.0], [1.0]])}
    ours = eqn.simulate(model.population(1, 1, weights=W, waveforms={"gain": (TIMES, gain)}), spikes, t1=40.0)
    # the same spikes with the gain as each input spike's value
    plain = eqn.compile_model(source.format(inputs="", scale="value"))
    values = current_function("cubic", TIMES, gain)(np.asarray(spikes.times))[0]
    reference = eqn.simulate(
        plain.population(1, 1, weights=W), eqn.Spikes(spikes.times, spikes.channels, values), t1=40.0
    )
    ours, reference = ours.spike_times, reference.spike_times
    assert np.sum(np.isfinite(ours)) >= 2
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-9)


def test_a_model_extending_another_inherits_and_overrides_its_inputs(tmp_path):
    (tmp_path / "base.eq").write_text(LIF.format(interpolation="linear"))
    derived = tmp_path / "derived.eq"
    derived.write_text(
        "extends base.eq\nneuron Derived\ninputs:\n    I_ext (cubic)\n    I_2\nequations:\n    dv/dt += I_2 / tau\n"
    )
    model = eqn.compile_model(derived)
    assert {name: i.interpolation for name, i in model.ir.inputs.items()} == {
        "I_ext": "cubic",
        "I_2": "linear",
    }
    pop = model.population(3, waveforms={"I_ext": (TIMES, CURRENT), "I_2": (TIMES, np.zeros(13))})
    ours = trains(eqn.simulate(pop, None, t1=T1, max_spikes=128), 3)
    assert_same_trains(ours, lif_reference("cubic", CURRENT, 3))


# ---- gradients, jit, vmap, float32


def test_gradient_of_a_spike_time_with_respect_to_samples_matches_finite_differences():
    """d t_1 / d values[k], exact (engine) against central differences of the scipy reference."""
    model = lif("linear")

    def first_spike(values):
        pop = model.population(1, waveforms={"I_ext": (jnp.asarray(TIMES), values)})
        out = eqn.simulate(pop, None, t1=T1, max_spikes=8, stop_after_first_spike=True)
        return out.first_spike_times()[0]

    values = jnp.asarray(CURRENT)
    t_first = float(first_spike(values))
    grads = np.asarray(jax.grad(first_spike)(values))
    h = 1e-4
    for k in range(len(TIMES)):
        if k > 0 and TIMES[k - 1] >= t_first:
            assert grads[k] == 0.0, f"sample {k} comes after the spike at {t_first}"
            continue
        up, down = CURRENT.copy(), CURRENT.copy()
        up[k] += h
        down[k] -= h
        fd = (lif_reference("linear", up, 1)[0][0] - lif_reference("linear", down, 1)[0][0]) / (2 * h)
        np.testing.assert_allclose(grads[k], fd, rtol=1e-5, atol=1e-8, err_msg=f"sample {k}")
    assert np.sum(grads != 0) >= 3 and np.all(grads[: int(t_first // 5) + 1] <= 0), (
        "more current, earlier spike"
    )


def test_gradients_on_a_shared_clock_match_finite_differences():
    """A recurrent population: d (sum of the first spike times) / d samples of per-neuron waveforms."""
    model = eqn.compile_model(RECURRENT)
    W = jnp.array([[0.0, 1.5, -1.0], [1.0, 0.0, 2.0], [-0.5, 1.0, 0.0]])
    theta = jnp.zeros(len(TIMES))

    @jax.jit
    def loss(values):
        waveforms = {"I_ext": (jnp.asarray(TIMES), values), "theta": (jnp.asarray(TIMES), theta)}
        pop = model.population(3, recurrent=True, weights={"w": W}, waveforms=waveforms)
        first = eqn.simulate(pop, None, t1=30.0, max_spikes=64).first_spike_times()
        return jnp.sum(jnp.where(jnp.isfinite(first), first, 0.0))

    values = jnp.asarray(CURRENT[:, None] * GAINS)
    grads = np.asarray(jax.grad(loss)(values))
    h = 1e-5
    for k, j in [(1, 0), (2, 0), (3, 0), (1, 1), (2, 2)]:
        step = jnp.zeros_like(values).at[k, j].set(h)
        fd = (float(loss(values + step)) - float(loss(values - step))) / (2 * h)
        np.testing.assert_allclose(grads[k, j], fd, rtol=1e-5, atol=1e-7, err_msg=f"sample {k} of neuron {j}")
    assert np.all(np.isfinite(grads)) and np.sum(grads != 0) >= 6


def test_finely_sampled_waveforms_on_a_shared_clock_do_not_exhaust_the_step_budget():
    """Every sample ends a step, so a run passes 4001 samples in at least 4001 steps; the
    loop's budget counts them on top of `max_solver_steps`.  Constant samples: the LIF
    period is analytic, tau * log(I / (I - 1))."""
    model = eqn.compile_model(RECURRENT)
    times = jnp.linspace(0.0, 40.0, 4001)
    current = 2.0
    waveforms = {"I_ext": (times, jnp.full(times.shape, current)), "theta": (times, jnp.zeros(times.shape))}
    pop = model.population(2, recurrent=True, weights={"w": jnp.zeros((2, 2))}, waveforms=waveforms)
    out = eqn.simulate(pop, None, t1=40.0, max_spikes=64, max_solver_steps=500)
    assert out.results[0] == eqn.RESULTS.ok
    period = 10.0 * np.log(current / (current - 1.0))
    expected = period * np.arange(1, int(40.0 / period) + 1)
    for neuron in range(2):
        got = np.sort(np.asarray(out.spike_times)[np.asarray(out.spike_neurons) == neuron])
        np.testing.assert_allclose(got, expected, atol=SPIKE_TIME_TOL)


def test_jit_and_vmap_over_a_batch_of_waveforms_equal_single_runs():
    model = lif("cubic")
    pop = model.population(2, waveforms={"I_ext": (TIMES, CURRENT)})
    batch = jnp.stack([CURRENT * g for g in (0.9, 1.0, 1.2)])

    @eqx.filter_jit
    def first_spikes(pop, values):
        out = eqn.simulate(pop.replace(waveforms={"I_ext": (TIMES, values)}), None, t1=T1, max_spikes=64)
        return out.first_spike_times(), out.n_spikes

    firsts, counts = eqx.filter_vmap(first_spikes, in_axes=(None, 0))(pop, batch)
    for values, first, count in zip(batch, firsts, counts):
        single = eqn.simulate(pop.replace(waveforms={"I_ext": (TIMES, values)}), None, t1=T1, max_spikes=64)
        np.testing.assert_allclose(first, single.first_spike_times(), rtol=0, atol=1e-9)
        assert int(count) == int(single.n_spikes)
    assert firsts[0, 0] > firsts[1, 0] > firsts[2, 0]


def test_float32_waveform_simulation_agrees_with_the_reference():
    reference = lif_reference("linear", CURRENT, 1)[0]
    with jax.enable_x64(False):
        pop = lif("linear").population(1, waveforms={"I_ext": (TIMES, CURRENT)})
        assert pop.waveforms["I_ext"].values.dtype == jnp.float32
        out = eqn.simulate(pop, None, t1=T1, max_spikes=64)  # measured: 2e-5 ms off
        ours = trains(out, 1)[0]
        assert out.spike_times.dtype == jnp.float32
    assert len(ours) == len(reference)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-4)


def test_units_on_an_input_are_checked_and_scaled():
    with_units = eqn.compile_model(
        """
neuron DrivenLIFUnits
parameters:
    tau = 10 : ms
    R = 100 : Mohm
    v_th = 10 : mV
inputs:
    I_ext (linear) : pA
equations:
    dv/dt = (-v + R*I_ext) / tau : mV
threshold: v > v_th
reset:
    v = 0*mV
"""
    )
    assert "I_ext: pA" in repr(with_units)
    # 100 Mohm * 100 pA = 10 mV: the unitless model with I in units of the threshold
    pop = with_units.population(1, waveforms={"I_ext": (TIMES, 100.0 * CURRENT)})
    ours = trains(eqn.simulate(pop, None, t1=T1, max_spikes=64), 1)
    assert_same_trains(ours, lif_reference("linear", CURRENT, 1))
    with pytest.raises(eqn.EqError, match="dimension mismatch") as info:
        eqn.compile_model(
            "inputs:\n    I (linear) : pA\nparameters:\n    tau = 10 : ms\n"
            "equations:\n    dv/dt = (-v + I) / tau : mV\nthreshold: v > 1*mV\n"
        )
    assert "current (pA)" in str(info.value) and info.value.line == 6
    with pytest.raises(eqn.EqError, match="`I` has no unit") as info:
        eqn.compile_model(
            "inputs:\n    I\nparameters:\n    tau = 10 : ms\nequations:\n    dv/dt = (-v + I) / tau : mV\nthreshold: v > 1*mV\n"
        )
    assert info.value.line == 2


# ---- errors


def test_population_without_samples_for_an_input_is_an_error_naming_it():
    with pytest.raises(eqn.EqError, match=r"has the input `I_ext` \(line 8\), but no samples") as info:
        lif().population(2)
    assert "waveforms={'I_ext': (times, values)}" in info.value.hint


def test_unknown_waveform_names_and_misplaced_waveforms_are_errors():
    with pytest.raises(eqn.EqError, match="`I_ex` is not an input of DrivenLIF") as info:
        lif().population(2, waveforms={"I_ex": (TIMES, CURRENT)})
    assert "did you mean `I_ext`" in info.value.hint
    with pytest.raises(eqn.EqError, match="`waveforms=` given, but LIF has no inputs"):
        eqn.compile_model("lif").population(
            2, 1, key=jax.random.key(0), waveforms={"I_ext": (TIMES, CURRENT)}
        )
    pop = lif().population(2, waveforms={"I_ext": (TIMES, CURRENT)})
    with pytest.raises(eqn.EqError, match="`I` is not an input"):
        pop.replace(waveforms={"I": (TIMES, CURRENT)})
    with pytest.raises(eqn.EqError, match="must be a pair \\(times, values\\), got ndarray"):
        lif().population(2, waveforms={"I_ext": CURRENT})
    with pytest.raises(eqn.EqError, match="`waveforms` must be a dict"):
        lif().population(2, waveforms=[(TIMES, CURRENT)])


@pytest.mark.parametrize(
    "times,values,message",
    [
        (
            TIMES[:1],
            CURRENT[:1],
            r"times of waveform `I_ext` must have shape \(T,\) with T >= 2 samples, got \(1,\)",
        ),
        (np.stack([TIMES, TIMES]), CURRENT, r"must have shape \(T,\) with T >= 2 samples, got \(2, 13\)"),
        (
            TIMES,
            CURRENT[:-1],
            r"values of waveform `I_ext` must have shape \(13,\) or \(13, 2\), got \(12,\)",
        ),
        (TIMES, np.stack([CURRENT, CURRENT]), r"got \(2, 13\)"),
        (TIMES, np.stack([CURRENT] * 3, 1), r"got \(13, 3\)"),
        (TIMES[::-1], CURRENT, r"must increase strictly: times\[1\] = 55 is not after times\[0\] = 60"),
        (np.where(TIMES == 10.0, np.nan, TIMES), CURRENT, "times of waveform `I_ext` are not all finite"),
        (TIMES, np.where(TIMES == 10.0, np.inf, CURRENT), "1 non-finite entries"),
    ],
)
def test_samples_of_the_wrong_shape_or_order_are_errors(times, values, message):
    with pytest.raises(eqn.EqError, match=message) as info:
        lif().population(2, waveforms={"I_ext": (times, values)})
    if np.shape(values) == (2, 13):
        assert "it looks transposed" in info.value.hint


@pytest.mark.parametrize(
    "body,message,line,column",
    [
        ("inputs:\n    I (cubc)\n", "unknown interpolation `cubc` for input `I`", 2, 7),
        ("inputs:\n    I (per_neuron)\n", "unknown interpolation `per_neuron`", 2, 7),
        ("inputs:\n    I\n    I\n", "`I` is defined twice", 3, 5),
        ("parameters:\n    I = 1.0\ninputs:\n    I\n", "`I` is defined twice", 4, 5),
        ("inputs:\n    I\nparameters:\n    a = I\n", "input `I` used in a constant expression", 4, 9),
        ("inputs:\n    I\nstate:\n    v = I\n", "input `I` used in a constant expression", 4, 9),
        ("inputs:\n    I\nreset:\n    I = 0\n", "cannot assign to input `I` in `reset:`", 4, 5),
        ("inputs:\n    I\nequations:\n    dv/dt = -v\n    dI/dt = 1\n", "`dI/dt` given for input `I`", 5, 5),
        ("inputs:\n    I\nrefractory: I\n", "the refractory period cannot depend on `I`", 3, 13),
        ("inputs:\n    t\n", "`t` shadows the builtin `t`", 2, 5),
    ],
)
def test_bad_input_declarations_are_located_errors(body, message, line, column):
    source = "neuron Bad\nthreshold: v > 1\n" + body
    if "equations:" not in body:
        source += "equations:\n    dv/dt = -v\n"
    with pytest.raises(eqn.EqError, match=message) as info:
        eqn.compile_model(source)
    assert (info.value.line, info.value.column) == (line + 2, column)


def test_input_pre_in_on_spike_is_the_firing_neurons_input():
    """`I_pre` in `on_spike` is the firing neuron's waveform (per neuron), and so is the input
    in a subexpression used as `drive_pre`: the jump it sends."""
    model = eqn.compile_model(
        "inputs:\n    I\nequations:\n    dv/dt = (I - v) / 10.0\n    dr/dt = 0\n    drive = 2 * I\n"
        "threshold: v > 1\nreset:\n    v = 0\nweights:\n    w\non_spike:\n    r += w * (I_pre + drive_pre)\n"
        "on_input:\n    r += w\n"
    )
    times = np.array([0.0, 100.0])
    values = np.array([[3.0, 0.0], [3.0, 0.0]])  # neuron 0 driven, neuron 1 silent
    pop = model.population(
        2,
        recurrent=True,
        weights={"w": jnp.array([[0.0, 1.0], [0.0, 0.0]])},
        waveforms={"I": (times, values)},
    )
    out = eqn.simulate(pop, None, t1=20.0, max_spikes=16, save_at=jnp.array([20.0]))
    n_spikes = int(out.n_spikes)
    assert n_spikes >= 2 and set(np.asarray(out.spike_neurons)[:n_spikes]) == {0}
    np.testing.assert_allclose(out.states[0]["r"][0], [0.0, (3.0 + 6.0) * n_spikes], rtol=1e-12)


# ---- the command line


def test_cli_simulate_reads_waveform_files_and_matches_the_python_api(tmp_path, capsys):
    from eqneuron.cli import main

    model = tmp_path / "driven.eq"
    model.write_text(LIF.format(interpolation="linear"))
    shared, per_neuron = tmp_path / "current.csv", tmp_path / "current.npy"
    shared.write_text("time,I_ext\n" + "".join(f"{t},{i}\n" for t, i in zip(TIMES, CURRENT)))
    np.save(per_neuron, np.column_stack([TIMES, CURRENT[:, None] * GAINS[:2]]))
    save_at = np.linspace(0.0, T1, 1001)  # the CLI's save points
    for path, values in ((shared, CURRENT), (per_neuron, CURRENT[:, None] * GAINS[:2])):
        data = tmp_path / "out.npz"
        argv = [
            "simulate",
            str(model),
            "--neurons",
            "2",
            "--duration",
            str(T1),
            "--waveform",
            f"I_ext={path}",
        ]
        assert main([*argv, "--save", str(data)]) == 0, capsys.readouterr().err
        saved = np.load(data)
        pop = lif("linear").population(2, waveforms={"I_ext": (TIMES, values)})
        out = eqn.simulate(pop, None, t1=T1, max_spikes=4096, save_at=jnp.asarray(save_at))
        times = np.asarray(out.spike_times)
        np.testing.assert_allclose(saved["spike_times"], times[np.isfinite(times)], rtol=0, atol=1e-9)
        assert len(saved["spike_times"]) >= 10


def test_cli_refuses_missing_or_unreadable_waveforms(tmp_path, capsys):
    from eqneuron.cli import main

    model = tmp_path / "driven.eq"
    model.write_text(LIF.format(interpolation="linear"))
    assert main(["simulate", str(model), "--duration", "10"]) == 1
    err = capsys.readouterr().err
    assert (
        "has the input `I_ext` (line 8): give its samples with --waveform" in err
        and "--waveform I_ext=FILE" in err
    )
    assert main(["simulate", str(model), "--waveform", f"I_ext={tmp_path / 'none.csv'}"]) == 1
    assert "no file" in capsys.readouterr().err
    flat = tmp_path / "flat.npy"
    np.save(flat, CURRENT)
    assert main(["simulate", str(model), "--waveform", f"I_ext={flat}"]) == 1
    assert "expected rows of a time and its values" in capsys.readouterr().err
    assert main(["simulate", str(model), "--waveform", "I_ext"]) == 1
    assert "expects NAME=FILE" in capsys.readouterr().err
    table = tmp_path / "current.csv"
    table.write_text("".join(f"{t},{i}\n" for t, i in zip(TIMES, CURRENT)))
    assert main(["simulate", str(model), "--duration", "10", "--waveform", f"I_et={table}"]) == 1
    assert "did you mean `I_ext`" in capsys.readouterr().err
