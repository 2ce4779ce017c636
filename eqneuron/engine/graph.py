"""Networks as graphs: populations connected by projections with delays, and their plan.

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
`offset + synapse` (source-major), a list of one target (`inputs.SparseBlock`);
its channels come after the others.  Arrival times are differentiable in the
emission times and the delays.

This module holds the plan (`plan`: the run order, each projection's channels
and how its target's loop reads them) and the delays it reads; each
population's loop is laid out from it in `graph_layout.py`, and the network
runs window after window in `graph_run.py`.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import sympy
from jaxtyping import Array, Float, Int

from ..errors import EqError
from ..network import Network, Population, Projection

# a sparse projection is read through its lists of targets (`inputs.SparseBlock`), not laid out as rows
# of the target's weights, when every input of its target is sparse (the target's loop then
# reads its inputs from inboxes, `PopulationLoop.by_inbox`) or when it has more source × target
# pairs than this
DENSE_LIMIT = 1 << 25


class Incoming(NamedTuple):
    source: int  # index of the source population
    projection: int | None  # index in `net.projections`; None: a population's own delayed recurrence
    offset: int  # first input channel of this projection at the target
    # how the loop reads its channels: "rows" of the target's weights, "lists" of targets
    # (`inputs.SparseBlock`), or single "synapses" (per-synapse delays: lists of one target each)
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
