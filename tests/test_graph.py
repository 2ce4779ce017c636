"""Networks as graphs: projections with delays, cycles run in windows of the shortest delay.

The reference is an event-driven simulation written here with scipy: all
neurons integrated together by `solve_ivp` between events, threshold
crossings located on the dense output, each spike's arrivals queued at
emission time + delay and applied when they are due.
"""

import heapq

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

import eqneuron as eqn

TMEM, TSYN = 10.0, 5.0


def reference(w_rec, delays, w_in, inputs, t1, ic):
    """LIF neurons (eqneuron's `lif`: v' = (-v + i + ic)/tmem, i' = -i/tsyn, v > 1 -> v -= 1)
    with recurrent weights `w_rec[source, target]` arriving after `delays[source]` (or, with
    `delays` of shape (n, n), after `delays[source, target]`, each synapse's event on its own)."""
    n = w_rec.shape[0]
    per_synapse = np.ndim(delays) == 2

    def rhs(t, y):
        v, i = y[:n], y[n:]
        return np.concatenate([(-v + i + ic) / TMEM, -i / TSYN])

    queue = [(t, -1, c) for t, c in inputs]  # (time, source, channel): source -1 is an external input
    heapq.heapify(queue)
    y, t, spikes = np.zeros(2 * n), 0.0, []
    while t < t1:
        t_next = min(queue[0][0] if queue else t1, t1)
        if t_next > t:
            sol = solve_ivp(rhs, (t, t_next), y, method="DOP853", rtol=1e-12, atol=1e-12, dense_output=True)
            grid = np.linspace(t, t_next, 200)
            vs = sol.sol(grid)[:n] - 1.0
            first = np.inf
            for j in range(n):
                above = np.nonzero(vs[j] >= 0)[0]
                if len(above) and above[0] > 0:
                    k = above[0]
                    first = min(first, brentq(lambda s: sol.sol(s)[j] - 1.0, grid[k - 1], grid[k], xtol=1e-14))
            if first < np.inf:
                t, y = first, sol.sol(first)
                fired = [j for j in range(n) if y[j] >= 1.0 - 1e-9]
                for j in fired:
                    y[j] -= 1.0
                    spikes.append((t, j))
                    if per_synapse:  # (time, source, n + target): one synapse
                        for target in np.nonzero(w_rec[j])[0]:
                            heapq.heappush(queue, (t + delays[j, target], j, n + int(target)))
                    else:
                        heapq.heappush(queue, (t + delays[j], j, j))
                continue
            t, y = t_next, sol.y[:, -1]
        if t >= t1:
            break
        while queue and queue[0][0] <= t:
            _, source, channel = heapq.heappop(queue)
            if source >= 0 and channel >= n:
                y[channel] += w_rec[source, channel - n]
            else:
                y[n:] += w_in[channel] if source < 0 else w_rec[source]
    return spikes


def lif_graph(w_rec, delays, w_in, as_projection=True):
    n = w_rec.shape[0]
    lif = eqn.compile_model("lif")
    k = w_in.shape[0]
    weights = jnp.concatenate([jnp.zeros((n, n)), jnp.asarray(w_in)])
    pop = lif.population(n, k, weights={"w": weights}, params={"ic": jnp.full((n,), 0.3)})
    proj = eqn.Projection("net", "net", weights={"w": jnp.asarray(w_rec)}, delay=jnp.asarray(delays))
    return eqn.Network({"net": pop}, projections=[proj])


def case(seed, n=5, k=3):
    rng = np.random.default_rng(seed)
    w_rec = rng.normal(0.0, 0.8, (n, n)) * (rng.random((n, n)) < 0.6)
    delays = rng.uniform(0.7, 2.0, n)
    w_in = rng.uniform(1.0, 3.0, (k, n))
    inputs = [(float(t), int(c)) for t, c in zip(np.sort(rng.uniform(0, 25, 12)), rng.integers(0, k, 12))]
    return w_rec, delays, w_in, inputs


