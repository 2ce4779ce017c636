"""The population loop's event semantics, on both clocks, against analytic solutions."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import eqneuron as eqn

# v = sin(w0 t): the threshold v > 0.5 is crossed upwards at asin(0.5)/w0 + k 2π/w0
OSCILLATOR_DETECTOR = """
neuron Oscillator
parameters:
    w0 = 0.5
state:
    v = 0.0
    u = 1.0
equations:
    dv/dt = w0 * u
    du/dt = -w0 * v
threshold: v > 0.5
weights:
    w = 0.0
on_spike:
    u += w
"""


@pytest.mark.parametrize("recurrent", [False, True])
def test_a_threshold_without_reset_fires_once_per_upward_crossing(recurrent):
    """No `reset:`: the condition sits at zero after the crossing; the neuron must not fire
    again until the condition has fallen below zero (it used to fire at one instant until
    the spike budget was spent)."""
    model = eqn.compile_model(OSCILLATOR_DETECTOR)
    pop = model.population(2, 0, recurrent=recurrent, weights={"w": jnp.zeros((2, 2))})
    out = eqn.simulate(pop, None, t1=40.0, max_spikes=32, rtol=1e-10, atol=1e-10)
    assert out.results[0] == eqn.RESULTS.ok and not bool(out.reset_failed)
    expected = np.arcsin(0.5) / 0.5 + np.arange(4) * 2 * np.pi / 0.5
    for neuron in (0, 1):
        times = np.asarray(out.spike_times)[np.asarray(out.spike_neurons) == neuron]
        np.testing.assert_allclose(times, expected, atol=1e-7)


def test_a_reset_that_leaves_the_condition_satisfied_is_flagged():
    source = OSCILLATOR_DETECTOR + "reset:\n    v += 1\n"
    model = eqn.compile_model(source)
    with pytest.warns(RuntimeWarning, match="reset left the threshold condition satisfied"):
        out = eqn.simulate(model.population(1, 0), None, t1=10.0, max_spikes=8)
    assert bool(out.reset_failed) and out.results[0] == eqn.RESULTS.reset_failed


def test_save_points_a_neuron_never_reached_read_nan():
    """A neuron that stops (here: at its first spike) has no state at later save points."""
    model = eqn.compile_model("lif")
    pop = model.population(2, 1, weights={"w": jnp.array([[0.0, 0.0], [0.0, 0.0], [6.0, 0.5]])})
    out = eqn.simulate(pop, eqn.Spikes(jnp.array([0.0]), jnp.array([0])), t1=20.0, max_spikes=8,
                       save_at=jnp.array([1.0, 10.0]), stop_after_first_spike=True)
    v = np.asarray(out.states[0]["v"])
    first = float(out.first_spike_times()[0])
    assert 1.0 < first < 10.0 and np.isinf(float(out.first_spike_times()[1]))
    assert np.isfinite(v[0, 0]) and np.isnan(v[1, 0])  # neuron 0 stopped before t = 10
    assert np.all(np.isfinite(v[:, 1]))  # neuron 1 never fired: saved at both points


@pytest.mark.parametrize("recurrent", [False, True])
def test_a_reset_onto_the_threshold_is_not_a_failure(recurrent):
    """`v > 1` with `reset: v = 1` and a falling condition after the reset (u < 0 there): the
    neuron re-arms once v falls below 1 and fires at every upward crossing.  v = sin(t/2 + ...)
    style oscillator: x' = -u, u' = x (period 4π); the threshold x > 1 at amplitude 2."""
    source = """
equations:
    dx/dt = -0.5 * u
    du/dt = 0.5 * x
state:
    x = 0
    u = -2
threshold: x > 1
reset:
    x = 1
