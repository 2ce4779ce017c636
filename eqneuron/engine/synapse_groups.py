"""The synapses of an event-driven run (`event_windows.py`): target lists, grouped and fanned out.

Every projection of a graph network, and a population's own delayed
recurrence, becomes a table of target ids per source neuron (a dense matrix:
every target; a mask or padding: -1) with its weights, delays and input port.
The projections between one pair of populations are stacked into one group
and fanned out together, one source spike and projection per loop iteration:
each synaptic event due in a window is handed to the caller's `visit`, which
puts it in its target's sum and inbox (or in a candidate's list of events).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..network import Network
from .graph import Plan, model_delay, projection_delay
from .lanes import traced_once


class SynapseTable(NamedTuple):
    source: int
    target: int
    targets: jax.Array  # (sources, K) target ids, -1: none
    weights: dict  # name -> (sources, K) or (1, K)
    delay: jax.Array  # () or (sources,) or (sources, K)
    port: int | None  # the target's input port

    def shortest(self) -> jax.Array:
        """The shortest delay of a synapse (per-synapse delays: of the slots with a target)."""
        if self.delay.ndim == 2:
            return jnp.min(jnp.where(self.targets >= 0, self.delay, jnp.inf))
        return jnp.min(self.delay)

    def longest(self) -> jax.Array:
        if self.delay.ndim == 2:
            return jnp.max(jnp.where(self.targets >= 0, self.delay, -jnp.inf))
        return jnp.max(self.delay)


class SynapseGroup(NamedTuple):
    """The projections from one population to another, stacked (P of them): a source spike is
    fanned out through each projection whose row of targets is not empty, one row per loop
    iteration (rows side by side would cost every spike the width of all of them: Brian2's CUBA
    splits its sources into excitatory and inhibitory projections)."""

    source: int
    target: int
    targets: jax.Array  # (P, sources, K) target ids, -1: none
    weights: dict  # name -> (P, sources or 1, K)
    delay: jax.Array  # (P, sources or 1, K or 1)
    shortest: jax.Array  # the shortest and the longest delay of a synapse
    longest: jax.Array
    port: jax.Array | None  # (P,) the target's input port of each projection
    # (P + 1, sources): row p + 1, the first projection after p with targets for a source (P: none);
    # None: P = 1
    rows: jax.Array | None

    @property
    def size(self) -> int:
        return self.targets.shape[0]


def build_groups(net: Network, p: Plan, dtype) -> tuple[list[SynapseTable], list[SynapseGroup]]:
    """Every projection's table (and each population's own delayed recurrence as a dense one), and
    the groups they are delivered in: the projections between one pair of populations together."""
    pops = net.populations
    projections = []
    for k, proj in enumerate(net.projections):
        s, t = net.names.index(proj.source), net.names.index(proj.target)
        projections.append(table_of(net, proj, s, t, projection_delay(net, k), dtype))
    for k, pop in enumerate(pops):  # a population's own recurrence with its model's `delay:`
        if p.delayed_self[k]:
            w = pop.effective_weights()
            n = pop.n_neurons
            rows = {name: w[name][:n] for name in pop.model.weight_names}
            projections.append(dense_table(k, k, rows, None, model_delay(pop), None, dtype))
    # delivery: the projections between one pair of populations fanned out together (one loop)
    groups = [stack_group([pr for pr in projections if (pr.source, pr.target) == pair], dtype)
              for pair in dict.fromkeys((pr.source, pr.target) for pr in projections)]
    return projections, groups


def fan_out(pr: SynapseGroup, rec_t, rec_i, T0, T1, visit, carry, jump_of: Callable, n_t: int):
    """`visit(carry, arrival, target, jump, valid)` on every synaptic event of `pr` due in [T0, T1)
    from the source's spike records `rec_t`, `rec_i`, one source spike and projection at a time
    (so a target appears once per call, or as often as the projection's row lists it: such
    events arrive together).  `jump_of(arrival, rows, port)`: the jumps of a row of events onto
    the target population (`n_t` neurons), row 0 the augmented constant's (zero)."""
    lo = jnp.searchsorted(rec_t, T0 - pr.longest, side="left")
    hi = jnp.searchsorted(rec_t, T1 - pr.shortest, side="left")
    n_p = pr.size

    def first_row(i, after):
        """The first projection after `after` with targets for spike i's source (n_p: none)."""
        sid = jnp.maximum(rec_i[jnp.minimum(i, rec_i.shape[0] - 1)], 0)
        assert pr.rows is not None  # more than one projection
        return pr.rows[after + 1, sid]

    def event(i, q, carry):
        """Spike i's synaptic events through projection q."""
        ok = (i < hi) & (rec_i[i] >= 0)
        sid = jnp.maximum(rec_i[i], 0)
        targets = pr.targets[q, sid]  # (K,)
        delay = pr.delay[q, jnp.minimum(sid, pr.delay.shape[1] - 1)]  # (K,) or (1,)
        arrival = jnp.broadcast_to(rec_t[i] + delay, targets.shape)
        valid = ok & (targets >= 0) & (arrival >= T0) & (arrival < T1)
        rows = {name: jnp.broadcast_to(w[q, jnp.minimum(sid, w.shape[1] - 1)], targets.shape)
                for name, w in pr.weights.items()}
        port = None if pr.port is None else jnp.broadcast_to(pr.port[q], targets.shape)
        jump = jump_of(arrival, rows, port)
        target = jnp.where(valid, targets, n_t)
        return visit(carry, arrival, target, jump, valid)

    if n_p == 1:
        def one(c):
            i, carry = c
            return i + 1, event(i, 0, carry)

        return jax.lax.while_loop(lambda c: c[0] < hi, traced_once(one), (lo, carry))[1]

    def body(c):
        i, q, carry = c
        carry = event(i, jnp.minimum(q, n_p - 1), carry)
        nq = first_row(i, jnp.minimum(q, n_p - 1))
        more = nq < n_p
        i = jnp.where(more, i, i + 1)
        return i, jnp.where(more, nq, first_row(i, -1)), carry

    # a spike whose source has no targets here still takes one (empty) iteration
    return jax.lax.while_loop(lambda c: c[0] < hi, traced_once(body), (lo, first_row(lo, -1), carry))[2]


