"""Networks as graphs: populations connected by projections with delays, run in windows.

A spike emitted at t by a source neuron reaches a projection's targets at
t + delay (a scalar, one delay per source neuron, or one per synapse).  The populations are
ordered so that every projection without delay goes forward; a projection
that goes backward (or from a population to itself) must have a delay, and
the shortest such delay d_min is the length of a *window* (NEST's scheme):
no spike emitted inside a window can reach any neuron inside the same
window through a backward projection.  So, window after window, each
population in turn advances to the window's end with the input spikes that
are known by then — its own loop, on its own clocks unless it is coupled
without delay — and its new spikes become input spikes of its targets.
A network without backward projections is one window.

Each population's loop sees one list of input spikes: the external inputs
(if it is the `input` population) and, per incoming projection, the source's
spikes shifted by their delays, as channels `offset + source id`; the rows
of its weight matrix are the projections' weights.  A projection with one
delay per synapse delivers each synapse's event on its own: channel
`offset + synapse` (source-major), a list of one target (`SparseBlock`);
its channels come after the others.  Arrival times are differentiable in the
emission times and the delays.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
import sympy
from jaxtyping import Array, Bool, Float, Int

from ..errors import EqError
from ..network import Network, Population, Projection
from .lanes import earliest, traced_once
from .loop import InputLayout, LoopState, PopulationLoop, SparseBlock

# the most input spikes of one population in one window, unless the user says otherwise
DEFAULT_WINDOW_SPIKES = 1024
# a window reads this many times as many of each source's latest spikes (those emitted since two
# windows before its longest delay; more: the window-overflow flag)
SLICE_WINDOWS = 4


# a sparse projection is read through its lists of targets (`SparseBlock`), not laid out as rows
# of the target's weights, when every input of its target is sparse (the target's loop then
# reads its inputs from inboxes, `PopulationLoop.by_inbox`) or when it has more source × target
# pairs than this
DENSE_LIMIT = 1 << 25


class Incoming(NamedTuple):
    source: int  # index of the source population
    projection: int | None  # index in `net.projections`; None: a population's own delayed recurrence
    offset: int  # first input channel of this projection at the target
    # how the loop reads its channels: "rows" of the target's weights, "lists" of targets
    # (`SparseBlock`), or single "synapses" (per-synapse delays: lists of one target each)
    kind: str = "rows"
    synapses: int = 0  # "synapses": slots per source (its channels: one per slot)


class Plan(NamedTuple):
    order: tuple[int, ...]  # populations in the order they run within a window
    incoming: tuple[tuple[Incoming, ...], ...]  # per population
    external: tuple[int, ...]  # per population: external input channels (its in_size, or 0)
    delayed_self: tuple[bool, ...]  # per population: its own recurrence delayed by the model's `delay:`
    backward: tuple[tuple[int, int | None], ...]  # (target, projection) of the projections that need a delay


def needs_graph(net: Network) -> bool:
    """A feed-forward stack whose recurrent population has a `delay:` runs as a graph (in windows)."""
    return not net.graph and any(p.recurrent and p.model.fn.delay_raw is not None for p in net.populations)


def as_graph(net: Network) -> Network:
    """A feed-forward stack as a graph: population k-1 projects to k with k's input rows."""
    pops, projections = {}, []
    for k, pop in enumerate(net.populations):
        name = net.names[k]
        if k == 0:
            pops[name] = pop
            continue
        if len(set(pop.ports)) > 1:
            raise EqError(
                f"population {k} splits its input channels between ports, and the stack has a delayed "
                "recurrent population: build it as a graph with one Projection per port",
                hint="eqn.Network({...}, projections=[eqn.Projection(..., port=...), ...])",
            )
        n = pop.n_neurons
        w = pop.effective_weights()
        mask = None if pop.wmask is None else pop.wmask[n:]
        port = pop.model.fn.port_names[pop.ports[0]] if pop.ports else None
        projections.append(Projection(net.names[k - 1], name, {m: v[n:] for m, v in w.items()}, mask=mask, port=port))
        pops[name] = dataclasses.replace(pop, in_size=0, ports=())
    return Network(pops, projections=projections, input=net.names[0])


