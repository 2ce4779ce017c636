"""The event-based adjoint (`simulate(..., adjoint="eventprop")`) against independent references.

References: central finite differences of the forward run (float64), the
analytic derivatives of a refractory LIF under constant drive and of a
shift of the inputs, and the gradient through the loop itself
(`adjoint="loop"`, computed by another method: reverse mode through the
checkpointed event loop).  Values must be the forward run's, bit for bit.
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqneuron as eqn
from eqneuron.engine.adjoint_superposed import replay_superposed as adjoint_superposed
from eqneuron.train import losses

from .helpers import feedforward, latency_inputs
from .test_refractory_events import ADAPTIVE, REFRACTORY_LIF, lif_population
from .test_zoo_reference import izhikevich_ref

T1 = 60.0
GRID = jnp.linspace(0.0, T1, 7)
INPUTS = latency_inputs(jnp.array([0.5, 2.1, 6.3, 6.8, 8.4]))


def scaled(net, scale):
    return eqx.tree_at(lambda n: [p.weights for p in n.populations], net, replace_fn=lambda w: {k: v * scale for k, v in w.items()})


def run_loss(net, inputs, adjoint, tol=None, stop=False, rounds=False, save=True, with_out=False):
    """A loss that reads every differentiable output: first output spikes (TTFS), every spike
    time, and the saved states (`with_out`: and the run's result, for `gradients(has_aux=True)`)."""
    out = eqn.simulate(
        net, inputs, t1=T1, max_spikes=128, adjoint=adjoint, rtol=tol, atol=tol,
        stop_after_first_spike=stop, rounds=rounds, save_at=GRID if save else None,
    )
    loss = losses.ttfs_cross_entropy(out.first_spikes[-1], jnp.asarray(1), tau=2.0, t_silent=T1)
    loss = loss + 1e-2 * jnp.sum(jnp.where(jnp.isfinite(out.spike_times), out.spike_times, 0.0))
    for states in out.states:
        if states is not None:
            loss = loss + 1e-2 * sum(jnp.sum(jnp.where(jnp.isfinite(v), v, 0.0)) for v in states.values())
    return (loss, out) if with_out else loss


def gradients(net, loss, adjoints=("eventprop",), has_aux=False):
    """(gradient by each of `adjoints`, central difference along a random direction, the direction)
    and, with `has_aux` (`loss` returns (value, run)), the run of the first adjoint's program: the
    tests read their run's spike counts from it rather than compile a forward run of their own."""
    params, static = eqx.partition(net, eqx.is_inexact_array)
    value_and_grad = {
        adjoint: jax.jit(jax.value_and_grad(lambda p, a=adjoint: loss(eqx.combine(p, static), a), has_aux=has_aux))
        for adjoint in adjoints
    }
    results = {adjoint: vg(params) for adjoint, vg in value_and_grad.items()}
    grads = {adjoint: r[1] for adjoint, r in results.items()}
    direction = jax.tree_util.tree_map(lambda x: jax.random.normal(jax.random.key(3), x.shape, x.dtype), params)
    # the loss at the displaced points: the value of a program compiled already (the forward
    # run is the same whichever adjoint differentiates it)
    def f(p):
        value = value_and_grad[adjoints[0]](p)[0]
        return value[0] if has_aux else value

    eps = 1e-6
    fd = (f(jax.tree_util.tree_map(lambda x, d: x + eps * d, params, direction))
          - f(jax.tree_util.tree_map(lambda x, d: x - eps * d, params, direction))) / (2 * eps)
    if has_aux:
        return grads, float(fd), direction, results[adjoints[0]][0][1]
    return grads, float(fd), direction


def along(grads, direction):
    return float(sum(jnp.vdot(a, b) for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(direction))))


