"""The event engine against analytic solutions, finite differences and an independent ODE solver."""


import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

import eqneuron as eqn
from eqneuron import losses

from .helpers import feedforward, latency_inputs

TMEM, TSYN = 10.0, 5.0


def lif_single(w, method="auto"):
    model = eqn.compile_model("lif")
    return model.population(1, 1, weights={"w": jnp.array([[0.0], [w]])})


def analytic_lif_crossing(w):
    # v(t) = w * ts/(tm - ts) * (exp(-t/tm) - exp(-t/ts)) crosses 1
    f = lambda t: w * TSYN / (TMEM - TSYN) * (np.exp(-t / TMEM) - np.exp(-t / TSYN)) - 1.0
    t_peak = np.log(TMEM / TSYN) * TMEM * TSYN / (TMEM - TSYN)
    t_star = brentq(f, 0.0, t_peak, xtol=1e-15, rtol=1e-15)
    dfdw = (f(t_star) + 1.0) / w
    dfdt = w * TSYN / (TMEM - TSYN) * (-np.exp(-t_star / TMEM) / TMEM + np.exp(-t_star / TSYN) / TSYN)
    return t_star, -dfdw / dfdt


@pytest.mark.parametrize("method", ["exact", "tsit5", "dopri5"])
def test_lif_first_spike_time_and_gradient_are_analytic(method):
    tolerances = {} if method == "exact" else dict(rtol=1e-10, atol=1e-10)

    @jax.jit
    @jax.value_and_grad
    def first_spike(weight):
        pop = lif_single(weight)
        out = eqn.simulate(pop, latency_inputs([0.0]), t1=50.0, max_spikes=8, method=method, **tolerances)
        return out.first_spike_times()[0]

    for w in [4.5, 6.0, 12.0]:
        t_star, dt_dw = analytic_lif_crossing(w)
        t, grad = first_spike(w)
        assert abs(float(t) - t_star) < (1e-9 if method == "exact" else 1e-6)
        assert abs(float(grad) - dt_dw) < 1e-6 * abs(dt_dw)


def test_many_simultaneous_crossings_are_all_located():
    """200 neurons crossing in the same solver step: more than one block of lanes per step."""
    model = eqn.compile_model("lif")
    weights = np.linspace(6.0, 6.05, 200)  # crossings within ~0.03 ms: far more than a block per step
    pop = model.population(200, 1, weights={"w": jnp.concatenate([jnp.zeros((200, 200)), jnp.asarray(weights)[None]])})
    out = eqn.simulate(pop, latency_inputs([0.0]), t1=50.0, max_spikes=1024, method="tsit5", rtol=1e-10, atol=1e-10,
                       max_spikes_per_neuron=4)
    assert not bool(out.overflow)
    expected = np.array([analytic_lif_crossing(w)[0] for w in weights])
    np.testing.assert_allclose(np.asarray(out.first_spike_times()), expected, atol=1e-6)


def test_lif_silent_below_threshold():
    pop = lif_single(3.9)  # peak 0.25 * w < 1
    out = eqn.simulate(pop, latency_inputs([0.0]), t1=100.0, max_spikes=4)
    assert int(out.n_spikes) == 0 and not bool(out.overflow)
    assert np.isinf(out.first_spike_times()[0])


def test_exact_and_tsit5_agree_on_a_poisson_driven_population():
    from eqneuron.cli.simulate import poisson_spikes

    model = eqn.compile_model("lif")
    pop = model.population(20, 10, key=jax.random.key(3))
    inputs = poisson_spikes(jax.random.key(4), 80.0, 10, 100.0)
    a = eqn.simulate(pop, inputs, t1=100.0, max_spikes=512, method="exact")
    b = eqn.simulate(pop, inputs, t1=100.0, max_spikes=512, method="tsit5", rtol=1e-11, atol=1e-11)
    assert int(a.n_spikes) == int(b.n_spikes) > 20
    np.testing.assert_array_equal(a.spike_neurons, b.spike_neurons)
    n = int(a.n_spikes)
    np.testing.assert_allclose(a.spike_times[:n], b.spike_times[:n], atol=1e-7)


def test_exact_integration_handles_equal_time_constants():
    """tmem == tsyn is a removable singularity of the closed form: v = w t/tau exp(-t/tau)."""
    model = eqn.compile_model("lif", params={"tsyn": 10.0})
    pop = model.population(1, 1, weights={"w": jnp.array([[0.0], [5.0]])})

    def first(w):
        p = pop.replace(weights={"w": jnp.array([[0.0], [w]])})
        return eqn.simulate(p, latency_inputs([0.0]), t1=50.0, max_spikes=4, method="exact").first_spike_times()[0]

    f = lambda t: 5.0 * t / 10.0 * np.exp(-t / 10.0) - 1.0
    t_star = brentq(f, 0.0, 10.0, xtol=1e-15)
    assert abs(float(first(5.0)) - t_star) < 1e-9
    dfdw = (f(t_star) + 1.0) / 5.0
    dfdt = 5.0 / 10.0 * np.exp(-t_star / 10.0) * (1 - t_star / 10.0)
    assert abs(float(jax.grad(first)(5.0)) + dfdw / dfdt) < 1e-7