"""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no compile-time warning either
        model = eqn.compile_model(source)
    pop = model.population(1, 0, recurrent=recurrent, weights={}) if recurrent else model.population(1, 0)
    out = eqn.simulate(pop, None, t1=30.0, max_spikes=16, rtol=1e-11, atol=1e-11)
    assert out.results[0] == eqn.RESULTS.ok
    # x = 2 sin(t/2): x crosses 1 upwards at t = π/3 + 4πk; the reset to 1 leaves the orbit unchanged
    expected = np.pi / 3 + 4 * np.pi * np.arange(3)
    np.testing.assert_allclose(np.asarray(out.spike_times[: int(out.n_spikes)]), expected, atol=1e-7)


@pytest.mark.parametrize("kind", ["stack", "graph"])
def test_free_steps_change_neither_the_steps_nor_the_values(monkeypatch, kind):
    """On own clocks each iteration first takes event-free Runge–Kutta steps (two), and reverse
    mode runs the loops without them (a smaller body to compile): a free step that would hold a
    crossing is not kept, so the accepted steps, spikes and saved states must be the same bit
    for bit with none of them, the spikes under `value_and_grad` those of the forward run, and the
    gradient that central differences of the forward run give.
    Also in a graph network (a cycle with delays: the loops pause at the ends of its windows)."""
    import equinox as eqx
    import jax

    from eqneuron.engine.runge_kutta import RungeKuttaIntegrator

    model = eqn.compile_model("izhikevich")
    hidden = model.population(4, 3, key=jax.random.key(3))
    hidden = hidden.replace(weights={"w": jnp.abs(hidden.weights["w"])})
    if kind == "stack":
        net = eqn.Network([hidden, model.population(2, 4, key=jax.random.key(4))])
    else:
        projections = [eqn.Projection("a", "b", weights={"w": 2.0}, delay=1.0),
                       eqn.Projection("b", "a", weights={"w": 0.5}, delay=2.5)]
        net = eqn.Network({"a": hidden, "b": model.population(2, 0, key=jax.random.key(4))}, projections=projections)
    inputs = eqn.Spikes(jnp.array([1.0, 3.0, 5.0, 20.0, 21.0, 40.0]), jnp.array([0, 1, 2, 0, 1, 2]))
    save_at = jnp.linspace(0.0, 80.0, 9)

    def run(net):
        return eqn.simulate(net, inputs, t1=80.0, max_spikes=128, save_at=save_at)

    def parts(out, xp):
        times = xp.where(out.spike_neurons >= 0, out.spike_times, 0.0)
        return xp.sum(times) + xp.sum(out.states[0]["v"]), (out.spike_neurons, times, out.states[0]["v"])

    def value(net):
        return parts(run(net), jnp)

    # one program per setting (a new function each: the setting is read while tracing), and the
    # first one's again for the finite differences below (same structure: no new compilation)
    programs = {}
    runs = {}
    for free in (2, 0):
        monkeypatch.setattr(RungeKuttaIntegrator, "free_steps", free)
        programs[free] = jax.jit(lambda net: run(net))
        runs[free] = programs[free](net)
    reference = runs[2]
    assert not bool(reference.overflow) and all(np.asarray(c).sum() >= 6 for c in reference.counts)
    for free in (0,):
        np.testing.assert_array_equal(np.asarray(runs[free].spike_times), np.asarray(reference.spike_times))
        np.testing.assert_array_equal(np.asarray(runs[free].spike_neurons), np.asarray(reference.spike_neurons))
        np.testing.assert_array_equal(np.asarray(runs[free].states[0]["v"]), np.asarray(reference.states[0]["v"]))
    monkeypatch.setattr(RungeKuttaIntegrator, "free_steps", 2)
    numpy_out = jax.tree_util.tree_map(np.asarray, reference)
    _, forward = parts(numpy_out, np)
    (_, differentiated), grads = eqx.filter_jit(eqx.filter_value_and_grad(value, has_aux=True))(net)
    # the same spikes in the same order, their times and the saved states to roundoff: XLA compiles
    # the differentiated program's arithmetic with other fusions (jaxlib 0.10.2: up to 4e-14 ms apart)
    np.testing.assert_array_equal(np.asarray(differentiated[0]), forward[0])
    for a, b in zip(differentiated[1:], forward[1:]):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-13, atol=1e-12)
    # the lean loops' gradient against central differences of the forward run (free steps on)
    w = net.populations[0].weights["w"]
    direction = jax.random.normal(jax.random.key(5), w.shape, w.dtype)

    def with_w(w):
        out = programs[2](eqx.tree_at(lambda n: n.populations[0].weights["w"], net, w))
        return float(parts(jax.tree_util.tree_map(np.asarray, out), np)[0])

    eps = 1e-6
    fd = (with_w(w + eps * direction) - with_w(w - eps * direction)) / (2 * eps)
    along = float(jnp.vdot(grads.populations[0].weights["w"], direction))
    assert abs(fd) > 1.0 and along == pytest.approx(fd, rel=1e-6)  # measured: ~1e-8 apart


def test_a_population_whose_last_active_neurons_run_in_a_block_keeps_their_spike_times(monkeypatch):
    """600 oscillators v = sin(w0 t) with their own w0 (0.05 to 2 rad/ms): the fast ones take many
    more loop iterations than the slow ones, so once few are active the loop gathers them into a
    block (their parameters with them) and runs on with it.  Each neuron's spikes (upward
    crossings of v = 0.5) against the closed form (asin(0.5) + 2πk) / w0."""
    from eqneuron.engine.compaction import COMPACT_MIN
    from eqneuron.engine.loop import PopulationLoop

    blocks = []
    original = PopulationLoop._block_loop

    def counted(self, ids):
        blocks.append(ids.shape[0])
        return original(self, ids)

    monkeypatch.setattr(PopulationLoop, "_block_loop", counted)
    source = OSCILLATOR_DETECTOR.replace("w0 = 0.5", "w0 = 0.5 (per_neuron)")
    model = eqn.compile_model(source)
    n, t1 = 600, 60.0
    assert n >= COMPACT_MIN
    w0 = np.linspace(0.05, 2.0, n)
    pop = model.population(n, 0, params={"w0": jnp.asarray(w0)})
    out = eqn.simulate(pop, None, t1=t1, max_spikes=8192, rtol=1e-10, atol=1e-10)
    assert out.results[0] == eqn.RESULTS.ok and blocks and blocks[0] < n
    k = int(out.n_spikes)
    times, ids = np.asarray(out.spike_times[:k]), np.asarray(out.spike_neurons[:k])
    for j in range(n):
        expected = (np.arcsin(0.5) + 2 * np.pi * np.arange(40)) / w0[j]
        expected = expected[expected < t1]
        np.testing.assert_allclose(np.sort(times[ids == j]), expected, atol=1e-6)
