"""Recurrent networks of linear neurons run in event-driven windows, and sparse connectivity.

The reference is an event-driven simulation written here with scipy: every
neuron's linear dynamics propagated exactly by `scipy.linalg.expm` of its
augmented matrix between events (arrivals of delayed spikes, ends of
refractory periods), threshold crossings bracketed on a grid of the exact
solution and located with `brentq`.
"""

import heapq
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm
from scipy.optimize import brentq

import eqneuron as eqn
from eqneuron.engine.event_windows import why_not
from eqneuron.engine.modal import ModalSystem, structure
from eqneuron.errors import EqError

# Brian2's CUBA neuron (mV, ms), driven above threshold by its rest potential
CUBA = """
neuron CUBA
parameters:
    taum = 20.0
    taue = 5.0
    taui = 10.0
    Vt = -50.0
    Vr = -60.0
    El = -45.0
    v0 = -60.0 (per_neuron)
state:
    v = v0
equations:
    dv/dt = (ge + gi - (v - El)) / taum (unless refractory)
    dge/dt = -ge / taue
    dgi/dt = -gi / taui
threshold: v > Vt
reset:
    v = Vr
refractory: 2.0
weights:
    w
on_input exc:
    ge += w
on_input inh:
    gi += w
"""
TAUM, TAUE, TAUI, VT, VR, EL, TREF = 20.0, 5.0, 10.0, -50.0, -60.0, -45.0, 2.0
DELAY = 0.5


def reference(v0, exc, inh, we, wi, t1):
    """CUBA neurons from v0; `exc`/`inh`: lists of (source, target, weight), or (source, target,
    weight, delay), arriving DELAY (or their delay) after the source's spikes on ge / gi, each
    synapse's event on its own.  Returns sorted (time, neuron)."""
    n = len(v0)
    free = np.array([[0, 0, 0, 0], [EL / TAUM, -1 / TAUM, 1 / TAUM, 1 / TAUM], [0, 0, -1 / TAUE, 0], [0, 0, 0, -1 / TAUI]])
    frozen = free.copy()
    frozen[1] = 0.0
    out = {}
    for row, synapses in ((2, exc), (3, inh)):
        for s, t, w, *d in synapses:
            out.setdefault(s, []).append((t, row, w, d[0] if d else DELAY))
    y = np.stack([np.ones(n), np.asarray(v0, float), np.zeros(n), np.zeros(n)])
    ref_end = np.full(n, -np.inf)
    queue: list = []
    order = itertools.count()  # ties in the queue: in the order pushed
    t, spikes = 0.0, []

    def at(h, refractory):
        return np.where(refractory[None, :], expm(frozen * h) @ y, expm(free * h) @ y)

    while t < t1:
        ends = ref_end[ref_end > t]
        t_next = min([t1, queue[0][0] if queue else t1, ends.min() if ends.size else t1])
        refr = ref_end > t
        grid = np.linspace(0.0, t_next - t, 40)
        vs = np.stack([at(h, refr)[1] for h in grid])  # (grid, n)
        first, who = np.inf, -1
        for j in np.nonzero(~refr)[0]:
            above = np.nonzero(vs[:, j] >= VT)[0]
            if len(above):
                k = above[0]
                s = 0.0 if k == 0 else brentq(lambda h: (expm(free * h) @ y[:, j])[1] - VT, grid[k - 1], grid[k], xtol=1e-14)
                if s < first:
                    first, who = s, j
        if who >= 0:
            y = at(first, refr)
            t += first
            y[1, who] = VR
            ref_end[who] = t + TREF
            spikes.append((t, who))
            for target, row, w, d in out.get(who, []):
                heapq.heappush(queue, (t + d, next(order), target, row, w))
            continue
        y = at(t_next - t, refr)
        t = t_next
        while queue and queue[0][0] <= t:
            _, _, target, row, w = heapq.heappop(queue)
            y[row, target] += w
    return sorted(spikes)