def assert_reference_spikes(out, ref):
    """`out`'s spikes are the reference's (time, neuron) list: as many (at least 8), the same
    neurons in time order, the times to 1e-8 ms."""
    n = int(out.n_spikes)
    assert n == len(ref) >= 8
    got = sorted(zip(np.asarray(out.spike_times[:n]), np.asarray(out.spike_neurons[:n])))
    np.testing.assert_allclose([t for t, _ in got], [t for t, _ in ref], atol=1e-8)
    assert [j for _, j in got] == [j for _, j in ref]


@pytest.mark.parametrize("seed", [0, 1])
def test_recurrent_network_with_delays_matches_an_event_driven_reference(seed):
    w_rec, delays, w_in, inputs = case(seed)
    net = lif_graph(w_rec, delays, w_in)
    spikes = eqn.Spikes(jnp.array([t for t, _ in inputs]), jnp.array([c for _, c in inputs]))
    out = eqn.simulate(net, spikes, t1=40.0, max_spikes=128)
    assert_reference_spikes(out, reference(w_rec, delays, w_in, inputs, 40.0, 0.3))


@pytest.mark.parametrize("layout", ["dense", "sparse", "shared clock"])
def test_per_synapse_delays_match_an_event_driven_reference(layout):
    """One delay per synapse (dense: shaped as the weights; sparse: as `targets`; onto a
    population on one shared clock): each synapse's event arrives on its own, against the
    reference queueing every synapse's event."""
    w_rec, _, w_in, inputs = case(0)
    n = w_rec.shape[0]
    delays = np.random.default_rng(5).uniform(0.6, 3.0, (n, n))
    spikes = eqn.Spikes(jnp.array([t for t, _ in inputs]), jnp.array([c for _, c in inputs]))
    net = lif_graph(w_rec, delays, w_in)
    if layout == "shared clock":  # recurrent (without weights of its own): every event stops every neuron
        pop = net.populations[0]
        pop = pop.model.population(n, w_in.shape[0], weights=pop.weights, params=pop.params, recurrent=True)
        net = eqn.Network({"net": pop}, projections=net.projections)
    if layout == "sparse":  # the same synapses as target lists (padded with -1), the delays and weights in their slots
        k = int((w_rec != 0).sum(axis=1).max())
        targets = np.full((n, k), -1)
        w_sparse, d_sparse = np.zeros((n, k)), np.full((n, k), 0.0)
        for i in range(n):
            cols = np.nonzero(w_rec[i])[0][::-1]  # in another order than the dense columns
            targets[i, : len(cols)], w_sparse[i, : len(cols)], d_sparse[i, : len(cols)] = cols, w_rec[i, cols], delays[i, cols]
        proj = eqn.Projection("net", "net", weights={"w": jnp.asarray(w_sparse)}, delay=jnp.asarray(d_sparse),
                              targets=jnp.asarray(targets))
        net = eqx.tree_at(lambda m: m.projections, net, [proj])
    out = eqn.simulate(net, spikes, t1=40.0, max_spikes=128)
    ref = reference(w_rec, delays, w_in, inputs, 40.0, 0.3)
    per_source = reference(w_rec, delays.min(axis=1), w_in, inputs, 40.0, 0.3)
    assert [j for _, j in ref] != [j for _, j in per_source]  # the delays of each synapse matter here
    assert_reference_spikes(out, ref)