def model_delay(pop: Population, params: dict | None = None) -> Float[Array, " neurons"] | None:
    """The delay of spikes from `pop` given by its model's `delay:` (None without one), with
    `params` (default: `pop`'s parameter values)."""
    fn = pop.model.fn
    if fn.delay_raw is None:
        return None
    values = pop.parameter_values() if params is None else params
    return fn.delay_of(values, jnp.zeros((pop.n_neurons,), jnp.asarray(0.0).dtype))


def projection_delay(net: Network, k: int) -> Float[Array, "*source"] | None:
    """The delay of projection `k`: its own, else its source model's `delay:` (None: neither)."""
    proj = net.projections[k]
    if proj.delay is not None:
        return proj.delay
    return model_delay(net.population(proj.source))


def per_synapse(proj: Projection) -> bool:
    """Whether a projection has one delay per synapse (`(N_source, N_target)`, or `(N_source, K)`
    with `targets`)."""
    return proj.delay is not None and proj.delay.ndim == 2


def synapse_table(net: Network, proj: Projection) -> tuple[Int[Array, "source k"], dict[str, Float[Array, "source k"]]]:
    """A projection's synapses as `(N_source, K)` target ids (-1: none) and weights: its `targets`
    and weights, or a dense matrix's rows (K = N_target; -1 where the mask has no connection)."""
    n_s, n_t = net.population(proj.source).n_neurons, net.population(proj.target).n_neurons
    if proj.targets is not None:
        targets = proj.targets
    else:
        targets = jnp.broadcast_to(jnp.arange(n_t, dtype=jnp.int32), (n_s, n_t))
        if proj.mask is not None:
            targets = jnp.where(proj.mask, targets, -1)
    weights = {name: jnp.broadcast_to(w, targets.shape) for name, w in proj.weights.items()}
    return targets, weights


def connected_delays(net: Network, k: int) -> Float[Array, "*synapses"] | None:
    """Projection `k`'s delays where they carry spikes: per synapse, +inf where there is no
    connection (a padding slot of `targets`, a pair outside the mask); otherwise as given."""
    delay = projection_delay(net, k)
    proj = net.projections[k]
    if delay is None or not per_synapse(proj):
        return delay
    targets, _ = synapse_table(net, proj)
    return jnp.where(targets >= 0, delay, jnp.inf)


def plan(net: Network) -> Plan:
    """The run order of the populations and the input channels of every projection."""
    n = len(net.populations)
    delayed_self = tuple(p.recurrent and p.model.fn.delay_raw is not None for p in net.populations)
    for k, pop in enumerate(net.populations):
        ir = pop.model.ir
        if delayed_self[k] and (ir.pre_symbols or not _same_jump(ir.on_spike, ir.on_input) or ir.ports):
            raise EqError(
                f"Network: {net.names[k]!r} is recurrent with a delay, but its model's `on_spike` differs from "
                "its `on_input`: delayed spikes arrive as input spikes, and `on_spike` with `_pre` values "
                "(or named ports) is not simulated with a delay yet",
                hint="drop `delay:`, or write the recurrence as a Projection of the population to itself",
            )
    edges: list[tuple[int, int, int | None, bool]] = []  # (source, target, projection index or None, has a delay)
    for k, proj in enumerate(net.projections):
        s, t = net.names.index(proj.source), net.names.index(proj.target)
        edges.append((s, t, k, _may_be_positive(connected_delays(net, k))))
    for k in range(n):
        if delayed_self[k]:
            edges.append((k, k, None, True))
    for s, t, projection, delayed in edges:
        if s == t and not delayed:
            raise EqError(
                f"Network: projection {projection} connects {net.names[s]!r} to itself without a delay",
                hint="give it a delay > 0, or make the population recurrent (population(..., recurrent=True))",
            )
    # order: a topological order of the projections without delay (ties: the user's order)
    zero = {(s, t) for s, t, _, delayed in edges if not delayed and s != t}
    order: list[int] = []
    placed: set[int] = set()
    while len(order) < n:
        ready = [k for k in range(n) if k not in placed and all(s in placed for s, t in zero if t == k)]
        if not ready:
            cycle = sorted({net.names[t] for s, t in zero if t not in placed})
            raise EqError(
                f"Network: the populations {', '.join(repr(c) for c in cycle)} are connected in a cycle without delay",
                hint="give a projection of the cycle a delay > 0 (the engine then runs windows of the shortest one), "
                "or merge them into one recurrent population",
            )
        order.append(ready[0])
        placed.add(ready[0])
    position = {k: i for i, k in enumerate(order)}
    backward = tuple((t, k) for s, t, k, _ in edges if position[s] >= position[t])
    incoming, external = [], []
    for target in range(n):
        pop = net.populations[target]
        k_ext = pop.in_size if target == net.input else 0
        if target != net.input and pop.in_size:
            raise EqError(
                f"Network: population {net.names[target]!r} has in_size={pop.in_size} but only "
                f"{net.names[net.input]!r} receives the external input",
                hint="in a graph, connections between populations are Projections: give it in_size=0",
            )
        offset, mine = k_ext, []
        # channels: a channel per source neuron of each projection read through rows, then of
        # those read through lists of targets, then a channel per synapse of the projections with
        # per-synapse delays
        mine_all = [projection for s, t, projection, _ in edges if t == target]
        sparse = not k_ext and all(k is not None and (net.projections[k].targets is not None or per_synapse(net.projections[k]))
                                   for k in mine_all)
        ours = [(s, projection, _reading(net, projection, sparse)) for s, t, projection, _ in edges if t == target]
        for kind in ("rows", "lists", "synapses"):
            for s, projection, how in ours:
                if how != kind:
                    continue
                slots = 0
                if kind == "synapses":
                    assert projection is not None
                    slots = int(synapse_table(net, net.projections[projection])[0].shape[1])
                mine.append(Incoming(s, projection, offset, kind, slots))
                offset += net.populations[s].n_neurons * max(slots, 1)
        incoming.append(tuple(mine))
        external.append(k_ext)
    return Plan(tuple(order), tuple(incoming), tuple(external), delayed_self, backward)