def cuba_net(n, seed, dtype=jnp.float64, sparse=True, p=0.25, we=4.0, wi=-6.0, v0_range=(VR, VT)):
    rng = np.random.default_rng(seed)
    n_exc = int(0.8 * n)
    mask = rng.random((n, n)) < p
    w = np.where(np.arange(n)[:, None] < n_exc, we, wi) * rng.uniform(0.5, 1.5, (n, n)) * mask
    v0 = rng.uniform(*v0_range, n)
    pop = eqn.compile_model(CUBA).population(n, 0, params={"v0": jnp.asarray(v0, dtype)})
    rows = {"exc": np.arange(n) < n_exc, "inh": np.arange(n) >= n_exc}
    projections = []
    for port, keep in rows.items():
        m = mask & keep[:, None]
        if sparse:
            targets = eqn.connect.sparse(m)
            weights = np.take_along_axis(w, np.maximum(np.asarray(targets), 0), axis=1) * (np.asarray(targets) >= 0)
            projections.append(eqn.Projection("P", "P", weights={"w": jnp.asarray(weights, dtype)}, targets=targets, delay=DELAY, port=port))
        else:
            projections.append(eqn.Projection("P", "P", weights={"w": jnp.asarray(w * m, dtype)}, mask=m, delay=DELAY, port=port))
    pairs = {port: [(s, t, w[s, t]) for s, t in zip(*np.nonzero(mask & keep[:, None]))] for port, keep in rows.items()}
    return eqn.Network({"P": pop}, projections=projections), v0, pairs


def spikes_of(out):
    k = int(out.n_spikes)
    return sorted(zip(np.asarray(out.spike_times[:k]).tolist(), np.asarray(out.spike_neurons[:k]).tolist()))


def assert_reference_spikes(net, v0, pairs):
    """`net` (a `cuba_net` of we = 4, wi = -6, or the same synapses otherwise laid out) run 40 ms
    event-driven has the exact reference's spikes."""
    out = eqn.simulate(net, None, t1=40.0, max_spikes=512)
    got = spikes_of(out)
    ref = reference(v0, pairs["exc"], pairs["inh"], 4.0, -6.0, 40.0)
    assert not bool(out.overflow) and len(got) == len(ref) >= 40
    assert [j for _, j in got] == [j for _, j in ref]
    np.testing.assert_allclose([t for t, _ in got], [t for t, _ in ref], atol=1e-8)


def test_a_recurrent_cuba_network_runs_event_driven_and_matches_the_exact_reference():
    net, v0, pairs = cuba_net(30, seed=0)
    assert why_not(net, None, None, "auto") is None
    assert_reference_spikes(net, v0, pairs)


def test_synapses_spread_over_three_projections_of_one_pair_give_the_reference_spikes():
    """The network of the test above with its excitatory synapses drawn at random into two
    projections (so a source has targets in one, the other, both or neither) beside the
    inhibitory one: a spike is delivered through each projection with targets for its source,
    and the spikes are the exact reference's."""
    net, v0, pairs = cuba_net(30, seed=0)
    pop = net.populations[0]
    rng = np.random.default_rng(5)
    halves = [[], []]
    for pair in pairs["exc"]:
        halves[int(rng.random() < 0.5)].append(pair)
    n = pop.n_neurons
    projections = []
    for port, part in (("exc", halves[0]), ("inh", pairs["inh"]), ("exc", halves[1])):
        s, t, w = (np.array([p[i] for p in part]) for i in range(3))
        targets = eqn.connect.sparse_from_indices(s, t, n, n)
        weights = np.zeros(targets.shape)
        for src, tgt, wt in part:  # each pair once: its slot in the source's row
            weights[src, int(np.flatnonzero(np.asarray(targets[src]) == tgt)[0])] = wt
        projections.append(eqn.Projection("P", "P", weights={"w": jnp.asarray(weights)}, targets=targets, delay=DELAY, port=port))
    split = eqn.Network({"P": pop}, projections=projections)
    assert why_not(split, None, None, "auto") is None
    both = {s for s, _, _ in halves[0]} & {s for s, _, _ in halves[1]}
    assert len(both) > 5  # sources with targets in both excitatory projections
    assert_reference_spikes(split, v0, pairs)