def test_lif_stack_gradients_match_the_loop_and_finite_differences():
    """Closed-form LIF 5→20→3: the replay's flows are exact, so both adjoints give the same
    gradient to roundoff."""
    net = feedforward("lif", [5, 20, 3], jax.random.key(0))
    grads, fd, direction, out = gradients(net, lambda n, a: run_loss(n, INPUTS, a, with_out=True), ("loop", "eventprop"),
                                          has_aux=True)
    assert int(out.counts[0].sum()) > 5 and int(out.counts[1].sum()) > 0
    for a, b in zip(jax.tree_util.tree_leaves(grads["loop"]), jax.tree_util.tree_leaves(grads["eventprop"])):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-9, atol=1e-11)
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-6 * abs(fd)
    # reverse mode of a `jit` that holds the run: the replay is traced after the run's trace has
    # ended, and must read nothing that trace left behind (the save times once leaked from it)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    _, outside = jax.value_and_grad(jax.jit(lambda p: run_loss(eqx.combine(p, static), INPUTS, "eventprop")))(params)
    for a, b in zip(jax.tree_util.tree_leaves(grads["loop"]), jax.tree_util.tree_leaves(outside)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("model, scale, params", [("izhikevich", 0.3, None), ("egru", 1.0, {"b_u": 1.0, "b_z": 1.0})])
def test_nonlinear_stack_gradients_match_finite_differences(model, scale, params):
    """Runge–Kutta models: the replay integrates each segment again (its own steps), so the
    gradient agrees with finite differences to the tolerance's order."""
    net = scaled(feedforward(model, [5, 12, 3], jax.random.key(1), params=params), scale)
    grads, fd, direction, out = gradients(net, lambda n, a: run_loss(n, INPUTS, a, tol=1e-11, with_out=True), has_aux=True)
    assert int(out.counts[0].sum()) > 3 and int(out.counts[1].sum()) > 0, "both layers must fire"
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-5 * abs(fd)


def test_first_spike_run_in_rounds_matches_finite_differences():
    """`stop_after_first_spike` (the readout stops at its first spikes) in rounds (the hidden
    layer stops soon after them), as the replay runs a first-spike run by default (`rounds=None`:
    its loops are not differentiated): each neuron is replayed up to where its run ended."""
    net = scaled(feedforward("izhikevich", [5, 12, 3], jax.random.key(1)), 0.3)
    grads, fd, direction = gradients(net, lambda n, a: run_loss(n, INPUTS, a, tol=1e-11, stop=True, rounds=None, save=False))
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-5 * abs(fd)


def test_first_spike_run_with_saves_matches_finite_differences():
    """Stopped readout neurons record no later state (NaN), and their replay stops too."""
    net = feedforward("lif", [5, 20, 3], jax.random.key(0))
    grads, fd, direction = gradients(net, lambda n, a: run_loss(n, INPUTS, a, stop=True))
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-6 * abs(fd)


@pytest.mark.parametrize("method", ["auto", "tsit5"])
def test_refractory_period_gradient_is_analytic(method):
    """Constant drive: t_k = t* + (k - 1)(t* + tref), so d t_k / d tref = k - 1 (the end of
    each period is an event of the replay, its time moving with the spike and the period)."""
    pop = lif_population(tref=5.0)
    tol = None if method == "auto" else 1e-11

    def spike_times(tref):
        p = eqx.tree_at(lambda p: p.params["tref"], pop, tref)
        return eqn.simulate(p, None, t1=40.0, max_spikes=8, adjoint="eventprop", method=method, rtol=tol, atol=tol).spike_times[:4]

    jac = jax.jacobian(spike_times)(pop.params["tref"])
    np.testing.assert_allclose(np.asarray(jac)[:, 0], [0.0, 1.0, 2.0, 3.0], rtol=1e-6, atol=1e-8)


def test_refractory_population_with_inputs_matches_finite_differences():
    pop = lif_population(tref=3.0, ic=0.8, w=2.5)
    inputs = eqn.Spikes(jnp.asarray([0.0, 7.0, 8.5, 21.0]), jnp.zeros(4, jnp.int32))

    def loss(p, adjoint):
        out = eqn.simulate(p, inputs, t1=40.0, max_spikes=32, adjoint=adjoint)
        return jnp.sum(jnp.where(jnp.isfinite(out.spike_times), out.spike_times, 0.0) * 0.5 ** jnp.arange(32))

    grads, fd, direction = gradients(pop, loss)
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-6 * abs(fd)


def test_model_delay_gradient_matches_finite_differences():
    """A hidden model with a trainable `delay:`: its spikes reach the readout later; the
    gradient reaches the delays."""
    src = eqn.compile_model("lif").ir.source.text
    delayed = eqn.compile_model(
        src.replace("ic = 0.0 (per_neuron, trainable)", "ic = 0.0 (per_neuron, trainable)\n    d = 1.0 (per_neuron, trainable)")
        + "\ndelay: d\n"
    )
    hidden = delayed.population(10, 5, key=jax.random.key(4), params={"d": jnp.linspace(0.5, 3.0, 10)})
    readout = eqn.compile_model("lif").population(3, 10, key=jax.random.key(5))
    net = eqn.Network([hidden, readout])
    grads, fd, direction, out = gradients(net, lambda n, a: run_loss(n, INPUTS, a, save=False, with_out=True), has_aux=True)
    assert int(out.counts[0].sum()) > 2 and int(out.counts[1].sum()) > 0
    g_delay = grads["eventprop"].populations[0].params["d"]
    assert np.any(np.abs(np.asarray(g_delay)) > 1e-6), "the gradient reaches the delays"
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-6 * abs(fd)


def test_input_time_gradient_is_a_shift():
    """Shifting every input spike by s shifts every spike by s: d t_k / d s = 1, so the
    derivative of the sum of all spike times is their number.  The values are the loop's."""
    net = feedforward("lif", [5, 10, 3], jax.random.key(0))

    def total(s, adjoint):
        out = eqn.simulate(net, eqn.Spikes(INPUTS.times + s, INPUTS.channels), t1=T1, max_spikes=64, adjoint=adjoint)
        return jnp.sum(jnp.where(jnp.isfinite(out.spike_times), out.spike_times, 0.0)), out.n_spikes

    (value, n), grad = jax.jit(jax.value_and_grad(total, has_aux=True), static_argnums=1)(0.0, "eventprop")
    assert int(n) > 3 and float(value) == float(jax.jit(total, static_argnums=1)(0.0, "loop")[0])
    assert abs(float(grad) - int(n)) <= 1e-9 * int(n)


def test_batched_and_silent_outputs_give_defined_gradients():
    """Under `vmap` (a batch), with outputs that never fire: the TTFS loss of a silent output
    is constant, and the gradient is finite and that of the hidden spikes' term."""
    net = feedforward("lif", [5, 10, 3], jax.random.key(2))
    net = eqx.tree_at(lambda n: n.populations[1].weights["w"], net, replace_fn=lambda w: w * 0.01)  # a silent readout
    batch = eqn.Spikes(jnp.stack([INPUTS.times, INPUTS.times + 1.0]), jnp.stack([INPUTS.channels] * 2))
    out = jax.vmap(lambda s: eqn.simulate(net, s, t1=T1, max_spikes=64))(batch)
    assert not np.any(np.isfinite(np.asarray(out.first_spikes[-1]))) and np.all(np.asarray(out.counts[0].sum(axis=1)) > 0)

    def loss(n, adjoint):
        return jnp.mean(jax.vmap(lambda s: run_loss(n, s, adjoint, save=False))(batch))

    grads, fd, direction = gradients(net, loss)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads["eventprop"]))
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-6 * abs(fd) and fd != 0.0


