"""Refractory periods, internal events and `and`/`or` thresholds against independent references.

References: the closed-form LIF solution (constant drive), and scipy's
`solve_ivp` integrated segment by segment with the frozen states, resets and
event bodies applied by hand, crossings located on the dense output.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

import eqneuron as eqn

REFRACTORY_LIF = """
parameters:
    tmem = 10.0
    tsyn = 5.0
    ic = 3.0
    tref = 5.0 (per_neuron, trainable)

equations:
    dv/dt = (-v + i + ic) / tmem (unless refractory)
    di/dt = -i / tsyn

threshold: v > 1
reset:
    v = 0
refractory: tref

weights:
    w
on_input:
    i += w
"""


def lif_population(recurrent=False, n=1, tref=5.0, ic=3.0, w=0.0):
    model = eqn.compile_model(REFRACTORY_LIF)
    weights = jnp.zeros((n + 1, n)).at[n].set(w)
    return model.population(n, 1, params={"tref": jnp.full((n,), tref), "ic": ic}, weights={"w": weights},
                            recurrent=recurrent)


def constant_drive_spikes(ic, tref, t1):
    """v' = (ic - v)/tmem from 0 reaches 1 after t* = tmem log(ic / (ic - 1)); then frozen at 0 for tref."""
    t_star = 10.0 * np.log(ic / (ic - 1.0))
    times, t = [], t_star
    while t < t1:
        times.append(t)
        t += tref + t_star
    return np.array(times)


@pytest.mark.parametrize("method", ["auto", "tsit5"])
@pytest.mark.parametrize("recurrent", [False, True])
def test_refractory_lif_with_constant_drive_matches_the_closed_form(method, recurrent):
    pop = lif_population(recurrent=recurrent, n=2, tref=5.0)
    out = eqn.simulate(pop, None, t1=60.0, max_spikes=64, method=method, rtol=None if method == "auto" else 1e-10,
                       atol=None if method == "auto" else 1e-10)
    ref = constant_drive_spikes(3.0, 5.0, 60.0)
    got = np.asarray(out.spike_times[: int(out.n_spikes)]).reshape(-1, 2)
    assert got.shape[0] == len(ref)
    np.testing.assert_allclose(got, np.repeat(ref[:, None], 2, axis=1), atol=1e-7)


def test_refractory_lif_is_exact_with_the_closed_form():
    assert "exact" in eqn.compile_model(REFRACTORY_LIF).integrator


def scipy_refractory_lif(t_in, w, ic, tref, t1):
    """A reference simulation: v frozen while refractory, the synaptic current decaying throughout."""
    def rhs(frozen):
        return lambda t, y: [0.0 if frozen else (-y[0] + y[1] + ic) / 10.0, -y[1] / 5.0]

    inputs = sorted(t_in)
    y, t, spikes, refractory_until = np.array([0.0, w * inputs.count(0.0)]), 0.0, [], -np.inf
    while t < t1:
        frozen = t < refractory_until
        stops = [t1] + [x for x in inputs if x > t] + ([refractory_until] if frozen else [])
        t_end = min(stops)
        sol = solve_ivp(rhs(frozen), (t, t_end), y, method="DOP853", rtol=1e-12, atol=1e-12, dense_output=True)
        grid = np.linspace(t, t_end, 400)
        g = sol.sol(grid)[0] - 1.0
        above = np.nonzero(g >= 0)[0] if not frozen else []
        if len(above) and above[0] > 0:
            k = above[0]
            ts = brentq(lambda s: sol.sol(s)[0] - 1.0, grid[k - 1], grid[k], xtol=1e-14)
            spikes.append(ts)
            y = sol.sol(ts)
            y[0] = 0.0
            t, refractory_until = ts, ts + tref
            continue
        y, t = sol.y[:, -1], t_end
        if t in inputs:
            y[1] += w
    return np.array(spikes)