def ttfs_loss(net, inputs, label, t1=60.0):
    out = eqn.simulate(net, inputs, t1=t1, max_spikes=128)
    first = out.first_spikes[-1]
    return losses.ttfs_cross_entropy(first, label, tau=2.0, t_silent=t1)


# compiled once for every seed (same shapes): inputs and label are arguments, not constants
_ttfs_loss = eqx.filter_jit(ttfs_loss)
_ttfs_value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(ttfs_loss))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_network_gradients_match_central_finite_differences(seed):
    key = jax.random.key(seed)
    k_net, k_in, k_dir = jax.random.split(key, 3)
    net = feedforward("lif", [5, 30, 3], k_net)
    inputs = latency_inputs(jax.random.uniform(k_in, (5,), minval=0.0, maxval=10.0))
    label = jnp.asarray(seed % 3)
    params, static = eqx.partition(net, eqx.is_inexact_array)

    def loss_of(p):
        return _ttfs_loss(eqx.combine(p, static), inputs, label)

    loss, grads = _ttfs_value_and_grad(net, inputs, label)
    grads = eqx.filter(grads, eqx.is_inexact_array)
    assert np.isfinite(float(loss))
    out = eqn.simulate(net, inputs, t1=60.0, max_spikes=128)
    assert int(out.counts[0].sum()) > 0, "hidden layer must fire for a meaningful check"

    eps = 1e-6
    leaves, treedef = jax.tree_util.tree_flatten(params)
    g_leaves = jax.tree_util.tree_leaves(grads)
    assert len(g_leaves) == len(leaves)
    rng = np.random.default_rng(seed)
    checked = 0
    for leaf_index, (leaf, g) in enumerate(zip(leaves, g_leaves)):
        if leaf.ndim != 2:
            continue
        nonzero = np.argwhere(np.abs(np.asarray(g)) > 1e-8)
        picks = nonzero[rng.choice(len(nonzero), size=min(8, len(nonzero)), replace=False)] if len(nonzero) else []
        for r, c in picks:
            def shifted(delta):
                new = list(leaves)
                new[leaf_index] = leaf.at[r, c].add(delta)
                return float(loss_of(jax.tree_util.tree_unflatten(treedef, new)))

            fd = (shifted(eps) - shifted(-eps)) / (2 * eps)
            assert abs(fd - float(g[r, c])) <= 1e-4 * abs(fd) + 1e-9, (r, c, fd, float(g[r, c]))
            checked += 1
    assert checked >= 8

    # all weights at once along a random direction
    direction = jax.tree_util.tree_map(lambda x: jax.random.normal(k_dir, x.shape), params)
    directional = sum(jnp.vdot(a, b) for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(direction)))
    plus = loss_of(jax.tree_util.tree_map(lambda x, d: x + eps * d, params, direction))
    minus = loss_of(jax.tree_util.tree_map(lambda x, d: x - eps * d, params, direction))
    fd = (plus - minus) / (2 * eps)
    assert abs(float(fd) - float(directional)) <= 1e-4 * abs(float(fd))


def rounds_net(scale, recurrent):
    """5→20→3 Izhikevich; the hidden layer on own clocks, or recurrent (one clock)."""
    net = feedforward("izhikevich", [5, 20, 3], jax.random.key(1))
    if recurrent:
        model = eqn.compile_model("izhikevich")
        hidden = model.population(20, 5, key=jax.random.key(2), recurrent=True)
        w = hidden.weights["w"]
        hidden = eqx.tree_at(lambda p: p.weights["w"], hidden, w.at[:20].multiply(0.1).at[20:].set(net.populations[0].weights["w"][-5:]))
        net = eqn.Network([hidden, net.populations[1]])
    return eqx.tree_at(lambda n: [p.weights for p in n.populations], net, replace_fn=lambda w: {k: v * scale for k, v in w.items()})


ROUNDS_INPUTS = latency_inputs(jnp.array([0.0, 2.0, 4.0, 6.0, 8.0]))
ROUNDS_T1 = 40.0


def hidden_spikes(result, n_hidden, before=np.inf):
    """(times, neurons) of the first population's spikes before `before`, in time order."""
    times, neurons = np.asarray(result.spike_times), np.asarray(result.spike_neurons)
    mine = (neurons >= 0) & (neurons < n_hidden) & (times < before)
    return times[mine], neurons[mine]