def test_per_synapse_delays_give_the_reference_spikes():
    """Every synapse with its own delay (0.5 to 2 ms; windows of the shortest): each synapse's
    event reaches its target at its own time, event-driven as in the reference."""
    net, v0, pairs = cuba_net(30, seed=0)
    rng = np.random.default_rng(2)
    projections, timed = [], {}
    for proj, port in zip(net.projections, ("exc", "inh")):
        targets = np.asarray(proj.targets)
        delay = np.where(targets >= 0, rng.uniform(0.5, 2.0, targets.shape), 0.0)  # padding slots: 0
        projections.append(eqx.tree_at(lambda p: p.delay, proj, jnp.asarray(delay)))
        lookup = {(s, int(targets[s, k])): delay[s, k] for s, k in zip(*np.nonzero(targets >= 0))}
        timed[port] = [(s, t, w, lookup[(s, t)]) for s, t, w in pairs[port]]
    net = eqn.Network({"P": net.populations[0]}, projections=projections)
    assert why_not(net, None, None, "auto") is None
    out = eqn.simulate(net, None, t1=40.0, max_spikes=512)
    got = spikes_of(out)
    ref = reference(v0, timed["exc"], timed["inh"], 4.0, -6.0, 40.0)
    assert ref != reference(v0, pairs["exc"], pairs["inh"], 4.0, -6.0, 40.0)  # the delays matter
    assert not bool(out.overflow) and len(got) == len(ref) >= 40
    assert [j for _, j in got] == [j for _, j in ref]
    np.testing.assert_allclose([t for t, _ in got], [t for t, _ in ref], atol=1e-8)
    # a target listed twice for a source shares an inbox slot: such a projection runs on the loops
    doubled = np.asarray(net.projections[0].targets).copy()
    doubled[0, 1] = doubled[0, 0]
    twice = eqn.Network({"P": net.populations[0]}, projections=[
        eqx.tree_at(lambda p: p.targets, net.projections[0], jnp.asarray(doubled)), net.projections[1]])
    assert "twice" in why_not(twice, None, None, "auto")


@pytest.mark.parametrize("read_as", ["rows", "inboxes"])
def test_population_loops_reading_rows_or_inboxes_give_the_reference_spikes(monkeypatch, read_as):
    """The CUBA network on the population loops (Runge–Kutta steps): its projections masked
    (rows of weights), or sparse and read through their lists of targets, each window's input
    spikes put in every neuron's own inbox first (`LoopInputs._fill_inboxes`): the exact reference's
    spikes.  An inbox too small for a neuron's inputs of a window is the spike-budget code."""
    from eqneuron.engine import graph, loop

    net, v0, pairs = cuba_net(30, seed=0, sparse=read_as == "inboxes")
    assert {inc.kind for inc in graph.plan(net).incoming[0]} == {"rows" if read_as == "rows" else "lists"}
    out = eqn.simulate(net, None, t1=40.0, max_spikes=512, method="tsit5", rtol=1e-12, atol=1e-12)
    got = spikes_of(out)
    ref = reference(v0, pairs["exc"], pairs["inh"], 4.0, -6.0, 40.0)
    assert str(out.results[0]) == str(eqn.RESULTS.ok) and len(got) == len(ref) >= 40
    assert [j for _, j in got] == [j for _, j in ref]
    np.testing.assert_allclose([t for t, _ in got], [t for t, _ in ref], atol=1e-7)
    if read_as == "inboxes":
        monkeypatch.setattr(loop, "INBOX", 1)
        with pytest.warns(RuntimeWarning, match="more inputs than its inbox"):  # the warning names the cause
            small = eqn.simulate(net, None, t1=40.0, max_spikes=256, method="tsit5", rtol=1e-12, atol=1e-12)  # traced anew
        assert str(small.results[0]) == str(eqn.RESULTS.spike_budget)
        assert "inbox" in str(small.results[0])