@pytest.mark.parametrize("read_as", ["rows", "lists"])
def test_sparse_targets_read_as_rows_or_lists_match_the_reference(monkeypatch, read_as):
    """A sparse projection (targets in shuffled order, one listed twice with its weight split in
    two) is read by the target's loop through rows of weights or, past `DENSE_LIMIT` pairs,
    through its sorted lists of targets: the reference's spikes either way, and the gradient
    with respect to a listed weight (both halves of the split one) that central differences give."""
    from eqneuron.engine import graph

    if read_as == "lists":
        monkeypatch.setattr(graph, "DENSE_LIMIT", 0)
    w_rec, delays, w_in, inputs = case(0)
    n = w_rec.shape[0]
    rng = np.random.default_rng(4)
    k = int((w_rec != 0).sum(axis=1).max()) + 1
    targets, weights = np.full((n, k), -1), np.zeros((n, k))
    for i in range(n):
        cols = rng.permutation(np.nonzero(w_rec[i])[0])
        targets[i, : len(cols)], weights[i, : len(cols)] = cols, w_rec[i, cols]
    split = (0, len(np.nonzero(w_rec[0])[0]))  # the first source's first target again, half of its weight each
    targets[split], weights[split] = targets[0, 0], weights[0, 0] / 2
    weights[0, 0] /= 2
    spikes = eqn.Spikes(jnp.array([t for t, _ in inputs]), jnp.array([c for _, c in inputs]))
    net = lif_graph(w_rec, delays, w_in)
    proj = eqn.Projection("net", "net", weights={"w": jnp.asarray(weights)}, delay=jnp.asarray(delays), targets=jnp.asarray(targets))
    net = eqx.tree_at(lambda m: m.projections, net, [proj])
    assert graph.plan(net).incoming[0][0].kind == read_as

    @jax.jit
    def loss(w):
        out = eqn.simulate(eqx.tree_at(lambda m: m.projections[0].weights["w"], net, w), spikes, t1=40.0, max_spikes=128)
        return jnp.sum(jnp.where(jnp.isfinite(out.spike_times), out.spike_times, 0.0)[:10] * jnp.linspace(1.0, 0.1, 10)), out

    _, out = loss(proj.weights["w"])
    assert_reference_spikes(out, reference(w_rec, delays, w_in, inputs, 40.0, 0.3))
    g = np.asarray(jax.jit(jax.grad(lambda w: loss(w)[0]))(proj.weights["w"]))
    assert g[0, 0] == pytest.approx(g[split], rel=1e-9) and abs(g[0, 0]) > 1e-3
    eps = 1e-6
    e = jnp.zeros_like(proj.weights["w"]).at[0, 0].set(eps)
    fd = (loss(proj.weights["w"] + e)[0] - loss(proj.weights["w"] - e)[0]) / (2 * eps)
    np.testing.assert_allclose(g[0, 0], float(fd), rtol=1e-5)


def test_model_delay_of_a_recurrent_population_is_the_same_network():
    """`delay:` in the model + recurrent=True is the self-projection with that delay."""
    w_rec, delays, w_in, inputs = case(0)
    n, k = w_rec.shape[0], w_in.shape[0]
    src = eqn.compile_model("lif").ir.source.text
    delayed = eqn.compile_model(src.replace("ic = 0.0 (per_neuron, trainable)", "ic = 0.0 (per_neuron, trainable)\n    d = 1.0 (per_neuron)") + "\ndelay: d\n")
    weights = jnp.concatenate([jnp.asarray(w_rec), jnp.asarray(w_in)])
    pop = delayed.population(n, k, weights={"w": weights}, recurrent=True,
                             params={"ic": jnp.full((n,), 0.3), "d": jnp.asarray(delays)})
    spikes = eqn.Spikes(jnp.array([t for t, _ in inputs]), jnp.array([c for _, c in inputs]))
    out = eqn.simulate(pop, spikes, t1=40.0, max_spikes=128)
    ref = reference(w_rec, delays, w_in, inputs, 40.0, 0.3)
    assert int(out.n_spikes) == len(ref)
    np.testing.assert_allclose(np.sort(np.asarray(out.spike_times[: len(ref)])), [t for t, _ in ref], atol=1e-8)


def test_feedforward_delay_from_the_model_shifts_the_next_population():
    lif = eqn.compile_model("lif")
    delayed = eqn.compile_model(lif.ir.source.text + "\ndelay: 2.5\n")
    a = delayed.population(2, 2, weights={"w": jnp.array([[0, 0], [0, 0], [5.0, 0], [0, 4.0]])})
    b = lif.population(1, 2, weights={"w": jnp.array([[0.0], [3.0], [3.0]])})
    plain = lif.population(2, 2, weights={"w": a.weights["w"]})
    spikes = eqn.Spikes(jnp.array([0.0, 1.0]), jnp.array([0, 1]))
    out = eqn.simulate(eqn.Network([a, b]), spikes, t1=30.0, max_spikes=16)
    first = np.asarray(eqn.simulate(plain, spikes, t1=30.0, max_spikes=16).first_spikes[0])
    # b's input arrives 2.5 ms after each spike of a: b's spike equals b driven by the shifted spikes
    b_alone = eqn.simulate(b, eqn.Spikes(jnp.asarray(first + 2.5), jnp.array([0, 1])), t1=30.0, max_spikes=16)
    np.testing.assert_allclose(np.asarray(out.first_spikes[1]), np.asarray(b_alone.first_spikes[0]), atol=1e-10)