@pytest.mark.parametrize("recurrent", [False, True])
def test_first_spike_rounds_match_the_full_run(recurrent):
    """A first-spike run (`stop_after_first_spike`) with a stepping hidden layer runs in rounds by
    default when not differentiated (a few loop iterations of the hidden layer, then the outputs
    up to the time the hidden spikes are known), with `rounds=True`, and without rounds
    (`rounds=False`: to t1, then cut): the outputs' first spikes
    must be those of the full simulation, and the hidden layer's spikes those of the full
    simulation before the outputs are done (their last first spike), none after.  Scale 0.3:
    outputs fire after several rounds; scale 0.2: one output stays silent, so the rounds go on to
    t1 and the hidden spikes are all there.  Recurrent: the hidden layer is one clock (rounds of
    events instead of per-neuron iterations)."""
    t1 = ROUNDS_T1
    full = jax.jit(lambda net: eqn.simulate(net, ROUNDS_INPUTS, t1=t1, max_spikes=128))
    runs = {
        rounds: jax.jit(lambda net, r=rounds: eqn.simulate(net, ROUNDS_INPUTS, t1=t1, max_spikes=128, stop_after_first_spike=True, rounds=r))
        for rounds in (None, True, False)  # False: a full run whose hidden spikes are cut afterwards
    }
    for scale in (0.2, 0.3):  # same shapes: each function compiles once
        net = rounds_net(scale, recurrent)
        reference = full(net)
        first = np.asarray(reference.first_spikes[-1])
        assert np.any(first > t1 / 8), "an output must fire after the first rounds"
        done = np.max(first) if np.all(np.isfinite(first)) else np.inf
        ref_times, ref_neurons = hidden_spikes(reference, 20, done)
        if scale == 0.3:
            assert len(hidden_spikes(reference, 20)[0]) > len(ref_times), "the full run's hidden layer fires after the outputs"
        for ours in (runs[r](net) for r in runs):
            assert not bool(ours.overflow) and not bool(reference.overflow)
            np.testing.assert_array_equal(np.isinf(ours.first_spikes[-1]), np.isinf(first))
            finite = np.isfinite(first)
            np.testing.assert_allclose(np.asarray(ours.first_spikes[-1])[finite], first[finite], rtol=0, atol=1e-6)
            times, neurons = hidden_spikes(ours, 20)
            np.testing.assert_array_equal(neurons, ref_neurons)
            np.testing.assert_allclose(times, ref_times, rtol=0, atol=1e-6)
            np.testing.assert_array_equal(np.asarray(ours.counts[0]), np.bincount(ref_neurons, minlength=20))


def test_first_spike_rounds_gradient_matches_finite_differences():
    """The gradient of a TTFS loss through a run in rounds (`rounds=True`), against central differences."""
    net = rounds_net(0.3, False)
    params, static = eqx.partition(net, eqx.is_inexact_array)

    def loss_of(p):
        out = eqn.simulate(eqx.combine(p, static), ROUNDS_INPUTS, t1=ROUNDS_T1, max_spikes=128, stop_after_first_spike=True, rounds=True)
        return losses.ttfs_cross_entropy(out.first_spikes[-1], 0, tau=2.0, t_silent=ROUNDS_T1)

    # one compiled program: its value is the loss at the displaced points
    value_and_grad = jax.jit(jax.value_and_grad(loss_of))
    value, grads = value_and_grad(params)
    # under reverse mode the rounds only find where the outputs are done, and the differentiated
    # loops run the hidden layer to there: the loss of the run in rounds all the same
    assert abs(float(value) - float(jax.jit(loss_of)(params))) <= 1e-9 * abs(float(value))
    direction = jax.tree_util.tree_map(lambda x: jax.random.normal(jax.random.key(7), x.shape), params)
    directional = sum(jnp.vdot(a, b) for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(direction)))
    eps = 1e-6
    plus, _ = value_and_grad(jax.tree_util.tree_map(lambda x, d: x + eps * d, params, direction))
    minus, _ = value_and_grad(jax.tree_util.tree_map(lambda x, d: x - eps * d, params, direction))
    fd = (plus - minus) / (2 * eps)
    assert abs(float(directional)) > 1e-3
    assert abs(float(fd) - float(directional)) <= 1e-4 * abs(float(fd))