def _reading(net: Network, k: int | None, all_sparse: bool) -> str:
    """How a loop reads the channels of projection `k` (None: a population's own delayed
    recurrence); `all_sparse`: every input of its target is a sparse projection."""
    if k is None:
        return "rows"
    proj = net.projections[k]
    if per_synapse(proj):
        return "synapses"
    pairs = net.population(proj.source).n_neurons * net.population(proj.target).n_neurons
    if proj.targets is not None and (all_sparse or pairs > DENSE_LIMIT):
        return "lists"
    return "rows"


def _same_jump(on_spike, on_input) -> bool:
    """Whether an input spike of value 1 jumps as a recurrent spike does."""
    from ..ir import VALUE

    keys = set(on_spike.updates) | set(on_input.updates)
    return all(
        sympy.simplify(on_spike.updates.get(k, 0) - sympy.sympify(on_input.updates.get(k, 0)).subs(VALUE, 1)) == 0
        for k in keys
    )


def _may_be_positive(delay) -> bool:
    """Whether a delay is (or may be, when traced) positive: a projection with a delay."""
    if delay is None:
        return False
    if isinstance(delay, jax.core.Tracer):
        return True
    return bool(np.all(np.asarray(delay) > 0))


def loop_inputs(net: Network, p: Plan, target: int) -> tuple[Population, InputLayout]:
    """The population as its loop sees it (its channels: the external inputs, then every
    projection into it), and how the loop reads those channels: the weights' rows (the
    neurons' own rows first only when it is coupled to itself without delay), the lists of
    targets of large sparse projections, the single synapses of projections with per-synapse
    delays.  No `N_source × N_target` array is built for the last two."""
    pop = net.populations[target]
    n, k_ext = pop.n_neurons, p.external[target]
    own = pop.recurrent and not p.delayed_self[target]
    incoming = p.incoming[target]
    by_rows = [inc for inc in incoming if inc.kind == "rows"]
    # the population's own weights (the mask applied; own rows zero without recurrence), where read
    base = pop.effective_weights() if own or k_ext or any(inc.projection is None for inc in by_rows) else None
    dtype = jnp.asarray(0.0).dtype
    weights = {}
    for name in pop.model.weight_names:
        rows = []
        if base is not None:
            w = base[name]
            rows = ([w[:n]] if own else []) + [w[n : n + k_ext]]
        for inc in by_rows:
            if inc.projection is None:  # the population's own recurrence, delayed
                assert base is not None
                rows.append(base[name][:n])
                continue
            proj = net.projections[inc.projection]
            rows.append(proj.dense_weights(net.populations[inc.source].n_neurons, n)[name].astype(dtype))
        weights[name] = jnp.concatenate(rows) if rows else jnp.zeros((n if own else 0, n), dtype)
    names = pop.model.fn.port_names
    ports: tuple[int, ...] = ()
    if names:
        ports = tuple(pop.ports[:k_ext]) if pop.ports else (0,) * k_ext
        for inc in by_rows:
            ports += (_port(net, inc, names),) * net.populations[inc.source].n_neurons
    # the channels with rows; those of the lists and synapses come after them
    in_size = k_ext + sum(net.populations[inc.source].n_neurons for inc in by_rows)
    loop_pop = dataclasses.replace(pop, weights=weights, wmask=None, in_size=in_size, recurrent=own, ports=ports)
    lists = []
    for inc in incoming:
        if inc.kind == "rows":
            continue
        assert inc.projection is not None
        port = _port(net, inc, names) if names else None
        targets, table = synapse_table(net, net.projections[inc.projection])
        if inc.kind == "synapses":  # a channel per synapse: a list of one target (-1: none)
            ids = jnp.where(targets >= 0, targets, n).reshape(-1, 1)
            lists.append(SparseBlock(inc.offset, ids, {k: w.reshape(-1, 1) for k, w in table.items()}, port, None))
        else:
            lists.append(_sorted_lists(inc.offset, targets, table, n, port))
    return loop_pop, InputLayout(weights, _connections(net, p, target), tuple(lists))