def test_gradients_with_respect_to_delays_and_weights_match_finite_differences():
    w_rec, delays, w_in, inputs = case(1)
    spikes = eqn.Spikes(jnp.array([t for t, _ in inputs]), jnp.array([c for _, c in inputs]))
    net = lif_graph(w_rec, delays, w_in)

    def loss(d, w):
        proj = eqx.tree_at(lambda p: (p.delay, p.weights["w"]), net.projections[0], (d, w))
        out = eqn.simulate(eqx.tree_at(lambda n: n.projections, net, [proj]), spikes, t1=40.0, max_spikes=128)
        t = jnp.where(jnp.isfinite(out.spike_times), out.spike_times, 0.0)
        return jnp.sum(t[:10] * jnp.linspace(1.0, 0.1, 10))

    d0, w0 = net.projections[0].delay, net.projections[0].weights["w"]
    g_d, g_w = jax.jit(jax.grad(loss, argnums=(0, 1)))(d0, w0)
    eps = 1e-6
    for j in range(3):
        e = jnp.zeros_like(d0).at[j].set(eps)
        fd = (loss(d0 + e, w0) - loss(d0 - e, w0)) / (2 * eps)
        np.testing.assert_allclose(float(g_d[j]), float(fd), rtol=1e-5, atol=1e-7)
    i, j = np.unravel_index(np.argmax(np.abs(np.asarray(g_w))), w0.shape)
    e = jnp.zeros_like(w0).at[i, j].set(eps)
    fd = (loss(d0, w0 + e) - loss(d0, w0 - e)) / (2 * eps)
    assert abs(float(fd)) > 1e-3
    np.testing.assert_allclose(float(g_w[i, j]), float(fd), rtol=1e-5)


def test_gradients_with_respect_to_per_synapse_delays_match_finite_differences():
    """Each synapse's delay moves only its own event: the gradient of the spike times with
    respect to every synapse's delay, against central differences."""
    w_rec, _, w_in, inputs = case(1)
    n = w_rec.shape[0]
    delays = np.random.default_rng(6).uniform(0.7, 2.0, (n, n))
    spikes = eqn.Spikes(jnp.array([t for t, _ in inputs]), jnp.array([c for _, c in inputs]))
    net = lif_graph(w_rec, delays, w_in)

    @jax.jit
    def loss(d):
        out = eqn.simulate(eqx.tree_at(lambda m: m.projections[0].delay, net, d), spikes, t1=40.0, max_spikes=128)
        t = jnp.where(jnp.isfinite(out.spike_times), out.spike_times, 0.0)
        return jnp.sum(t[:10] * jnp.linspace(1.0, 0.1, 10))

    d0 = net.projections[0].delay
    g = np.asarray(jax.jit(jax.grad(loss))(d0))
    # the delay of a synapse of weight 0 moves nothing (to roundoff: its event still ends a segment)
    assert np.abs(g[w_rec == 0]).max() <= 1e-12 * np.abs(g).max()
    picked = np.argsort(-np.abs(g).ravel())[:3]
    assert abs(g.ravel()[picked[-1]]) > 1e-3
    eps = 1e-6
    for flat in picked:
        e = jnp.zeros(d0.size).at[flat].set(eps).reshape(d0.shape)
        fd = (loss(d0 + e) - loss(d0 - e)) / (2 * eps)
        np.testing.assert_allclose(g.ravel()[flat], float(fd), rtol=1e-5, atol=1e-7)