def test_events_past_a_neurons_inbox_are_found_again_from_the_spike_records(monkeypatch):
    """A neuron keeps INBOX events per window; with room for one, the candidates' events come from
    re-reading the spike records (dense, synchronous input: many events per neuron and window)."""
    import eqneuron.engine.event_windows as ew

    monkeypatch.setattr(ew, "INBOX", 1)
    net, v0, pairs = cuba_net(12, seed=4, p=0.9, we=1.5, wi=-2.0, v0_range=(-55.0, -54.9))
    got = spikes_of(eqn.simulate(net, None, t1=60.0, max_spikes=512))
    ref = reference(v0, pairs["exc"], pairs["inh"], 1.5, -2.0, 60.0)
    assert len(got) == len(ref) >= 24
    assert [j for _, j in got] == [j for _, j in ref]
    np.testing.assert_allclose([t for t, _ in got], [t for t, _ in ref], atol=1e-8)


def test_the_spikes_of_a_window_are_recorded_in_time_order_however_many(monkeypatch):
    """A window's spikes are sorted in the fewest slots that hold them: none for one spike, the
    shortest slice that holds them (here 2 or 4 slots) for a few, the whole segment (here 16) for
    more.  A synchronous start puts all 12 spikes in one window, and the windows after it hold
    fewer."""
    import eqneuron.engine.event_windows as ew

    monkeypatch.setattr(ew, "_SHORT_SEGMENTS", (2, 4))
    net, v0, pairs = cuba_net(12, seed=4, p=0.9, we=1.5, wi=-2.0, v0_range=(-55.0, -54.9))
    out = eqn.simulate(net, None, t1=60.0, max_spikes=512, max_window_spikes=16)
    k = int(out.n_spikes)
    got = list(zip(np.asarray(out.spike_times[:k]).tolist(), np.asarray(out.spike_neurons[:k]).tolist()))
    ref = reference(v0, pairs["exc"], pairs["inh"], 1.5, -2.0, 60.0)
    assert not bool(out.overflow) and len(got) == len(ref) >= 24
    per_window = np.bincount((np.asarray([t for t, _ in ref]) // DELAY).astype(int))
    # every branch is taken
    assert per_window.max() > 4 and np.any(per_window == 2) and np.any((per_window > 2) & (per_window <= 4))
    assert [j for _, j in got] == [j for _, j in ref]  # in time order as recorded, not sorted here
    np.testing.assert_allclose([t for t, _ in got], [t for t, _ in ref], atol=1e-8)


def test_a_state_that_overflows_is_reported_with_its_neuron_and_window():
    """A jump of 1e308 twice overflows `ge` of the neurons it reaches: the run says non-finite, names
    the first such neuron and the end of the window in which it overflowed."""
    net, v0, pairs = cuba_net(12, seed=4, p=0.9, we=1.5, wi=-2.0, v0_range=(-55.0, -54.9))
    exc, inh = net.projections
    huge = exc.weights["w"].at[0].set(jnp.where(exc.targets[0] >= 0, 1e308, 0.0)).at[1].set(
        jnp.where(exc.targets[1] >= 0, 1e308, 0.0))
    net = eqn.Network({"P": net.populations[0]}, projections=[
        eqn.Projection("P", "P", weights={"w": huge}, targets=exc.targets, delay=DELAY, port="exc"), inh])
    with pytest.warns(RuntimeWarning, match="non-finite state in neuron"):
        out = eqn.simulate(net, None, t1=60.0, max_spikes=512)
    assert bool(out.nonfinite) and out.results[0] == eqn.RESULTS.non_finite
    # both sources fire in the synchronous first volley; their common targets overflow when the
    # second of the two jumps arrives, DELAY after the later of the two spikes
    times = np.asarray(out.spike_times[: int(out.n_spikes)])
    ids = np.asarray(out.spike_neurons[: int(out.n_spikes)])
    arrival = max(times[ids == 0][0], times[ids == 1][0]) + DELAY
    both = set(np.asarray(exc.targets[0]).tolist()) & set(np.asarray(exc.targets[1]).tolist()) - {-1}
    assert int(out.nonfinite_neuron) == min(both)
    assert arrival <= float(out.nonfinite_time) <= arrival + DELAY


def test_sparse_and_dense_connectivity_with_the_same_weights_give_the_same_spikes():
    sparse, _, _ = cuba_net(24, seed=1)
    dense, _, _ = cuba_net(24, seed=1, sparse=False)
    a, b = spikes_of(eqn.simulate(sparse, None, t1=30.0, max_spikes=512)), spikes_of(eqn.simulate(dense, None, t1=30.0, max_spikes=512))
    # the population loops (Runge–Kutta, one shared window schedule) on the sparse projections
    c = spikes_of(eqn.simulate(sparse, None, t1=30.0, max_spikes=512, method="tsit5"))
    assert len(a) == len(b) == len(c) >= 20
    assert [j for _, j in a] == [j for _, j in b] == [j for _, j in c]
    np.testing.assert_allclose([t for t, _ in a], [t for t, _ in b], atol=1e-10)
    np.testing.assert_allclose([t for t, _ in a], [t for t, _ in c], atol=1e-6)


DRIVEN = """
neuron Driven
parameters:
    tau = 10.0
    tsyn = 5.0
    drive = 1.3
    v0 = 0.0 (per_neuron)
state:
    v = v0
equations:
    dv/dt = (-v + i + drive) / tau
    di/dt = -i / tsyn
threshold: v > 1
reset:
    v = 0
weights:
    w
on_input:
    i += w
"""


def test_two_projections_of_one_pair_with_their_own_delays_deliver_at_their_own_times():
    """One source spike reaches a target through two projections, +20 after 0.5 ms and -20 after
    0.52 ms: a pulse of 0.02 ms lifts the target (v near 1) over threshold.  Both arrive in one
    window, and the target is stepped event by event: each event needs its own inbox slot (rows
    side by side gave the two one slot, one time and the summed jump 0: no spike).  Reference:
    the closed forms of both neurons (brentq)."""
    model = eqn.compile_model(DRIVEN)
    src = model.population(1, 0, params={"v0": jnp.zeros(1)})
    dst = model.population(1, 0, params={"drive": 1.0, "v0": jnp.full(1, 0.9)})
    one = jnp.array([[0]], jnp.int32)
    net = eqn.Network({"src": src, "dst": dst}, projections=[
        eqn.Projection("src", "dst", weights={"w": 20.0}, targets=one, delay=0.5),
        eqn.Projection("src", "dst", weights={"w": -20.0}, targets=one, delay=0.52),
        eqn.Projection("dst", "src", weights={"w": 0.0}, delay=1.0),
    ])
    assert why_not(net, None, None, "auto") is None
    out = eqn.simulate(net, None, t1=20.0, max_spikes=16)
    assert all(str(r) == str(eqn.RESULTS.ok) for r in out.results)
    # the source: v = 1.3 (1 - e^{-t/10}) reaches 1; the target from v0 = 0.9 with drive 1, then
    # u = v - 1 = u_a e^{-s/10} + 20 (e^{-s/10} - e^{-s/5}) after the first arrival (s = t - t_a)
    t_s = 10.0 * np.log(1.3 / 0.3)
    t_a = t_s + 0.5
    u_a = -0.1 * np.exp(-t_a / 10.0)
    s = brentq(lambda s: u_a * np.exp(-s / 10) + 20 * (np.exp(-s / 10) - np.exp(-s / 5)), 0.0, 0.02, xtol=1e-14)
    k = int(out.n_spikes)
    assert np.asarray(out.spike_neurons[:k]).tolist() == [0, 1]
    np.testing.assert_allclose(np.asarray(out.spike_times[:k]), [t_s, t_a + s], atol=1e-9)


def test_gradients_through_the_event_driven_run_match_finite_differences():
    """Under differentiation the population loops run and differentiate (each window's inputs
    read from the neurons' inboxes): the event-driven forward pass and the gradient agree with
    central differences of the forward pass."""
    model = eqn.compile_model(DRIVEN)
    n = 6
    rng = np.random.default_rng(3)
    targets = jnp.asarray(np.stack([np.roll(np.arange(n), -k)[1:3] for k in range(n)]), jnp.int32)
    v0 = jnp.asarray(rng.uniform(0.0, 0.9, n))

    def net(w, d):
        pop = model.population(n, 0, params={"v0": v0})
        return eqn.Network({"P": pop}, projections=[eqn.Projection("P", "P", weights={"w": w}, targets=targets, delay=d)])

    w0 = jnp.asarray(rng.uniform(-0.3, 0.3, (n, 2)))
    d0 = jnp.asarray(0.8)
    assert why_not(net(w0, d0), None, None, "auto") is None

    count = int(eqn.simulate(net(w0, d0), None, t1=40.0, max_spikes=64).n_spikes)
    assert count >= 12

    base = net(w0, d0)

    def loss(w, d):  # the network built (and checked) outside the trace, its leaves replaced
        out = eqn.simulate(eqx.tree_at(lambda n: (n.projections[0].weights["w"], n.projections[0].delay), base, (w, d)),
                           None, t1=40.0, max_spikes=64)
        return jnp.sum(jnp.where(jnp.arange(64) < count, out.spike_times, 0.0))

    value, (gw, gd) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(w0, d0)
    assert np.isclose(float(value), float(loss(w0, d0)), atol=1e-9)
    eps = 1e-6
    # the forward runs of the differences: one compiled program for every network of these shapes
    run = eqx.filter_jit(lambda network: jnp.sum(jnp.where(jnp.arange(64) < count, eqn.simulate(network, None, t1=40.0, max_spikes=64).spike_times, 0.0)))
    for idx in [(0, 0), (2, 1), (5, 0)]:
        e = jnp.zeros_like(w0).at[idx].set(eps)
        fd = (run(net(w0 + e, d0)) - run(net(w0 - e, d0))) / (2 * eps)
        np.testing.assert_allclose(float(gw[idx]), float(fd), rtol=1e-5, atol=1e-7)
    fd = (run(net(w0, d0 + eps)) - run(net(w0, d0 - eps))) / (2 * eps)
    np.testing.assert_allclose(float(gd), float(fd), rtol=1e-5, atol=1e-7)
    assert float(jnp.max(jnp.abs(gw))) > 1e-3


def test_the_modal_first_crossing_matches_a_fine_grid_of_the_exact_solution():
    """Three modes (v, ge, gi): with inhibition decaying slower than excitation, g may rise, fall
    and rise again; the first crossing is the first one, found on a fine grid with scipy."""
    model = eqn.compile_model(CUBA)
    s = structure(model)
    params = model.population(1, 0).parameter_values()
    sys_ = ModalSystem(model, params, s, jnp.float64)
    rng = np.random.default_rng(0)
    lanes = 200
    v = rng.uniform(-70.0, -50.5, lanes)
    ge = rng.uniform(-5.0, 40.0, lanes)
    gi = rng.uniform(-60.0, 5.0, lanes)
    x = jnp.asarray(np.stack([v, ge, gi]))
    h = jnp.full((lanes,), 15.0)
    got = np.asarray(sys_.first_crossing(sys_.augment(x), h, jnp.ones(lanes, bool), 1e-12, jnp.zeros(lanes)))
    free = np.array([[0, 0, 0, 0], [EL / TAUM, -1 / TAUM, 1 / TAUM, 1 / TAUM], [0, 0, -1 / TAUE, 0], [0, 0, 0, -1 / TAUI]])
    grid = np.linspace(0.0, 15.0, 3001)
    props = np.stack([expm(free * g) for g in grid])  # (grid, 4, 4)
    crossed = 0
    for j in range(lanes):
        y = np.array([1.0, v[j], ge[j], gi[j]])
        vs = (props @ y)[:, 1] - VT
        above = np.nonzero(vs >= 0)[0]
        if not len(above):
            assert got[j] == np.inf
            continue
        k = above[0]
        want = brentq(lambda t: (expm(free * t) @ y)[1] - VT, grid[k - 1], grid[k], xtol=1e-14)
        np.testing.assert_allclose(got[j], want, atol=1e-9)
        crossed += 1
    assert 20 <= crossed <= lanes - 20


CHAIN = """
neuron chain
parameters:
    ta = 5.0
    tb = 7.0
    tc = 11.0
    c = 2.0
state:
    v = 0.5
    b = 0
    a = 0
equations:
    dv/dt = (b - v) / tc
    db/dt = (c + a - b) / tb
    da/dt = -a / ta
threshold: v > 1
reset:
    v = 0
"""


@pytest.mark.parametrize("source", [CUBA, CHAIN], ids=["cuba", "chain"])
def test_the_modal_propagators_match_the_matrix_exponential(source):
    """The products by the propagator skip the entries that the model's dependencies leave zero:
    every state moved over a window, one lane at a time, and a jump carried, against scipy's
    `expm` of the dense augmented matrix; the bound over a window above g on a fine grid.  In
    the chain, `v` depends on `a` only through `b`, and only `b` has a constant drive."""
    model = eqn.compile_model(source)
    sys_ = ModalSystem(model, model.population(1, 0).parameter_values(), structure(model), jnp.float64)
    if source == CHAIN:
        free = np.array([[0, 0, 0, 0], [0, -1 / 11, 1 / 11, 0], [2 / 7, 0, -1 / 7, 1 / 7], [0, 0, 0, -1 / 5]])
        threshold = 1.0
    else:
        free = np.array([[0, 0, 0, 0], [EL / TAUM, -1 / TAUM, 1 / TAUM, 1 / TAUM], [0, 0, -1 / TAUE, 0], [0, 0, 0, -1 / TAUI]])
        threshold = VT
    assert sum(map(sum, sys_.pattern)) < 16  # some entries are skipped
    rng = np.random.default_rng(3)
    lanes = 50
    x = rng.uniform(-3.0, 3.0, (3, lanes)) + np.array([[threshold], [0.0], [0.0]])
    y = sys_.augment(jnp.asarray(x))
    full = np.concatenate([np.ones((1, lanes)), x])
    for h in (0.1, 2.0, 30.0):
        want = expm(free * h) @ full
        np.testing.assert_allclose(np.asarray(sys_.states(sys_.propagate_all(y, jnp.asarray(h)))), want[1:], rtol=1e-12, atol=1e-12)
        bound = np.asarray(sys_.bound_all(y, jnp.asarray(h)))
        grid = np.stack([expm(free * t) @ full for t in np.linspace(0.0, h, 201)])[:, 1] - threshold
        assert np.all(bound >= grid.max(axis=0) - 1e-12)
    hs = rng.uniform(0.0, 20.0, lanes)
    want = np.stack([expm(free * hs[j]) @ full[:, j] for j in range(lanes)], axis=1)
    np.testing.assert_allclose(np.asarray(sys_.states(sys_.propagate(y, jnp.asarray(hs)))), want[1:], rtol=1e-12, atol=1e-12)
    jump = jnp.concatenate([jnp.zeros((1, lanes)), y[1:]])  # a jump: no constant part
    moved, _ = sys_.carry(jump, jnp.asarray(hs), jnp.zeros(lanes, bool))
    want = np.stack([expm(free * hs[j]) @ np.concatenate([[0.0], x[:, j]]) for j in range(lanes)], axis=1)
    np.testing.assert_allclose(np.asarray(sys_.states(moved)), want[1:], rtol=1e-12, atol=1e-12)


def test_networks_outside_the_event_driven_scheme_say_why_and_run_on_the_loops():
    net, _, _ = cuba_net(8, seed=2)
    inputs = eqn.Spikes(jnp.array([1.0]), jnp.array([0]))
    assert "input spikes" in why_not(net, inputs, None, "auto")
    assert "saved" in why_not(net, None, jnp.array([1.0]), "auto")
    assert "method" in why_not(net, None, None, "tsit5")
    lif = eqn.compile_model("lif").population(4, 0)
    graph = eqn.Network({"a": lif}, projections=[eqn.Projection("a", "a", weights={"w": 0.1}, delay=1.0)])
    assert "per-neuron parameters" in why_not(graph, None, None, "auto")
    izh = eqn.compile_model("izhikevich").population(3, 0)
    graph = eqn.Network({"a": izh}, projections=[eqn.Projection("a", "a", weights={"w": 0.1}, delay=1.0)])
    assert "linear" in why_not(graph, None, None, "auto")


def test_sparse_connectivity_helpers():
    key = jax.random.key(0)
    mask = np.random.default_rng(0).random((7, 9)) < 0.3
    t = np.asarray(eqn.connect.sparse(mask))
    dense = np.zeros((7, 9), bool)
    for s in range(7):
        dense[s, t[s][t[s] >= 0]] = True
    assert (dense == mask).all() and t.shape[1] == mask.sum(1).max()

    out = np.asarray(eqn.connect.sparse_fixed_fan_out(key, 50, 50, 5, allow_self=False))
    assert out.shape == (50, 5) and all(len(set(r)) == 5 and s not in r for s, r in enumerate(out.tolist()))

    fan_in = np.asarray(eqn.connect.sparse_fixed_fan_in(key, 40, 30, 4))
    counts = np.bincount(fan_in[fan_in >= 0], minlength=30)
    assert (counts == 4).all()

    prob = np.asarray(eqn.connect.sparse_fixed_probability(key, 200, 300, 0.1, allow_self=False))
    n = (prob >= 0).sum()
    assert abs(n - 0.1 * 200 * 300) < 4 * np.sqrt(0.1 * 0.9 * 200 * 300)

    pairs = eqn.connect.sparse_from_indices([0, 2, 2], [1, 0, 3], 3, 4)
    assert np.asarray(pairs).tolist() == [[1, -1], [-1, -1], [0, 3]]

    for call, words in [
        (lambda: eqn.connect.sparse(np.ones(3, bool)), "2-D"),
        (lambda: eqn.connect.sparse_fixed_fan_out(key, 5, 5, 6), "`k`"),
        (lambda: eqn.connect.sparse_fixed_fan_in(key, 5, 5, 5, allow_self=False), "`k`"),
        (lambda: eqn.connect.sparse_fixed_probability(key, 5, 5, 1.5), "`p`"),
        (lambda: eqn.connect.sparse_from_indices([0, 9], [1, 1], 3, 3), "out of range"),
    ]:
        with pytest.raises(EqError, match=words):
            call()


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"targets": np.zeros((3, 2), np.int32)}, r"shape \(4, K\)"),
        ({"targets": np.full((4, 2), 7)}, "outside -1..4"),
        ({"targets": np.zeros((4, 2), np.int32), "mask": np.ones((4, 5), bool)}, "not both"),
        ({"targets": np.zeros((4, 2), np.int32), "weights": {"w": np.ones((4, 3))}}, r"\(4, 2\)"),
    ],
)
def test_bad_sparse_projections_are_errors(kwargs, words):
    lif = eqn.compile_model("lif")
    a, b = lif.population(4, 0), lif.population(5, 0)
    kwargs = {"weights": {"w": 1.0}, **kwargs}
    with pytest.raises(EqError, match=words):
        eqn.Network({"a": a, "b": b}, projections=[eqn.Projection("a", "b", delay=1.0, **kwargs)])