def test_a_batch_of_first_spike_runs_replayed_in_chunks_matches_the_loop_and_finite_differences():
    """The readout's sequence is the hidden layer's spike list (longer than two chunks, most of
    it padding) and each readout neuron stops at its first spike: its replay runs in chunks and
    skips those past the batch's last event before the end of a run.  Two samples that stop at
    different times (one chunk count for the batch under `vmap`)."""
    net = feedforward("lif", [5, 20, 3], jax.random.key(0))
    batch = eqn.Spikes(jnp.stack([INPUTS.times, INPUTS.times + 3.0]), jnp.stack([INPUTS.channels] * 2))
    out = jax.vmap(lambda s: eqn.simulate(net, s, t1=T1, max_spikes=128, stop_after_first_spike=True))(batch)
    first = np.asarray(out.first_spikes[-1])
    assert np.all(np.isfinite(first)) and not np.allclose(first[0], first[1])
    # a hidden list of `max_spikes` slots: more than two chunks, and most of them never reached
    assert int(np.asarray(out.counts[0]).sum(axis=1).max()) < 128 - 2 * 32

    def loss(n, adjoint):
        return jnp.mean(jax.vmap(lambda s: run_loss(n, s, adjoint, stop=True, save=False))(batch))

    grads, fd, direction = gradients(net, loss, ("loop", "eventprop"))
    for a, b in zip(jax.tree_util.tree_leaves(grads["loop"]), jax.tree_util.tree_leaves(grads["eventprop"])):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-9, atol=1e-11)
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-6 * abs(fd) and fd != 0.0


@pytest.mark.parametrize("case", ["graph", "name"])
def test_what_the_replay_does_not_handle_is_refused(case):
    lif = eqn.compile_model("lif")
    kwargs = {"adjoint": "eventprop"}
    if case == "graph":
        net = eqn.Network(
            {"a": lif.population(4, 2, key=jax.random.key(0))},
            projections=[eqn.Projection("a", "a", weights={"w": jnp.zeros((4, 4))}, delay=1.0)],
        )
    else:
        net = lif.population(4, 2, key=jax.random.key(0))
        kwargs = {"adjoint": "backsolve"}
    with pytest.raises(eqn.EqError) as err:
        eqn.simulate(net, None, t1=10.0, **kwargs)
    assert "adjoint" in str(err.value)


