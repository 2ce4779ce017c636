"""The population loop's input side: its input spikes, the layout of its input channels, and
how it reads them.

A loop reads one list of input spikes `(times, channels, values)` in time
order: in a stack, the external inputs (`input_feed`) or the spikes of the
population before (`spikes_as_inputs`); in a graph, those due in a window
(`graph_run.py`).  A channel is read through a row of weights (`InputLayout`)
or through a list of targets (`SparseBlock`: a sparse projection, or the
single synapse of a projection with per-synapse delays).  On own clocks a
neuron stops only at the input spikes that reach it: it looks ahead along the
list for the next one (`next_input`) or, where every channel is a list, reads
its own inbox, filled once per list (`_fill_inboxes`).  `LoopInputs` is a
base class of `PopulationLoop` holding this side of the loop, so that the
loop's iteration reads as the events it applies; the layouts are plain data,
which a graph's plan lays out without a loop (`graph_layout.py`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ..network import Population, Spikes
from .clocks import AbstractClock
from .graph import model_delay
from .lanes import earliest
from .state import LoopRecords

# input spikes looked at per lane for the next one that reaches its neuron (`LoopInputs.next_input`)
LOOKAHEAD = 8
# ... where some channels are lists of targets (projections of more than `graph.DENSE_LIMIT` pairs:
# a window's list holds many spikes, each reaching few of the neurons)
LOOKAHEAD_LISTS = 64


class SparseBlock(NamedTuple):
    """Input channels whose targets are lists (a sparse projection read without rows of weights,
    or, one target each, the synapses of a projection with per-synapse delays): channel
    `offset + i` reaches the neurons `targets[i]` (ascending; empty slots: the number of
    neurons, after the others) with the weights `weights[name][i]` (a neuron listed twice: the
    sum, at its first slot), at the input port `port`."""

    offset: int
    targets: Int[Array, "rows k"]
    weights: dict[str, Float[Array, "rows k"]]
    port: int | None
    # which neurons each channel reaches, 32 to a word (bit j % 32 of word j // 32): the test a
    # neuron makes for each of the next input spikes is one read, the search of `targets` is
    # made for the one it takes.  None: one target per channel, compared directly
    bits: Array | None

    def reaches(self, r, neurons):
        if self.bits is None:
            return self.targets[r, 0] == neurons
        return ((self.bits[r, neurons >> 5] >> (neurons & 31).astype(jnp.uint32)) & 1) == 1


class InputLayout(NamedTuple):
    """How the loop of a graph's population reads its input channels (`graph_layout.loop_inputs`):
    the first `in_size` of them through rows of `weights` (after the neurons' own rows when the
    population is recurrent), reaching the neurons `connected` marks (None: all); then the
    channels of `lists`."""

    weights: dict[str, Float[Array, "rows neurons"]]
    connected: Bool[Array, "rows neurons"] | None
    lists: tuple[SparseBlock, ...] = ()


class LoopInputs:
    """The input side of a population loop (a base class of `PopulationLoop`): the layout of its
    input channels, which input spikes reach which of its neurons, and the weights an input spike
    jumps a neuron with."""

    # set by the loop
    pop: Population
    clock: AbstractClock
    lane_ids: Int[Array, " lanes"]  # the neurons of the loop's lanes

    def __init__(self, pop: Population, clock: AbstractClock, inputs: InputLayout | None):
        n = pop.n_neurons
        if inputs is None:  # a stack's population: the neurons' own rows only when it is recurrent
            # (without recurrence, (N+K, N) weights of which K rows are read: the rest is not kept)
            layout = InputLayout(pop.effective_weights() if pop.recurrent else pop.input_weights(), None)
        else:
            layout = inputs
        # the weights' rows: the neurons' own (a recurrent population's), then a row per input channel
        self.weights = layout.weights
        self.row0 = n if pop.recurrent else 0
        self.rows_in = pop.in_size  # the channels with a row of weights
        # which input channels reach which neurons (rows as the channels'; None: all).  On own
        # clocks a neuron then passes over the input spikes that do not reach it: they neither
        # jump its state nor end its solver steps (in a sparse network most of a window's spikes
        # reach few of its neurons, and each spike was a loop iteration of every neuron)
        self.connected = layout.connected if clock.lanes(n) else None
        # the channels after those: lists of targets (sparse projections, per-synapse delays)
        self.lists = layout.lists
        sparse = bool(clock.lanes(n)) and (self.connected is not None or bool(self.lists))
        # every channel a list of targets (a sparse network): each window, every neuron's input
        # spikes are put in its own inbox first, so that it stops at those only
        # (`_fill_inboxes`); otherwise a neuron looks along the window's list for them (`skips`)
        self.by_inbox = sparse and not self.rows_in
        self.skips = sparse and not self.by_inbox
        # each neuron's inbox of a list of inputs (`_fill_inboxes`), filled by the loop's `run`
        self.inbox: tuple[Int[Array, "slots lanes"], Int[Array, " lanes"]] | None = None
        # all input channels: those with rows, then those of the lists
        self.in_size = pop.in_size + sum(int(b.targets.shape[0]) for b in self.lists)

    def _reaches(self, index, in_channels):
        """Whether input spike `index` (per lane, any shape ending in neurons) reaches the lane's neuron."""
        n_inputs = in_channels.shape[0]
        channel = in_channels[jnp.clip(index, 0, n_inputs - 1)]
        hit = jnp.broadcast_to(True, channel.shape)
        if self.connected is not None and self.rows_in:
            hit = self.connected[jnp.minimum(channel, self.rows_in - 1), self.lane_ids]
        for lists in self.lists:
            r, inside = _in_block(lists, channel)
            hit = jnp.where(inside, lists.reaches(r, self.lane_ids), hit)
        return (index < n_inputs) & hit

    def _input_rows(self, channel, neurons):
        """The weights of input channel `channel` at `neurons` (shapes broadcast), by name, and
        its input port (None: the model has no named ports)."""
        row = self.row0 + jnp.minimum(channel, max(self.rows_in - 1, 0))
        shape = jnp.broadcast_shapes(jnp.shape(channel), neurons.shape)
        rows = {name: w[row, neurons] if self.rows_in else jnp.zeros(shape, w.dtype) for name, w in self.weights.items()}
        ports = self.pop.ports
        port = jnp.asarray(ports, jnp.int32)[jnp.minimum(channel, len(ports) - 1)] if ports else None
        for lists in self.lists:
            r, inside = _in_block(lists, channel)
            slot, hit = _find(lists.targets, r, neurons)
            rows = {name: jnp.where(inside, jnp.where(hit, lists.weights[name][r, slot], 0.0), w) for name, w in rows.items()}
            if lists.port is not None:
                port = jnp.where(inside, lists.port, 0 if port is None else port)
        return rows, port

    def next_input(self, index, in_channels):
        """Per lane, the input spike after `index` that reaches its neuron, among the next
        `LOOKAHEAD` (`LOOKAHEAD_LISTS`); where none does, the last of them (a stop without a
        jump, from which the next search starts).  When every channel reaches every neuron:
        `index + 1`."""
        if not self.skips:
            return index + 1
        look = LOOKAHEAD_LISTS if self.lists else LOOKAHEAD
        ahead = index[None, :] + 1 + jnp.arange(look)[:, None]  # (look, neurons)
        hit = self._reaches(ahead, in_channels)
        # the first that reaches it, by a plain reduction (XLA's CPU argmax is a slower variadic one)
        first = jnp.min(jnp.where(hit, jnp.arange(look)[:, None], look), axis=0)
        found = jnp.where(first < look, index + 1 + first, index + look)
        return jnp.minimum(found, in_channels.shape[0]).astype(index.dtype)

    def first_input(self, in_channels):
        """Per lane, the index of the first input spike of a fresh list (`next_input` from -1)."""
        lanes = self.clock.lanes(self.pop.n_neurons)
        return self.next_input(jnp.full(lanes, -1, jnp.int32), in_channels) if self.skips else jnp.zeros(lanes, jnp.int32)

    def _fill_inboxes(self, in_times, in_channels, slots: int):
        """Each neuron's input spikes of a list (in time order, unused entries last with time
        +inf): their places in the list, `(slots, neurons)`, and how many there are.  One list
        entry per iteration, its targets written at once."""
        n = self.pop.n_neurons
        used = jnp.sum(jnp.isfinite(jax.lax.stop_gradient(in_times)))

        def body(carry):
            i, places, count = carry
            channel = in_channels[i]
            for block in self.lists:
                r, inside = _in_block(block, channel)
                targets = block.targets[r]
                # a neuron listed twice for one source is one input (its weights summed)
                first = jnp.concatenate([jnp.ones((1,), bool), targets[1:] != targets[:-1]])
                to = jnp.where(inside & first & (targets >= 0) & (targets < n), targets, n)  # n: dropped
                slot = count[jnp.minimum(to, n - 1)]
                places = places.at[slot, to].set(i, mode="drop")
                count = count.at[to].add(1, mode="drop")
            return i + 1, places, count

        start = (jnp.asarray(0), jnp.zeros((slots, n), jnp.int32), jnp.zeros((n,), jnp.int32))
        _, places, count = jax.lax.while_loop(lambda c: c[0] < used, body, start)
        return places, count