def test_long_stepping_loop_gradient_matches_finite_differences():
    """d v(6.5 ms) / d t_input for one Izhikevich output neuron driven by the first 15
    spikes of a hidden layer (~260 solver steps, so reverse mode recomputes from 64
    checkpoints), against central differences.  At rtol 1e-12 the error estimate is
    near roundoff: `grad(jit(f))` recomputes the loop in a separately compiled program
    whose last bits differ, and before step sizes were rounded to a grid the
    recomputation took other steps (+5.22 instead of -6.22)."""
    net = feedforward("izhikevich", [5, 20, 3], jax.random.key(1))
    hidden, out = (eqx.tree_at(lambda q: q.weights, q, replace_fn=lambda w: {k: v * 0.2 for k, v in w.items()}) for q in net.populations)
    spikes = eqn.simulate(hidden, latency_inputs(jnp.array([0.0, 2.0, 4.0, 6.0, 8.0])), t1=40.0, max_spikes=128, rtol=1e-12, atol=1e-12)
    times, channels = spikes.spike_times[:15], spikes.spike_neurons[:15]
    neuron = eqn.compile_model("izhikevich").population(1, 20, weights={"w": jnp.concatenate([jnp.zeros((1, 1)), out.weights["w"][3:, :1]])})

    def v_at(t_last):
        result = eqn.simulate(neuron, eqn.Spikes(times.at[-1].set(t_last), channels), t1=7.0, max_spikes=64,
                              rtol=1e-12, atol=1e-12, save_at=jnp.array([6.5]))
        return result.states[0]["v"][0, 0]

    f = jax.jit(v_at)
    t = times[-1]
    fd = (f(t + 1e-6) - f(t - 1e-6)) / 2e-6
    for grad in (jax.grad(f), jax.jit(jax.grad(v_at))):
        assert abs(float(grad(t)) - float(fd)) <= 1e-5 * abs(float(fd))


def izhikevich_reference(i_bias, n_spikes, p):
    """scipy solve_ivp with event detection and the same reset, rtol 1e-10."""
    a, b, c, d, v_th = p["a"], p["b"], p["c"], p["d"], 30.0

    def f(t, y):
        v, u = y
        return [0.04 * v * v + 5 * v + 140 - u + i_bias, a * (b * v - u)]

    def crossing(t, y):
        return y[0] - v_th

    crossing.terminal, crossing.direction = True, 1
    t, y, spikes = 0.0, [c, b * c], []
    while len(spikes) < n_spikes:
        sol = solve_ivp(f, (t, 2000.0), y, method="DOP853", rtol=1e-10, atol=1e-10, events=crossing)
        t = sol.t_events[0][0]
        v, u = sol.y_events[0][0]
        spikes.append(t)
        y = [v - (v_th - c), u + d]
    return np.array(spikes)


def test_izhikevich_regular_spiking_matches_solve_ivp():
    params = eqn.izhikevich_pattern("regular_spiking")
    model = eqn.compile_model("izhikevich", params=params)
    pop = model.population(1, 0, params={"ic": 10.0})
    out = eqn.simulate(pop, None, t1=1000.0, max_spikes=32, rtol=1e-10, atol=1e-10)
    ours = np.asarray(out.spike_times[:10])
    reference = izhikevich_reference(10.0, 10, params)
    np.testing.assert_allclose(ours, reference, atol=1e-3)
    isi = np.diff(ours)
    assert isi[-1] > 1.5 * isi[0], "regular spiking adapts: inter-spike intervals lengthen"


def recurrent_izhikevich_reference(W, bias, t1, p):
    """Hand-written: 3 coupled neurons, solve_ivp between events, resets and jumps applied by hand."""
    a, b, c, d, v_th, tau = p["a"], p["b"], p["c"], p["d"], p["v_th"], p["tau_syn"]
    n = len(bias)

    def f(t, y):
        v, u, i = y[:n], y[n : 2 * n], y[2 * n :]
        return np.concatenate([0.04 * v * v + 5 * v + 140 - u + i + bias, a * (b * v - u), -i / tau])

    events = []
    for k in range(n):
        def cross(t, y, k=k):
            return y[k] - v_th

        cross.terminal, cross.direction = True, 1
        events.append(cross)
    t, y, spikes = 0.0, np.concatenate([np.full(n, c), np.full(n, b * c), np.zeros(n)]), []
    while True:
        sol = solve_ivp(f, (t, t1), y, method="DOP853", rtol=1e-11, atol=1e-11, events=events)
        fired = [k for k in range(n) if len(sol.t_events[k])]
        if not fired:
            return np.array(spikes)
        k = min(fired, key=lambda k: sol.t_events[k][0])
        t, y = sol.t_events[k][0], sol.y_events[k][0].copy()
        spikes.append((t, k))
        y_pre = y.copy()
        y[k] = y_pre[k] - (v_th - c)
        y[n + k] += d
        y[2 * n :] += W[k]  # i += w, the row of the firing neuron