def test_training_step_gradients_are_those_of_the_loop():
    """`TrainConfig(adjoint="eventprop")`: the Yin-Yang training step (TTFS loss of first
    spikes, threshold deficits from saved states, a batch under `vmap`) has the loop's loss
    and gradient."""
    from eqneuron.train.training import TrainConfig, _batch_spikes, build_network, load_task, make_functions

    results = []
    for adjoint in ("loop", "eventprop"):
        config = TrainConfig(task="yinyang", model="lif", hidden=12, train_size=16, test_size=8, adjoint=adjoint)
        data, _ = load_task(config)
        net = build_network(config, data.n_channels, data.n_classes, jax.random.key(0))
        value_and_grad, _ = make_functions(config, data.duration)
        results.append(value_and_grad(net, _batch_spikes(data, np.arange(8)), jnp.asarray(data.labels[:8])))
    (loss_a, _), grads_a = results[0]
    (loss_b, _), grads_b = results[1]
    assert float(loss_a) == float(loss_b)
    leaves = list(zip(jax.tree_util.tree_leaves(eqx.filter(grads_a, eqx.is_inexact_array)),
                      jax.tree_util.tree_leaves(eqx.filter(grads_b, eqx.is_inexact_array))))
    assert any(np.any(np.asarray(a) != 0) for a, _ in leaves)
    for a, b in leaves:
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-8, atol=1e-12)


def test_train_refuses_an_unknown_adjoint():
    from eqneuron.train.training import TrainConfig, check_config

    with pytest.raises(eqn.EqError, match="adjoint"):
        check_config(TrainConfig(adjoint="backsolve"))


@pytest.mark.parametrize("method", ["auto", "tsit5"])
@pytest.mark.parametrize("adjoint", ["loop", "eventprop"])
def test_inputs_at_the_same_time_share_the_gradient_by_weight(method, adjoint):
    """Two inputs at one time into a LIF: v = w_a K(t - t_a) + w_b K(t - t_b), so at the tie
    d t*/d t_a = w_a / (w_a + w_b).  The second input's segment has length zero; its state
    still moves with its end (a `maximum(t_end, t0)` sent half of that derivative to t0)."""
    pop = eqn.compile_model("lif").population(1, 2, weights={"w": jnp.array([[0.0], [3.0], [1.5]])})
    tol = None if method == "auto" else 1e-11

    def first(times):
        out = eqn.simulate(pop, eqn.Spikes(times, jnp.array([0, 1])), t1=60.0, max_spikes=4, method=method,
                           rtol=tol, atol=tol, adjoint=adjoint)
        return out.first_spikes[-1][0]

    np.testing.assert_allclose(np.asarray(jax.grad(first)(jnp.array([5.0, 5.0]))), [2 / 3, 1 / 3], rtol=1e-7)


def test_a_replay_that_leaves_a_slow_passage_early_stops_at_its_threshold():
    """An Izhikevich neuron (from the eventax 5-120-3 benchmark net) whose third spike ends a
    slow passage near its rheobase, at rtol = atol = 1e-3.  The replay's own steps leave the
    bottleneck earlier than the forward run's; integrated on to the located spike, its `v`
    would blow up and every gradient would be NaN.  The replay stops it at its threshold: finite gradients, of the
    size of central differences at tolerance 1e-11 (at 1e-3, on a spike this sensitive, the
    loop's gradient is 30 % off and the replay's 15 %)."""
    model = eqn.compile_model("izhikevich")
    weights = jnp.array([2.5098636, 3.0308118, 2.6399443, 3.0715904, 2.6169162])
    inputs = eqn.Spikes(jnp.array([4.7891545, 0.6227948, 5.2108455, 9.377205, 0.0]), jnp.arange(5))

    @functools.partial(jax.jit, static_argnums=(1, 2))
    def total(w, adjoint, tol):
        pop = model.population(1, 5, weights={"w": jnp.concatenate([jnp.zeros((1, 1)), w[:, None]])})
        t = eqn.simulate(pop, inputs, t1=60.0, max_spikes=32, rtol=tol, atol=tol, adjoint=adjoint).spike_times
        return jnp.sum(jnp.where(jnp.isfinite(t), t, 0.0)), jnp.sum(jnp.isfinite(t))

    (value, n), grad = jax.jit(jax.value_and_grad(total, has_aux=True), static_argnums=(1, 2))(weights, "eventprop", 1e-3)
    exact, n_exact = total(weights, "loop", 1e-11)
    assert int(n) == int(n_exact) == 3 and abs(float(value) - float(exact)) < 0.5
    eps = 1e-6
    fd = np.array([(total(weights + eps * e, "loop", 1e-11)[0] - total(weights - eps * e, "loop", 1e-11)[0]) / (2 * eps) for e in jnp.eye(5)])
    assert np.all(np.isfinite(np.asarray(grad)))
    np.testing.assert_allclose(np.asarray(grad), fd, rtol=0.4)


# ADAPTIVE (tests/test_refractory_events.py) driven through a synapse: its internal event (v > 0.6
# adds to the adaptation current a) in a feed-forward stack
ADAPTIVE_SYNAPTIC = ADAPTIVE.replace("dv/dt = (-v + ic - a) / tmem", "dv/dt = (-v + ic - a + i) / tmem\n    di/dt = -i / 5.0").replace(
    "event crossing", "weights:\n    w = 1.0\n\non_spike:\n    i += w\n\non_input:\n    i += w * value\n\nevent crossing"
)