def _in_block(block: SparseBlock, channel):
    """The row of `block` that input channel `channel` is (clipped), and whether it is one of
    the block's."""
    size = block.targets.shape[0]
    inside = (channel >= block.offset) & (channel < block.offset + size)
    return jnp.clip(channel - block.offset, 0, size - 1), inside


def _find(targets: Int[Array, "rows k"], r, neurons):
    """The first slot of row `r` of ascending `targets` that holds `neurons` (shapes broadcast;
    a binary search of fixed length), and whether it is there."""
    k = targets.shape[1]
    lo = jnp.zeros(jnp.broadcast_shapes(jnp.shape(r), jnp.shape(neurons)), jnp.int32)
    hi = jnp.full_like(lo, k)
    for _ in range(k.bit_length()):
        mid = (lo + hi) // 2
        below = targets[r, jnp.minimum(mid, k - 1)] < neurons
        active = lo < hi
        lo = jnp.where(active & below, mid + 1, lo)
        hi = jnp.where(active & ~below, mid, hi)
    slot = jnp.minimum(lo, k - 1)
    return slot, targets[r, slot] == neurons


def input_feed(inputs: Spikes | None, dtype):
    """The external input spikes as the first population's inputs `(times, channels, values)`,
    in time order."""
    if inputs is None:
        return jnp.full((1,), jnp.inf, dtype), jnp.zeros((1,), jnp.int32), jnp.ones((1,), dtype)
    order = earliest(inputs.times, inputs.times.shape[0])
    values = jnp.ones_like(inputs.times) if inputs.values is None else inputs.values
    return inputs.times[order], inputs.channels[order], values[order]


def spikes_as_inputs(loop: LoopRecords, state, pop: Population, params: dict | None = None, order=None):
    """The spikes of `pop` so far as the next population's inputs `(times, channels, values)`, in
    time order (`order`: `loop.time_order(state)`, found already), with the model's `delay:`
    added (from `params`, else `pop`'s parameter values)."""
    spike_times, spike_ids = loop.spikes(state, order)
    delay = model_delay(pop, params)
    if delay is not None:  # the model's `delay:`: spikes reach the next population later
        spike_times = jnp.where(spike_ids >= 0, spike_times + delay[jnp.maximum(spike_ids, 0)], jnp.inf)
        order = earliest(spike_times, spike_times.shape[0])
        spike_times, spike_ids = spike_times[order], spike_ids[order]
    return spike_times, jnp.maximum(spike_ids, 0), jnp.ones_like(spike_times)