def test_two_populations_in_a_cycle_with_ports():
    """Excitatory and inhibitory populations with different models, connected both ways."""
    ei = eqn.compile_model("""
parameters:
    tmem = 10.0
    ic = 1.2 (per_neuron)
equations:
    dv/dt = (-v + ge - gi + ic) / tmem
    dge/dt = -ge / 5
    dgi/dt = -gi / 10
threshold: v > 1
reset:
    v = 0
weights:
    w = 1.0
on_input exc:
    ge += w
on_input inh:
    gi += w
""")
    key = jax.random.key(3)
    k1, k2 = jax.random.split(key)
    exc = ei.population(4, 0, params={"ic": jnp.linspace(1.1, 1.4, 4)}, key=k1)
    inh = eqn.compile_model("lif").population(2, 0, params={"ic": jnp.array([0.0, 0.0])}, key=k2)
    mask = eqn.connect.fixed_probability(jax.random.key(1), 4, 2, 0.8)
    net = eqn.Network({"exc": exc, "inh": inh}, projections=[
        eqn.Projection("exc", "inh", weights={"w": 0.9}, mask=mask),
        eqn.Projection("inh", "exc", weights={"w": 2.0}, delay=1.0, port="inh"),
        eqn.Projection("exc", "exc", weights={"w": 0.2}, delay=1.5, port="exc"),
    ])
    out = eqn.simulate(net, None, t1=60.0, max_spikes=256)
    assert int(out.n_spikes) > 10 and str(out.results[0]) == str(eqn.RESULTS.ok)
    # the same network without inhibition fires more: the inh -> exc projection acts
    free = eqx.tree_at(lambda n: n.projections[1].weights["w"], net, jnp.asarray(0.0))
    out_free = eqn.simulate(free, None, t1=60.0, max_spikes=256)
    e_inh = int(jnp.sum(out.spikes_of("exc")[1] >= 0))
    e_free = int(jnp.sum(out_free.spikes_of("exc")[1] >= 0))
    assert e_free > e_inh


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda a, b: [eqn.Projection("a", "b", weights={"w": 1.0}), eqn.Projection("b", "a", weights={"w": 1.0})], "cycle without delay"),
        (lambda a, b: [eqn.Projection("a", "a", weights={"w": 1.0})], "itself without a delay"),
        (lambda a, b: [eqn.Projection("a", "c", weights={"w": 1.0})], "no population 'c'"),
        (lambda a, b: [eqn.Projection("a", "b", weights={"v": 1.0})], "not a weight"),
        (lambda a, b: [eqn.Projection("a", "b", weights={"w": jnp.ones((3, 3))})], "must be a scalar or have shape (2, 3)"),
        (lambda a, b: [eqn.Projection("a", "b", weights={"w": 1.0}, delay=jnp.ones((3, 2)))], "one per synapse (2, 3)"),
        (lambda a, b: [eqn.Projection("a", "b", weights={"w": 1.0}, delay=jnp.ones(3))], "one per source neuron (2,)"),
    ],
)
def test_bad_graphs_are_errors(build, words):
    lif = eqn.compile_model("lif")
    a, b = lif.population(2, 0, key=jax.random.key(0)), lif.population(3, 0, key=jax.random.key(1))
    with pytest.raises(eqn.EqError, match=words.replace("(", r"\(").replace(")", r"\)")):
        net = eqn.Network({"a": a, "b": b}, projections=build(a, b))
        eqn.simulate(net, None, t1=10.0)


def test_connectivity_masks_have_their_counts():
    key = jax.random.key(0)
    assert np.all(np.asarray(eqn.connect.fixed_fan_in(key, 20, 7, 5)).sum(axis=0) == 5)
    assert np.all(np.asarray(eqn.connect.fixed_fan_out(key, 20, 7, 3)).sum(axis=1) == 3)
    no_self = np.asarray(eqn.connect.fixed_fan_in(key, 10, 10, 9, allow_self=False))
    assert not np.any(np.diag(no_self)) and np.all(no_self.sum(axis=0) == 9)
    p = np.asarray(eqn.connect.fixed_probability(key, 200, 200, 0.1)).mean()
    assert 0.09 < p < 0.11
    m = np.asarray(eqn.connect.from_indices([0, 2], [1, 1], 3, 2))
    assert m.tolist() == [[False, True], [False, False], [False, True]]


def test_more_input_spikes_in_a_window_than_its_list_holds_is_reported():
    w_rec, delays, w_in, inputs = case(0)
    net = lif_graph(w_rec, delays, w_in)
    spikes = eqn.Spikes(jnp.array([t for t, _ in inputs]), jnp.array([c for _, c in inputs]))
    with pytest.warns(RuntimeWarning, match="spike budget"):
        out = eqn.simulate(net, spikes, t1=40.0, max_spikes=128, max_window_spikes=1)
    assert bool(out.overflow) and out.results[0] == eqn.RESULTS.spike_budget