def test_internal_events_single_neuron_gradient_matches_finite_differences():
    """A spike time after two adaptation events and an event time, with respect to the drive:
    the replay's jumps at the events (their times by the implicit function theorem on the event's
    own condition) against central differences."""
    pop = eqn.compile_model(ADAPTIVE).population(1, params={"ic": jnp.array([2.6])})

    def loss(p, adjoint):
        out = eqn.simulate(p, None, t1=40.0, max_spikes=16, max_spikes_per_neuron=8, rtol=1e-12, atol=1e-12, adjoint=adjoint)
        assert out.events[0] is not None
        return out.spike_times[2] + 0.1 * out.events[0].times[1]

    grads, fd, direction = gradients(pop, loss)
    assert abs(fd) > 1.0
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-6 * abs(fd)


def test_internal_events_in_a_stack_match_finite_differences():
    """5 → 6 adaptive neurons with events → 2: every spike and event time and the saved states
    in the loss, with respect to weights and the per-neuron drive."""
    model = eqn.compile_model(ADAPTIVE_SYNAPTIC)
    hidden = model.population(6, 5, params={"ic": jnp.full((6,), 0.9)}, key=jax.random.key(1))
    hidden = hidden.replace(weights={"w": 1.5 * jnp.abs(hidden.weights["w"])})
    net = eqn.Network([hidden, model.population(2, 6, params={"ic": jnp.full((2,), 0.9)}, key=jax.random.key(2))])

    def loss(n, adjoint):
        out = eqn.simulate(n, INPUTS, t1=T1, max_spikes=128, max_spikes_per_neuron=8, save_at=GRID, adjoint=adjoint,
                           rtol=1e-12, atol=1e-12)
        value = jnp.sum(jnp.where(jnp.isfinite(out.spike_times), out.spike_times, 0.0))
        for record in out.events:
            value = value + jnp.sum(jnp.where(jnp.isfinite(record.times), record.times, 0.0))
        for states in out.states:
            value = value + 1e-2 * sum(jnp.sum(v) for v in states.values())
        return value, out

    grads, fd, direction, out = gradients(net, loss, has_aux=True)
    assert out.results[0] == eqn.RESULTS.ok and int(out.events[0].counts.sum()) >= 4 and int(out.counts[0].sum()) >= 3
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-5 * abs(fd)


def test_dcaap_first_spike_gradient_matches_finite_differences():
    """The zoo's dendritic neuron (an internal event, the dCaAP, with an `and` condition): its
    first somatic spike with respect to the dCaAP current and the injected current."""
    pop = eqn.compile_model("dcaap").population(1, params={"ic": jnp.array([0.205]), "w_ca": jnp.array([3.0])})

    def loss(p, adjoint):
        return eqn.simulate(p, None, t1=100.0, max_spikes=8, rtol=1e-12, atol=1e-12, adjoint=adjoint).spike_times[0]

    grads, fd, direction = gradients(pop, loss)
    assert abs(fd) > 1.0
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-4 * abs(fd)


def test_more_internal_events_than_the_replay_holds_are_a_spike_budget_result():
    """The replay keeps `max_spikes_per_neuron` internal events per neuron: a run with more is
    flagged (never a gradient that silently leaves events out)."""
    pop = eqn.compile_model(ADAPTIVE).population(1, params={"ic": jnp.array([2.6])})
    # up to 10 ms: events at 2.62 and 8.21 ms, one spike at 5.27 ms (the test above's run)
    run = functools.partial(eqn.simulate, pop, None, t1=10.0, max_spikes=16, max_spikes_per_neuron=1)
    loop = run()
    assert loop.results[0] == eqn.RESULTS.ok and int(loop.n_spikes) == 1 and int(loop.events[0].counts.sum()) == 2
    with pytest.warns(RuntimeWarning, match="internal events"):
        out = run(adjoint="eventprop")
    assert out.results[0] == eqn.RESULTS.spike_budget


def recurrent_stack(model, scale, recurrent_scale):
    """5 → 6 recurrent → 2 LIF: input rows of the recurrent population positive, scaled."""
    pop = model.population(6, 5, key=jax.random.key(4), recurrent=True)
    w = pop.weights["w"]
    pop = pop.replace(weights={"w": w.at[6:].set(scale * jnp.abs(w[6:])).at[:6].multiply(recurrent_scale)})
    return eqn.Network([pop, eqn.compile_model("lif").population(2, 6, key=jax.random.key(5))])