def _port(net: Network, inc: Incoming, names: tuple[str, ...]) -> int:
    """The index in `names` (the target's input ports) of an incoming projection's port (0: the
    first; a population's own recurrence arrives at it too)."""
    if inc.projection is None or not names:
        return 0
    return names.index(net.projections[inc.projection].port or names[0])


def _sorted_lists(offset: int, targets, weights: dict, n_target: int, port: int | None) -> SparseBlock:
    """A sparse projection's lists of targets sorted (empty slots, -1, last as `n_target`), each
    target's weights summed at its first slot (a target listed twice for one source)."""
    ids = jnp.where(targets >= 0, targets, n_target)
    order = jnp.argsort(ids, axis=1, stable=True)
    ids = jnp.take_along_axis(ids, order, axis=1)
    n_s, k = ids.shape
    first = jnp.concatenate([jnp.ones((n_s, 1), bool), ids[:, 1:] != ids[:, :-1]], axis=1)
    run = jnp.cumsum(first, axis=1) - 1  # each slot's target, numbered in its row
    segment = (jnp.arange(n_s)[:, None] * k + run).reshape(-1)
    summed = {}
    for name, w in weights.items():
        w = jnp.take_along_axis(w, order, axis=1)
        total = jax.ops.segment_sum(w.reshape(-1), segment, num_segments=n_s * k).reshape(n_s, k)
        summed[name] = jnp.take_along_axis(total, run, axis=1)
    # each target's bit, once per source (the sum of distinct bits is their union)
    listed = first & (ids < n_target)
    bit = jnp.where(listed, jnp.left_shift(jnp.uint32(1), (ids & 31).astype(jnp.uint32)), jnp.uint32(0))
    words = jnp.zeros((n_s, (n_target + 31) // 32), jnp.uint32)
    bits = words.at[jnp.arange(n_s)[:, None], jnp.minimum(ids, n_target - 1) >> 5].add(bit)
    return SparseBlock(offset, ids.astype(jnp.int32), summed, port, bits)


def _connections(net: Network, p: Plan, target: int) -> Bool[Array, "rows neurons"] | None:
    """Which input channels with rows (`loop_inputs`) reach which neurons (None: all of them).
    Read on own clocks only: a population coupled to itself without delay (whose weights start
    with its own rows) runs on a shared clock, where every input reaches every neuron."""
    pop = net.populations[target]
    n, k_ext = pop.n_neurons, p.external[target]
    parts: list[Bool[Array, "rows neurons"] | None] = [None if pop.wmask is None else pop.wmask[n : n + k_ext]]
    sizes = [k_ext]
    for inc in p.incoming[target]:
        if inc.kind != "rows":
            continue
        n_source = net.populations[inc.source].n_neurons
        if inc.projection is None:  # the population's own recurrence, delayed
            parts.append(None if pop.wmask is None else pop.wmask[:n])
        else:
            parts.append(net.projections[inc.projection].connections(n_source, n))
        sizes.append(n_source)
    if all(part is None for part in parts):
        return None
    return jnp.concatenate([jnp.ones((size, n), bool) if part is None else part for part, size in zip(parts, sizes)])


def window_length(net: Network, p: Plan) -> Float[Array, ""] | None:
    """The shortest delay of a backward projection (None: no backward projection, one window)."""
    if not p.backward:
        return None
    delays = []
    for target, k in p.backward:
        d = model_delay(net.populations[target]) if k is None else connected_delays(net, k)
        assert d is not None  # a connection against the run order has a delay (`plan`)
        delays.append(jnp.min(d))
    return jnp.min(jnp.stack(delays))


def run_graph(
    net: Network,
    make_loop: Callable[[Population, int, int, InputLayout], PopulationLoop],
    times: Float[Array, " inputs"],
    channels: Int[Array, " inputs"],
    values: Float[Array, " inputs"],
    t1: float | Float[Array, ""],
    max_spikes: int,
    max_window_spikes: int | None,
) -> tuple[list[LoopState], list[PopulationLoop], Bool[Array, ""], Bool[Array, ""]]:
    """Every population of a graph network from 0 to `t1`.

    `make_loop(pop, n_inputs, k, inputs)` builds the `PopulationLoop` of population k
    (`inputs`: how it reads its input channels, `loop_inputs`).
    Returns the populations' final loop states, their loops, a flag for an
    invalid window length (a backward delay traced to 0) and a flag for a
    window with more input spikes than `max_window_spikes`.
    """
    p = plan(net)
    n = len(net.populations)
    pops, layouts = zip(*(loop_inputs(net, p, k) for k in range(n)))
    dtype = times.dtype
    t1 = jnp.asarray(t1, dtype)
    d = window_length(net, p)
    windowed = d is not None
    if max_window_spikes is None:
        max_window_spikes = DEFAULT_WINDOW_SPIKES
    elif not windowed:
        raise EqError(
            f"simulate: max_window_spikes={max_window_spikes} applies to networks run in windows of the "
            "shortest delay, and this one has no cycle with a delay: it runs event by event",
            hint="drop max_window_spikes (max_spikes bounds the spike lists of this network)",
        )
    # each loop's spike buffer, then the size of its input list: everything for one window,
    # at most `max_window_spikes` per window (each window gets the list of its own inputs)
    buffers = [make_loop(pop, 1, k, layouts[k]).buffer for k, pop in enumerate(pops)]
    n_inputs = []
    for k in range(n):
        # a spike through a projection with per-synapse delays: an input spike per synapse
        size = (times.shape[0] if p.external[k] else 0) + sum(buffers[inc.source] * max(inc.synapses, 1) for inc in p.incoming[k])
        n_inputs.append(max(min(size, max_window_spikes) if windowed else size, 1))
    loops: list[PopulationLoop] = [make_loop(pops[k], n_inputs[k], k, layouts[k]) for k in range(n)]
    # per synapse: +inf where there is none (its arrivals are never due)
    delays = [
        tuple(
            model_delay(net.populations[k]) if inc.projection is None else connected_delays(net, inc.projection)
            for inc in p.incoming[k]
        )
        for k in range(n)
    ]
    longest = [tuple(0.0 if d is None else jnp.max(jnp.where(jnp.isfinite(d), d, 0.0)) for d in ds) for ds in delays]

    def arrivals(k, states, t_start):
        """The input spikes of population k that may be due from `t_start` on: (times, channels,
        values), unsorted; and whether a source's spikes of that span were more than its slice."""
        parts_t, parts_c, parts_v = [], [], []
        missed = jnp.asarray(False)
        if p.external[k]:
            parts_t, parts_c, parts_v = [times], [channels], [values]
        for inc, delay, latest in zip(p.incoming[k], delays[k], longest[k]):
            state = states[inc.source]
            st, sid = state.spike_times, state.spike_ids  # in the order written
            size = min(st.shape[0], SLICE_WINDOWS * n_inputs[k])
            if windowed and size < st.shape[0]:
                # the spikes emitted since two windows before the longest delay: the list is written
                # window after window, so it is in time order from one window to the next (not
                # within one), and a binary search for a time lands in the window that holds it
                lo = jnp.minimum(jnp.searchsorted(st, t_start - latest - 2 * step), st.shape[0] - size)
                st = jax.lax.dynamic_slice(st, (lo,), (size,))
                sid = jax.lax.dynamic_slice(sid, (lo,), (size,))
                missed = missed | (jnp.minimum(state.n_written, state.spike_times.shape[0]) > lo + size)
            src = jnp.maximum(sid, 0)
            if inc.kind == "synapses":  # an input spike per synapse, at its own delay: channel offset + synapse
                assert delay is not None
                slot = jnp.arange(inc.synapses)
                parts_t.append(jnp.where((sid >= 0)[:, None], st[:, None] + delay[src], jnp.inf).astype(dtype).reshape(-1))
                parts_c.append((inc.offset + src[:, None] * inc.synapses + slot).astype(jnp.int32).reshape(-1))
                parts_v.append(jnp.ones((st.shape[0] * inc.synapses,), dtype))
                continue
            shift = 0.0 if delay is None else (delay[src] if jnp.ndim(delay) else delay)
            parts_t.append(jnp.where(sid >= 0, st + shift, jnp.inf).astype(dtype))
            parts_c.append((inc.offset + src).astype(jnp.int32))
            parts_v.append(jnp.ones_like(st, dtype))
        if not parts_t:
            return (jnp.full((1,), jnp.inf, dtype), jnp.zeros((1,), jnp.int32), jnp.ones((1,), dtype)), missed
        return (jnp.concatenate(parts_t), jnp.concatenate(parts_c), jnp.concatenate(parts_v)), missed

    def inputs_of(k, states, t_start, t_stop):
        """Population k's input spikes due in [t_start, t_stop) (the last window: from t_start
        on), in time order; and whether there were more than its list holds."""
        (t_all, c_all, v_all), missed = arrivals(k, states, t_start)
        if windowed:
            due = jnp.isfinite(t_all) & (t_all >= t_start) & ((t_all < t_stop) | (t_stop >= t1))
            t_all = jnp.where(due, t_all, jnp.inf)
            too_many = (jnp.sum(due) > n_inputs[k]) | missed
        else:
            too_many = jnp.asarray(False)
        order = earliest(t_all, n_inputs[k])
        return (t_all[order], c_all[order], v_all[order]), too_many

    def window(states, t_start, t_stop, overflow):
        states = list(states)
        for k in p.order:
            (t_in, c_in, v_in), too_many = inputs_of(k, states, t_start, t_stop)
            state = states[k]
            # a fresh list of inputs each window (in one window: the only list)
            state = dataclasses.replace(state, input_index=loops[k].first_input(c_in))
            states[k] = loops[k].run(state, t_in, c_in, v_in, t_stop)
            overflow = overflow | too_many
        return states, overflow

    states = [loop.start() for loop in loops]
    no = jnp.asarray(False)
    if not windowed:
        states, _ = window(states, jnp.asarray(0.0, dtype), t1, no)
        return states, loops, no, no
    d = jnp.asarray(d, dtype)
    invalid = ~(d > 0)  # a backward delay traced to 0: no window can be formed
    step = jnp.where(invalid, t1, d)
    concrete = not isinstance(d, jax.core.Tracer) and not isinstance(t1, jax.core.Tracer)
    max_windows = int(math.ceil(float(t1) / float(d))) + 2 if concrete and float(d) > 0 else None

    def body(carry):
        t_start, states, overflow = carry
        t_stop = jnp.minimum(t_start + step, t1)
        # the last window ends on t1 exactly (a sum of window lengths may round below it)
        t_stop = jnp.where(t1 - t_stop <= 1e-9 * t1, t1, t_stop)
        states, overflow = window(states, t_start, t_stop, overflow)
        return t_stop, states, overflow

    _, states, overflow = eqxi.while_loop(
        lambda c: c[0] < t1,
        traced_once(body),
        (jnp.asarray(0.0, dtype), states, no),
        max_steps=max_windows,
        kind="checkpointed",
        checkpoints=None if max_windows is not None else 64,
    )
    return states, loops, invalid, overflow