def test_recurrent_izhikevich_matches_solve_ivp():
    """A recurrent population runs on one clock with common adaptive steps."""
    model = eqn.compile_model("izhikevich")
    W = np.array([[0.0, 8.0, -5.0], [4.0, 0.0, 6.0], [-3.0, 7.0, 0.0]])
    bias = np.array([6.0, 4.0, 5.0])
    pop = model.population(3, 0, recurrent=True, weights={"w": jnp.asarray(W)}, params={"ic": jnp.asarray(bias)})
    out = eqn.simulate(pop, None, t1=100.0, max_spikes=128, rtol=1e-10, atol=1e-10)
    defaults = dict(a=0.02, b=0.2, c=-51.0, d=2.0, v_th=30.0, tau_syn=5.0)  # models/izhikevich.eq
    reference = recurrent_izhikevich_reference(W, bias, 100.0, defaults)
    n = int(out.n_spikes)
    assert n == len(reference) > 6
    np.testing.assert_array_equal(np.asarray(out.spike_neurons[:n]), reference[:, 1].astype(int))
    np.testing.assert_allclose(np.asarray(out.spike_times[:n]), reference[:, 0], atol=1e-5)


def test_recurrent_egru_runs_and_differentiates():
    model = eqn.compile_model("egru")
    # update gate open (b_u = 0) and modulation drive (b_z = 2): the cell state reaches threshold
    pop = model.population(8, 3, key=jax.random.key(0), recurrent=True, params={"b_z": 2.0, "b_u": 0.0})
    pop = pop.replace(weights={k: 3 * w for k, w in pop.weights.items()})
    times = jnp.arange(1.0, 40.0, 2.0)
    inputs = eqn.Spikes(times, jnp.arange(times.shape[0]) % 3)

    def loss(p):
        out = eqn.simulate(p, inputs, t1=80.0, max_spikes=256, save_at=jnp.array([40.0, 80.0]))
        return jnp.sum(out.states[0]["c"][-1] ** 2) + jnp.sum(jnp.where(jnp.isfinite(out.spike_times), out.spike_times, 0.0)) * 1e-3

    out = eqn.simulate(pop, inputs, t1=80.0, max_spikes=256)
    assert int(out.n_spikes) > 0 and not bool(out.overflow)
    recurrent_rows = np.asarray(pop.weights["w_u"][:8])
    assert np.any(recurrent_rows != 0)
    grads = eqx.filter_grad(loss)(pop)
    g = grads.weights["w_u"]
    assert np.all(np.isfinite(g)) and np.any(np.asarray(g[:8]) != 0), "gradients reach recurrent weights"
    assert np.all(np.isfinite(grads.params["b_u"]))


def test_identical_neurons_spike_at_identical_times():
    model = eqn.compile_model("izhikevich")
    w = jnp.full((2 + 1, 2), 30.0).at[:2].set(0.0)
    pop = model.population(2, 1, weights={"w": w})
    inputs = latency_inputs([1.0])
    out = eqn.simulate(pop, inputs, t1=50.0, max_spikes=16)
    n = int(out.n_spikes)
    assert n >= 2 and n % 2 == 0
    times = np.asarray(out.spike_times[:n]).reshape(-1, 2)
    np.testing.assert_array_equal(times[:, 0], times[:, 1])
    assert sorted(np.asarray(out.spike_neurons[:2]).tolist()) == [0, 1]


def test_overflow_is_flagged_and_warned():
    model = eqn.compile_model("izhikevich")
    pop = model.population(3, 0, params={"ic": 10.0})
    with pytest.warns(RuntimeWarning, match="spike budget exceeded"):
        out = eqn.simulate(pop, None, t1=500.0, max_spikes=4)
    assert bool(out.overflow)
    assert int(out.n_spikes) >= 4
    assert np.all(np.isfinite(out.spike_times))  # the budget is full, nothing silently dropped before it


def test_overflow_flag_under_jit():
    model = eqn.compile_model("izhikevich")
    pop = model.population(3, 0, params={"ic": 10.0})
    out = jax.jit(lambda p: eqn.simulate(p, None, t1=500.0, max_spikes=4))(pop)
    assert bool(out.overflow)


def test_nonfinite_state_is_reported_with_neuron_and_time():
    source = """
neuron Blowup
parameters:
    k = 1.0 (per_neuron)
equations:
    dv/dt = k * v**2
threshold: v > 1e300
reset:
    v = 0
state:
    v = 1.0
"""
    model = eqn.compile_model(source)
    pop = model.population(2, 0, params={"k": jnp.array([0.0, 1.0])})
    with pytest.warns(RuntimeWarning, match="non-finite state in neuron 1"):
        out = eqn.simulate(pop, None, t1=5.0, max_spikes=4, method="tsit5")
    assert bool(out.nonfinite)
    assert int(out.nonfinite_neuron) == 1
    assert float(out.nonfinite_time) <= 1.0 + 1e-6


def test_vmap_over_a_batch_of_inputs_equals_a_loop():
    net = feedforward("lif", [5, 12, 3], jax.random.key(7))
    times = jax.random.uniform(jax.random.key(8), (4, 5), minval=0.0, maxval=10.0)
    batch = eqn.Spikes(times, jnp.broadcast_to(jnp.arange(5), (4, 5)))
    run = lambda inp: eqn.simulate(net, inp, t1=40.0, max_spikes=64).first_spike_times()
    batched = jax.vmap(run)(batch)
    for k in range(4):
        single = run(latency_inputs(times[k]))
        np.testing.assert_allclose(batched[k], single, rtol=1e-12)