def recurrent_loss(tol=None, events=False):
    """Every spike time and saved state (and with `events`, the first population's event times);
    returns the run too (`gradients(has_aux=True)`)."""
    def loss(n, adjoint):
        out = eqn.simulate(n, INPUTS, t1=T1, max_spikes=128, save_at=GRID, adjoint=adjoint, rtol=tol, atol=tol)
        value = jnp.sum(jnp.where(jnp.isfinite(out.spike_times), out.spike_times, 0.0))
        if events:
            value = value + jnp.sum(jnp.where(jnp.isfinite(out.events[0].times), out.events[0].times, 0.0))
        return value + 1e-2 * sum(jnp.sum(v) for states in out.states for v in states.values()), out
    return loss


def test_a_recurrent_refractory_population_matches_the_loop_and_finite_differences():
    """One shared clock: each spike's time from its neuron's condition, every neuron's state
    moving with it, the reset, the `on_spike` jumps to the other neurons, and the end of the
    refractory period (a trainable per-neuron `tref`) as events of the one sequence."""
    model = eqn.compile_model(REFRACTORY_LIF.replace("on_input:", "on_spike:\n    i += w\non_input:"))
    net = recurrent_stack(model, 3.0, 0.5)
    grads, fd, direction, out = gradients(net, recurrent_loss(), ("eventprop", "loop"), has_aux=True)
    assert all(r == eqn.RESULTS.ok for r in out.results) and int(out.counts[0].sum()) > 20 and int(out.counts[1].sum()) > 3
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-6 * abs(fd)  # measured 2e-9
    for a, b in zip(jax.tree_util.tree_leaves(grads["eventprop"]), jax.tree_util.tree_leaves(grads["loop"])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-8, atol=1e-10)


def test_a_recurrent_izhikevich_population_matches_finite_differences():
    """The same on a Runge–Kutta model: each segment of the shared clock integrated again."""
    net = recurrent_stack(eqn.compile_model("izhikevich"), 0.3, 0.05)
    grads, fd, direction, out = gradients(net, recurrent_loss(1e-12), has_aux=True)
    assert all(r == eqn.RESULTS.ok for r in out.results) and int(out.counts[0].sum()) > 5
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-6 * abs(fd)  # measured 1e-8


def test_internal_events_in_a_recurrent_population_match_finite_differences():
    """The adaptive neuron with its event, coupled on one clock: events and spikes in one
    sequence, each event's time from its own condition and every neuron's state moving with it."""
    net = recurrent_stack(eqn.compile_model(ADAPTIVE_SYNAPTIC), 1.0, 0.3)
    # the model's weights start equal (w = 1.0): drawn here, so that no two neurons cross at
    # the same time (on one clock, a spike at the time of the event before is taken as caused by it)
    w = jax.random.uniform(jax.random.key(6), (11, 6), minval=0.5, maxval=1.5)
    net = eqx.tree_at(lambda n: (n.populations[0].params["ic"], n.populations[0].weights["w"]), net,
                      (jnp.full((6,), 0.9), w.at[:6].multiply(0.3)))

    grads, fd, direction, out = gradients(net, recurrent_loss(1e-12, events=True), has_aux=True)
    assert all(r == eqn.RESULTS.ok for r in out.results)
    assert int(out.events[0].counts.sum()) >= 4 and int(out.counts[0].sum()) >= 3
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-6 * abs(fd)


def _count_free_segments(monkeypatch) -> list:
    """A list that gets an entry each time a closed-form `free_step` is traced."""
    from eqneuron.engine.closed_form import ClosedFormIntegrator

    traced = []
    original = ClosedFormIntegrator.free_step

    def counted(self, *args):
        traced.append(True)
        return original(self, *args)

    monkeypatch.setattr(ClosedFormIntegrator, "free_step", counted)
    return traced


def _lif_under_90_inputs():
    """Four LIF neurons that need several of 90 random inputs on 3 channels to fire, and fire
    several times in 100 ms; with their spike trains by scipy (`solve_ivp` between the inputs,
    crossings located on its dense output)."""
    from .scipy_reference import scipy_spike_trains

    w_in = np.array([[0.3, 0.5, 0.7, 0.9]] * 3)
    pop = eqn.compile_model("lif").population(4, 3, weights={"w": jnp.full((7, 4), 0.45).at[4:].set(w_in)})
    times = jnp.sort(jax.random.uniform(jax.random.key(11), (90,), minval=0.0, maxval=100.0))
    inputs = eqn.Spikes(times, jax.random.randint(jax.random.key(12), (90,), 0, 3))

    def on_input(channel):
        def jump(y):
            y[1] += w_in[channel]
            return y
        return jump

    def on_spike(y, k):
        y[0, k] -= 1.0
        return y

    reference = scipy_spike_trains(
        lambda t, y: np.stack([(-y[0] + y[1]) / 10.0, -y[1] / 5.0]), np.zeros((2, 4)), 100.0, lambda y: y[0] - 1.0,
        on_spike, [(float(t), on_input(int(c))) for t, c in zip(inputs.times, inputs.channels)],
    )
    return pop, inputs, reference


