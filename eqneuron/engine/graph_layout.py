"""The input layout of a graph population's loop, from the network's plan.

The plan (`graph.plan`) gives each population its input channels (the
external inputs', then each incoming projection's) and says how its loop reads
each projection's.  Here they become the loop's `InputLayout`: the channels
read through rows as rows of one weight matrix, with a mask of the neurons each
reaches (read on own clocks, where a neuron passes over the input spikes that
do not reach it); a sparse projection read through its lists of targets as a
`SparseBlock` of sorted lists (each target's weights summed, a bit per target
for the reach test); a projection with per-synapse delays as a `SparseBlock`
of one target per synapse.  Kept apart from the plan, which decides how each
projection is read, and from the run (`graph_run.py`), which hands each loop
its input spikes.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool

from ..network import Network, Population
from .graph import Incoming, Plan, synapse_table
from .inputs import InputLayout, SparseBlock


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