def test_a_window_list_shorter_than_all_spikes_gives_the_same_spikes():
    """Each window's list holds only that window's inputs: a list much shorter than all spikes
    of the run (but longer than any window's share) changes nothing and reports nothing."""
    w_rec, delays, w_in, inputs = case(0)
    spikes = eqn.Spikes(jnp.array([t for t, _ in inputs]), jnp.array([c for _, c in inputs]))
    out = eqn.simulate(lif_graph(w_rec, delays, w_in), spikes, t1=40.0, max_spikes=128, max_window_spikes=16)
    ref = reference(w_rec, delays, w_in, inputs, 40.0, 0.3)
    assert out.results[0] == eqn.RESULTS.ok and not bool(out.overflow)
    assert int(out.n_spikes) == len(ref)
    np.testing.assert_allclose(np.sort(np.asarray(out.spike_times[: len(ref)])), [t for t, _ in ref], atol=1e-8)


def test_max_window_spikes_is_rejected_where_there_are_no_windows():
    """Never accepted and ignored: a stack, or a graph without a delayed cycle, has no windows."""
    lif = eqn.compile_model("lif")
    a = lif.population(3, 2, key=jax.random.key(0))
    b = lif.population(2, 3, key=jax.random.key(1))
    spikes = eqn.Spikes(jnp.array([1.0]), jnp.array([0]))
    with pytest.raises(eqn.EqError, match="max_window_spikes"):
        eqn.simulate(eqn.Network([a, b]), spikes, t1=10.0, max_window_spikes=8)
    c = lif.population(2, 0, key=jax.random.key(2))
    graph = eqn.Network({"a": a, "c": c}, projections=[eqn.Projection("a", "c", weights={"w": 1.0}, delay=1.0)])
    with pytest.raises(eqn.EqError, match="no cycle with a delay"):
        eqn.simulate(graph, spikes, t1=10.0, max_window_spikes=8)


def test_the_input_populations_mask_applies_in_a_graph():
    """A `wmask` that cuts input channel 0 from neuron 0: that neuron's current stays 0 (it used to
    be ignored for the external rows of a graph's input population)."""
    lif = eqn.compile_model("lif")
    weights = jnp.array([[0.0, 0.0], [0.0, 0.0], [4.0, 4.0]])
    mask = jnp.array([[True, True], [True, True], [False, True]])
    a = lif.population(2, 1, weights={"w": weights}, wmask=mask)
    b = lif.population(1, 0, key=jax.random.key(0))
    net = eqn.Network({"a": a, "b": b}, projections=[eqn.Projection("b", "a", weights={"w": 0.0}, delay=1.0),
                                                     eqn.Projection("a", "b", weights={"w": 0.0})])
    out = eqn.simulate(net, eqn.Spikes(jnp.array([0.0]), jnp.array([0])), t1=10.0, save_at=jnp.array([5.0]))
    np.testing.assert_allclose(np.asarray(out.states[0]["i"][0]), [0.0, 4.0 * np.exp(-5.0 / 5.0)], rtol=1e-6)


COUNTER = """
neuron Counter
parameters:
    tau = 10.0
state:
    v = 0.0
    c = 0.0
equations:
    dv/dt = -v / tau + 0 * c
    dc/dt = 0
threshold: v > 1
reset:
    v = 0
weights:
    w
on_input:
    v += w
    c += 1
"""