def test_the_closed_form_forward_run_passes_inputs_in_free_segments_and_keeps_every_spike(monkeypatch):
    """The event-based adjoint's forward run is never differentiated, so its closed-form (LIF)
    loops pass inputs in event-free segments (`ClosedFormIntegrator.free_step`, kept only where no
    armed crossing lies before the input); the loop adjoint's run takes none.  On neurons that need
    several inputs to fire, and fire several times, both runs give the same spikes, those of scipy."""
    traced = _count_free_segments(monkeypatch)
    pop, inputs, reference = _lif_under_90_inputs()
    out = {}
    for adjoint in ("loop", "eventprop"):
        traced.clear()
        out[adjoint] = jax.jit(lambda p, a=adjoint: eqn.simulate(p, inputs, t1=100.0, max_spikes=256, adjoint=a))(pop)
        assert bool(traced) == (adjoint == "eventprop"), "free segments in the run that reverse mode never differentiates only"
    loop, replayed = out["loop"], out["eventprop"]
    counts = np.asarray(loop.counts[0])
    assert counts.min() >= 2 and counts.sum() >= 12 and not bool(loop.overflow)
    np.testing.assert_array_equal(np.asarray(replayed.spike_neurons), np.asarray(loop.spike_neurons))
    np.testing.assert_allclose(np.asarray(replayed.spike_times), np.asarray(loop.spike_times), rtol=0, atol=1e-12)
    ids, spike_times = np.asarray(replayed.spike_neurons), np.asarray(replayed.spike_times)
    for k, train in enumerate(reference):
        np.testing.assert_allclose(np.sort(spike_times[ids == k]), train, rtol=0, atol=1e-6)


def test_a_graphs_closed_form_population_passes_inputs_in_free_segments_in_its_forward_run(monkeypatch):
    """A graph network whose run `fast_forward` never differentiates builds its loops as a
    stack's are: its closed-form (LIF) population passes inputs in event-free segments there too.
    The LIF neurons above driving two Izhikevich neurons through a 1 ms delay (a graph run in
    windows): both populations' spikes are scipy's (the Izhikevich neurons driven by scipy's LIF
    spikes, 1 ms later), and those of the run without free segments, bit for bit (a spike that a
    free segment skipped would move every later one)."""
    from eqneuron.engine.closed_form import ClosedFormIntegrator

    from .scipy_reference import scipy_spike_trains

    traced = _count_free_segments(monkeypatch)
    lif, inputs, reference = _lif_under_90_inputs()
    izhikevich = eqn.compile_model("izhikevich")
    izh = izhikevich.population(2, 0, key=jax.random.key(4))
    net = eqn.Network({"lif": lif, "izh": izh},
                      projections=[eqn.Projection("lif", "izh", weights={"w": 6.0}, delay=1.0)])
    out = {}
    for free in (2, 0):
        monkeypatch.setattr(ClosedFormIntegrator, "free_steps", free)
        traced.clear()
        out[free] = jax.jit(lambda net: eqn.simulate(net, inputs, t1=100.0, max_spikes=256))(net)
        assert bool(traced) == (free > 0)
    for name in ("lif", "izh"):
        (t2, i2), (t0, i0) = out[2].spikes_of(name), out[0].spikes_of(name)
        np.testing.assert_array_equal(np.asarray(i2), np.asarray(i0))
        np.testing.assert_array_equal(np.asarray(t2), np.asarray(t0))
    assert [str(r) for r in out[2].results] == [str(eqn.RESULTS.ok)] * 2
    lif_times, lif_ids = (np.asarray(x) for x in out[2].spikes_of("lif"))
    assert np.sum(lif_ids >= 0) >= 12 and np.sum(np.asarray(out[2].spikes_of("izh")[1]) >= 0) >= 3
    for k, train in enumerate(reference):
        np.testing.assert_allclose(np.sort(lif_times[lif_ids == k]), train, rtol=0, atol=1e-6)

    # the published equations (test_zoo_reference.izhikevich_ref) at izhikevich.eq's defaults;
    # every LIF spike reaches both neurons 1 ms later as i += 6
    p, no_weights = izhikevich.params, {"w": 0.0}

    def on_lif_spike(y):
        y[2] += 6.0
        return y

    def on_izh_spike(y, k):
        y[:, k] = izhikevich_ref(y[:, k], p, no_weights, 0.0)[2]
        return y

    izh_reference = scipy_spike_trains(
        lambda t, y: np.stack(izhikevich_ref(y, p, no_weights, 0.0)[0]),
        np.array([[p["c"]] * 2, [p["b"] * p["c"]] * 2, [0.0, 0.0]]), 100.0, lambda y: y[0] - p["v_th"], on_izh_spike,
        [(float(t) + 1.0, on_lif_spike) for t in np.sort(np.concatenate(reference)) if t + 1.0 < 100.0],
    )
    izh_times, izh_ids = (np.asarray(x) for x in out[2].spikes_of("izh"))
    for k, train in enumerate(izh_reference):
        np.testing.assert_allclose(np.sort(izh_times[izh_ids == k]), train, rtol=0, atol=1e-5)