def test_save_at_records_the_analytic_trace():
    pop = lif_single(3.0)
    ts = jnp.array([1.0, 5.0, 20.0])
    out = eqn.simulate(pop, latency_inputs([0.0]), t1=30.0, max_spikes=4, save_at=ts)
    v = 3.0 * TSYN / (TMEM - TSYN) * (np.exp(-np.asarray(ts) / TMEM) - np.exp(-np.asarray(ts) / TSYN))
    np.testing.assert_allclose(out.states[0]["v"][:, 0], v, rtol=1e-10)
    np.testing.assert_allclose(out.states[0]["i"][:, 0], 3.0 * np.exp(-np.asarray(ts) / TSYN), rtol=1e-10)


def test_gradient_with_respect_to_input_spike_time():
    pop = lif_single(6.0)

    def first(t_in):
        return eqn.simulate(pop, latency_inputs(jnp.array([t_in])), t1=50.0, max_spikes=4).first_spike_times()[0]

    assert abs(float(jax.grad(first)(2.0)) - 1.0) < 1e-9  # a shift of the input shifts the spike


def test_float32_simulation_runs(tmp_path):
    import subprocess
    import sys

    code = (
        "import jax, jax.numpy as jnp, eqneuron as eqn;"
        "m = eqn.compile_model('lif');"
        "p = m.population(1, 1, weights={'w': jnp.array([[0.0],[6.0]])});"
        "o = eqn.simulate(p, eqn.Spikes(jnp.array([0.0]), jnp.array([0])), t1=50.0, max_spikes=4);"
        "g = jax.grad(lambda w: eqn.simulate(p.replace(weights={'w': jnp.array([[0.0],[w]])}), eqn.Spikes(jnp.array([0.0]), jnp.array([0])), t1=50.0, max_spikes=4).spike_times[0])(6.0);"
        "print(o.spike_times.dtype, float(o.spike_times[0]), float(g))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dtype, t, g = result.stdout.split()
    t_star, dt_dw = analytic_lif_crossing(6.0)
    assert dtype == "float32"
    assert abs(float(t) - t_star) < 1e-4
    assert abs(float(g) - dt_dw) < 1e-3 * abs(dt_dw)


def test_qif_period_matches_the_analytic_theta_neuron():
    """The theta form equals dv/dt = (v^2 - v + I) / tmem: period tmem * pi / sqrt(I - 1/4)."""
    model = eqn.compile_model("qif")
    current, tmem = 1.5, 10.0
    pop = model.population(1, 0, params={"ic": current})
    out = eqn.simulate(pop, None, t1=200.0, max_spikes=16, rtol=1e-11, atol=1e-11)
    times = np.asarray(out.spike_times[: int(out.n_spikes)])
    root = np.sqrt(current - 0.25)
    first = tmem / root * (np.pi / 2 + np.arctan(0.5 / root))  # from v = 0 (phi = 1/2) to +inf
    assert abs(times[0] - first) < 1e-6
    np.testing.assert_allclose(np.diff(times), tmem * np.pi / root, atol=1e-6)


def test_shared_clock_exact_path_matches_the_analytic_crossing():
    """A recurrent population (one clock for all neurons) with silent recurrent weights."""
    model = eqn.compile_model("lif")
    w = jnp.zeros((3, 2)).at[2].set(jnp.array([5.0, 7.0]))
    pop = model.population(2, 1, recurrent=True, weights={"w": w})

    def first(scale):
        p = pop.replace(weights={"w": w * scale})
        return eqn.simulate(p, latency_inputs([0.0]), t1=50.0, max_spikes=8, method="exact").first_spike_times()

    times = first(1.0)
    for k, weight in enumerate([5.0, 7.0]):
        t_star, dt_dw = analytic_lif_crossing(weight)
        assert abs(float(times[k]) - t_star) < 1e-9
    grad = float(jax.grad(lambda s: first(s)[0])(1.0))
    assert abs(grad - analytic_lif_crossing(5.0)[1] * 5.0) < 1e-6 * abs(grad)


def test_prefix_count_and_block_lanes_match_numpy():
    """The matmul prefix count (<= 256 lanes) and cumsum (more) against numpy; a block
    holds the first `size` set lanes in lane order, as np.nonzero lists them."""
    from eqneuron.engine.lanes import Block, prefix_count

    rng = np.random.default_rng(0)
    for n in (1, 7, 120, 256, 257, 1000):
        mask = rng.random(n) < 0.3
        np.testing.assert_array_equal(np.asarray(prefix_count(jnp.asarray(mask))), np.cumsum(mask))
        size = max(1, n // 8)
        block = Block(jnp.asarray(mask), size)
        first = np.nonzero(mask)[0][:size]
        np.testing.assert_array_equal(np.asarray(block.index)[: len(first)], first)
        np.testing.assert_array_equal(np.asarray(block.valid), np.arange(size) < len(first))
        np.testing.assert_array_equal(np.asarray(block.deferred), mask & ~np.isin(np.arange(n), first))


def test_some_true_returns_set_lanes_in_order_and_all_of_a_few():
    """`some_true` against np.flatnonzero: distinct set lanes in increasing order, n in the empty
    slots, none only when no lane is set, and every set lane when they fit in as many groups
    of 32 as it keeps (16 for k = 16)."""
    from eqneuron.engine.lanes import some_true

    rng = np.random.default_rng(0)
    for n in (5, 300, 4000, 4001, 40007):
        f = jax.jit(lambda m: some_true(m, 16))
        for p in (0.0, 1 / n, 6 / n, 0.05, 1.0):
            mask = rng.random(n) < p
            got = np.asarray(f(jnp.asarray(mask)))
            chosen = got[got < n]
            truth = np.flatnonzero(mask)
            assert got.shape == (16,) and np.all(got[len(chosen):] == n)
            assert np.all(np.diff(chosen) > 0) and set(chosen) <= set(truth)
            assert (len(chosen) == 0) == (len(truth) == 0)
            if len(np.unique(truth // 32)) <= 16 or n <= 1024:
                np.testing.assert_array_equal(chosen, truth[:16])


def test_merged_spike_lists_are_a_stable_sort_of_their_concatenation():
    """`merge_in_time_order` (each list in time order, inf after its spikes) against NumPy's
    stable argsort of the lists side by side: ties across lists in list order, padded or cut to
    the size asked for."""
    from eqneuron.engine.result import merge_in_time_order

    rng = np.random.default_rng(1)
    for sizes, size in (([40], 64), ([40], 16), ([30, 25, 1], 64), ([30, 25, 7], 40)):
        times, ids = [], []
        for k, m in enumerate(sizes):
            t = np.sort(np.round(rng.uniform(0, 5, m), 1))  # ties within and across lists
            t[rng.integers(0, m + 1):] = np.inf
            times.append(t)
            ids.append(np.where(np.isfinite(t), 100 * k + np.arange(m), -1))
        got_t, got_i = merge_in_time_order([jnp.asarray(t) for t in times], [jnp.asarray(i) for i in ids], size)
        all_t, all_i = np.concatenate(times), np.concatenate(ids)
        order = np.argsort(all_t, kind="stable")
        want_t = np.concatenate([all_t[order], np.full(max(0, size - len(all_t)), np.inf)])[:size]
        want_i = np.concatenate([all_i[order], np.full(max(0, size - len(all_i)), -1)])[:size]
        np.testing.assert_array_equal(np.asarray(got_t), want_t)
        np.testing.assert_array_equal(np.asarray(got_i), want_i)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [40, 272, 5000])
def test_spike_list_order_matches_a_stable_argsort(n, dtype):
    """`earliest` (`top_k` up to 64 slots; beyond, sorts of the times' bits as integers) against
    NumPy's stable sort: ties in list order, empty slots last, negative times, -0.0 (equal to 0.0)
    and NaN (last, after inf)."""
    from eqneuron.engine.lanes import earliest

    rng = np.random.default_rng(0)
    times = np.round(rng.uniform(-5, 10, n), 1).astype(dtype)  # many ties
    times[rng.random(n) < 0.3] = np.inf
    times[:5] = [0.0, -0.0, 2.5, -0.0, np.nan]  # NumPy puts NaN last, in list order
    times[-1] = np.nan
    expected = np.argsort(times, kind="stable")
    np.testing.assert_array_equal(np.asarray(earliest(jnp.asarray(times), n)), expected)
    np.testing.assert_array_equal(np.asarray(earliest(jnp.asarray(times), 7)), expected[:7])
    both = jax.jit(jax.vmap(lambda t: earliest(t, n)))(jnp.asarray(np.stack([times, times[::-1]])))
    np.testing.assert_array_equal(np.asarray(both[1]), np.argsort(times[::-1], kind="stable"))


@pytest.mark.parametrize("n", [300, 50_000])
def test_stable_order_of_integer_keys_matches_numpy(n):
    """`stable_order` (one sort of `key · n + index`; `argsort` where that overflows int32)
    against NumPy's stable argsort: equal keys in list order."""
    from eqneuron.engine.lanes import stable_order

    keys = np.random.default_rng(1).integers(0, 120, n)
    for most in (120, 50_000):  # 50,000 · 50,000 overflows int32: the argsort path
        order = jax.jit(lambda k, most=most: stable_order(k, most))(jnp.asarray(keys, jnp.int32))
        np.testing.assert_array_equal(np.asarray(order), np.argsort(keys, kind="stable"))


def test_a_first_spike_run_ends_the_hidden_layers_internal_events_where_the_outputs_are_done():
    """Internal events of an earlier population, like its spikes, end where the last population
    is done (its last first spike): the events and their counts are those of the full run before
    then (the full run, with no early stop, as the reference)."""
    from .test_eventprop import ADAPTIVE_SYNAPTIC, INPUTS, T1

    model = eqn.compile_model(ADAPTIVE_SYNAPTIC)
    hidden = model.population(6, 5, params={"ic": jnp.full((6,), 0.9)}, key=jax.random.key(1))
    hidden = hidden.replace(weights={"w": 1.5 * jnp.abs(hidden.weights["w"])})
    net = eqn.Network([hidden, model.population(2, 6, params={"ic": jnp.full((2,), 0.9)}, key=jax.random.key(2))])
    full = eqn.simulate(net, INPUTS, t1=T1, max_spikes=128, max_spikes_per_neuron=8)
    first = np.asarray(full.first_spikes[-1])
    assert np.all(np.isfinite(first))
    done = first.max()
    times, neurons, kinds = (np.asarray(x) for x in (full.events[0].times, full.events[0].neurons, full.events[0].kinds))
    before = times < done
    assert 0 < before.sum() < np.isfinite(times).sum(), "events before and after the outputs are done"
    expected = np.zeros(full.events[0].counts.shape, int)
    np.add.at(expected, (kinds[before], neurons[before]), 1)

    ours = eqn.simulate(net, INPUTS, t1=T1, max_spikes=128, max_spikes_per_neuron=8, stop_after_first_spike=True)
    np.testing.assert_allclose(np.asarray(ours.first_spikes[-1]), first, rtol=0, atol=1e-6)
    got = np.asarray(ours.events[0].times)
    np.testing.assert_allclose(got[np.isfinite(got)], times[before], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(ours.events[0].counts), expected)
    assert all(r == eqn.RESULTS.ok for r in ours.results)


def test_cut_at_keeps_what_precedes_the_cut_and_the_budget_codes():
    """`cut_at` on hand-written outcomes: spikes, a non-finite state and internal events before the
    cut are kept, those after it dropped; an overflowed spike list keeps its count (the
    `spike_budget` code stands) and an overflowed event list its counts."""
    from eqneuron.engine.result import EventRecord, PopulationOutcome, cut_at

    def outcome(n_spikes, spike_budget, event_counts):
        events = EventRecord(names=("a", "b"), times=jnp.array([0.5, 2.5, 4.0]), neurons=jnp.array([1, 0, 1]),
                             kinds=jnp.array([0, 1, 0]), counts=jnp.asarray(event_counts))
        return PopulationOutcome(
            spike_times=jnp.array([1.0, 3.0, 5.0, jnp.inf]), spike_ids=jnp.array([0, 1, 0, -1]),
            n_spikes=jnp.asarray(n_spikes), spike_budget=jnp.asarray(spike_budget), step_budget=jnp.asarray(False),
            nonfinite=jnp.asarray(True), nonfinite_time=jnp.asarray(4.5), nonfinite_neuron=jnp.asarray(1),
            reset_failed=jnp.asarray(False), states=None, events=events)

    cut = cut_at(outcome(3, False, [[1, 1], [1, 0]]), 3.5)
    np.testing.assert_array_equal(cut.spike_times, [1.0, 3.0, np.inf, np.inf])
    np.testing.assert_array_equal(cut.spike_ids, [0, 1, -1, -1])
    assert int(cut.n_spikes) == 2 and cut.result == eqn.RESULTS.ok  # the non-finite state at 4.5 is after the cut
    assert int(cut.nonfinite_neuron) == -1 and float(cut.nonfinite_time) == np.inf
    np.testing.assert_array_equal(cut.events.times, [0.5, 2.5, np.inf])
    np.testing.assert_array_equal(cut.events.kinds, [0, 1, -1])
    np.testing.assert_array_equal(cut.events.counts, [[0, 1], [1, 0]])  # kind a: neuron 1 once; kind b: neuron 0

    later = cut_at(outcome(3, False, [[1, 1], [1, 0]]), 4.75)
    assert int(later.n_spikes) == 2 and later.result == eqn.RESULTS.non_finite and int(later.nonfinite_neuron) == 1

    overflowed = cut_at(outcome(9, True, [[2, 5], [3, 0]]), 3.5)  # 9 spikes for 4 slots, 10 events for 3
    assert int(overflowed.n_spikes) == 9 and overflowed.result == eqn.RESULTS.spike_budget
    np.testing.assert_array_equal(overflowed.events.counts, [[2, 5], [3, 0]])