def stack_group(prs: list[SynapseTable], dtype) -> SynapseGroup:
    """Projections from one population to another as one group: their target lists stacked (padded
    to the widest), each with its weights, delays and port."""
    width = max(pr.targets.shape[1] for pr in prs)
    n_s = prs[0].targets.shape[0]

    def pad(a, value):  # (rows, K) -> (rows, width)
        return jnp.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=value)

    targets = jnp.stack([pad(pr.targets, -1) for pr in prs])
    rows = max(pr.weights[name].shape[0] for pr in prs for name in pr.weights)
    weights = {name: jnp.stack([pad(jnp.broadcast_to(pr.weights[name], (rows, pr.targets.shape[1])), 0.0) for pr in prs])
               for name in prs[0].weights}
    # a delay per projection, per source or per synapse: (P, sources or 1, K or 1)
    delays = [jnp.asarray(pr.delay, dtype).reshape((-1, 1) if jnp.ndim(pr.delay) < 2 else pr.delay.shape) for pr in prs]
    delays = [pad(d, 0.0) if d.shape[1] > 1 else d for d in delays]  # padded slots have no target
    shape = (max(d.shape[0] for d in delays), max(d.shape[1] for d in delays))
    delay = jnp.stack([jnp.broadcast_to(d, shape) for d in delays])
    shortest = jnp.min(jnp.stack([pr.shortest() for pr in prs]))
    longest = jnp.max(jnp.stack([pr.longest() for pr in prs]))
    ports = None if prs[0].port is None else jnp.asarray([pr.port for pr in prs], jnp.int32)
    following = None
    if len(prs) > 1:
        n_p = len(prs)
        here = jnp.any(targets >= 0, axis=2)  # (P, sources)
        # from the last projection back: the nearest one at or after p that has targets
        nxt = jnp.full((n_s,), n_p, jnp.int32)
        table = [nxt]
        for q in range(n_p - 1, -1, -1):
            nxt = jnp.where(here[q], q, nxt).astype(jnp.int32)
            table.append(nxt)
        following = jnp.stack(table[::-1])  # row p: the first at or after p; row P: none
    return SynapseGroup(prs[0].source, prs[0].target, targets, weights, delay, shortest, longest, ports, following)


def table_of(net: Network, proj, s: int, t: int, delay, dtype) -> SynapseTable:
    n_s = net.populations[s].n_neurons
    n_t = net.populations[t].n_neurons
    model = net.populations[t].model
    port = model.fn.port_names.index(proj.port or model.fn.port_names[0]) if model.fn.port_names else None
    if proj.targets is not None:
        targets = proj.targets
        # a scalar weight as one row (1, K), the same for every source
        weights = {name: jnp.broadcast_to(jnp.asarray(w, dtype), targets.shape if jnp.ndim(w) else (1, targets.shape[1]))
                   for name, w in proj.weights.items()}
        return SynapseTable(s, t, targets, weights, jnp.asarray(delay, dtype), port)
    rows = {name: jnp.broadcast_to(jnp.asarray(w, dtype), (n_s, n_t)) for name, w in proj.weights.items()}
    return dense_table(s, t, rows, proj.mask, delay, port, dtype)


def dense_table(s: int, t: int, rows: dict, mask, delay, port, dtype) -> SynapseTable:
    n_s, n_t = next(iter(rows.values())).shape
    targets = jnp.broadcast_to(jnp.arange(n_t, dtype=jnp.int32), (n_s, n_t))
    if mask is not None:
        targets = jnp.where(mask, targets, -1)
    return SynapseTable(s, t, targets, dict(rows), jnp.asarray(delay, dtype), port)