DELTA_LIF = """
parameters:
    tmem = 10.0
    ic = 0.5 (per_neuron, trainable)

equations:
    dv/dt = (-v + ic) / tmem

threshold: v > 1
reset:
    v = 0

weights:
    w
on_input:
    v += w
"""


def test_a_linear_population_replayed_by_superposition_spikes_at_the_input_that_lifts_it(monkeypatch):
    """A LIF whose inputs jump v (0.6 each, at 2, 4, 10 and 11 ms; drive 0.5): the inputs at 4
    and 11 ms lift v over threshold, so the spikes are at those inputs' times — d t_k / d s = 1
    for those inputs, 0 for the others, for the weight and for the drive.  A closed form with
    constant input jumps is replayed by superposition (`adjoint_superposed.py`), which must
    find the input that caused each spike among those summed in one pass."""
    from eqneuron.engine import adjoint

    replayed = []
    monkeypatch.setattr(adjoint, "replay_superposed", lambda *a: replayed.append(a[2]) or adjoint_superposed(*a))
    pop = eqn.compile_model(DELTA_LIF).population(1, 1, weights={"w": jnp.array([[0.0], [0.6]])})
    times = jnp.array([2.0, 4.0, 10.0, 11.0])

    def total(s, p):
        out = eqn.simulate(p, eqn.Spikes(s, jnp.zeros((4,), jnp.int32)), t1=30.0, max_spikes=8, adjoint="eventprop")
        return jnp.sum(jnp.where(jnp.isfinite(out.spike_times), out.spike_times, 0.0)), out.spike_times

    (_, spikes), (g_times, g_pop) = jax.jit(jax.value_and_grad(total, argnums=(0, 1), has_aux=True))(times, pop)
    assert len(replayed) == 1  # the one population, replayed by superposition
    np.testing.assert_array_equal(np.sort(np.asarray(spikes))[:2], [4.0, 11.0])
    np.testing.assert_allclose(np.asarray(g_times), [0.0, 1.0, 0.0, 1.0], atol=1e-12)
    assert float(jnp.max(jnp.abs(g_pop.weights["w"]))) <= 1e-12 and float(jnp.max(jnp.abs(g_pop.params["ic"]))) <= 1e-12


TWO_PORT_LIF = """
parameters:
    tmem = 10.0
    tsyn = 5.0
equations:
    dv/dt = (-v + i) / tmem
    di/dt = -i / tsyn
threshold: v > 1
reset:
    v = 0
weights:
    w = 1.0
on_input exc:
    i += w
on_input inh:
    i -= 2 * w * value
"""


def test_a_population_with_two_input_ports_replayed_by_superposition_matches_the_loop_and_finite_differences(monkeypatch):
    """Two named ports (an excitatory jump of the current and an inhibitory one scaled by the
    spike's value) into a closed-form LIF: each input's term carries its own port's jump."""
    from eqneuron.engine import adjoint

    replayed = []
    monkeypatch.setattr(adjoint, "replay_superposed", lambda *a: replayed.append(a[2]) or adjoint_superposed(*a))
    model = eqn.compile_model(TWO_PORT_LIF)
    w = jnp.concatenate([jnp.zeros((4, 4)), jax.random.uniform(jax.random.key(5), (5, 4), minval=3.0, maxval=6.0)])
    w = w.at[7:].multiply(0.3)  # the inhibitory rows
    pop = model.population(4, 5, ports={"exc": [0, 1, 2], "inh": [3, 4]}, weights={"w": w})
    inputs = eqn.Spikes(INPUTS.times, INPUTS.channels, jnp.linspace(0.5, 1.5, INPUTS.times.shape[0]))

    def loss(p, adjoint):
        out = eqn.simulate(p, inputs, t1=T1, max_spikes=64, adjoint=adjoint, save_at=GRID)
        value = jnp.sum(jnp.where(jnp.isfinite(out.spike_times), out.spike_times, 0.0))
        value = value + 1e-2 * sum(jnp.sum(jnp.where(jnp.isfinite(v), v, 0.0)) for v in out.states[0].values())
        return value, out

    grads, fd, direction, out = gradients(pop, loss, ("loop", "eventprop"), has_aux=True)
    assert replayed and int(out.counts[0].sum()) > 6 and int(out.counts[0].min()) >= 1
    np.testing.assert_allclose(np.asarray(grads["eventprop"].weights["w"]), np.asarray(grads["loop"].weights["w"]),
                               rtol=1e-9, atol=1e-11)
    assert abs(along(grads["eventprop"], direction) - fd) <= 1e-6 * abs(fd)