@pytest.mark.parametrize("method", ["auto", "tsit5"])
def test_refractory_lif_with_synaptic_input_matches_scipy(method):
    t_in, w, ic, tref = [0.0, 7.0, 8.5, 21.0], 2.5, 0.8, 3.0
    pop = lif_population(tref=tref, ic=ic, w=w)
    inputs = eqn.Spikes(jnp.asarray(t_in), jnp.zeros(4, jnp.int32))
    kwargs = {} if method == "auto" else {"rtol": 1e-11, "atol": 1e-11}
    out = eqn.simulate(pop, inputs, t1=40.0, max_spikes=32, method=method, **kwargs)
    ref = scipy_refractory_lif(t_in, w, ic, tref, 40.0)
    assert int(out.n_spikes) == len(ref) >= 3
    np.testing.assert_allclose(np.asarray(out.spike_times[: len(ref)]), ref, atol=1e-6)


def test_gradient_with_respect_to_the_refractory_period_is_analytic():
    """Constant drive: t_k = t* + (k - 1)(t* + tref), so d t_k / d tref = k - 1."""
    pop = lif_population(tref=5.0)

    def spike_times(pop):
        return eqn.simulate(pop, None, t1=40.0, max_spikes=8).spike_times[:4]

    jac = jax.jacobian(lambda tref: spike_times(eqx.tree_at(lambda p: p.params["tref"], pop, tref)))(pop.params["tref"])
    np.testing.assert_allclose(np.asarray(jac)[:, 0], [0.0, 1.0, 2.0, 3.0], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("method", ["auto", "tsit5"])
def test_gradient_through_refractoriness_with_synaptic_input_matches_finite_differences(method):
    t_in = jnp.asarray([0.0, 7.0, 8.5, 21.0])
    inputs = eqn.Spikes(t_in, jnp.zeros(4, jnp.int32))
    pop = lif_population(tref=3.0, ic=0.8, w=2.5)
    kwargs = {} if method == "auto" else {"rtol": 1e-11, "atol": 1e-11}

    def loss(tref, w):
        p = eqx.tree_at(lambda p: (p.params["tref"], p.weights["w"]), pop, (tref, w))
        out = eqn.simulate(p, inputs, t1=40.0, max_spikes=32, method=method, **kwargs)
        return jnp.sum(out.spike_times[:3] * jnp.array([1.0, 0.5, 0.25]))

    tref, w = pop.params["tref"], pop.weights["w"]
    g_tref, g_w = jax.grad(loss, argnums=(0, 1))(tref, w)
    eps = 1e-6
    fd_tref = (loss(tref + eps, w) - loss(tref - eps, w)) / (2 * eps)
    fd_w = (loss(tref, w.at[1, 0].add(eps)) - loss(tref, w.at[1, 0].add(-eps))) / (2 * eps)
    assert abs(float(g_tref[0])) > 0.1
    np.testing.assert_allclose(float(g_tref[0]), float(fd_tref), rtol=1e-5)
    np.testing.assert_allclose(float(g_w[1, 0]), float(fd_w), rtol=1e-5)


# ---- internal events --------------------------------------------------------------------

ADAPTIVE = """
parameters:
    tmem = 10.0
    ic = 3.0 (per_neuron, trainable)
    theta = 0.6
    tau_a = 20.0
    beta = 0.3

equations:
    dv/dt = (-v + ic - a) / tmem
    da/dt = -a / tau_a

threshold: v > 1
reset:
    v = 0

event crossing: v > theta
    a += beta
"""


def scipy_adaptive(ic, t1, theta=0.6, beta=0.3):
    """Spike and event times of ADAPTIVE, by solve_ivp between events."""
    def rhs(t, y):
        return [(-y[0] + ic - y[1]) / 10.0, -y[1] / 20.0]

    y, t = np.array([0.0, 0.0]), 0.0
    spikes, events, event_armed = [], [], True
    while t < t1:
        sol = solve_ivp(rhs, (t, t1), y, method="DOP853", rtol=1e-12, atol=1e-12, dense_output=True)
        grid = np.linspace(t, t1, 4000)[1:]
        v = sol.sol(grid)[0]
        g_spike = v - 1.0
        g_event = v - theta if event_armed else np.full_like(v, -1.0)
        k_s = np.argmax(g_spike >= 0) if np.any(g_spike >= 0) else None
        k_e = np.argmax(g_event >= 0) if np.any(g_event >= 0) else None
        if k_s is None and k_e is None:
            break
        lo = lambda k: grid[k - 1] if k > 0 else t
        t_s = brentq(lambda s: sol.sol(s)[0] - 1.0, lo(k_s), grid[k_s], xtol=1e-14) if k_s is not None else np.inf
        t_e = brentq(lambda s: sol.sol(s)[0] - theta, lo(k_e), grid[k_e], xtol=1e-14) if k_e is not None else np.inf
        t = min(t_s, t_e)
        y = sol.sol(t)
        if t_e < t_s:
            events.append(t)
            y[1] += beta
            event_armed = False
        else:
            spikes.append(t)
            y[0] = 0.0
            event_armed = True  # v = 0 < theta: the event condition falls below zero
    return np.array(spikes), np.array(events)


@pytest.mark.parametrize("recurrent", [False, True])
def test_internal_event_times_and_counts_match_scipy(recurrent):
    model = eqn.compile_model(ADAPTIVE)
    assert "internal events" in model.integrator
    pop = model.population(2, params={"ic": jnp.array([3.0, 2.2])}, recurrent=recurrent)
    out = eqn.simulate(pop, None, t1=50.0, max_spikes=64, rtol=1e-11, atol=1e-11)
    record = out.events[0]
    for neuron, ic in enumerate([3.0, 2.2]):
        spikes, events = scipy_adaptive(ic, 50.0)
        mine = np.asarray(out.spike_neurons) == neuron
        got_spikes = np.asarray(out.spike_times)[mine]
        times, ids = record.of("crossing")
        got_events = np.asarray(times)[np.asarray(ids) == neuron]
        assert len(got_spikes) == len(spikes) >= 2
        assert len(got_events) == len(events) == int(record.count("crossing")[neuron])
        np.testing.assert_allclose(got_spikes, spikes, atol=1e-7)
        np.testing.assert_allclose(got_events, events, atol=1e-7)


def test_gradient_through_an_internal_event_matches_finite_differences():
    model = eqn.compile_model(ADAPTIVE)
    pop = model.population(1, params={"ic": jnp.array([2.6])})

    def loss(ic):
        p = eqx.tree_at(lambda p: p.params["ic"], pop, ic)
        out = eqn.simulate(p, None, t1=40.0, max_spikes=16, rtol=1e-12, atol=1e-12)
        return out.spike_times[2]  # after two adaptation events

    ic = pop.params["ic"]
    value_and_grad = jax.jit(jax.value_and_grad(loss))  # one program: values and gradient
    _, g = value_and_grad(ic)
    eps = 1e-6
    fd = (value_and_grad(ic + eps)[0] - value_and_grad(ic - eps)[0]) / (2 * eps)
    # the reference without the events' effect on `a` would differ: check it is a real effect
    np.testing.assert_allclose(float(g[0]), float(fd), rtol=1e-5)


def test_and_threshold_fires_when_both_conditions_hold():
    """v rises as 2(1 - exp(-t/10)), u = t/20: `v > 1 and u > 1` first holds at t = 20."""
    src = """
equations:
    dv/dt = (2 - v) / 10
    du/dt = 1 / 20
threshold: v > 1 and u > 1
reset:
    v = 0
    u = 0
"""
    out = eqn.simulate(eqn.compile_model(src).population(1), None, t1=30.0, max_spikes=4, rtol=1e-11, atol=1e-11)
    assert int(out.n_spikes) == 1
    np.testing.assert_allclose(float(out.spike_times[0]), 20.0, atol=1e-8)


def test_or_threshold_fires_at_the_first_condition():
    src = """
equations:
    dv/dt = (2 - v) / 10
    du/dt = 1 / 20
threshold: v > 1 or u > 0.5
reset:
    v = 0
    u = 0
"""
    out = eqn.simulate(eqn.compile_model(src).population(1), None, t1=12.0, max_spikes=4, rtol=1e-11, atol=1e-11)
    t_v = -10.0 * np.log(0.5)  # 6.93 ms, before u reaches 0.5 at 10 ms
    np.testing.assert_allclose(float(out.spike_times[0]), t_v, atol=1e-8)