@pytest.mark.parametrize("windowed", [False, True])
def test_a_spike_reaches_only_the_targets_of_a_sparse_projection(windowed):
    """`c += 1` on every input spike, whatever its weight: a neuron's `c` counts the spikes that
    reach it.  A fires once per external input on its channel (a jump of 2 over the threshold
    1); B (own clocks, Runge–Kutta) receives them through target lists, and B's neurons that are
    not targets of a spike must see nothing: neither the count nor the jump (their steps pass
    over it).  B's `v` against the closed form: the sum of the jumps that reached it, decayed.
    `windowed`: a backward projection with a delay (it carries nothing) runs it in windows.
    Before target lists were read by the loops, every spike reached every neuron of B."""
    model = eqn.compile_model(COUNTER)
    a = model.population(3, 3, weights={"w": jnp.concatenate([jnp.zeros((3, 3)), 2.0 * jnp.eye(3)])})
    b = model.population(3, 0, weights={"w": jnp.zeros((3, 3))})
    targets = jnp.array([[0, 2], [1, -1], [2, 0]])  # A0 -> B0, B2; A1 -> B1; A2 -> B2, B0
    weights = jnp.array([[0.1, 0.2], [0.3, 0.0], [0.05, 0.15]])
    projections = [eqn.Projection("A", "B", weights={"w": weights}, targets=targets, delay=1.0)]
    if windowed:
        projections.append(eqn.Projection("B", "A", weights={"w": 0.0}, delay=0.5))
    net = eqn.Network({"A": a, "B": b}, projections=projections, input="A")
    times = jnp.array([1.0, 2.5, 3.0, 4.2, 6.0, 7.5])
    channels = jnp.array([0, 2, 1, 2, 0, 2])
    t_save = 20.0
    out = eqn.simulate(net, eqn.Spikes(times, channels), t1=25.0, max_spikes=64, save_at=jnp.array([t_save]),
                       rtol=1e-10, atol=1e-10)
    assert all(r == eqn.RESULTS.ok for r in out.results)
    assert int((out.spikes_of("A")[1] >= 0).sum()) == 6 and int((out.spikes_of("B")[1] >= 0).sum()) == 0
    # A's input weights are a dense matrix: every channel reaches every neuron (zero weight or not)
    np.testing.assert_array_equal(np.asarray(out.states[0]["c"][0]), [6.0, 6.0, 6.0])
    expected_c, expected_v = np.zeros(3), np.zeros(3)
    for t, ch in zip(np.asarray(times), np.asarray(channels)):
        for slot in range(2):
            target = int(targets[ch, slot])
            if target >= 0:
                expected_c[target] += 1
                expected_v[target] += float(weights[ch, slot]) * np.exp(-(t_save - (t + 1.0)) / 10.0)
    np.testing.assert_array_equal(np.asarray(out.states[1]["c"][0]), expected_c)  # [5, 1, 5]
    np.testing.assert_allclose(np.asarray(out.states[1]["v"][0]), expected_v, rtol=1e-8)


def test_an_unweighted_jump_through_masked_connections_is_refused_where_it_would_reach_every_neuron():
    """`c += 1` on a masked stack or into a recurrent population (one clock, every input spike
    reaches every neuron there): an error, not every neuron counting every spike."""
    model = eqn.compile_model(COUNTER)
    spikes = eqn.Spikes(jnp.array([1.0]), jnp.array([0]))
    masked = model.population(2, 2, weights={"w": jnp.ones((4, 2))}, wmask=jnp.array([[1, 1], [1, 1], [1, 0], [0, 1]], bool))
    with pytest.raises(eqn.EqError, match=r"`c \+= 1` does not scale with the weight"):
        eqn.simulate(masked, spikes, t1=5.0)
    a = model.population(2, 2, weights={"w": jnp.ones((4, 2))})
    b = model.population(2, 0, recurrent=True, weights={"w": jnp.zeros((2, 2))})
    sparse = eqn.Projection("A", "B", weights={"w": 0.5}, targets=jnp.array([[0], [1]]), delay=1.0)
    with pytest.raises(eqn.EqError, match="population 'B' has masked or sparse connections"):
        eqn.simulate(eqn.Network({"A": a, "B": b}, projections=[sparse], input="A"), spikes, t1=5.0)
    # scaled by the weight, the same connections are simulated
    scaled = eqn.compile_model(COUNTER.replace("c += 1", "c += w"))
    out = eqn.simulate(scaled.population(2, 2, weights={"w": jnp.ones((4, 2))}, wmask=masked.wmask), spikes, t1=5.0,
                       save_at=jnp.array([4.0]))
    np.testing.assert_allclose(np.asarray(out.states[0]["c"][0]), [1.0, 0.0])
